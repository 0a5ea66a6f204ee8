"""The explorer's logic without widgets: filters, orders, navigation and metrics at a threshold."""

import numpy as np
import pytest

from backbone.data.lists.pairs import Pair
from backbone.evaluation.metrics import confusion_at
from backbone.evaluation.scores import ScoredPairs
from backbone.explorer.review import FILTERS, PairReview
from backbone.labels import DIFFERENT, SAME

# index: label, twins, score   (threshold 0.5)
ROWS = [
    (SAME, False, 0.9),  # 0 true accept
    (SAME, False, 0.15),  # 1 false reject (far)
    (SAME, False, 0.45),  # 2 false reject (near)
    (DIFFERENT, True, 0.8),  # 3 false accept, twins
    (DIFFERENT, False, 0.05),  # 4 true reject
    (DIFFERENT, True, 0.3),  # 5 true reject, twins
    (DIFFERENT, False, 0.58),  # 6 false accept
]


def review(threshold: float = 0.5) -> PairReview:
    pairs = [Pair(f"p{i}/a.png", f"q{i}/b.png", same, twins=twins) for i, (same, twins, _) in enumerate(ROWS)]
    return PairReview(ScoredPairs(pairs, np.array([s for *_, s in ROWS])), threshold)


def indices(r: PairReview) -> list[int]:
    return r.selection.tolist()


def test_filters_select_by_the_same_equals_one_convention():
    r = review()
    expected = {
        "all": {0, 1, 2, 3, 4, 5, 6},
        "false accepts": {3, 6},  # different people (label 0) scored >= threshold
        "false rejects": {1, 2},  # same person (label SAME=1) scored < threshold
        "twin negatives": {3, 5},
        "closest different": {3, 4, 5, 6},
        "farthest same": {0, 1, 2},
    }
    for name in FILTERS:
        r.set_filter(name)
        assert set(indices(r)) == expected[name], name
    assert r.counts() == {k: len(v) for k, v in expected.items()}


def test_hardest_first_puts_the_closest_different_and_farthest_same_first():
    r = review()
    r.set_filter("closest different")
    assert indices(r) == [3, 6, 5, 4]
    r.set_filter("farthest same")
    assert indices(r) == [1, 2, 0]
    r.set_filter("all")  # across both kinds: how far on the wrong side of the threshold
    assert indices(r) == [1, 3, 6, 2, 5, 0, 4]


def test_score_and_file_orders():
    r = review()
    r.set_order("score high to low")
    assert indices(r) == [0, 3, 6, 2, 5, 1, 4]
    r.set_order("score low to high")
    assert indices(r) == [4, 1, 5, 2, 6, 3, 0]
    r.set_order("file order")
    assert indices(r) == list(range(7))
    with pytest.raises(ValueError, match="unknown order"):
        r.set_order("random")
    with pytest.raises(ValueError, match="unknown filter"):
        r.set_filter("everything")


def test_navigation_clamps_and_reports_position():
    r = review()
    r.next()
    r.set_order("file order")  # a new filter or order starts at its top
    assert r.current.index == 0 and r.current.position == 0 and r.current.total == 7
    r.previous()
    assert r.current.index == 0
    r.next(), r.next()
    assert r.current.index == 2
    r.jump(100)
    assert r.current.index == 6
    r.jump(-3)
    assert r.current.index == 0


def test_verdicts_follow_the_threshold():
    r = review()
    r.set_order("file order")
    r.jump(3)
    view = r.current
    assert view.pair.same == DIFFERENT and view.predicted == SAME and not view.correct
    assert view.outcome == "false accept" and view.verdict == "SAME" and view.truth == "different people (twins)"
    r.set_threshold(0.85)
    view = r.current
    assert view.index == 3 and view.predicted == DIFFERENT and view.correct and view.outcome == "true reject"


def test_moving_the_threshold_keeps_the_pair_on_show_when_it_still_matches():
    r = review()
    r.set_filter("false accepts")
    r.set_order("score low to high")
    r.next()
    assert r.current.index == 3
    r.set_threshold(0.6)  # pair 6 (0.58) is no longer a false accept; pair 3 still is
    assert indices(r) == [3] and r.current.index == 3
    r.set_threshold(0.95)
    assert r.current is None and r.counts()["false accepts"] == 0


def test_metrics_and_roc_point_at_the_threshold():
    r = review()
    m = r.metrics()
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 2, 2, 2)
    assert m["far"] == pytest.approx(2 / 4) and m["frr"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 7) and m == confusion_at(r.scores, r.labels, 0.5)
    assert r.roc_point() == pytest.approx((0.5, 1 / 3))
    fpr, tpr, auc = r.roc
    assert fpr[0] == 0 and tpr[-1] == 1 and 0 < auc < 1
    r.set_threshold(0.0)
    assert r.roc_point() == (1.0, 1.0) and r.metrics()["frr"] == 0.0
