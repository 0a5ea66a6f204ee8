"""Standard errors of the verification metrics, computed one way for every table.

* AUCs (overall, twin-negative, other-negative): DeLong's (1988) standard error, from the pairs'
  placements (Sun & Xu's mid-rank form); exact for the AUC scikit-learn computes, no resampling.
* Any other statistic of a pair list (EER, F1 or accuracy at a threshold, ...): a stratified
  bootstrap over the pairs (same-person and different-person pairs resampled apart, so that each
  resample keeps the list's balance), seeded, ``RESAMPLES`` resamples by default.
* A ratio of two means over items (the pointing score: attention mass on the marks over their
  area, over images): a bootstrap over the items.

The bootstrap draws its resamples as one index matrix (NumPy), so a thousand resamples of a few
thousand pairs take well under a second for the EER.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from backbone.labels import DIFFERENT, SAME

RESAMPLES = 1000
SEED = 0


def delong(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The ROC AUC of ``scores`` (higher = more alike) for ``labels`` (``SAME`` = 1) and DeLong's
    standard error of it. Needs pairs of both labels."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    pos, neg = scores[labels == SAME], scores[labels == DIFFERENT]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("an AUC needs same-person and different-person pairs")
    all_ranks = rankdata(np.concatenate([pos, neg]))  # mid-ranks: ties share the mean of their ranks
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # each positive: the share of negatives below it (ties: half)
    v01 = 1 - (all_ranks[m:] - rankdata(neg)) / m  # each negative: the share of positives above it
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return auc, math.sqrt(var)


def bootstrap_se(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    scores: np.ndarray,
    labels: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> float:
    """The standard deviation of ``statistic(scores, labels)`` over stratified bootstrap resamples
    of the pairs: its standard error. Seeded: the same pairs give the same figure."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == label) for label in (SAME, DIFFERENT)]
    draws = np.concatenate([g[rng.integers(0, len(g), (resamples, len(g)))] for g in groups if len(g)], axis=1)
    values = np.array([statistic(scores[i], labels[i]) for i in draws])
    return float(values.std(ddof=1))


def ratio_se(numerator: np.ndarray, denominator: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """The bootstrap standard error of ``mean(numerator) / mean(denominator)`` over items (each
    item's two values resampled together). Seeded: the same items give the same figure."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    if len(numerator) != len(denominator) or len(numerator) < 2:
        raise ValueError("a ratio's standard error needs at least two items, each with both values")
    draws = np.random.default_rng(seed).integers(0, len(numerator), (resamples, len(numerator)))
    return float((numerator[draws].mean(axis=1) / denominator[draws].mean(axis=1)).std(ddof=1))
