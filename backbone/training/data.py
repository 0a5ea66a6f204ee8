"""From a training config to ready data: the training batches of the regime (each regime builds
its own training set, see ``backbone.training.regimes``), and the validation and test pairs with
their cached faces.

The training batches come one of two ways (``data.loader``): as tensors on the training device,
each batch gathered there by index (``TensorBatches``: what keeps a GPU fed), or from a
DataLoader, item by item in worker processes (needed when augmentation is per image). Both
draw the same order from the same seeds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from backbone.data.errors import DataError, missing_all
from backbone.data.faces.batches import TensorBatches
from backbone.data.faces.cache import CachedFaces, open_faces
from backbone.data.faces.samplers import BatchShard
from backbone.data.faces.transforms import BatchAugment, Standardise, augment_ranges, eval_transform, train_transform
from backbone.data.index import IdentityIndex
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, read_pairs
from backbone.paths import project_path
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig
from backbone.training.regimes import REGIMES, TrainingInputs


@dataclass
class EvalSet:
    pairs: list[Pair]
    faces: CachedFaces


@dataclass
class TrainingData:
    loader: DataLoader | TensorBatches
    generator: torch.Generator  # reseeded every epoch, so a resumed run sees the same batches
    num_classes: int
    val: EvalSet | None
    test: EvalSet | None
    eval_transform: object
    batch_transform: BatchAugment | Standardise | None = None  # applied to every training batch's images


def batch_augment_on(cfg: TrainConfig, device: torch.device | str) -> bool:
    """Whether augmentation works on whole batches (``data.batch_augment``; "auto": on a GPU)."""
    chosen = cfg.data.batch_augment
    return torch.device(device).type == "cuda" if chosen == "auto" else bool(chosen)


def resolved(cfg: TrainConfig, device: torch.device | str) -> TrainConfig:
    """``cfg`` with its device-dependent "auto" settings made what they are on ``device`` (what
    a run's config.yaml records)."""
    if cfg.data.batch_augment != "auto":
        return cfg
    return cfg.with_overrides([f"data.batch_augment={str(batch_augment_on(cfg, device)).lower()}"])


def check_inputs(cfg: TrainConfig) -> None:
    """Every file and folder ``cfg`` reads exists (relative paths: under the project root);
    otherwise one ``MissingInput`` that names each missing one and what makes it."""
    d = cfg.data
    named = [("data root", d.root, "dir"), ("training data root", d.train_root, "dir"), ("pair file", d.train_pairs, "file"), ("pair file", d.val_pairs, "file"),
             ("pair file", d.test_pairs, "file"), ("triplet file", d.train_triplets, "file"),
             ("people file", d.train_people, "file"), ("weights file", cfg.model.weights, "file"),
             ("teacher checkpoint", cfg.loss.teacher, "file")]  # fmt: skip
    absent = [(what, path) for what, path, kind in named
              if path and not (project_path(path).is_dir() if kind == "dir" else project_path(path).is_file())]  # fmt: skip
    if absent:
        raise missing_all(absent)


def _pairs(path: str | None, index: IdentityIndex) -> list[Pair] | None:
    return read_pairs(path, root=index.root) if path else None


def build_training_data(cfg: TrainConfig, progress: bool = True, rank: int = 0, world_size: int = 1,
                        device: torch.device | str = "cpu") -> TrainingData:  # fmt: skip
    """The regime's training batches (``backbone.training.regimes``) on ``device`` and the evaluation pairs.

    With several processes (``world_size``), every process draws the regime's order from the same
    generator (reseeded every epoch) and keeps its own share of its batches (``BatchShard``: batches
    ``rank``, ``rank + world_size``, ...): disjoint shards that a resumed run draws again identically.

    The training set comes from ``data.train_root`` when it is set (another data set: e.g. many
    more synthetic identities than the evaluation set's, none of them in its validation or test
    pairs), else from ``data.root``; the validation and test pairs are always under ``data.root``."""
    d = cfg.data
    index = load_index(d.root, d.kind)
    train_index = load_index(d.train_root, d.kind) if d.train_root else index
    size = cfg.model.image_size
    ranges = augment_ranges(d.augment_strength)
    per_image = d.augment and not batch_augment_on(cfg, device)
    if per_image and d.loader == "tensors":
        raise ConfigError("data.loader: tensors needs whole-batch augmentation (data.batch_augment: true) or none "
                          "(data.augment: false); per-image augmentation runs in DataLoader workers (data.loader: workers)")  # fmt: skip
    tensors = d.loader == "tensors" or (d.loader == "auto" and not per_image)
    batch_transform: BatchAugment | Standardise | None = None
    if per_image:
        transform = train_transform(size=size, hflip=d.hflip, **ranges)
    elif d.augment:
        transform, batch_transform = None, BatchAugment(hflip=d.hflip, **ranges)
    elif tensors:
        transform, batch_transform = None, Standardise()
    else:
        transform = eval_transform(size)
    # transform None: the crops stay uint8, read at the model's size (TrainingInputs.faces), for the batch transform
    generator = torch.Generator()
    inputs = TrainingInputs(cfg, train_index, _pairs(d.train_pairs, train_index), transform, generator, progress)
    train_set = REGIMES.get(cfg.loss.regime).training_set(inputs)
    sampler = train_set.sampler
    if world_size > 1:
        sampler = BatchShard(sampler, cfg.batch_size, rank, world_size)
    if tensors:
        loader = TensorBatches(train_set.dataset.columns(), sampler, cfg.batch_size, generator, device)
    else:
        loader = DataLoader(train_set.dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=d.workers,
                            drop_last=True, generator=generator)  # fmt: skip
    if len(loader) == 0:
        raise DataError(f"batch size {cfg.batch_size} is larger than the training set ({len(train_set.dataset)} items)")

    def eval_set(path: str | None) -> EvalSet | None:
        pairs = _pairs(path, index)
        if not pairs:
            return None
        paths = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
        faces = open_faces(
            index.only_paths(paths), d.align, d.policy, d.cache, workers=max(d.workers, 1), progress=progress
        )
        return EvalSet(pairs, faces)

    return TrainingData(
        loader,
        generator,
        train_set.num_classes,
        eval_set(d.val_pairs),
        eval_set(d.test_pairs),
        eval_transform(size),
        batch_transform,
    )
