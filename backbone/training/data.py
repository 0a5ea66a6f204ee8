"""From a training config to ready data: the training loader of the regime (each regime builds
its own training set, see ``backbone.training.regimes``), and the validation and test pairs with
their cached faces."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from backbone.data.errors import DataError, missing_all
from backbone.data.faces.cache import CachedFaces, open_faces
from backbone.data.faces.samplers import BatchShard
from backbone.data.faces.transforms import BatchAugment, augment_ranges, eval_transform, train_transform
from backbone.data.index import IdentityIndex
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, read_pairs
from backbone.paths import project_path
from backbone.training.config import TrainConfig
from backbone.training.regimes import REGIMES, TrainingInputs


@dataclass
class EvalSet:
    pairs: list[Pair]
    faces: CachedFaces


@dataclass
class TrainingData:
    loader: DataLoader
    generator: torch.Generator  # reseeded every epoch, so a resumed run sees the same batches
    num_classes: int
    val: EvalSet | None
    test: EvalSet | None
    eval_transform: object
    augment: BatchAugment | None = None  # applied to every training batch in the training process


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


def build_training_data(cfg: TrainConfig, progress: bool = True, rank: int = 0, world_size: int = 1) -> TrainingData:
    """The regime's training loader (``backbone.training.regimes``) and the evaluation pairs.

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
    augment = BatchAugment(hflip=d.hflip, **ranges) if d.augment and d.batch_augment else None
    if augment is not None:
        transform = None  # the crops stay uint8, read at the model's size (TrainingInputs.faces), for BatchAugment
    else:
        transform = train_transform(size=size, hflip=d.hflip, **ranges) if d.augment else eval_transform(size)
    generator = torch.Generator()
    inputs = TrainingInputs(cfg, train_index, _pairs(d.train_pairs, train_index), transform, generator, progress)
    train_set = REGIMES.get(cfg.loss.regime).training_set(inputs)
    sampler = train_set.sampler
    if world_size > 1:
        sampler = BatchShard(sampler, cfg.batch_size, rank, world_size)
    loader = DataLoader(
        train_set.dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=d.workers,
        drop_last=True,
        generator=generator,
    )
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
        augment,
    )
