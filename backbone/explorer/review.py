"""The pair explorer's state, without any widgets: scored pairs, a threshold, a filter, an order
and a position. Everything the explorer shows is computed here, so it is tested without a browser.

A pair is accepted (predicted ``SAME``) when ``score >= threshold``. A *false accept* is a
different-people pair that is accepted, a *false reject* a same-person pair that is rejected.
"Hardest first" orders pairs by how far they sit on the wrong side of the threshold (or how close
to it on the right side): different-people pairs that score highest and same-person pairs that
score lowest come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from backbone.data.lists.pairs import Pair
from backbone.evaluation.findings import Findings, explorer_findings
from backbone.evaluation.metrics import confusion_at
from backbone.evaluation.scores import ScoredPairs
from backbone.labels import DIFFERENT, SAME

FILTERS = ("all", "false accepts", "false rejects", "twin negatives", "closest different", "farthest same")
ORDERS = ("hardest first", "score high to low", "score low to high", "file order")


@dataclass(frozen=True)
class PairView:
    """One pair as the explorer shows it."""

    position: int  # 0-based place in the current selection
    total: int  # size of the current selection
    index: int  # 0-based place in the score file
    pair: Pair
    score: float
    threshold: float

    @property
    def predicted(self) -> int:
        return SAME if self.score >= self.threshold else DIFFERENT

    @property
    def correct(self) -> bool:
        return self.predicted == self.pair.same

    @property
    def outcome(self) -> str:
        """true accept, false accept, true reject or false reject."""
        kind = "accept" if self.predicted == SAME else "reject"
        return f"{'true' if self.correct else 'false'} {kind}"

    @property
    def truth(self) -> str:
        if self.pair.same == SAME:
            return "same person"
        return "different people (twins)" if self.pair.twins else "different people"

    @property
    def verdict(self) -> str:
        return "SAME" if self.predicted == SAME else "DIFFERENT"


class PairReview:
    """Scored pairs under a movable threshold, browsed through a filter and an order."""

    def __init__(self, scored: ScoredPairs, threshold: float):
        self.scored = scored
        self.scores = scored.scores
        self.labels = scored.labels
        self.twins = scored.twins
        self._threshold = float(threshold)
        self._filter, self._order = FILTERS[0], ORDERS[0]
        self.selection = self._select()
        self.position = 0

    # ---- threshold-dependent numbers

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def accepted(self) -> np.ndarray:
        return self.scores >= self._threshold

    def metrics(self) -> dict:
        """Counts, FAR, FRR, accuracy, precision, recall and F1 at the current threshold."""
        return confusion_at(self.scores, self.labels, self._threshold)

    @cached_property
    def roc(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(false accept rates, true accept rates, AUC) over all thresholds."""
        fpr, tpr, _ = roc_curve(self.labels, self.scores, pos_label=SAME)
        return fpr, tpr, float(roc_auc_score(self.labels, self.scores))

    def findings(self) -> Findings:
        """What the current threshold shows: its errors, and how many false accepts are twins."""
        twin_fp = int((self.masks()["false accepts"] & self.twins).sum()) if self.twins.any() else None
        return explorer_findings(self.metrics() | {"twin_fp": twin_fp}, self._threshold)

    def roc_point(self) -> tuple[float, float]:
        """(FAR, TAR) at the current threshold: where it sits on the ROC."""
        m = self.metrics()
        return m["far"], 1.0 - m["frr"]

    def score_range(self) -> tuple[float, float]:
        return float(self.scores.min()), float(self.scores.max())

    # ---- selection

    def masks(self) -> dict[str, np.ndarray]:
        """Which pairs each filter keeps at the current threshold."""
        same, accepted = self.labels == SAME, self.accepted
        return {
            "all": np.ones(len(self.scores), bool),
            "false accepts": ~same & accepted,
            "false rejects": same & ~accepted,
            "twin negatives": self.twins & ~same,
            "closest different": ~same,
            "farthest same": same,
        }

    def mask(self, name: str) -> np.ndarray:
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; filters are {FILTERS}")
        return self.masks()[name]

    def counts(self) -> dict[str, int]:
        return {name: int(m.sum()) for name, m in self.masks().items()}

    def _order_key(self, order: str) -> np.ndarray:
        """Ascending sort key of every pair for ``order``."""
        if order == "hardest first":  # minus how far on the wrong side of the threshold
            return np.where(self.labels == SAME, self.scores - self._threshold, self._threshold - self.scores)
        if order == "score high to low":
            return -self.scores
        if order == "score low to high":
            return self.scores
        if order == "file order":
            return np.arange(len(self.scores))
        raise ValueError(f"unknown order {order!r}; orders are {ORDERS}")

    def _select(self) -> np.ndarray:
        chosen = np.flatnonzero(self.mask(self._filter))
        return chosen[np.argsort(self._order_key(self._order)[chosen], kind="stable")]

    def _reselect(self, stay: bool) -> None:
        """Recompute the selection; with ``stay``, remain on the same pair when it is still in it,
        otherwise start at the top."""
        current = self.current
        self.selection = self._select()
        if not stay:
            self.position = 0
        elif current is not None and current.index in self.selection:
            self.position = int(np.flatnonzero(self.selection == current.index)[0])
        else:
            self.position = min(self.position, max(len(self.selection) - 1, 0))

    # ---- what the controls do

    def set_threshold(self, threshold: float) -> None:
        self._threshold = float(threshold)
        self._reselect(stay=True)

    def set_filter(self, name: str) -> None:
        self.mask(name)  # validates
        self._filter = name
        self._reselect(stay=False)

    def set_order(self, order: str) -> None:
        self._order_key(order)  # validates
        self._order = order
        self._reselect(stay=False)

    @property
    def filter(self) -> str:
        return self._filter

    @property
    def order(self) -> str:
        return self._order

    def next(self) -> None:
        self.position = min(self.position + 1, max(len(self.selection) - 1, 0))

    def previous(self) -> None:
        self.position = max(self.position - 1, 0)

    def jump(self, position: int) -> None:
        """Go to a 0-based position in the selection (clamped)."""
        self.position = int(np.clip(position, 0, max(len(self.selection) - 1, 0)))

    @property
    def current(self) -> PairView | None:
        """The pair on show, or None when the selection is empty."""
        if not len(self.selection):
            return None
        i = int(self.selection[self.position])
        return PairView(
            self.position, len(self.selection), i, self.scored.pairs[i], float(self.scores[i]), self._threshold
        )
