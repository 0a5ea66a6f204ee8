"""The regime base class, the ``REGIMES`` registry, and what a regime builds its data from.

Wrapping model and loss in one module (a regime *is* the objective) lets Lightning Fabric see a
single forward, so multi-GPU gradient synchronisation and mixed precision cover everything.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import Dataset, RandomSampler, Sampler

from backbone.data.errors import DataError
from backbone.data.faces.cache import CachedFaces, open_faces
from backbone.data.faces.datasets import FaceDataset
from backbone.data.index import IdentityIndex
from backbone.data.layouts.lfw import read_lfw_people
from backbone.data.lists.pairs import Pair
from backbone.models.local_global import LocalGlobalNet
from backbone.models.siamese import SiameseNet
from backbone.registry import Registry

if TYPE_CHECKING:
    from backbone.models.build import ModelConfig
    from backbone.training.config import LossConfig, TrainConfig


@dataclass
class TrainingSet:
    """A regime's training data: the data set, the sampler that orders it, and the number of
    identity classes (for classification regimes; 0 otherwise)."""

    dataset: Dataset
    sampler: Sampler
    num_classes: int = 0


@dataclass
class TrainingInputs:
    """What a regime builds its training set from: the config, the data set's index, the training
    pairs (when the config names them), the training transform and the loader's generator."""

    cfg: TrainConfig
    index: IdentityIndex
    pairs: list[Pair] | None
    transform: Callable[[torch.Tensor], torch.Tensor] | None  # None: uint8 crops at the model size (a batch transform)
    generator: torch.Generator
    progress: bool = True

    def faces(self, index: IdentityIndex) -> CachedFaces:
        """The aligned faces of ``index`` as the config aligns them (decoded into RAM with ``preload``)."""
        d = self.cfg.data
        size = self.cfg.model.image_size if self.transform is None else None  # resized once, not every epoch
        return open_faces(index, d.align, d.policy, d.cache, d.preload, max(d.workers, 1), self.progress, size)

    def length(self, dataset: Dataset) -> int:
        """Items an epoch draws: enough for every step, so a small set is gone through more than once.
        A time budget goes through the loader as often as its steps take (``trainer.batches``), so
        the steps it pins draw the very batches that the timed run it pins drew."""
        if self.cfg.budget_minutes:
            return len(dataset)
        return max(len(dataset), (self.cfg.steps_per_epoch or 0) * self.cfg.batch_size)

    def shuffled(self, dataset: Dataset) -> RandomSampler:
        return RandomSampler(dataset, num_samples=self.length(dataset), generator=self.generator)

    def require_pairs(self) -> list[Pair]:
        if not self.pairs:
            raise DataError(f"the {self.cfg.loss.regime} regime needs data.train_pairs")
        return self.pairs

    def identities(self, min_images: int = 1) -> FaceDataset:
        """Every image of the training identities (an LFW people file, else those of the training
        pairs, else every identity of ``data.train_root``) that have at least ``min_images`` images
        (or ``data.min_images``, if more), labelled by identity."""
        index, d = self.index, self.cfg.data
        if d.train_people:
            names = sorted({n for people in read_lfw_people(d.train_people) for n in people})
        elif self.pairs:
            names = sorted({index.identity_of[p] for pair in self.pairs for p in (pair.path_a, pair.path_b)})
        elif d.train_root:
            names = index.identities
        else:
            raise DataError(
                "the identity regimes (triplet, arcface, cosface) need data.train_pairs, data.train_people "
                "or data.train_root (a data set of training identities only)"
            )
        least = max(min_images, d.min_images)
        subset = index.subset([n for n in names if len(index.by_identity[n]) >= least])
        return FaceDataset(subset, self.faces(subset), self.transform)


class Regime(nn.Module, ABC):
    """One training regime: ``forward(*batch)`` is the loss of a batch of its training set.

    Args:
        model: the Siamese model being trained (its ``net`` may be a local-global network, whose
            fused, global and local embeddings each get the loss, see ``branch_loss``).
        cfg: the loss settings.
        num_classes: identity classes of the training set (classification regimes).
    """

    def __init__(self, model: SiameseNet, cfg: LossConfig, num_classes: int = 0):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.local_global = isinstance(model.net, LocalGlobalNet)
        self.weights = cfg.branch

    @classmethod
    def configure_model(cls, model: ModelConfig) -> ModelConfig:
        """The model settings this regime needs (as given by default)."""
        return model

    @classmethod
    @abstractmethod
    def images_per_batch(cls, cfg: TrainConfig) -> int:
        """Images one batch shows the network (what an experiment's image budget counts)."""

    @classmethod
    @abstractmethod
    def training_set(cls, inputs: TrainingInputs) -> TrainingSet:
        """The data set and sampler whose batches ``forward`` takes."""


REGIMES: Registry[type[Regime]] = Registry("regime")
