"""Verification metrics from pair scores and labels, as one JSON-serialisable dict.

Scores follow the project's rule, **higher = more alike**, and a pair is predicted ``SAME`` (1)
when ``score >= threshold``. ROC and AUC come from scikit-learn, as do the folds of the LFW
protocol (``PredefinedSplit``). ``fixed_threshold`` is the one rule for the fixed threshold a
score is reported at (cosine similarity 0.6, the published convention for facenet-style
embeddings; the pair head's probability 0.5). A training run also chooses two operating
thresholds on its validation pairs, never on the test pairs: the best accuracy, and the lowest
threshold whose false accept rate is at most ``OPERATING_FAR`` (``with_val_threshold``); figures
and the explorer use the first when a run has it (``reported_threshold``), tables show all.

Confidence (``backbone.evaluation.uncertainty``): AUCs carry DeLong's standard error (``auc_se``),
accuracies the binomial one (``accuracy_se``, pairs taken as independent), the EER a stratified
bootstrap one (``eer_se``, computed by the tables from the scores); the LFW protocol's accuracy
the standard error over its folds.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import PredefinedSplit

from backbone.evaluation.uncertainty import RESAMPLES, SEED, bootstrap_se, delong
from backbone.labels import DIFFERENT, SAME

DEFAULT_THRESHOLD = 0.6  # cosine similarity
PAIR_HEAD_THRESHOLD = 0.5  # the pair head's probability
FAR_TARGETS = (1e-3, 1e-2)
OPERATING_FAR = 1e-3  # the false accept rate of the second operating threshold chosen on validation
CURVE_POINTS = 201


def fixed_threshold(distance: str = "cosine", pair_head: bool = False) -> float | None:
    """The fixed threshold scores of such a model are reported at: 0.5 for the pair head's
    probability, 0.6 for cosine similarity, none for other distances (pass one)."""
    if pair_head:
        return PAIR_HEAD_THRESHOLD
    return DEFAULT_THRESHOLD if distance == "cosine" else None


def reported_threshold(metrics: dict) -> float | None:
    """The operating threshold of a run's metrics: the one chosen on its validation pairs when they
    have it, else the fixed one (None if they have neither)."""
    return metrics.get("at_val_threshold", metrics.get("at_threshold", {})).get("threshold")


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-d and of equal length, got {scores.shape} and {labels.shape}")
    if not np.isin(labels, (SAME, DIFFERENT)).all():
        raise ValueError(f"labels must be SAME={SAME} or DIFFERENT={DIFFERENT}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return scores, labels


def confusion_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Counts and rates when ``score >= threshold`` means SAME."""
    scores, labels = _check(scores, labels)
    predicted = scores >= threshold
    same = labels == SAME
    tp, fp = int((predicted & same).sum()), int((predicted & ~same).sum())
    fn, tn = int((~predicted & same).sum()), int((~predicted & ~same).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "threshold": float(threshold),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / len(labels),
        "accuracy_se": accuracy_standard_error((tp + tn) / len(labels), len(labels)),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "far": fp / (fp + tn) if fp + tn else 0.0,  # false accept rate
        "frr": fn / (fn + tp) if fn + tp else 0.0,  # false reject rate
    }  # fmt: skip


def best_accuracy_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the highest accuracy among all distinct score values (ties: the highest).

    Vectorised: with scores sorted high to low, thresholding at the k-th score accepts the first k.
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="stable")
    s, same = scores[order], labels[order] == SAME
    tp, fp = np.cumsum(same), np.cumsum(~same)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold accepts every pair with an equal score
    correct = tp + (len(s) - same.sum() - fp)  # true accepts + true rejects
    candidates = np.flatnonzero(last)
    k = candidates[np.argmax(correct[candidates])]
    reject_all = len(s) - same.sum()
    return float(s[k]) if correct[k] >= reject_all else float(np.nextafter(s[0], np.inf))


def far_threshold(scores: np.ndarray, labels: np.ndarray, far: float = OPERATING_FAR) -> float:
    """The lowest threshold at which at most ``far`` of the different-person pairs are accepted:
    ``floor(far * negatives)`` of them may score at or above it (with 500 negatives and far 1e-3,
    none: the threshold lies just above the highest different-person score)."""
    scores, labels = _check(scores, labels)
    negatives = np.sort(scores[labels == DIFFERENT])[::-1]
    if len(negatives) == 0:
        raise ValueError("a threshold at a false accept rate needs different-person pairs")
    allowed = math.floor(far * len(negatives) + 1e-9)
    if allowed >= len(negatives):
        return float(negatives[-1])
    # just above the highest negative score that must be rejected (equal scores are rejected with it)
    return float(np.nextafter(negatives[allowed], np.inf))


def accuracy_standard_error(accuracy: float, n: int) -> float:
    """The binomial standard error of an accuracy over ``n`` pairs."""
    return math.sqrt(accuracy * (1 - accuracy) / n) if n else 0.0


def f1_curve(scores: np.ndarray, labels: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """F1 on an even grid of thresholds from the lowest to the highest score."""
    scores, labels = _check(scores, labels)
    grid = np.linspace(scores.min(), scores.max(), points)
    s_same = np.sort(scores[labels == SAME])
    s_diff = np.sort(scores[labels == DIFFERENT])
    tp = len(s_same) - np.searchsorted(s_same, grid, side="left")
    fp = len(s_diff) - np.searchsorted(s_diff, grid, side="left")
    fn = len(s_same) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"thresholds": grid.tolist(), "f1": f1.tolist()}


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """EER (where false accepts equal false rejects), linearly interpolated on the ROC, and its threshold."""
    fnr = 1 - tpr
    diff = fpr - fnr  # rises from <= 0 to >= 0 along the ROC
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float(fpr[0]), float(thresholds[0])
    w = diff[i] / (diff[i] - diff[i - 1]) if diff[i] != diff[i - 1] else 0.0
    eer = fpr[i] - w * (fpr[i] - fpr[i - 1])
    t_hi, t_lo = thresholds[i - 1], thresholds[i]
    threshold = t_lo + w * (t_hi - t_lo) if np.isfinite(t_hi) else t_lo
    return float(eer), float(threshold)


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """The highest true accept rate whose false accept rate is at most ``far``."""
    ok = fpr <= far
    return float(tpr[ok].max()) if ok.any() else 0.0


def auc_standard_error(auc: float, n_positive: int, n_negative: int) -> float:
    """Hanley & McNeil (1982) standard error of an ROC AUC from its value and class counts."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc**2) + (n_negative - 1) * (q2 - auc**2)) / (
        n_positive * n_negative
    )
    return math.sqrt(max(var, 0.0))


def lfw_protocol(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    """LFW's k-fold protocol: for each fold, the best-accuracy threshold of the other folds is
    applied to it; mean, standard deviation (ddof=1) and standard error over the folds."""
    scores, labels = _check(scores, labels)
    folds = np.asarray(folds, dtype=int)
    split = PredefinedSplit(folds)
    per_fold = []
    for train, test in split.split():
        threshold = best_accuracy_threshold(scores[train], labels[train])
        per_fold.append(
            {"threshold": threshold, "accuracy": confusion_at(scores[test], labels[test], threshold)["accuracy"]}
        )
    acc = np.array([f["accuracy"] for f in per_fold])
    std = float(acc.std(ddof=1)) if len(acc) > 1 else 0.0
    return {
        "folds": len(per_fold),
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": std,
        "accuracy_sem": std / math.sqrt(len(acc)),
        "per_fold": per_fold,
    }


def _core(scores: np.ndarray, labels: np.ndarray, threshold: float | None) -> dict:
    fpr, tpr, thr = roc_curve(labels, scores, pos_label=SAME)
    eer, eer_threshold = equal_error_rate(fpr, tpr, thr)
    best = best_accuracy_threshold(scores, labels)
    auc = float(roc_auc_score(labels, scores))
    out = {
        "pairs": int(len(labels)),
        "same": int((labels == SAME).sum()),
        "different": int((labels == DIFFERENT).sum()),
        "auc": auc,
        "auc_se": delong(scores, labels)[1],
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_far": {f"{far:g}": tar_at_far(fpr, tpr, far) for far in FAR_TARGETS},
        "best": confusion_at(scores, labels, best),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": np.nan_to_num(thr, posinf=1e9).tolist()},
        "f1_curve": f1_curve(scores, labels),
    }
    if threshold is not None:
        out["at_threshold"] = confusion_at(scores, labels, threshold)
    return out


def verification_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float | None = DEFAULT_THRESHOLD,
    folds: np.ndarray | None = None,
    twins: np.ndarray | None = None,
) -> dict:
    """Everything about one pair list: ROC/AUC, EER, TAR@FAR, accuracy/precision/recall/F1 and the
    confusion matrix at ``threshold`` and at the best-accuracy threshold, the F1-vs-threshold curve;
    the LFW fold protocol when pairs carry folds; the same metrics for twin negatives and for all
    other negatives (each against every matched pair) when ``twins`` marks twin negatives."""
    scores, labels = _check(scores, labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("verification metrics need both SAME and DIFFERENT pairs")
    out = _core(scores, labels, threshold)
    if folds is not None:
        folds = np.asarray(folds)
        if (folds < 0).any():
            raise ValueError("every pair needs a fold for the LFW protocol (got pairs without one)")
        if len(np.unique(folds)) > 1:
            out["lfw_protocol"] = lfw_protocol(scores, labels, folds)
    if twins is not None:
        twins = np.asarray(twins, dtype=bool)
        same = labels == SAME
        for name, negatives in (("twin_negatives", twins & ~same), ("other_negatives", ~twins & ~same)):
            if negatives.any():
                keep = same | negatives
                out[name] = _core(scores[keep], labels[keep], threshold)
    return out


VAL_THRESHOLD_RULE = "the best accuracy on the validation pairs"
VAL_FAR_THRESHOLD_RULE = f"the lowest threshold with a false accept rate <= {OPERATING_FAR:g} on the validation pairs"


def with_val_threshold(
    metrics: dict, scores: np.ndarray, labels: np.ndarray, threshold: float | None, far_threshold: float | None = None
) -> dict:
    """``metrics`` plus the scores' confusion at the operating thresholds a training run chose on
    its validation pairs (saved in its checkpoints as ``val_threshold`` and ``val_far_threshold``):
    what tables report as "@ val thr." (``at_val_threshold``) and "@ val FAR thr."
    (``at_val_far_threshold``). Nothing is added for a threshold that is None."""
    out = dict(metrics)
    if threshold is not None:
        out["val_threshold"] = {"threshold": float(threshold), "rule": VAL_THRESHOLD_RULE}
        out["at_val_threshold"] = confusion_at(scores, labels, threshold)
    if far_threshold is not None:
        out["val_far_threshold"] = {"threshold": float(far_threshold), "rule": VAL_FAR_THRESHOLD_RULE}
        out["at_val_far_threshold"] = confusion_at(scores, labels, far_threshold)
    return out


def summary_row(metrics: dict) -> dict:
    """The headline numbers of a metrics dict (what tables show)."""
    at = metrics.get("at_threshold", metrics["best"])
    row = {
        "auc": metrics["auc"],
        "eer": metrics["eer"],
        "accuracy": at["accuracy"],
        "f1": at["f1"],
        "threshold": at["threshold"],
        "best_accuracy": metrics["best"]["accuracy"],
        "best_threshold": metrics["best"]["threshold"],
        "tar_at_far_1e-3": metrics["tar_at_far"]["0.001"],
        "tar_at_far_1e-2": metrics["tar_at_far"]["0.01"],
    }
    if "auc_se" in metrics:
        row["auc_se"] = metrics["auc_se"]
    if "at_val_threshold" in metrics:
        row["val_threshold"] = metrics["at_val_threshold"]["threshold"]
        row["accuracy_at_val_threshold"] = metrics["at_val_threshold"]["accuracy"]
        row["f1_at_val_threshold"] = metrics["at_val_threshold"]["f1"]
        row["accuracy_at_val_threshold_se"] = metrics["at_val_threshold"]["accuracy_se"]
        row["far_at_val_threshold"] = metrics["at_val_threshold"]["far"]
        row["frr_at_val_threshold"] = metrics["at_val_threshold"]["frr"]
    if "at_val_far_threshold" in metrics:
        at_far = metrics["at_val_far_threshold"]
        row["val_far_threshold"] = at_far["threshold"]
        row["accuracy_at_val_far_threshold"] = at_far["accuracy"]
        row["far_at_val_far_threshold"], row["frr_at_val_far_threshold"] = at_far["far"], at_far["frr"]
    if "lfw_protocol" in metrics:
        row["lfw_accuracy"] = metrics["lfw_protocol"]["accuracy_mean"]
        row["lfw_std"] = metrics["lfw_protocol"]["accuracy_std"]
    if "twin_negatives" in metrics:
        row["twin_auc"] = metrics["twin_negatives"]["auc"]
    return row


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """The equal error rate, as ``compute_metrics`` reports it (interpolated on the ROC)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return equal_error_rate(fpr, tpr, thresholds)[0]


def eer_se(scores: np.ndarray, labels: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """The stratified bootstrap standard error of the equal error rate."""
    return bootstrap_se(eer, scores, labels, resamples, seed)


def f1_se(
    scores: np.ndarray, labels: np.ndarray, threshold: float, resamples: int = RESAMPLES, seed: int = SEED
) -> float:
    """The stratified bootstrap standard error of F1 at a fixed ``threshold`` (same = score >= it)."""
    return bootstrap_se(lambda s, y: _f1(s >= threshold, y == SAME), scores, labels, resamples, seed)


def _f1(predicted: np.ndarray, same: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & same)
    return 2 * tp / (np.count_nonzero(predicted) + np.count_nonzero(same)) if tp else 0.0
