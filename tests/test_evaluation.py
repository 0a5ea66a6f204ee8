import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backbone.data import generate_pairs, load_index
from backbone.data.faces.transforms import eval_transform
from backbone.evaluation.embeddings import EmbeddingStore, default_threshold, evaluate_pairs
from backbone.models import ModelConfig, build_model


def fake_faces(path: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(int.from_bytes(path.encode()[-12:], "little") % 2**31)
    return torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(embedding_dim=16)).eval()


def test_every_unique_image_goes_through_the_network_once(model, tiny_synth):
    pairs = generate_pairs(load_index(tiny_synth), 60, seed=0)
    seen = []
    real = model.embed

    def counting(x):
        seen.append(len(x))
        return real(x)

    model.embed = counting
    ev = evaluate_pairs(model, pairs, fake_faces, eval_transform(), batch_size=7, progress=False)
    unique = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
    assert sum(seen) == len(unique) == ev.metrics["unique_images"] == ev.embedded < 2 * len(pairs)
    # vectorised scores equal the cosine similarity of each pair's embeddings
    x = torch.stack([eval_transform()(fake_faces(pairs[3].path_a)), eval_transform()(fake_faces(pairs[3].path_b))])
    e = real(x)
    assert ev.scores[3] == pytest.approx(F.cosine_similarity(e[:1], e[1:]).item(), abs=1e-5)
    assert ev.metrics["at_threshold"]["threshold"] == 0.6 and "twin_negatives" in ev.metrics


def test_the_embedding_store_reuses_what_it_has(model, tiny_synth, tmp_path):
    index = load_index(tiny_synth)
    first, second = generate_pairs(index, 40, seed=0), generate_pairs(index, 40, seed=1)
    hashes = {r.path: f"h-{r.path}" for r in index.records}
    store = EmbeddingStore(tmp_path / "emb.pt")
    a = evaluate_pairs(model, first, fake_faces, eval_transform(), hashes=hashes, store=store, progress=False)
    again = EmbeddingStore(tmp_path / "emb.pt")  # from disk
    b = evaluate_pairs(model, first, fake_faces, eval_transform(), hashes=hashes, store=again, progress=False)
    assert b.embedded == 0 and np.allclose(a.scores, b.scores)
    c = evaluate_pairs(model, second, fake_faces, eval_transform(), hashes=hashes, store=again, progress=False)
    new = {p for x in second for p in (x.path_a, x.path_b)} - {p for x in first for p in (x.path_a, x.path_b)}
    assert c.embedded == len(new)


def test_default_thresholds():
    assert default_threshold(build_model(ModelConfig())) == 0.6
    assert default_threshold(build_model(ModelConfig(pair_head=True))) == 0.5
    assert default_threshold(build_model(ModelConfig(distance="euclidean"))) is None


def test_repeated_pairs_and_pairs_of_an_image_with_itself_are_scored_counted_and_named():
    """Issue 30: evaluation scored them silently. They are still scored (no pair is dropped), but named."""
    from pathlib import Path

    from backbone.data.errors import DataWarning
    from backbone.data.lists.pairs import Pair
    from backbone.evaluation.checkpoints import odd_pairs

    pairs = [Pair("a/1.png", "b/1.png", 0, line=2), Pair("a/1.png", "a/1.png", 1, line=3),
             Pair("b/1.png", "a/1.png", 0, line=4), Pair("a/1.png", "a/2.png", 1, line=5)]  # fmt: skip
    with pytest.warns(DataWarning, match=r"p.tsv: 1 repeated \(lines 4\) and 1 of an image with itself \(lines 3\)"):
        assert odd_pairs(pairs, Path("p.tsv")) == {"repeated_pairs": 1, "self_pairs": 1}
    assert odd_pairs(pairs[3:], Path("p.tsv")) == {"repeated_pairs": 0, "self_pairs": 0}


def test_with_alignment_copies_a_checkpoint_with_another_alignment(tiny_run, tmp_path):
    from backbone.evaluation.checkpoints import checkpoint_align_config, with_alignment
    from backbone.models.build import read_checkpoint
    from backbone.settings import ConfigError

    source = tiny_run / "best.ckpt"
    out = with_alignment(source, tmp_path / "crop.ckpt", crop=0.5)
    before, after = read_checkpoint(source), read_checkpoint(out)
    assert checkpoint_align_config(after, 112).crop == 0.5
    assert checkpoint_align_config(after, 112).size == checkpoint_align_config(before, 112).size
    assert after.get("val_threshold") == before.get("val_threshold")
    assert all(torch.equal(after["model"][k], v) for k, v in before["model"].items())  # the same weights
    with pytest.raises(ConfigError, match="retry_darkness"):
        with_alignment(source, tmp_path / "bad.ckpt", retry_darkness=True)
