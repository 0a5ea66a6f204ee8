"""Standard errors against hand computations, scikit-learn and the textbook formulas."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from backbone.evaluation.metrics import auc_standard_error, confusion_at, eer, eer_se, f1_se
from backbone.evaluation.uncertainty import bootstrap_se, delong, ratio_se


def test_delong_by_hand_with_a_tie():
    """Same-person scores 0.9 and 0.6, different-person 0.6, 0.2, 0.1: 5.5 of 6 orderings right (a tie is half).
    Placements: positives 1 and 5/6; negatives 3/4, 1, 1; each variance (ddof 1) over its count, summed."""
    auc, se = delong([0.9, 0.6, 0.6, 0.2, 0.1], [1, 1, 0, 0, 0])
    assert auc == pytest.approx(5.5 / 6)
    v10 = np.array([1, 5 / 6])
    v01 = np.array([0.75, 1, 1])
    assert se == pytest.approx(math.sqrt(v10.var(ddof=1) / 2 + v01.var(ddof=1) / 3))
    assert se == pytest.approx(0.117851, abs=1e-6)


def test_delong_agrees_with_scikit_learn_and_with_hanley_mcneil_for_normal_scores():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], [300, 500])
    scores = np.where(labels == 1, rng.normal(1.0, 1, 800), rng.normal(0.0, 1, 800))
    auc, se = delong(scores, labels)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert se == pytest.approx(auc_standard_error(auc, 300, 500), rel=0.15)  # binormal scores: the two agree
    assert se == pytest.approx(bootstrap_se(lambda s, lab: roc_auc_score(lab, s), scores, labels, 400), rel=0.15)
    with pytest.raises(ValueError, match="same-person and different-person"):
        delong([0.1, 0.2], [1, 1])


def test_the_bootstrap_is_stratified_seeded_and_matches_the_standard_error_of_a_mean():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 2, 400)
    labels = np.zeros(400, int)
    se = bootstrap_se(lambda s, lab: s.mean(), values, labels, resamples=2000)
    assert se == pytest.approx(values.std(ddof=1) / math.sqrt(400), rel=0.08)  # 2 / sqrt(400) = 0.1
    assert se == bootstrap_se(lambda s, lab: s.mean(), values, labels, resamples=2000)  # seeded
    labels[:100] = 1
    shares = []
    bootstrap_se(lambda s, lab: shares.append(lab.mean()) or 0.0, values, labels, resamples=50)
    assert set(shares) == {0.25}  # each resample keeps the same-person share of the list


def test_the_equal_error_rate_and_its_bootstrap_error():
    rng = np.random.default_rng(2)
    labels = np.repeat([1, 0], [500, 500])
    scores = np.where(labels == 1, rng.normal(2.0, 1, 1000), rng.normal(0.0, 1, 1000))
    assert eer(scores, labels) == pytest.approx(0.1587, abs=0.03)  # binormal, d' = 2: Phi(-1)
    se = eer_se(scores, labels)
    binomial = math.sqrt(0.1587 * (1 - 0.1587) / 1000)
    assert 0.5 * binomial < se < 2 * binomial


def test_f1_at_a_threshold_is_bootstrapped_on_the_same_draws_as_scikit_learns_f1():
    rng = np.random.default_rng(3)
    labels = np.repeat([1, 0], [300, 700])
    scores = np.where(labels == 1, rng.normal(1.0, 1, 1000), rng.normal(0.0, 1, 1000))
    f1 = lambda s, lab: f1_score(lab, s >= 0.5)  # noqa: E731
    assert f1(scores, labels) == pytest.approx(confusion_at(scores, labels, 0.5)["f1"])
    assert f1_se(scores, labels, 0.5) == pytest.approx(bootstrap_se(f1, scores, labels), abs=1e-12)
    assert f1_se(scores, labels, 99.0) == 0.0  # nothing called the same at any draw


def test_the_ratio_of_means_error_matches_the_delta_method():
    """mean(x) / mean(y) over n items: var ~ (var x - 2 R cov(x, y) + R^2 var y) / (n mean(y)^2)."""
    rng = np.random.default_rng(4)
    y = rng.uniform(0.5, 1.5, 600)
    x = 0.8 * y + rng.normal(0, 0.3, 600)
    r = x.mean() / y.mean()
    cov = np.cov(x, y)
    delta = math.sqrt((cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (600 * y.mean() ** 2))
    assert ratio_se(x, y, resamples=2000) == pytest.approx(delta, rel=0.08)
    assert ratio_se(x, y) == ratio_se(x, y)  # seeded
    with pytest.raises(ValueError, match="at least two items"):
        ratio_se([1.0], [2.0])
