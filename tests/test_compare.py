import csv
import json

import pytest

from backbone.cli import main
from backbone.experiments.compare import compare, report

FIELDS = ["experiment", "accuracy_at_val_threshold", "accuracy_at_val_threshold_se", "auc", "auc_se", "eer", "eer_se",
          "twin_auc", "twin_auc_se", "other_auc", "pointing"]  # fmt: skip
ROWS = [
    {"experiment": "contrastive-global", "accuracy_at_val_threshold": "0.579500", "accuracy_at_val_threshold_se": "0.011",
     "auc": "0.599160", "auc_se": "0.0126", "eer": "0.440000", "eer_se": "0.0111", "twin_auc": "0.481236",
     "twin_auc_se": "0.02", "other_auc": "0.874317", "pointing": ""},
    {"experiment": "contrastive-cbam", "accuracy_at_val_threshold": "0.572500", "accuracy_at_val_threshold_se": "0.011",
     "auc": "0.599182", "auc_se": "0.0126", "eer": "0.439000", "eer_se": "0.0111", "twin_auc": "0.482648",
     "twin_auc_se": "0.02", "other_auc": "0.871097", "pointing": "1.2345"},
]  # fmt: skip
ENV = {"torch": "2.14.1", "cpu_capability": "AVX512", "cpu_threads": 2, "git_commit": "abc1234", "numpy": "2.4.6"}


def write(folder, rows, env=ENV):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "environment.json").write_text(json.dumps(env))
    return folder


def changed(name, **values):
    return [{**r, **values} if r["experiment"] == name else r for r in ROWS]


def test_identical_results_reproduce(tmp_path):
    c = compare(write(tmp_path / "a", ROWS), write(tmp_path / "b", ROWS, {**ENV, "git_commit": "def5678"}))
    assert c.ok and len(c.numbers) == 2 * 5 + 1  # the pointing score only where there is one
    assert c.environment == {}  # another commit is not another environment
    assert report(c).startswith("**Reproduced**: all 11 numbers agree")


def test_a_changed_number_is_flagged_and_a_small_change_within_two_se_is_not(tmp_path):
    committed = write(tmp_path / "committed", ROWS)
    # AUC SE 0.0126: tolerance 0.0252; +0.02 agrees, +0.03 does not
    c = compare(committed, write(tmp_path / "near", changed("contrastive-cbam", auc="0.619182")))
    assert c.ok
    c = compare(committed, write(tmp_path / "far", changed("contrastive-cbam", auc="0.629182")))
    assert not c.ok and [(d.experiment, d.metric) for d in c.disagreements] == [("contrastive-cbam", "auc")]
    assert c.disagreements[0].delta == pytest.approx(0.03) and c.disagreements[0].tolerance == pytest.approx(0.0252)
    text = report(c)
    assert text.startswith("**Not reproduced**: 1 of 11 numbers differ beyond tolerance")
    assert "| contrastive-cbam | AUC | 0.5992 | 0.6292 | +0.0300 | 0.0252 | **NO** |" in text


def test_a_metric_without_standard_error_must_agree_to_four_decimals(tmp_path):
    committed = write(tmp_path / "committed", ROWS)
    assert compare(committed, write(tmp_path / "same", changed("contrastive-cbam", pointing="1.23452"))).ok
    c = compare(committed, write(tmp_path / "other", changed("contrastive-cbam", pointing="1.2350")))
    assert [d.metric for d in c.disagreements] == ["pointing"]


def test_missing_experiments_and_numbers_never_pass(tmp_path):
    committed = write(tmp_path / "committed", ROWS)
    c = compare(committed, write(tmp_path / "fewer", ROWS[:1]))
    assert not c.ok and c.only_committed == ["contrastive-cbam"]
    assert "missing from the re-run: contrastive-cbam" in report(c)
    c = compare(committed, write(tmp_path / "lost", changed("contrastive-cbam", pointing="")))
    assert [d.metric for d in c.disagreements] == ["pointing"]
    # a number only the re-run has (a metric newer than the committed table) is listed, not compared
    c = compare(committed, write(tmp_path / "newer", changed("contrastive-global", pointing="1.5")))
    assert c.ok and c.new_numbers == ["contrastive-global pointing"]
    assert "Numbers the committed table lacks (not compared): contrastive-global pointing." in report(c)


def test_a_disagreement_names_what_differs_in_the_environment_deciders_first(tmp_path):
    committed = write(tmp_path / "committed", ROWS)
    env = {**ENV, "numpy": "2.5.0", "cpu_capability": "AVX2", "cpu_threads": 4}
    c = compare(committed, write(tmp_path / "other", changed("contrastive-global", eer="0.5"), env))
    assert list(c.environment) == ["cpu_capability", "cpu_threads", "numpy"]
    text = report(c)
    assert "- cpu_capability: committed 'AVX512', re-run 'AVX2'" in text
    assert "What decides training's numbers on a CPU: cpu_capability, cpu_threads differ here." in text


def test_the_command_writes_the_comparison_and_strict_fails_on_a_difference(tmp_path, capsys):
    committed = write(tmp_path / "committed", ROWS)
    rerun = write(tmp_path / "rerun", changed("contrastive-global", twin_auc="0.60"))
    assert main(["experiments", "compare", str(committed), str(rerun)]) == 0
    out = capsys.readouterr().out
    assert "**Not reproduced**: 1 of 11" in out and (rerun / "comparison.md").is_file()
    assert main(["experiments", "compare", str(committed), str(rerun), "--strict"]) == 1
    assert main(["experiments", "compare", str(committed), str(committed), "--strict"]) == 0
    assert main(["experiments", "compare", str(committed), str(tmp_path / "nothing")]) == 1
    assert "results.csv does not exist: run `backbone experiments run`" in capsys.readouterr().err


def test_the_other_negative_auc_is_judged_by_its_standard_error_not_the_tables_decimals(tmp_path):
    """Issue 31: other-negative AUC had no standard error, so a move of 0.03 (seed-level noise) failed against
    the table's 4 decimals. With its DeLong error in results.csv it is judged as every AUC is."""
    with_se = [{**r, "other_auc_se": "0.02"} for r in ROWS]
    FIELDS.append("other_auc_se")
    try:
        moved = [{**r, "other_auc": f"{float(r['other_auc']) + 0.03:.6f}"} for r in with_se]
        assert compare(write(tmp_path / "a", with_se), write(tmp_path / "b", moved)).ok  # 0.03 < 2 x 0.02
        far = [{**r, "other_auc": f"{float(r['other_auc']) + 0.05:.6f}"} for r in with_se]
        c = compare(write(tmp_path / "c", with_se), write(tmp_path / "d", far))
        assert not c.ok and {d.metric for d in c.numbers if not d.agrees} == {"other_auc"}
    finally:
        FIELDS.remove("other_auc_se")
