"""What a run shows: sentences read from its results, checked against hand computations."""

import json

import pytest

from backbone.data.lists.pairs import Pair
from backbone.evaluation.findings import (
    Findings,
    against_chance,
    analysis_findings,
    attention_findings,
    data_findings,
    explorer_findings,
    reference_findings,
    training_findings,
)


def test_an_auc_is_read_against_chance_with_its_95_percent_interval():
    assert against_chance(0.56, 0.02) == "above chance"  # 0.56 - 1.96 * 0.02 = 0.5208 > 0.5
    assert against_chance(0.53, 0.02) == "at chance"  # 0.4908 .. 0.5692 holds 0.5
    assert against_chance(0.44, 0.02) == "below chance"
    assert against_chance(0.7, None) == "above chance"


def metrics(twin_auc=0.49, twin_se=0.014):
    return {
        "same": 1000, "different": 1000, "auc": 0.614, "auc_se": 0.0125,
        "at_val_threshold": {"threshold": 0.6535, "accuracy": 0.587, "accuracy_se": 0.011, "far": 0.606, "frr": 0.22},
        "twin_negatives": {"auc": twin_auc, "auc_se": twin_se}, "other_negatives": {"auc": 0.909, "auc_se": 0.008},
        "pointing": {"score": 0.81, "images": 577, "area": 0.0037}, "epoch": 1,
    }  # fmt: skip


def test_a_training_run_says_its_accuracy_and_whether_it_tells_twins_apart(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics()))
    (tmp_path / "history.json").write_text(json.dumps([{"train_seconds": 30, "images": 3072}] * 2))
    found = training_findings(tmp_path)
    text = found.markdown()
    assert found.title == f"What this run shows ({tmp_path.name})"
    assert "(0.653), the test accuracy is 58.7% ± 1.1 over 2,000 pairs (FAR 0.606, FRR 0.220)" in text
    assert "twin negatives alone the AUC is 0.490 ± 0.014, **at chance**" in text
    assert "It tells different people apart but not identical twins." in text
    assert "Training took 1.0 minutes over 2 epochs and 6,144 images; the checkpoint kept is epoch 1's" in text
    assert found._repr_markdown_() == text == str(found)
    (tmp_path / "metrics.json").write_text(json.dumps(metrics(twin_auc=0.96, twin_se=0.005)))
    assert "It tells identical twins apart." in training_findings(tmp_path).markdown()


def test_a_missing_run_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="metrics"):
        training_findings(tmp_path)


def test_the_data_set_counts_its_pairs_and_the_accuracy_a_twin_blind_verifier_can_reach():
    pairs = [Pair("a", "b", 1)] * 5 + [Pair("a", "c", 0, twins=True)] * 3 + [Pair("a", "d", 0)] * 2
    text = data_findings({"identities": 300, "images": 3000, "groups": 100}, pairs).markdown()
    assert "300 identities and 3,000 images, 100 families of twins." in text
    assert "10 pairs: 5 of one person (same = 1), 3 twin negatives and 2 other negatives" in text
    assert "at most 85.0% accuracy" in text  # 7 right, and half of the 3 twin pairs by guessing: 8.5 / 10


def test_the_explorer_counts_its_errors_and_the_twins_among_the_false_accepts():
    text = explorer_findings({"tp": 80, "fn": 20, "fp": 40, "tn": 60, "twin_fp": 30}, 0.5).markdown()
    assert "40 false accepts and 20 false rejects among 200 pairs (accuracy 70.0%)" in text
    assert "30 of the 40 false accepts (75.0%) are identical twins" in text


def test_a_grid_names_its_best_run_the_twin_aucs_and_its_comparisons():
    rows = [
        {"experiment": "a", "accuracy_at_val_threshold": 0.6, "accuracy_at_val_threshold_se": 0.01, "auc": 0.65,
         "twin_auc": 0.49, "twin_auc_se": 0.01, "training": "2 ep."},
        {"experiment": "b", "accuracy_at_val_threshold": 0.9, "accuracy_at_val_threshold_se": 0.006, "auc": 0.97,
         "twin_auc": 0.96, "twin_auc_se": 0.005, "training": "5 ep."},
        {"experiment": "oracle", "accuracy_at_val_threshold": 0.99, "auc": 0.999, "twin_auc": 1.0,
         "training": "none (reference)"},
    ]  # fmt: skip
    found = analysis_findings(rows, ["- b beats a."])
    assert found.points[0] == (
        "3 runs. The best test accuracy at its validation threshold is b's, 90.0% ± 0.6 (AUC 0.970); "
        "the reference oracle, which trains nothing, reaches 99.0%."
    )
    assert found.points[1] == "Twin-negative AUC ranges from 0.490 (a) to 0.960 (b); above chance: b."
    assert found.points[2] == "b beats a."


def test_references_and_attention_read_their_metrics(tmp_path):
    assert "**at chance**" in reference_findings(metrics(), "local-detail").markdown()
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.ckpt").write_bytes(b"")
    (run / "metrics.json").write_text(json.dumps(metrics()))
    text = attention_findings(run / "best.ckpt").markdown()
    assert (
        "Pointing score 0.81 over 577 test faces" in text
        and "(0.37% of its area); it does not prefer the marks" in text
    )
    (run / "metrics.json").write_text(json.dumps({"auc": 0.9}))
    assert "holds no pointing score" in attention_findings(run / "best.ckpt").markdown()
    assert isinstance(attention_findings(run / "best.ckpt"), Findings)
