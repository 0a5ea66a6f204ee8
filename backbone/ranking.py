"""1:N search, the ranking step: from one probe's scores against a gallery's photos to its people,
best first. Shared by ``backbone identify`` (``backbone.evaluation.identification``) and the
service's ``/identify``, so that both rank alike. NumPy-free and PyTorch-free: scores come as numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backbone.labels import DIFFERENT, SAME


@dataclass
class Match:
    """One person of the gallery, scored against the probe."""

    person: str
    score: float  # the best score over the person's photos (higher: more alike)
    image: str  # the photo that scored it, relative to the gallery
    same: int  # SAME when ``score`` reaches the threshold


def rank_people(
    paths: Sequence[str], scores: Sequence[float], person_of: Mapping[str, str], top_k: int, threshold: float
) -> tuple[list[Match], int]:
    """The ``top_k`` people best first, each scored by their best photo and marked SAME at or above
    ``threshold``; and how many people the gallery holds. ``paths[i]`` scored ``scores[i]``."""
    best: dict[str, tuple[float, str]] = {}
    for path, score in zip(paths, scores, strict=True):
        person = person_of[path]
        if person not in best or score > best[person][0]:
            best[person] = (float(score), path)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top_k]
    matches = [Match(person, s, path, SAME if s >= threshold else DIFFERENT) for person, (s, path) in ranked]
    return matches, len(best)
