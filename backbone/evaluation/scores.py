"""Per-pair scores: a TSV pair file with a ``score`` column (higher = more alike).

Training writes the test pairs' scores to ``test_scores.tsv``, ``backbone evaluate`` writes
``scores_<pairs>.tsv``; the analysis notebook and the pair explorer read them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backbone.atomic import atomic_write_text
from backbone.data.errors import DataError, Problem, existing
from backbone.data.lists.pairs import Pair, format_tsv_pairs, read_tsv_table
from backbone.labels import SAME


@dataclass
class ScoredPairs:
    """Pairs and their scores, in file order."""

    pairs: list[Pair]
    scores: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.scores.shape != (len(self.pairs),):
            raise ValueError(f"{len(self.pairs)} pairs but scores of shape {self.scores.shape}")
        if not np.isfinite(self.scores).all():
            raise ValueError(f"{self.source or 'scores'}: NaN or infinite scores")

    @property
    def labels(self) -> np.ndarray:
        """``SAME`` (1) where both images show the same person."""
        return np.array([p.same for p in self.pairs], dtype=int)

    @property
    def twins(self) -> np.ndarray:
        return np.array([p.twins for p in self.pairs], dtype=bool)

    @property
    def same_mask(self) -> np.ndarray:
        """True where both images show the same person (``labels == SAME``)."""
        return self.labels == SAME


def write_scores(path: str | Path, pairs: Sequence[Pair], scores: Sequence[float]) -> None:
    """Write pairs and scores atomically (scores to 6 decimals)."""
    if len(pairs) != len(scores):
        raise ValueError(f"{len(pairs)} pairs but {len(scores)} scores")
    atomic_write_text(path, format_tsv_pairs(pairs, {"score": [f"{float(s):.6f}" for s in scores]}))


def read_scores(path: str | Path) -> ScoredPairs:
    """Read a score file; a malformed line or score raises a DataError naming file and line."""
    path = existing(path, "score file")
    pairs, values = read_tsv_table(path, extra=("score",))
    scores, problems = [], []
    for pair, text in zip(pairs, values["score"]):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            problems.append(Problem(str(path), f"score must be a finite number, got {text!r}", pair.line))
        scores.append(value)
    if problems:
        raise DataError(f"{path}: {len(problems)} bad scores", problems)
    if not pairs:
        raise DataError(f"{path}: no scored pairs")
    return ScoredPairs(pairs, np.array(scores), str(path))
