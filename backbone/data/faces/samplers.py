"""Samplers: identity-balanced batches (``m`` images of each identity per batch, so online triplet
mining always finds positives: pytorch-metric-learning's MPerClassSampler), family batches (the
same, with every identity's twin sibling in its batch, so the hardest negative mining finds is the
twin: :class:`FamilySampler`), and one process's share of a sampler's batches when several
processes train (:class:`BatchShard`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import Sampler


def balanced_sampler(labels: Sequence[int], m: int, batch_size: int, length: int | None = None) -> MPerClassSampler:
    """A sampler yielding ``length`` indices (default: the data set size) in batches of
    ``batch_size // m`` identities x ``m`` images. ``batch_size`` must be a multiple of ``m``."""
    if batch_size % m:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of m ({m})")
    length = length or len(labels)
    return MPerClassSampler(list(labels), m, batch_size=batch_size, length_before_new_iter=length - length % batch_size)


class FamilySampler(Sampler[int]):
    """Batches of whole families: ``m`` images of each identity, and every identity of a family
    (twin siblings: the index's groups) in the same batch, so that batch-hard mining meets each
    identity's twin as a negative. Families come in a random order from ``generator`` (the
    loader's, reseeded every epoch); one that no longer fits a batch opens the next one; an
    identity with fewer than ``m`` images repeats some.

    Args:
        labels: the identity label of every image.
        families: the family of every identity label (e.g. its twin group; its own name if none).
        m: images of each identity per batch; ``batch_size`` must be a multiple of it.
        batch_size: images per batch.
        length: indices per epoch (default: the number of images), rounded down to whole batches.
        generator: the random source.
    """

    def __init__(self, labels: Sequence[int], families: Sequence[str], m: int, batch_size: int,
                 length: int | None = None, generator: torch.Generator | None = None):  # fmt: skip
        if batch_size % m:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of m ({m})")
        slots = batch_size // m
        self.images: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            self.images.setdefault(int(label), []).append(i)
        members: dict[str, list[int]] = {}
        for label in sorted(self.images):
            members.setdefault(families[label], []).append(label)
        self.families = list(members.values())
        largest = max(self.families, key=len)
        if len(largest) > slots:
            raise ValueError(f"a family of {len(largest)} identities does not fit a batch of {slots} identities "
                             f"(batch_size {batch_size} / m {m})")  # fmt: skip
        self.m, self.batch_size, self.generator = m, batch_size, generator
        length = length or len(labels)
        self.length = length - length % batch_size

    def __len__(self) -> int:
        return self.length

    def _draw(self, label: int) -> list[int]:
        images = self.images[label]
        if len(images) >= self.m:
            picks = torch.randperm(len(images), generator=self.generator)[: self.m]
        else:
            picks = torch.randint(len(images), (self.m,), generator=self.generator)
        return [images[int(k)] for k in picks]

    def _identities(self) -> Iterator[list[int]]:
        """Batches of identity labels, families whole, forever."""
        slots, batch = self.batch_size // self.m, []
        while True:
            for f in torch.randperm(len(self.families), generator=self.generator).tolist():
                family = self.families[f]
                if len(batch) + len(family) > slots:
                    yield batch + [batch[k % len(batch)] for k in range(slots - len(batch))]  # topped up: full batches
                    batch = []
                batch = batch + family

    def __iter__(self) -> Iterator[int]:
        left = self.length
        for identities in self._identities():
            if left <= 0:
                return
            batch = [i for label in identities for i in self._draw(label)]
            yield from batch
            left -= len(batch)


class BatchShard(Sampler[int]):
    """One process's share of ``sampler``'s order when ``world_size`` processes train: whole
    batches of ``batch_size`` indices, every ``world_size``-th from batch ``rank`` on. A batch stays
    as its sampler made it (``m`` images of each identity with ``balanced_sampler``), the shards
    are disjoint, and every process gets as many batches (a last incomplete round is dropped)."""

    def __init__(self, sampler: Sampler[int], batch_size: int, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.sampler, self.batch_size, self.rank, self.world_size = sampler, batch_size, rank, world_size

    def __len__(self) -> int:
        return len(self.sampler) // (self.batch_size * self.world_size) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        batch: list[int] = []
        count, left = 0, len(self)
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) < self.batch_size:
                continue
            if count % self.world_size == self.rank and left:
                yield from batch
                left -= len(batch)
            count, batch = count + 1, []
