"""Every metric against a hand computation."""

import json
import math

import numpy as np
import pytest

from backbone.evaluation.metrics import (
    accuracy_standard_error,
    best_accuracy_threshold,
    confusion_at,
    equal_error_rate,
    f1_curve,
    far_threshold,
    lfw_protocol,
    summary_row,
    tar_at_far,
    verification_metrics,
    with_val_threshold,
)
from backbone.labels import DIFFERENT, SAME

# 4 matched pairs and 4 mismatched, scores chosen by hand
SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.65, 0.5, 0.2, 0.1])
LABELS = np.array([SAME, SAME, SAME, SAME, DIFFERENT, DIFFERENT, DIFFERENT, DIFFERENT])


def test_confusion_at_a_threshold_by_hand():
    c = confusion_at(SCORES, LABELS, 0.6)  # accept 0.9 0.8 0.7 (same) and 0.65 (different)
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (3, 1, 3, 1)
    assert c["accuracy"] == 6 / 8 and c["precision"] == 3 / 4 and c["recall"] == 3 / 4 and c["f1"] == 3 / 4
    assert c["far"] == 1 / 4 and c["frr"] == 1 / 4
    assert confusion_at(SCORES, LABELS, 0.65)["fp"] == 1  # score >= threshold is SAME


def test_best_threshold_by_hand():
    # thresholds 0.7 -> 7/8 correct (only 0.3 rejected wrongly); no threshold does better
    assert best_accuracy_threshold(SCORES, LABELS) == 0.7
    # all different: rejecting everything is best, the threshold lies above the top score
    t = best_accuracy_threshold(np.array([0.2, 0.4]), np.array([DIFFERENT, DIFFERENT]))
    assert t > 0.4
    # ties: equal scores are accepted together
    assert best_accuracy_threshold(np.array([0.5, 0.5, 0.1]), np.array([SAME, DIFFERENT, DIFFERENT])) == 0.5


def test_far_threshold_by_hand():
    # 4 negatives (0.65 0.5 0.2 0.1): FAR <= 1e-3 or < 1/4 accepts none, just above 0.65; 1/4 accepts 0.65
    for far in (1e-3, 0.2):
        t = far_threshold(SCORES, LABELS, far)
        assert 0.65 < t < 0.65 + 1e-12 and confusion_at(SCORES, LABELS, t)["far"] == 0
    assert (
        far_threshold(SCORES, LABELS, 0.25) == pytest.approx(0.5 + 1e-16) and far_threshold(SCORES, LABELS, 0.25) > 0.5
    )
    assert confusion_at(SCORES, LABELS, far_threshold(SCORES, LABELS, 0.5))["far"] == 0.5
    assert far_threshold(SCORES, LABELS, 1.0) == 0.1  # every negative may be accepted
    # ties: two negatives at 0.65 are accepted or rejected together
    tied = np.array([0.9, 0.65, 0.65, 0.1]), np.array([SAME, DIFFERENT, DIFFERENT, DIFFERENT])
    assert confusion_at(*tied, far_threshold(*tied, 1 / 3))["fp"] == 0
    with pytest.raises(ValueError, match="different-person"):
        far_threshold(np.array([0.5]), np.array([SAME]))


def test_operating_thresholds_chosen_elsewhere_and_standard_errors():
    m = with_val_threshold(verification_metrics(SCORES, LABELS), SCORES, LABELS, 0.6, 0.66)
    assert m["at_val_threshold"] == confusion_at(SCORES, LABELS, 0.6)
    assert (m["at_val_far_threshold"]["fp"], m["at_val_far_threshold"]["tp"]) == (0, 3)
    row = summary_row(m)
    assert row["accuracy_at_val_threshold"] == 6 / 8 and row["far_at_val_threshold"] == 1 / 4
    assert row["accuracy_at_val_far_threshold"] == 7 / 8 and row["frr_at_val_far_threshold"] == 1 / 4
    assert row["accuracy_at_val_threshold_se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 8))
    assert accuracy_standard_error(0.9, 100) == pytest.approx(0.03) and accuracy_standard_error(1.0, 50) == 0
    assert "at_val_far_threshold" not in with_val_threshold(verification_metrics(SCORES, LABELS), SCORES, LABELS, 0.6)


def test_auc_eer_tar_by_hand():
    m = verification_metrics(SCORES, LABELS)
    # AUC: P(score_same > score_diff) over 16 pairs: 0.9, 0.8, 0.7 beat all 4; 0.3 beats 0.2, 0.1 -> 14/16
    assert m["auc"] == pytest.approx(14 / 16)
    # EER: at threshold 0.65 FAR = 1/4 and FRR = 1/4 -> 0.25
    assert m["eer"] == pytest.approx(0.25)
    # TAR at FAR <= 1e-2: only thresholds above 0.65 -> 3/4 accepted
    assert m["tar_at_far"]["0.01"] == 0.75 and m["tar_at_far"]["0.001"] == 0.75
    assert m["best"]["accuracy"] == 7 / 8 and m["at_threshold"]["threshold"] == 0.6
    json.dumps(m)  # JSON-serialisable


def test_eer_interpolates_between_roc_points():
    fpr, tpr, thr = np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 0.4, 0.8, 1.0]), np.array([np.inf, 0.8, 0.5, 0.1])
    # fnr = 1, 0.6, 0.2, 0; fpr - fnr = -1, -0.6, 0.3, 1 -> crossing between points 1 and 2 at w = 0.3 / 0.9
    eer, _ = equal_error_rate(fpr, tpr, thr)
    assert eer == pytest.approx(0.5 - (0.3 / 0.9) * 0.5)
    assert tar_at_far(fpr, tpr, 0.0) == 0.4 and tar_at_far(fpr, tpr, 0.6) == 0.8


def test_f1_curve_matches_confusion_at_each_grid_point():
    curve = f1_curve(SCORES, LABELS, points=11)
    assert len(curve["thresholds"]) == 11 and curve["thresholds"][0] == 0.1 and curve["thresholds"][-1] == 0.9
    for t, f1 in zip(curve["thresholds"], curve["f1"]):
        assert f1 == pytest.approx(confusion_at(SCORES, LABELS, t)["f1"])


def test_ten_fold_protocol_on_a_hand_made_case():
    # 10 folds of 2 matched + 2 mismatched pairs. In every fold: same scores 0.8, 0.6;
    # different scores 0.4, 0.2 -- except fold 0, whose mismatched pair scores 0.7.
    scores, labels, folds = [], [], []
    for k in range(10):
        scores += [0.8, 0.6, 0.7 if k == 0 else 0.4, 0.2]
        labels += [SAME, SAME, DIFFERENT, DIFFERENT]
        folds += [k] * 4
    result = lfw_protocol(np.array(scores), np.array(labels), np.array(folds))
    # Training on nine folds that include fold 0 : thresholds 0.6 (accuracy 35/36) is best.
    # Fold 0 tested with the threshold of folds 1-9 (0.6): 0.7 is accepted -> 3/4.
    # Folds 1-9 tested with threshold 0.6: 4/4.
    assert [f["threshold"] for f in result["per_fold"]] == [0.6] * 10
    accs = [f["accuracy"] for f in result["per_fold"]]
    assert accs == [0.75] + [1.0] * 9
    assert result["accuracy_mean"] == pytest.approx(0.975)
    std = np.std(accs, ddof=1)
    assert result["accuracy_std"] == pytest.approx(std) and result["accuracy_sem"] == pytest.approx(std / math.sqrt(10))


def test_twin_negatives_are_scored_separately():
    scores = np.array([0.9, 0.8, 0.85, 0.2])
    labels = np.array([SAME, SAME, DIFFERENT, DIFFERENT])
    twins = np.array([False, False, True, False])
    m = verification_metrics(scores, labels, twins=twins)
    assert m["twin_negatives"]["pairs"] == 3 and m["twin_negatives"]["auc"] == pytest.approx(0.5)
    assert m["other_negatives"]["pairs"] == 3 and m["other_negatives"]["auc"] == 1.0
    assert summary_row(m)["twin_auc"] == pytest.approx(0.5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="both SAME and DIFFERENT"):
        verification_metrics(np.array([0.1, 0.2]), np.array([SAME, SAME]))
    with pytest.raises(ValueError, match="labels must be SAME=1"):
        confusion_at(np.array([0.1]), np.array([2]), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        confusion_at(np.array([np.nan]), np.array([1]), 0.5)
    with pytest.raises(ValueError, match="every pair needs a fold"):
        verification_metrics(SCORES, LABELS, folds=np.array([0, 1, 2, 3, 0, 1, 2, -1]))


def test_auc_standard_error_by_hand():
    from backbone.evaluation.metrics import auc_standard_error

    # Hanley & McNeil: A = 0.5, 1000 positives, 700 negatives -> Q1 = Q2 = 1/3
    expected = math.sqrt((0.25 + 999 * (1 / 3 - 0.25) + 699 * (1 / 3 - 0.25)) / (1000 * 700))
    assert auc_standard_error(0.5, 1000, 700) == pytest.approx(expected)
    assert auc_standard_error(1.0, 10, 10) == 0.0
