"""Tensor batches (backbone.data.faces.batches): for one seed, the very batches a DataLoader makes,
for every regime's data set and sampler, and a training run that is the same either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler

from backbone.data import generate_pairs, generate_triplets, load_index, write_pairs, write_triplets
from backbone.data.faces.batches import Column, TensorBatches
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig
from backbone.training.data import build_training_data
from backbone.training.trainer import augmented, train


@pytest.fixture(scope="module")
def lists(tiny_synth, tmp_path_factory):
    base = tmp_path_factory.mktemp("lists")
    index = load_index(tiny_synth)
    write_pairs(generate_pairs(index, 48, seed=0, twin_share=0.5), base / "pairs.tsv")
    write_triplets(generate_triplets(index, 40, seed=0), base / "triplets.tsv")
    return base


def config(tiny_synth, lists, **overrides) -> TrainConfig:
    d = {
        "out_dir": str(lists / "run"), "epochs": 1, "batch_size": 8, "seed": 0,
        "data": {"root": str(tiny_synth), "train_pairs": str(lists / "pairs.tsv"), "val_pairs": None, "test_pairs": None,
                 "align": {"size": 64, "detector": "none"}, "cache": str(lists / "cache"), "workers": 0},
        "model": {"input_size": 48, "embedding_dim": 16},
    }  # fmt: skip
    return TrainConfig.from_dict(d).with_overrides([f"{k}={v}" for k, v in overrides.items()])


def drawn(data, passes: int = 2) -> list[list[torch.Tensor]]:
    """Every batch of ``passes`` passes over the loader, after seeding its sources as an epoch does,
    with the batch transform applied (augmentation drawn from the seeded global generator)."""
    data.generator.manual_seed(5)
    np.random.seed(5)  # pytorch-metric-learning's MPerClassSampler draws from numpy's global generator
    torch.manual_seed(5)
    return [augmented(list(batch), data.batch_transform) for _ in range(passes) for batch in data.loader]


REGIMES = [
    {"loss.regime": "contrastive"},
    {"loss.regime": "pair-bce"},
    {"loss.regime": "triplet", "loss.m_per_class": 2},
    {"loss.regime": "triplet", "loss.m_per_class": 2, "loss.family_batches": True},
    {"loss.regime": "triplet", "loss.family_batches": True, "loss.m_per_class": 2, "model.attention": "marks",
     "loss.branch.marks": 1.0},
    {"loss.regime": "arcface"},
]  # fmt: skip


CASES = [(o, augment) for o in REGIMES for augment in ("none", "batch")
         if augment == "none" or "loss.branch.marks" not in o]  # mark supervision trains without augmentation  # fmt: skip


@pytest.mark.parametrize(
    "overrides, augment", CASES, ids=lambda o: "-".join(map(str, o.values())) if isinstance(o, dict) else o
)
def test_tensor_batches_are_the_data_loaders_batches(tiny_synth, lists, overrides, augment):
    """Same order, same values, same dtypes: images (after the same standardisation or seeded batch
    augmentation), labels, ``same``, masks; over two passes (each pass draws the DataLoader's seed)."""
    settings = {"data.augment": False} if augment == "none" else {"data.batch_augment": True}
    loaders = [build_training_data(config(tiny_synth, lists, **overrides, **settings, **{"data.loader": how}),
                                   progress=False) for how in ("workers", "tensors")]  # fmt: skip
    assert isinstance(loaders[0].loader, DataLoader) and isinstance(loaders[1].loader, TensorBatches)
    assert len(loaders[0].loader) == len(loaders[1].loader) > 0
    old, new = (drawn(data) for data in loaders)
    assert len(old) == len(new) == 2 * len(loaders[0].loader)
    for a, b in zip(old, new):
        assert [(x.dtype, x.shape) for x in a] == [(x.dtype, x.shape) for x in b]
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_explicit_triplets_and_loader_workers_draw_the_same(tiny_synth, lists):
    """A triplet file (three images an item, each image stored once) through one worker process."""
    settings = {"data.train_triplets": str(lists / "triplets.tsv"), "loss.regime": "triplet", "data.augment": False}
    old = build_training_data(config(tiny_synth, lists, **settings, **{"data.loader": "workers", "data.workers": 1}),
                              progress=False)  # fmt: skip
    new = build_training_data(config(tiny_synth, lists, **settings), progress=False)
    assert isinstance(new.loader, TensorBatches) and len(new.loader.columns) == 3
    assert new.loader.columns[0].storage is new.loader.columns[2].storage  # one image store for all three roles
    pairs = list(zip(drawn(old), drawn(new)))
    assert len(pairs) == 2 * 5 and all(torch.equal(x, y) for a, b in pairs for x, y in zip(a, b))


def test_auto_picks_tensors_unless_augmentation_is_per_image(tiny_synth, lists):
    def loader(**settings):
        return build_training_data(config(tiny_synth, lists, **settings), progress=False).loader

    assert isinstance(loader(**{"data.augment": False}), TensorBatches)
    assert isinstance(loader(**{"data.batch_augment": True}), TensorBatches)
    assert isinstance(loader(), DataLoader)  # on the CPU "auto" augments per image, as the committed runs did
    with pytest.raises(ConfigError, match="data.loader: tensors needs whole-batch augmentation"):
        loader(**{"data.loader": "tensors", "data.batch_augment": False})
    with pytest.raises(ConfigError, match="data.loader must be one of"):
        config(tiny_synth, lists, **{"data.loader": "fast"})


def test_a_run_trains_the_same_through_either_loader(tiny_synth, lists, tmp_path):
    """The same losses and validation AUC, and the run's config records the batch augmentation it used."""
    runs = []
    for how in ("workers", "tensors"):
        cfg = config(tiny_synth, lists, steps_per_epoch=4, epochs=2, out_dir=str(tmp_path / how), **{
            "data.loader": how, "data.val_pairs": str(lists / "pairs.tsv"), "loss.regime": "triplet",
            "loss.m_per_class": 2, "loss.family_batches": True})  # fmt: skip
        cfg = cfg.with_overrides(["data.batch_augment=true"])
        runs.append(train(cfg, progress=False))
    old, new = ([h[k] for h in r.history for k in ("train_loss", "val_auc")] for r in runs)
    assert new == pytest.approx(old, rel=1e-6)
    saved = TrainConfig.load(tmp_path / "tensors" / "config.yaml")
    assert saved.data.batch_augment is True and saved.data.loader == "tensors"


def test_auto_batch_augmentation_is_recorded_as_what_it_was(tiny_synth, lists, tmp_path):
    cfg = config(tiny_synth, lists, steps_per_epoch=1, out_dir=str(tmp_path / "run"))
    assert cfg.data.batch_augment == "auto"
    train(cfg, progress=False)
    assert TrainConfig.load(tmp_path / "run" / "config.yaml").data.batch_augment is False  # on the CPU


def test_columns_gather_through_shared_rows_and_check_lengths():
    store = torch.arange(12).view(6, 2)
    batches = TensorBatches([Column(store, torch.tensor([5, 0, 2, 3])), Column(torch.tensor([1, 0, 1, 0]))],
                            RandomSampler(range(4), generator=torch.Generator().manual_seed(0)), batch_size=3)  # fmt: skip
    (images, same), *rest = list(batches)
    assert rest == [] and len(batches) == 1  # the incomplete last batch is dropped, as drop_last
    order = [[5, 0, 2, 3].index(int(row)) for row in images[:, 0] // 2]
    assert same.tolist() == [[1, 0, 1, 0][i] for i in order]
    with pytest.raises(ValueError, match="differ in length"):
        TensorBatches([Column(store), Column(torch.zeros(3))], range(3), batch_size=1)
