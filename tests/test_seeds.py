"""Results over seeds: summaries and paired differences checked against hand computations."""

from __future__ import annotations

import math

import pytest

from backbone.experiments.analysis import Run, attention_verdicts, result_row, write_tables
from backbone.experiments.seeds import paired_differences, seed_lines, seed_summary, setting
from backbone.training.config import TrainConfig

T_975_2DF = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom
GLOBAL = "none (global only)"


def row(name, attention, seed, twin_auc, loss="triplet (batch-hard)", **extra):
    """A table row as ``result_row`` makes it, with only the columns the seeds section reads."""
    return {"experiment": name, "architecture": "small_grid", "attention": attention, "pretrained_on": "none",
            "loss": loss, "training": "3 ep., lr 0.001, all layers",
            "budget": f"{1.5 + (seed or 0) / 10:.1f} min, 12,288 images",  # minutes differ between seeds
            "seed": seed, "twin_auc": twin_auc, "other_auc": 0.9, "auc": 0.8, "accuracy_at_val_threshold": 0.7,
            **extra}  # fmt: skip


def grid(attention, twin_aucs, seeds=(0, 1, 2), **extra):
    return [row(f"{attention[:4]}-{s}", attention, s, t, **extra) for s, t in zip(seeds, twin_aucs)]


def test_setting_ignores_seed_and_minutes_but_not_images():
    a, b = row("a", "cbam", 0, 0.6), row("b", "cbam", 1, 0.7)
    assert a["budget"] != b["budget"] and setting(a) == setting(b)
    assert setting(a) == ("small_grid", "cbam", "none", "triplet (batch-hard)", "3 ep., lr 0.001, all layers",
                          "12,288 images")  # fmt: skip
    assert setting(a) != setting(row("c", "cbam", 2, 0.7, budget="1.5 min, 6,144 images"))
    assert setting(row("d", "cbam", 0, 0.7, budget="none"))[-1] == "none"


def test_summary_is_mean_and_sample_sd_over_seeds():
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65])
    rows[0]["other_auc"] = None  # a metric missing in one row is left out of that setting's summary
    plain, attended = seed_summary(rows)
    assert plain["n"] == 3 and plain["seeds"] == [0, 1, 2] and plain["twin_aucs"] == [0.50, 0.60, 0.55]
    assert plain["experiments"] == ["none-0", "none-1", "none-2"]
    # mean 0.55; deviations -0.05, 0.05, 0: sd = sqrt((0.0025 + 0.0025 + 0) / 2) = 0.05
    assert plain["twin_auc_mean"] == pytest.approx(0.55) and plain["twin_auc_sd"] == pytest.approx(0.05)
    assert "other_auc_mean" not in plain and plain["auc_mean"] == pytest.approx(0.8) and plain["auc_sd"] == 0
    # mean 1.87 / 3; deviations -0.07/3, -0.01/3, 0.08/3: sd = sqrt((0.0049 + 0.0001 + 0.0064) / 9 / 2)
    assert attended["twin_auc_mean"] == pytest.approx(1.87 / 3)
    assert attended["twin_auc_sd"] == pytest.approx(math.sqrt(0.0114 / 18))
    assert attended["other_auc_mean"] == pytest.approx(0.9) and attended["attention"] == "cbam"


def test_a_setting_with_one_seed_has_no_summary():
    rows = grid(GLOBAL, [0.50, 0.60]) + [row("cbam-0", "cbam", 0, 0.6), row("ref", "none (reference)", None, 0.9)]
    rows += [row("again", GLOBAL, 0, 0.52)]  # the same seed twice is still one seed
    (summary,) = seed_summary(rows)
    assert summary["attention"] == GLOBAL and summary["seeds"] == [0, 1] and summary["twin_aucs"] == [0.50, 0.60]
    assert paired_differences(rows) == [] and seed_summary(rows[2:]) == []


def test_paired_difference_by_hand():
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65])
    (p,) = paired_differences(rows)
    assert p["differences"] == pytest.approx([0.10, 0.02, 0.10]) and p["metric"] == "twin_auc"
    # mean 0.22 / 3; deviations 0.08/3, -0.16/3, 0.08/3: sd = sqrt((0.0064 + 0.0256 + 0.0064) / 9 / 2)
    mean, sd = 0.22 / 3, math.sqrt(0.0384 / 18)
    se = sd / math.sqrt(3)
    assert p["mean"] == pytest.approx(mean) and p["se"] == pytest.approx(se) and se == pytest.approx(0.08 / 3)
    low, high = mean - T_975_2DF * se, mean + T_975_2DF * se  # about [-0.0414, +0.1881]
    assert p["ci"] == pytest.approx((low, high)) and p["df"] == 2 and p["n"] == 3
    assert p["verdict"] == "no clear difference"  # 0 is inside the interval
    assert p["experiments"] == ["cbam-0", "cbam-1", "cbam-2"] and p["global_experiments"] == [
        "none-0",
        "none-1",
        "none-2",
    ]


@pytest.mark.parametrize(("cbam", "verdict"), [([0.60, 0.72, 0.66], "beats"), ([0.40, 0.48, 0.44], "falls below")])
def test_paired_difference_verdicts(cbam, verdict):
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", cbam)
    (p,) = paired_differences(rows)
    # differences ±[0.10, 0.12, 0.11]: mean ±0.11, sd 0.01, se 0.01 / sqrt(3); half width t * se = 0.0248
    assert abs(p["mean"]) == pytest.approx(0.11) and p["se"] == pytest.approx(0.01 / math.sqrt(3))
    half = T_975_2DF * 0.01 / math.sqrt(3)
    assert p["ci"] == pytest.approx((p["mean"] - half, p["mean"] + half)) and p["verdict"] == verdict


def test_rows_differing_in_loss_or_images_are_not_paired():
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65], loss="contrastive")
    assert len(seed_summary(rows)) == 2 and paired_differences(rows) == []
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65], budget="1.0 min, 6,144 images")
    assert paired_differences(rows) == []


def test_only_shared_seeds_are_paired():
    plain = grid(GLOBAL, [0.50, 0.60, 0.55, 0.90], seeds=(1, 2, 3, 5))
    rows = plain + grid("cbam", [0.1, 0.60, 0.62, 0.65], seeds=(0, 1, 2, 3))
    (p,) = paired_differences(rows)  # cbam seeds 0-3, global only 1, 2, 3, 5: seeds 1, 2, 3
    assert p["seeds"] == [1, 2, 3] and p["differences"] == pytest.approx([0.60 - 0.50, 0.62 - 0.60, 0.65 - 0.55])
    rows = grid(GLOBAL, [0.50, 0.60], seeds=(2, 3)) + grid("cbam", [0.60, 0.62], seeds=(0, 2))
    assert paired_differences(rows) == []  # one shared seed is not a difference over seeds


def test_without_twin_negatives_the_auc_is_paired():
    rows = grid(GLOBAL, [None] * 3, auc=0.80) + grid("cbam", [None] * 3, auc=0.85)
    rows[0]["auc"] = 0.78
    (p,) = paired_differences(rows)
    assert p["metric"] == "auc" and p["differences"] == pytest.approx([0.07, 0.05, 0.05])


def test_seed_lines_table_and_sentence():
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65])
    lines = seed_lines(rows)
    assert lines[0].startswith("| attention | loss | architecture | training | seeds | twin-negative AUC")
    assert lines[2] == (
        "| none (global only) | triplet (batch-hard) | small_grid | 3 ep., lr 0.001, all layers | 0, 1, 2 "
        "| 0.5500 ± 0.0500 | 0.9000 ± 0.0000 | 0.8000 ± 0.0000 |"
    )
    # mean 0.0733, se 0.0267, half width 4.3027 * 0.0267 = 0.1147
    assert lines[-1] == (
        "- triplet (batch-hard), small_grid: cbam local-global vs global only over seeds 0, 1, 2: twin-negative AUC "
        "difference +0.0733 ± 0.0267 (mean ± SE of the per-seed differences), 95% CI [-0.0414, +0.1881] "
        "(t, 2 d.f.): no clear difference (cbam-0, cbam-1, cbam-2 vs none-0, none-1, none-2)."
    )
    beats = seed_lines(grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.72, 0.66]))[-1]
    assert beats.endswith(": local-global beats global only (cbam-0, cbam-1, cbam-2 vs none-0, none-1, none-2).")
    assert seed_lines(grid(GLOBAL, [0.5]) + grid("cbam", [0.6])) == []


def test_attention_verdicts_leave_seeded_settings_to_the_paired_difference():
    single = [row("g", GLOBAL, 0, 0.50), row("a", "cbam", 0, 0.58)]
    (line,) = attention_verdicts(single)  # one seed: as before
    assert "cbam local-global (a) beats global only (g)" in line and "(+0.0800)" in line
    assert attention_verdicts([{k: v for k, v in r.items() if k != "seed"} for r in single]) == [line]
    seeded = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65])
    assert attention_verdicts(seeded) == []  # not 3 x 3 single-run verdicts
    # one shared seed: no paired difference, and only the runs of the same seed are compared
    mixed = grid(GLOBAL, [0.50, 0.60], seeds=(0, 1)) + grid("cbam", [0.70, 0.58], seeds=(1, 2))
    (line,) = attention_verdicts(mixed)
    assert "(cbam-1) beats global only (none-1)" in line and "(+0.1000)" in line


def test_results_md_has_the_seeds_section_and_the_csv_the_seed(tmp_path):
    rows = grid(GLOBAL, [0.50, 0.60, 0.55]) + grid("cbam", [0.60, 0.62, 0.65])
    write_tables(rows, tmp_path)
    md = (tmp_path / "results.md").read_text()
    heading = "Over seeds (each setting trained with several seeds; mean ± sample standard deviation; the difference is paired by seed):"
    assert heading in md and md.index(heading) > md.index("| none-2 |") and "95% CI [-0.0414, +0.1881]" in md
    assert "| seed |" not in md.splitlines()[2] and "Does local attention help" not in md
    header, first = (tmp_path / "results.csv").read_text().splitlines()[:2]
    assert header.split(",")[-1] == "seed" and first.split(",")[-1] == "0"
    write_tables(rows[:1] + rows[3:4], tmp_path)  # one seed each: no seeds section
    assert "Over seeds" not in (tmp_path / "results.md").read_text()


def test_result_row_records_the_seed():
    metrics = {"best": {"f1": 0.7, "accuracy": 0.7}, "auc": 0.8, "same": 10, "different": 10, "eer": 0.3,
               "tar_at_far": {"0.001": 0.1}}  # fmt: skip
    assert result_row(Run("r", None, TrainConfig(seed=3), metrics, []))["seed"] == 3
    reference = Run("ref", None, None, metrics, [], {"label": "oracle"})
    assert result_row(reference)["seed"] is None
