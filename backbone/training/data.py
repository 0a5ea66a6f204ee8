"""From a training config to ready data: the training loader of the regime, and the validation
and test pairs with their cached faces."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, RandomSampler

from backbone.data.cache import CachedFaces, open_faces
from backbone.data.datasets import FaceDataset, PairDataset, TripletDataset
from backbone.data.errors import DataError, missing_all
from backbone.data.index import IdentityIndex
from backbone.data.lfw import read_lfw_people
from backbone.data.load import load_index
from backbone.data.pairs import Pair, read_pairs
from backbone.data.samplers import balanced_sampler
from backbone.data.transforms import eval_transform, train_transform
from backbone.data.triplets import read_triplets
from backbone.paths import project_path
from backbone.training.config import TrainConfig


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


def check_inputs(cfg: TrainConfig) -> None:
    """Every file and folder ``cfg`` reads exists (relative paths: under the project root);
    otherwise one ``MissingInput`` that names each missing one and what makes it."""
    d = cfg.data
    named = [("data root", d.root, "dir"), ("pair file", d.train_pairs, "file"), ("pair file", d.val_pairs, "file"),
             ("pair file", d.test_pairs, "file"), ("triplet file", d.train_triplets, "file"),
             ("people file", d.train_people, "file"), ("weights file", cfg.model.weights, "file")]  # fmt: skip
    absent = [(what, path) for what, path, kind in named
              if path and not (project_path(path).is_dir() if kind == "dir" else project_path(path).is_file())]  # fmt: skip
    if absent:
        raise missing_all(absent)


def _pairs(path: str | None, index: IdentityIndex) -> list[Pair] | None:
    return read_pairs(path, root=index.root) if path else None


def training_identities(cfg: TrainConfig, index: IdentityIndex, train_pairs: list[Pair] | None) -> list[str]:
    """Identities the identity regimes learn from: an LFW people file, else those of the train pairs."""
    if cfg.data.train_people:
        names = sorted({n for people in read_lfw_people(cfg.data.train_people) for n in people})
    elif train_pairs:
        names = sorted({index.identity_of[p] for pair in train_pairs for p in (pair.path_a, pair.path_b)})
    else:
        raise DataError("the identity regimes (triplet, arcface) need data.train_pairs or data.train_people")
    return names


def build_training_data(cfg: TrainConfig, progress: bool = True) -> TrainingData:
    d = cfg.data
    index = load_index(d.root, d.kind)
    faces = dict(config=d.align, policy=d.policy, cache_root=d.cache, workers=max(d.workers, 1), progress=progress)
    size = cfg.model.image_size
    transform = train_transform(size=size, hflip=d.hflip) if d.augment else eval_transform(size)
    generator = torch.Generator()
    train_pairs = _pairs(d.train_pairs, index)

    def items(dataset) -> int:
        """Enough items for every step of an epoch: a small set is gone through more than once."""
        return max(len(dataset), (cfg.steps_per_epoch or 0) * cfg.batch_size)

    regime = cfg.loss.regime
    num_classes = 0
    if regime in ("contrastive", "pair-bce"):
        if not train_pairs:
            raise DataError(f"the {regime} regime needs data.train_pairs")
        paths = {p for pair in train_pairs for p in (pair.path_a, pair.path_b)}
        source = open_faces(index.only_paths(paths), preload=d.preload, **faces)
        dataset = PairDataset(train_pairs, source, transform)
        sampler = RandomSampler(dataset, num_samples=items(dataset), generator=generator)
    elif regime == "triplet" and d.train_triplets:
        triplets = read_triplets(d.train_triplets, root=index.root)
        paths = {p for t in triplets for p in (t.anchor, t.positive, t.negative)}
        source = open_faces(index.only_paths(paths), preload=d.preload, **faces)
        dataset = TripletDataset(triplets, source, transform)
        sampler = RandomSampler(dataset, num_samples=items(dataset), generator=generator)
    else:
        names = training_identities(cfg, index, train_pairs)
        if regime == "triplet":  # mining needs a positive for every anchor
            names = [n for n in names if len(index.by_identity[n]) >= 2]
        subset = index.subset(names)
        source = open_faces(subset, preload=d.preload, **faces)
        dataset = FaceDataset(subset, source, transform)
        num_classes = len(dataset.classes)
        if regime == "triplet":
            sampler = balanced_sampler(dataset.labels, cfg.loss.m_per_class, cfg.batch_size, length=items(dataset))
        else:
            sampler = RandomSampler(dataset, num_samples=items(dataset), generator=generator)
    loader = DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=d.workers, drop_last=True, generator=generator
    )
    if len(loader) == 0:
        raise DataError(f"batch size {cfg.batch_size} is larger than the training set ({len(dataset)} items)")

    def eval_set(path: str | None) -> EvalSet | None:
        pairs = _pairs(path, index)
        if not pairs:
            return None
        paths = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
        return EvalSet(pairs, open_faces(index.only_paths(paths), **faces))

    return TrainingData(loader, generator, num_classes, eval_set(d.val_pairs), eval_set(d.test_pairs), eval_transform(size))

