"""Identity-balanced batches: ``m`` images of each identity per batch, so online triplet mining
always finds positives (pytorch-metric-learning's MPerClassSampler)."""

from __future__ import annotations

from collections.abc import Sequence

from pytorch_metric_learning.samplers import MPerClassSampler


def balanced_sampler(labels: Sequence[int], m: int, batch_size: int, length: int | None = None) -> MPerClassSampler:
    """A sampler yielding ``length`` indices (default: the data set size) in batches of
    ``batch_size // m`` identities x ``m`` images. ``batch_size`` must be a multiple of ``m``."""
    if batch_size % m:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of m ({m})")
    length = length or len(labels)
    return MPerClassSampler(list(labels), m, batch_size=batch_size, length_before_new_iter=length - length % batch_size)
