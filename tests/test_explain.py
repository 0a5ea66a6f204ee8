import pytest
import torch

from backbone.data import generate_pairs, load_index
from backbone.evaluation.explain import attention_maps, faces_and_maps, twin_examples
from backbone.models import ModelConfig, build_model


def test_attention_maps_at_the_input_size(tiny_synth):
    torch.manual_seed(0)
    model = build_model(ModelConfig(attention="spatial", embedding_dim=16, branch_dim=8))
    crops = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(3)]
    maps = attention_maps(model, crops, 64)
    assert [m.shape for m in maps] == [(64, 64)] * 3 and all(abs(m.sum() - 1) < 1e-4 for m in maps)
    images, maps = faces_and_maps(model, lambda p: crops[0], ["a", "b"], 48)
    assert images[0].shape == (48, 48, 3) and maps[0].shape == (48, 48)
    with pytest.raises(ValueError, match="local-global"):
        attention_maps(build_model(ModelConfig()), crops, 64)


def test_twin_examples_prefer_twin_negatives(tiny_synth):
    index = load_index(tiny_synth)
    pairs = generate_pairs(index, 40, seed=0, twin_share=0.5)
    paths = twin_examples(pairs, 3)
    assert len(paths) == 6
    for a, b in zip(paths[::2], paths[1::2]):
        assert index.identity_of[b] in index.siblings(index.identity_of[a])
