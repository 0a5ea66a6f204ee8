"""``backbone experiments compare``: per run and exact when the environments match, over seeds when
they do not; checked on hand-made result tables and against hand computations."""

import csv
import json
import math
import statistics

import pytest
from scipy import stats

from backbone.cli import main
from backbone.experiments.compare import compare, report

FIELDS = ["experiment", "architecture", "attention", "pretrained_on", "loss", "training", "budget", "seed",
          "accuracy_at_val_threshold", "accuracy_at_val_threshold_se", "auc", "auc_se", "eer", "eer_se",
          "twin_auc", "twin_auc_se", "other_auc", "other_auc_se", "pointing", "pointing_se",
          "train_seconds", "run_seconds"]  # fmt: skip
ENV = {"torch": "2.14.1", "cpu_capability": "AVX512", "cpu_model": "AMD EPYC", "cpu_threads": 2, "onednn": "3.12.0",
       "deterministic_algorithms": False, "cuda": None, "git_commit": "abc1234", "numpy": "2.4.6"}  # fmt: skip
OTHER_CPU = {**ENV, "cpu_capability": "AVX2", "git_commit": "def5678"}
GLOBAL = "none (global only)"
# per seed 0, 1, 2: twin-negative AUC and other-negative AUC of two settings (cbam beats global by ~0.10)
COMMITTED = {GLOBAL: ([0.50, 0.51, 0.52], [0.90, 0.92, 0.94]), "cbam": ([0.60, 0.62, 0.61], [0.93, 0.95, 0.91])}
RERUN = {GLOBAL: ([0.505, 0.50, 0.515], [0.91, 0.93, 0.92]), "cbam": ([0.605, 0.615, 0.62], [0.92, 0.96, 0.93])}


def trained(attention, seed, twin, other, seconds=60.0):
    name = f"triplet-{'global' if attention == GLOBAL else attention}-s{seed}"
    return {"experiment": name, "architecture": "small", "attention": attention, "pretrained_on": "none",
            "loss": "triplet (batch-hard)", "training": "2 ep., lr 0.001, all layers",
            "budget": f"0.{seed + 7} min, 6,144 images", "seed": seed,
            "accuracy_at_val_threshold": 0.6, "accuracy_at_val_threshold_se": 0.011, "auc": 0.62, "auc_se": 0.0125,
            "eer": 0.42, "eer_se": 0.0115, "twin_auc": twin, "twin_auc_se": 0.014, "other_auc": other,
            "other_auc_se": 0.009, "pointing": 0.8 if attention != GLOBAL else "", "pointing_se": "",
            "train_seconds": seconds * 0.7, "run_seconds": seconds}  # fmt: skip


def untrained(name="dlib-as-is", auc=0.6752):
    return {"experiment": name, "architecture": "dlib_resnet", "attention": GLOBAL, "pretrained_on": "dlib",
            "loss": "contrastive", "training": "none (as is)", "budget": "none", "seed": 0,
            "accuracy_at_val_threshold": 0.6295, "accuracy_at_val_threshold_se": 0.0108, "auc": auc, "auc_se": 0.0119,
            "eer": 0.374, "eer_se": 0.0112, "twin_auc": 0.5695, "twin_auc_se": 0.0141, "other_auc": 0.922,
            "other_auc_se": 0.0085, "pointing": "", "pointing_se": "", "train_seconds": 0.0, "run_seconds": 11.0}  # fmt: skip


def table(values=COMMITTED, seeds=(0, 1, 2), seconds=60.0, extra=()):
    rows = [trained(a, s, twin[s], other[s], seconds) for a, (twin, other) in values.items() for s in seeds]
    return [*rows, untrained(), *extra]


def write(folder, rows, env=ENV):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if env is not None:
        (folder / "environment.json").write_text(json.dumps(env))
    return folder


@pytest.fixture
def committed(tmp_path):
    return write(tmp_path / "committed", table())


def test_the_same_environment_asks_every_run_to_agree_to_four_decimals(tmp_path, committed):
    c = compare(committed, write(tmp_path / "same", table(), {**ENV, "git_commit": "def5678"}))
    assert (
        c.exact and c.ok and c.complete and c.fingerprint == {} and c.environment == {}
    )  # a commit is not an environment
    assert len(c.runs) == 6 * 5 + 3 + 5  # trained runs: 5 metrics (+ pointing for cbam), dlib-as-is: 5
    text = report(c)
    assert text.startswith("**Reproduced exactly**: all 38 numbers of 7 runs agree to 4 decimals.")
    assert "Rule: per run, exact, because the environments' fingerprints match" in text
    # a change in the fifth decimal is no change; in the fourth it is, though far inside the seed spread
    rows = table()
    rows[0]["twin_auc"] += 4e-5
    assert compare(committed, write(tmp_path / "fifth", rows)).ok
    rows[0]["twin_auc"] += 1e-4
    c = compare(committed, write(tmp_path / "fourth", rows))
    assert not c.ok and [(d.experiment, d.metric) for d in c.disagreements] == [("triplet-global-s0", "twin_auc")]
    text = report(c)
    assert text.startswith("**Not reproduced**: 1 of 38 numbers differ beyond the table's 4 decimals.")
    assert "| triplet-global-s0 | twin-negative AUC | 0.5000 | 0.5001 | +0.0001 | 4 decimals | **NO** |" in text


def test_another_cpu_reproduces_over_seeds_when_runs_differ_only_by_seed_noise(tmp_path, committed):
    c = compare(committed, write(tmp_path / "avx2", table(RERUN), OTHER_CPU))
    assert not c.exact and c.fingerprint == {"cpu_capability": ("AVX512", "AVX2")}
    assert any(not d.agrees for d in c.runs)  # run by run they differ, ...
    assert c.ok and c.complete  # ... over seeds they agree
    # 2 settings x 5 metrics + cbam's pointing score; one paired conclusion; dlib-as-is's 5 numbers
    assert (len(c.settings), len(c.conclusions), len(c.untrained)) == (11, 1, 5)
    text = report(c)
    assert text.startswith(
        "**Reproduced over seeds**: 11 numbers of 2 settings agree, 1 paired conclusions hold, "
        "5 numbers of rows that train nothing agree."
    )
    assert (
        "Rule: over seeds, because per-run exact agreement does not apply: the environments' fingerprints differ "
        "(cpu_capability 'AVX512' → 'AVX2')" in text
    )
    assert "### Per run, to 4 decimals (for information: the fingerprints differ)" in text
    assert "| cbam vs global only, triplet (batch-hard), small (twin-negative AUC) | beats" in text


def test_the_settings_difference_is_welchs_test_at_a_bonferroni_level_by_hand(tmp_path, committed):
    c = compare(committed, write(tmp_path / "avx2", table(RERUN), OTHER_CPU))
    (d,) = [s for s in c.settings if s.setting == "triplet-global" and s.metric == "other_auc"]
    a, b = COMMITTED[GLOBAL][1], RERUN[GLOBAL][1]
    va, vb = statistics.variance(a) / 3, statistics.variance(b) / 3  # 0.0004/3 and 0.0001/3
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert (d.committed, d.rerun, d.delta) == pytest.approx((0.92, 0.92, 0.0))
    assert (d.committed_se, d.rerun_se) == pytest.approx((math.sqrt(0.0004 / 3), math.sqrt(0.0001 / 3)))
    assert d.p == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert c.alpha_each == pytest.approx(0.05 / 11)
    assert d.bound == pytest.approx(stats.t.ppf(1 - 0.05 / 22, dof) * math.sqrt(va + vb))


def test_a_planted_change_beyond_the_seed_spread_is_not_reproduced_with_its_line(tmp_path, committed):
    planted = {**RERUN, GLOBAL: (RERUN[GLOBAL][0], [0.70, 0.72, 0.71])}  # other-negative AUC 0.92 -> 0.71
    c = compare(committed, write(tmp_path / "planted", table(planted), OTHER_CPU))
    assert not c.ok and [(d.setting, d.metric) for d in c.disagreements] == [("triplet-global", "other_auc")]
    text = report(c)
    assert text.startswith("**Not reproduced** over seeds: 1 of 16 numbers differ.")
    assert "| triplet-global | 0, 1, 2 | other-negative AUC | 0.9200 ± 0.0115 | 0.7100 ± 0.0058 | -0.2100 |" in text
    assert text.count("**NO**") >= 1 + 3  # the setting's line, and the three runs in the per-run table


def test_a_flipped_paired_conclusion_is_the_loudest_line(tmp_path, committed):
    # re-run: cbam 0.10 below global at every seed, where the committed cbam was 0.10 above
    flipped = {**RERUN, "cbam": ([t - d for t, d in zip(RERUN[GLOBAL][0], (0.10, 0.11, 0.09))], RERUN["cbam"][1])}
    c = compare(committed, write(tmp_path / "flipped", table(flipped), OTHER_CPU))
    assert not c.ok and [x.reversed for x in c.flipped] == [True]
    text = report(c)
    first = text.splitlines()[0]
    assert first.startswith(
        "**REVERSED CONCLUSION**: cbam vs global only, triplet (batch-hard), small (twin-negative AUC): "
        'committed "beats", re-run "falls below"'
    )
    assert "over seeds: 1 of 16 numbers differ and 1 paired conclusion changed." in text
    # a conclusion that loses its significance has changed too, less loudly
    weaker = {**RERUN, "cbam": ([t + d for t, d in zip(RERUN[GLOBAL][0], (0.10, -0.05, 0.02))], RERUN["cbam"][1])}
    c = compare(committed, write(tmp_path / "weaker", table(weaker), OTHER_CPU))
    assert [(x.committed, x.rerun, x.reversed) for x in c.flipped] == [("beats", "no clear difference", False)]
    assert report(c).startswith("**CHANGED CONCLUSION**: cbam vs global only")
    assert "**Not reproduced** over seeds: all 16 numbers agree, but 1 paired conclusion changed." in report(c)
    assert "Not a reversal: one of the two intervals includes 0" in report(c).splitlines()[0]
    # for information: the six runs of both pooled, by hand (mean 0.0617, sd 0.0637, t with 5 d.f.)
    pooled = [0.10, 0.11, 0.09, 0.10, -0.05, 0.02]
    half = stats.t.ppf(0.975, 5) * statistics.stdev(pooled) / math.sqrt(6)
    (x,) = c.flipped
    assert x.pooled["ci"] == pytest.approx((statistics.mean(pooled) - half, statistics.mean(pooled) + half))
    assert x.pooled["verdict"] == "no clear difference" and x.pooled["n"] == 6
    assert 'Pooled over the 6 runs of both: "no clear difference", +0.0617' in report(c).splitlines()[0]
    assert "Not a reversal" not in text


def test_a_partial_rerun_is_compared_on_the_settings_with_all_their_seeds(tmp_path, committed, capsys):
    rows = [
        r for r in table(RERUN) if not (r["attention"] == "cbam" and r["seed"] > 0) and r["training"] != "none (as is)"
    ]
    rerun = write(tmp_path / "partial", rows, OTHER_CPU)
    c = compare(committed, rerun)
    assert c.ok and not c.complete
    assert {s.setting for s in c.settings} == {"triplet-global"} and c.conclusions == [] and c.untrained == []
    assert c.not_rerun == [
        "triplet-cbam (seeds 0, 1, 2; re-run: 0)",
        "dlib-as-is (trains nothing)",
        "the conclusion cbam vs global only, triplet (batch-hard), small (twin-negative AUC)",
    ]
    text = report(c)
    assert "Partial re-run: compared on what it has (3 not re-run, listed below)." in text.splitlines()[0]
    assert "Not re-run (not compared): triplet-cbam (seeds 0, 1, 2; re-run: 0); dlib-as-is (trains nothing)" in text
    # the command: a partial re-run is no failure, but --strict asks for everything
    assert main(["experiments", "compare", str(committed), str(rerun)]) == 0
    assert main(["experiments", "compare", str(committed), str(rerun), "--strict"]) == 1
    capsys.readouterr()


def test_nothing_in_common_is_no_reproduction(tmp_path, committed):
    c = compare(committed, write(tmp_path / "none", [trained("cbam", 0, 0.6, 0.9)], OTHER_CPU))
    assert not c.ok and report(c).startswith("**Nothing to compare**")


def test_rows_that_train_nothing_agree_within_k_standard_errors_of_their_pairs(tmp_path, committed):
    near = compare(committed, write(tmp_path / "near", table(RERUN, extra=()), OTHER_CPU))
    assert all(d.agrees for d in near.untrained)
    rows = [r if r["experiment"] != "dlib-as-is" else untrained(auc=0.6752 + 0.03) for r in table(RERUN)]
    c = compare(committed, write(tmp_path / "far", rows, OTHER_CPU), k=2)
    assert [(d.experiment, d.metric) for d in c.disagreements] == [("dlib-as-is", "auc")]
    assert c.disagreements[0].tolerance == pytest.approx(2 * 0.0119)
    assert "| dlib-as-is | AUC | 0.6752 | 0.7052 | +0.0300 | 0.0238 | **NO** |" in report(c)
    assert compare(committed, write(tmp_path / "far2", rows, OTHER_CPU), k=3).ok


def test_a_missing_environment_cannot_match_so_the_seeds_rule_applies(tmp_path, committed):
    c = compare(committed, write(tmp_path / "noenv", table(), env=None))
    assert not c.exact and c.ok
    assert "the re-run environment.json is missing, so the fingerprints cannot be matched" in report(c)


def test_a_committed_number_the_rerun_lacks_never_agrees(tmp_path, committed):
    rows = table(RERUN)
    for r in rows:
        if r["attention"] == "cbam":
            r["pointing"] = ""
    c = compare(committed, write(tmp_path / "lost", rows, OTHER_CPU))
    assert [(d.setting, d.metric) for d in c.disagreements] == [("triplet-cbam", "pointing")]
    assert "| triplet-cbam | 0, 1, 2 | pointing score | 0.8000 ± 0.0000 | nan ± nan |" in report(c)


def test_each_run_s_wall_time_stands_beside_the_committed_one(tmp_path, committed):
    c = compare(committed, write(tmp_path / "slow", table(RERUN, seconds=150.0), OTHER_CPU))
    assert [t.ratio for t in c.timings if t.experiment.startswith("triplet")] == [2.5] * 6
    text = report(c)
    assert (
        "In all, 911 s against 371 s committed (2.46x over the 7 runs with both; per run from 1.00x to 2.50x)." in text
    )
    assert "| triplet-cbam-s0 | 60 s (42 s) | 150 s (105 s) | 2.50x |" in text


def test_the_command_writes_the_comparison_and_strict_fails_on_a_difference(tmp_path, committed, capsys):
    rerun = write(tmp_path / "rerun", table(), {**ENV, "cpu_threads": 1})
    rows = table()
    rows[0]["auc"] = 0.70
    bad = write(tmp_path / "bad", rows)
    assert main(["experiments", "compare", str(committed), str(rerun), "--strict"]) == 0
    assert "cpu_threads 2 → 1" in capsys.readouterr().out and (rerun / "comparison.md").is_file()
    assert main(["experiments", "compare", str(committed), str(bad)]) == 0
    assert "**Not reproduced**: 1 of 38" in capsys.readouterr().out
    assert main(["experiments", "compare", str(committed), str(bad), "--strict"]) == 1
    assert main(["experiments", "compare", str(committed), str(tmp_path / "nothing")]) == 1
    assert "results.csv does not exist: run `backbone experiments run`" in capsys.readouterr().err


def test_a_gpu_rerun_of_a_cpu_table_is_judged_over_seeds(tmp_path, committed):
    gpu = {**ENV, "cuda": "NVIDIA H200", "cpu_threads": 16}
    c = compare(committed, write(tmp_path / "gpu", table(RERUN), gpu))
    assert not c.exact and c.ok and list(c.fingerprint) == ["cpu_threads", "cuda"]
    assert "(cpu_threads 2 → 16, cuda None → 'NVIDIA H200')" in report(c)


def test_runs_of_an_unknown_fingerprint_are_judged_over_seeds(tmp_path, committed):
    env = {**ENV, "fingerprint_from": "unknown: 3 of 7 runs recorded none (a, b, c)"}
    c = compare(committed, write(tmp_path / "half", table(), env))
    assert not c.exact and c.ok
    assert (
        "the re-run runs' fingerprint is unknown: 3 of 7 runs recorded none (a, b, c), so the fingerprints" in report(c)
    )
