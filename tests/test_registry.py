"""Registries: one per extension point; a new regime, attention module or backbone is one class
(or function) plus its registration, and configs accept exactly the registered names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backbone.models.attention import ATTENTION, feature_map_attention
from backbone.models.backbones import BACKBONES, Backbone, EmbeddingHead, create_backbone
from backbone.models.build import ModelConfig, build_model
from backbone.models.siamese import DISTANCES
from backbone.registry import Registry
from backbone.training.config import TrainConfig
from backbone.training.optim import OPTIMISERS, SCHEDULERS
from backbone.training.regimes import REGIMES, Regime, TrainingSet
from backbone.training.trainer import train


def test_a_registry_builds_by_name_and_lists_the_names_it_knows():
    things = Registry("thing")
    things.register("double", factor=2)(lambda x: 2 * x)
    assert things.create("double", 3) == 6 and things.names() == ("double",) and things.info("double") == {"factor": 2}
    with pytest.raises(ValueError, match=r"unknown thing 'triple'; choose from \('double',\)"):
        things.create("triple", 3)
    with pytest.raises(ValueError, match="already registered"):
        things.register("double")(lambda x: x)


@pytest.mark.parametrize(
    "key, registry",
    [("loss.regime", REGIMES), ("optim.name", OPTIMISERS), ("optim.scheduler", SCHEDULERS),
     ("model.attention", ATTENTION), ("model.distance", DISTANCES)],
)  # fmt: skip
def test_configs_accept_exactly_the_registered_names(key, registry):
    for name in registry.names():
        TrainConfig().with_overrides([f"{key}={name}"])
    with pytest.raises(ValueError) as info:
        TrainConfig().with_overrides([f"{key}=no-such-thing"])
    assert all(name in str(info.value) for name in registry.names())  # the error lists what exists


def test_the_default_names_are_registered():
    assert {"contrastive", "triplet", "pair-bce", "arcface", "cosface"} <= set(REGIMES.names())
    assert {"cbam", "spatial", "transformer", "marks"} == set(ATTENTION.names())
    assert {"cbam", "spatial", "transformer"} == set(feature_map_attention())  # marks is a network of its own
    assert {"adam", "adamw", "sgd"} == set(OPTIMISERS.names()) and {
        "none",
        "plateau",
        "cosine",
        "cosine-steps",
        "step",
    } == set(SCHEDULERS.names())
    assert {"small", "small_grid", "inception_resnet_v1", "dlib_resnet"} == set(BACKBONES.names())


@pytest.fixture
def toy_extensions():
    """A toy attention module, backbone and regime, each one class plus its registration."""

    @ATTENTION.register("toy-mean")
    class MeanAttention(nn.Module):  # uniform attention: the local vector is the mean feature
        def __init__(self, channels: int):
            super().__init__()

        def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            b, _, h, w = fmap.shape
            return fmap.mean((2, 3)), torch.full((b, 1, h, w), 1.0 / (h * w))

    @BACKBONES.register("toy-cnn", input_size=32)
    def toy_cnn(embedding_dim: int, pretrained, weights, dropout: float) -> Backbone:
        trunk = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        return Backbone(trunk, 8, EmbeddingHead(8, embedding_dim, dropout), "toy-cnn")

    @REGIMES.register("toy-centre")
    class CentreRegime(Regime):  # pulls every embedding of an identity batch towards the batch mean
        @classmethod
        def images_per_batch(cls, cfg) -> int:
            return cfg.batch_size

        @classmethod
        def training_set(cls, inputs) -> TrainingSet:
            dataset = inputs.identities()
            return TrainingSet(dataset, inputs.shuffled(dataset), len(dataset.classes))

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            e = nn.functional.normalize(self.model.net(x), dim=1)
            return (e - e.mean(0, keepdim=True)).pow(2).sum(1).mean()

    yield
    ATTENTION.unregister("toy-mean")
    BACKBONES.unregister("toy-cnn")
    REGIMES.unregister("toy-centre")


def test_a_registered_attention_module_and_backbone_build_a_model(toy_extensions):
    model = build_model(ModelConfig(backbone="toy-cnn", attention="toy-mean", embedding_dim=16, branch_dim=8))
    assert ModelConfig(backbone="toy-cnn").image_size == 32  # the registered default input size
    out = model.net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.embedding.shape == (2, 16) and torch.allclose(out.attention.sum((2, 3)), torch.ones(2, 1))
    assert isinstance(create_backbone("toy-cnn", 16), Backbone)


@pytest.mark.slow
def test_a_registered_regime_trains_for_a_step(toy_extensions, tiny_synth, tmp_path):
    from backbone.data import generate_pairs, load_index, write_pairs

    write_pairs(generate_pairs(load_index(tiny_synth), 20, seed=0), tmp_path / "pairs.tsv")
    cfg = TrainConfig.from_dict({
        "out_dir": str(tmp_path / "run"), "epochs": 1, "batch_size": 8, "steps_per_epoch": 1,
        "loss": {"regime": "toy-centre"},
        "data": {"root": str(tiny_synth), "train_pairs": str(tmp_path / "pairs.tsv"), "val_pairs": None, "test_pairs": None,
                 "align": {"size": 32, "detector": "none"}, "cache": str(tmp_path / "cache"), "workers": 0},
        "model": {"backbone": "toy-cnn", "attention": "toy-mean", "embedding_dim": 16, "branch_dim": 8},
    })  # fmt: skip
    before = build_model(cfg.model)
    result = train(cfg, progress=False)
    assert result.epochs_run == 1 and result.history[0]["train_loss"] > 0
    trained = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    assert trained["train_config"]["loss"]["regime"] == "toy-centre" and set(trained["model"]) == set(
        before.state_dict()
    )
