"""Every notebook through papermill with tiny parameters: artefacts, table schema, skip/resume, failure."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from backbone.data import generate_pairs, load_index, split_identities, write_pairs
from backbone.data.synth import SynthConfig, generate
from backbone.experiments.analysis import COLUMNS, CSV_ONLY
from backbone.experiments.grid import load_grid
from backbone.experiments.runner import ExperimentFailed, execute, run_analysis, run_grid
from backbone.provenance import FINGERPRINT
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig

from conftest import PROJECT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("exp")
    root = generate(
        SynthConfig(twin_pairs=6, singletons=6, images_per_identity=4, size=64, seed=5),
        base / "synth",
        workers=1,
        progress=False,
    )
    parts = split_identities(load_index(root), {"train": 0.5, "test": 0.5}, seed=0)
    write_pairs(generate_pairs(parts["train"], 48, seed=0), base / "train.tsv")
    write_pairs(generate_pairs(parts["test"], 32, seed=0, twin_share=0.5), base / "test.tsv")
    overrides = [
        f"data.root={root}", f"data.train_pairs={base / 'train.tsv'}", f"data.val_pairs={base / 'test.tsv'}",
        f"data.test_pairs={base / 'test.tsv'}", f"data.cache={base / 'cache'}", "data.align.size=64", "data.workers=0",
        "model.input_size=64", "model.branch_dim=32", "batch_size=8", "loss.m_per_class=2",
    ]  # fmt: skip
    grid = base / "grid.yaml"
    grid.write_text(f"""
defaults: {{parameters: {{epochs: 1, budget_images: 32, overrides: {json.dumps(overrides)}}}}}
experiments:
  - {{name: contrastive-global, notebook: notebooks/02_pair_training.ipynb, parameters: {{regime: contrastive}}}}
  - {{name: contrastive-cbam, notebook: notebooks/02_pair_training.ipynb, parameters: {{regime: contrastive, attention: cbam}}}}
  - {{name: triplet-cbam, notebook: notebooks/03_triplet_training.ipynb, parameters: {{attention: cbam}}}}
  - {{name: pairbce-global, notebook: notebooks/02_pair_training.ipynb, parameters: {{regime: pair-bce}}}}
  - {{name: untrained, notebook: notebooks/02_pair_training.ipynb, parameters: {{regime: contrastive, epochs: 0}}}}
analysis: {{notebook: notebooks/05_experiment_analysis.ipynb}}
""")
    return base, root


def test_grid_runs_skips_resumes_and_analyses(tiny):
    base, _ = tiny
    grid = load_grid(base / "grid.yaml", PROJECT)
    runs = base / "runs"
    first = run_grid(grid, runs, PROJECT, progress=False)
    assert first.ran == ["contrastive-global", "contrastive-cbam", "triplet-cbam", "pairbce-global", "untrained"]
    for name in first.ran:
        out = runs / name
        for artefact in ("config.yaml", "history.json", "metrics.json", "best.ckpt", "done.json", "figures/roc.png",
                         "figures/history.png", "figures/f1_vs_threshold.png", "figures/score_histograms.png"):  # fmt: skip
            assert (out / artefact).is_file(), f"{name}/{artefact}"
        assert not list(out.glob("figures/*.svg"))  # PNG only unless asked (--svg)
        executed = json.loads(next(out.glob("*.ipynb")).read_text())
        assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")  # executed, with outputs
    (runs / "triplet-cbam" / "done.json").unlink()  # as if interrupted before it finished
    checkpoint = runs / "triplet-cbam" / "last.ckpt"
    stamp = checkpoint.stat().st_mtime_ns
    again = run_grid(grid, runs, PROJECT, progress=False)
    assert again.ran == ["triplet-cbam"] and len(again.skipped) == 4
    assert checkpoint.stat().st_mtime_ns == stamp  # resumed: training was already complete
    (runs / "pairbce-global" / "started.json").write_text('{"fingerprint": "other"}')
    (runs / "pairbce-global" / "done.json").unlink()  # left by other parameters: starts afresh
    (runs / "pairbce-global" / "stale.txt").write_text("from an older run")
    run_grid(grid, runs, PROJECT, only=["pairbce-global"], progress=False)
    assert not (runs / "pairbce-global" / "stale.txt").exists() and (runs / "pairbce-global" / "done.json").is_file()

    run_analysis(grid, runs, base, PROJECT)
    with open(base / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [k for k, _ in COLUMNS] + CSV_ONLY and len(table) == 5
    assert {r["experiment"] for r in table} == set(first.ran)
    for r in table:
        assert 0 <= float(r["auc"]) <= 1 and 0 <= float(r["twin_auc"]) <= 1
        assert 0 <= float(r["accuracy_at_val_threshold"]) <= 1 and r["val_threshold"]
        untrained = r["experiment"] == "untrained"
        assert (float(r["train_seconds"]) == 0) == untrained and (int(r["images_seen"]) == 0) == untrained
        assert (r["budget"] == "none") == untrained and (untrained or r["budget"].endswith(" images"))
        assert (r["training"] == "none (as is)") == untrained and (
            untrained or r["training"].startswith("1 ep., lr 0.001")
        )
    md = (base / "results.md").read_text()
    assert "| experiment | architecture | attention |" in md and md.count("\n| contrastive") == 2
    assert "accuracy @ val thr. (± SE)" in md and "FAR / FRR @ val thr." in md and "val thr. @ FAR=1e-3" in md
    assert (
        "accuracy @ val thr." in md
        and "chosen on the run's validation pairs" in md
        and "false accept rate of at most 1e-3" in md
    )
    assert "(untrained)" not in md  # an untrained run is compared with no trained one
    for fig in (
        "roc",
        "roc_twins",
        "f1_vs_threshold",
        "score_histograms",
        "attention_contrastive-cbam",
        "attention_triplet-cbam",
    ):
        assert (base / "figures" / f"{fig}.png").is_file() and not (base / "figures" / f"{fig}.svg").exists(), fig
    env = json.loads((base / "environment.json").read_text())
    assert env["torch"] and env["python"]
    # the fingerprint is the runs' own, each recorded by the runner when it ended, with its wall time
    assert env["fingerprint_from"] == "runs" and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for name in first.ran:
        recorded = json.loads((runs / name / "done.json").read_text())["environment"]
        assert set(FINGERPRINT) <= set(recorded) and recorded["cpu_threads"] == env["cpu_threads"]
    assert all(float(r["run_seconds"]) > 0 for r in table)
    executed = json.loads((base / "05_experiment_analysis.ipynb").read_text())
    images = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]  # fmt: skip
    assert len(images) == len(list((base / "figures").glob("*.png")))  # each figure once, not drawn inline too


def test_data_and_attention_notebooks(tiny):
    base, root = tiny
    execute(PROJECT / "notebooks/01_data_loading.ipynb", base / "data-overview" / "01.ipynb",
            {"data_root": str(root), "pairs_file": str(base / "test.tsv"), "out_dir": str(base / "data-overview"), "n_examples": 2}, PROJECT)  # fmt: skip
    for fig in ("twins", "one_person", "example_pairs"):
        assert (base / "data-overview" / "figures" / f"{fig}.png").is_file()
    assert json.loads((base / "data-overview" / "analysis.json").read_text())["identities"] == 18
    checkpoint = base / "runs" / "contrastive-cbam" / "best.ckpt"
    if not checkpoint.is_file():
        pytest.skip("needs the grid test's runs")
    execute(PROJECT / "notebooks/04_attention_visualisation.ipynb", base / "attention" / "04.ipynb",
            {"checkpoint": str(checkpoint), "n_pairs": 2, "out_dir": str(base / "attention")}, PROJECT)  # fmt: skip
    assert (base / "attention" / "figures" / "attention.png").is_file()


def test_the_twins_gpu_grid_runs_at_a_tiny_budget_two_at_a_time(tiny):
    """experiments/twins-gpu/grid.yaml as it is, but for tiny data and budget (the shared
    ``overrides`` are appended after the grid's batch of 256), two trainings at a time, then the analysis."""
    base, _ = tiny
    grid = load_grid(PROJECT / "experiments" / "twins-gpu" / "grid.yaml", PROJECT)
    tiny_data = load_grid(base / "grid.yaml", PROJECT).experiments[0].parameters["overrides"]
    tiny_settings = {"epochs": 1, "budget_images": 16, "overrides": tiny_data}
    runs = base / "gpu-runs"
    report = run_grid(grid, runs, PROJECT, only=["triplet-global-s0", "triplet-cbam-s1"], extra=tiny_settings,
                      progress=False, jobs=2)  # fmt: skip
    assert report.ran == ["triplet-global-s0", "triplet-cbam-s1"]
    for name in report.ran:
        config = TrainConfig.load(runs / name / "config.yaml")
        assert config.batch_size == 8 and config.optim.lr == 0.002 and config.loss.family_batches
        assert json.loads((runs / name / "metrics.json").read_text())["auc"] >= 0
    run_analysis(grid, runs, base / "gpu", PROJECT)
    assert (base / "gpu" / "results.md").is_file()


def test_a_failing_notebook_stops_with_its_error(tiny):
    base, _ = tiny
    grid = base / "bad.yaml"
    grid.write_text(
        "experiments:\n  - {name: broken, notebook: notebooks/03_triplet_training.ipynb, parameters: {mining: magic}}\n"
    )  # a setting only the notebook's own cell checks (the runner checks regime, overrides and the rest first)
    with pytest.raises(
        ExperimentFailed,
        match=r"03_triplet_training.ipynb failed in cell \d+ \(ConfigError: loss.mining must be one of",
    ):
        run_grid(load_grid(grid, PROJECT), base / "bad_runs", PROJECT, progress=False)
    assert (base / "bad_runs" / "broken" / "03_triplet_training.ipynb").is_file()
    assert not (base / "bad_runs" / "broken" / "done.json").exists()
    grid.write_text(
        "experiments:\n  - {name: broken, notebook: notebooks/02_pair_training.ipynb, parameters: {regime: magic}}\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml: broken: loss.regime must be one of"):  # before anything runs
        run_grid(load_grid(grid, PROJECT), base / "bad_runs", PROJECT, progress=False)


def test_attention_verdicts_say_both_ways():
    from backbone.experiments.analysis import attention_verdicts

    rows = [
        {"experiment": "c-g", "loss": "contrastive", "attention": "none (global only)", "twin_auc": 0.60},
        {"experiment": "c-a", "loss": "contrastive", "attention": "cbam", "twin_auc": 0.55},
        {"experiment": "t-g", "loss": "triplet (batch-hard)", "attention": "none (global only)", "twin_auc": 0.50},
        {"experiment": "t-a", "loss": "triplet (batch-hard)", "attention": "cbam", "twin_auc": 0.58},
    ]
    lines = attention_verdicts(rows)  # without standard errors, the sign decides
    assert "cbam local-global (c-a) does not beat global only (c-g)" in lines[0] and "(-0.0500)" in lines[0]
    assert "cbam local-global (t-a) beats global only (t-g)" in lines[1] and "(+0.0800)" in lines[1]
    for r in rows:
        r["twin_auc_se"] = 0.015  # difference s.e. 0.0212: 0.05 is 2.4 of them, 0.08 is 3.8
    assert "does not beat" in attention_verdicts(rows)[0] and " beats" in attention_verdicts(rows)[1]
    for r in rows:
        r["twin_auc_se"] = 0.03  # difference s.e. 0.0424: 0.05 is 1.2 of them, 0.08 is 1.9: both noise
    lines = attention_verdicts(rows)
    assert all("does not clearly beat" in line for line in lines) and "1.2 standard errors" in lines[0]


def test_attention_verdicts_without_twins_compare_the_auc_on_all_test_pairs():
    from backbone.experiments.analysis import attention_verdicts

    rows = [
        {"experiment": "c-g", "loss": "cosface", "attention": "none (global only)", "twin_auc": None, "auc": 0.80,
         "auc_se": 0.01},
        {"experiment": "c-a", "loss": "cosface", "attention": "cbam", "twin_auc": None, "auc": 0.86, "auc_se": 0.01},
    ]  # fmt: skip
    (line,) = attention_verdicts(rows)  # difference s.e. 0.0141: 0.06 is 4.2 of them
    assert "cbam local-global (c-a) beats global only (c-g) on all test pairs: AUC 0.8600 vs 0.8000" in line
    assert "(+0.0600, 4.2 standard errors)" in line


def test_pretrained_verdicts_compare_each_fine_tuning_with_the_model_as_is():
    from backbone.experiments.analysis import pretrained_verdicts

    def row(name, training, accuracy, auc, architecture="dlib_resnet", pretrained_on="dlib"):
        return {"experiment": name, "loss": "contrastive", "training": training, "accuracy": 0.5,
                "accuracy_at_val_threshold": accuracy, "auc": auc, "architecture": architecture,
                "pretrained_on": pretrained_on}  # fmt: skip

    rows = [
        row("as-is", "none (as is)", 0.9840, 0.9987),
        row("frozen", "3 ep., lr 0.0001, trunk frozen", 0.9850, 0.9990),
        row("better", "3 ep., lr 0.0001, trunk frozen", 0.9900, 0.9995),
        row("gentle", "3 ep., lr 1e-05, all layers", 0.9790, 0.9980),  # exactly 0.5 points below
        row("harsh", "3 ep., lr 0.001, all layers", 0.9700, 0.9950),
        row("scratch", "3 ep., lr 0.001, all layers", 0.6000, 0.6500, "small", "none"),
        row("flip-as-is", "none (as is)", 0.9880, 0.9991, "dlib_resnet (flip-averaged)"),
    ]
    lines = pretrained_verdicts(rows)
    assert len(lines) == 4 and not any("scratch" in line or "flip-as-is" in line for line in lines)
    assert (
        "frozen (contrastive, 3 ep., lr 0.0001, trunk frozen) keeps it (within 0.5 points): accuracy 0.9850 vs 0.9840"
        in lines[0]
    )
    assert "(as-is; +0.10 points), AUC 0.9990 vs 0.9987 (+0.0003)" in lines[0]
    assert "better" in lines[1] and "beats it by more than 0.5 points" in lines[1] and "+0.60 points" in lines[1]
    assert "gentle" in lines[2] and "keeps it (within 0.5 points)" in lines[2] and "-0.50 points" in lines[2]
    assert "harsh" in lines[3] and "**falls more than 0.5 points below it**" in lines[3] and "-1.40 points" in lines[3]
