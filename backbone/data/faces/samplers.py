"""Samplers: identity-balanced batches (``m`` images of each identity per batch, so online triplet
mining always finds positives: pytorch-metric-learning's MPerClassSampler), and one process's
share of a sampler's batches when several processes train (:class:`BatchShard`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import Sampler


def balanced_sampler(labels: Sequence[int], m: int, batch_size: int, length: int | None = None) -> MPerClassSampler:
    """A sampler yielding ``length`` indices (default: the data set size) in batches of
    ``batch_size // m`` identities x ``m`` images. ``batch_size`` must be a multiple of ``m``."""
    if batch_size % m:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of m ({m})")
    length = length or len(labels)
    return MPerClassSampler(list(labels), m, batch_size=batch_size, length_before_new_iter=length - length % batch_size)


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
