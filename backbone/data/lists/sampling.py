"""Deterministic generation of verification pairs and triplets from an identity index.

Same seed and same index give the same list (and so a byte-identical file). Negatives are
split into *twin* negatives (two siblings of one group, the hard case) and *random* negatives
(two identities of different groups); ``twin_share`` sets the share of twin negatives exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from backbone.data.errors import DataError
from backbone.data.index import IdentityIndex
from backbone.data.lists.pairs import Pair
from backbone.data.lists.splits import identity_units, partition_units
from backbone.data.lists.triplets import Triplet
from backbone.labels import DIFFERENT, SAME

DEFAULT_TWIN_SHARE = 0.7


@dataclass
class _Draw:
    """Rejection sampling of unique unordered items with a bounded number of tries."""

    rng: np.random.Generator
    seen: set

    def unique(self, n: int, draw, what: str) -> list:
        out: list = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise DataError(f"could only draw {len(out)} of {n} distinct {what}: the data set is too small")
            item = draw()
            if item is None:
                continue
            key = item if isinstance(item, Triplet) else frozenset((item.path_a, item.path_b))
            if key not in self.seen:
                self.seen.add(key)
                out.append(item)
        return out


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def _two(rng: np.random.Generator, items: list) -> tuple:
    i, j = rng.choice(len(items), size=2, replace=False)
    return items[int(i)], items[int(j)]


def pair_capacity(index: IdentityIndex) -> dict[str, int]:
    """How many distinct matched and twin-negative pairs the index can give at most."""
    sizes = {i: len(paths) for i, paths in index.by_identity.items()}
    twin = sum(sizes[a] * sizes[b] for ids in index.groups.values() for k, a in enumerate(ids) for b in ids[k + 1 :])
    return {"same": sum(n * (n - 1) // 2 for n in sizes.values()), "twin": twin}


def _twin_share_count(index: IdentityIndex, n_negative: int, twin_share: float) -> int:
    if not 0.0 <= twin_share <= 1.0:
        raise ValueError(f"twin_share must be within [0, 1], got {twin_share}")
    return int(round(n_negative * twin_share)) if index.groups else 0


def _pairs_one_fold(
    index: IdentityIndex, n_pairs: int, rng: np.random.Generator, twin_share: float, fold: int | None
) -> list[Pair]:
    images = index.by_identity
    multi = [i for i, paths in images.items() if len(paths) >= 2]
    ids = list(images)
    if not multi:
        raise DataError(f"{index.summary()}: no identity has two images, so no matched pairs can be drawn")
    n_same = n_pairs // 2
    n_twin = _twin_share_count(index, n_pairs - n_same, twin_share)
    groups = [g for g in index.groups.values() if len(g) >= 2]
    draw = _Draw(rng, set())

    def same() -> Pair:
        a, b = _two(rng, images[_pick(rng, multi)])
        return Pair(a, b, SAME, fold=fold)

    def twin() -> Pair:
        ia, ib = _two(rng, _pick(rng, groups))
        return Pair(_pick(rng, images[ia]), _pick(rng, images[ib]), DIFFERENT, fold=fold, twins=True)

    def random_negative() -> Pair | None:
        ia, ib = _two(rng, ids)
        if index.group_of[ia] is not None and index.group_of[ia] == index.group_of[ib]:
            return None  # siblings: that would be a twin negative
        return Pair(_pick(rng, images[ia]), _pick(rng, images[ib]), DIFFERENT, fold=fold)

    return (
        draw.unique(n_same, same, "matched pairs")
        + draw.unique(n_twin, twin, "twin negative pairs")
        + draw.unique(n_pairs - n_same - n_twin, random_negative, "random negative pairs")
    )


def generate_pairs(
    index: IdentityIndex,
    n_pairs: int,
    seed: int = 0,
    twin_share: float = DEFAULT_TWIN_SHARE,
    folds: int | None = None,
) -> list[Pair]:
    """Balanced pairs: ``n_pairs / 2`` matched, the rest mismatched, ``twin_share`` of those twins.

    With ``folds=K`` the identities are first split into K disjoint folds (twins kept together)
    and each fold gets ``n_pairs / K`` pairs, as in LFW View 2. Matched pairs come first in
    each fold, as in the LFW format.
    """
    k = folds or 1
    if n_pairs <= 0 or n_pairs % (2 * k):
        raise ValueError(f"n_pairs must be a positive multiple of {2 * k} (balanced over {k} fold(s)), got {n_pairs}")
    rng = np.random.default_rng(seed)
    if folds is None:
        return _pairs_one_fold(index, n_pairs, rng, twin_share, None)
    parts = partition_units(identity_units(index), {str(f): 1.0 / k for f in range(k)}, seed)
    pairs: list[Pair] = []
    for f in range(k):
        pairs += _pairs_one_fold(index.subset(parts[str(f)]), n_pairs // k, rng, twin_share, f)
    return pairs


def all_pairs(index: IdentityIndex, seed: int = 0) -> list[Pair]:
    """A balanced pair list for any identity-folder set: every matched pair (each unordered pair of
    one identity's images once, identities and images in sorted order), then as many mismatched
    pairs, drawn with ``seed``: two different identities uniformly, one image of each, no pair
    twice; siblings of one twin group are marked ``twins``. Same index and seed, same list."""
    images = {identity: sorted(paths) for identity, paths in index.by_identity.items()}
    same = [Pair(a, b, SAME) for i in sorted(images) for a, b in combinations(images[i], 2)]
    if not same:
        raise DataError(f"{index.summary()}: no identity has two images, so there are no matched pairs")
    ids = sorted(images)
    if len(ids) < 2:
        raise DataError(f"{index.summary()}: one identity only, so there are no mismatched pairs")
    rng = np.random.default_rng(seed)

    def negative() -> Pair:
        ia, ib = _two(rng, ids)
        twins = index.group_of[ia] is not None and index.group_of[ia] == index.group_of[ib]
        return Pair(_pick(rng, images[ia]), _pick(rng, images[ib]), DIFFERENT, twins=twins)

    return same + _Draw(rng, set()).unique(len(same), negative, "mismatched pairs")


def generate_triplets(
    index: IdentityIndex, n: int, seed: int = 0, twin_share: float = DEFAULT_TWIN_SHARE
) -> list[Triplet]:
    """Distinct (anchor, positive, negative) triplets; ``twin_share`` of them have a twin as negative."""
    rng = np.random.default_rng(seed)
    images = index.by_identity
    multi = [i for i, paths in images.items() if len(paths) >= 2]
    with_twin = [i for i in multi if index.siblings(i)]
    if not multi:
        raise DataError(f"{index.summary()}: no identity has two images, so no triplets can be drawn")
    n_twin = _twin_share_count(index, n, twin_share) if with_twin else 0
    ids = list(images)
    draw = _Draw(rng, set())

    def triplet(anchor_pool: list[str], twin: bool) -> Triplet | None:
        identity = _pick(rng, anchor_pool)
        a, p = _two(rng, images[identity])
        if twin:
            other = _pick(rng, index.siblings(identity))
        else:
            other = _pick(rng, ids)
            if other == identity or other in index.siblings(identity):
                return None
        return Triplet(a, p, _pick(rng, images[other]), twins=twin)

    return draw.unique(n_twin, lambda: triplet(with_twin, True), "twin triplets") + draw.unique(
        n - n_twin, lambda: triplet(multi, False), "triplets"
    )
