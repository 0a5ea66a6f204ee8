"""Identity-disjoint splits. Identities of one group (twin siblings) always stay together,
so a twin never appears in training while its sibling is in the test set."""

from __future__ import annotations

import numpy as np

from backbone.data.errors import DataError
from backbone.data.index import IdentityIndex

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


def identity_units(index: IdentityIndex) -> list[list[str]]:
    """Units that must not be split: each group, and each identity without a group."""
    units = [list(ids) for ids in index.groups.values()]
    units += [[i] for i in index.identities if index.group_of[i] is None]
    return sorted(units)


def partition_units(units: list[list[str]], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Shuffle the units with ``seed`` and cut them by ``fractions`` (which must sum to 1)."""
    if abs(sum(fractions.values()) - 1.0) > 1e-6 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(units))
    bounds = np.round(np.cumsum([0.0, *fractions.values()]) * len(units)).astype(int)
    out: dict[str, list[str]] = {}
    for (name, frac), lo, hi in zip(fractions.items(), bounds[:-1], bounds[1:]):
        if frac > 0 and hi <= lo:
            raise DataError(f"split {name!r} ({frac:.0%}) gets no identities: only {len(units)} identity units")
        out[name] = sorted(i for u in order[lo:hi] for i in units[u])
    return out


def split_identities(
    index: IdentityIndex, fractions: dict[str, float] | None = None, seed: int = 0
) -> dict[str, IdentityIndex]:
    """Split an index into identity-disjoint parts, e.g. ``{"train": ..., "val": ..., "test": ...}``."""
    parts = partition_units(identity_units(index), fractions or DEFAULT_FRACTIONS, seed)
    return {name: index.subset(ids, name=f"{index.name}:{name}") for name, ids in parts.items()}
