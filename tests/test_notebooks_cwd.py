"""Every notebook runs where a researcher opens it: with the kernel in ``notebooks/`` (as
JupyterLab starts it) and in the project root (as the experiment runner does), reading and
writing the same files; on a fresh clone, each stops at its first cell with what to run first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backbone.experiments.runner import ExperimentFailed, execute

from conftest import PROJECT, TINY_TRAINING, make_workbook

pytestmark = pytest.mark.slow

# every notebook in order, with tiny settings; every path is relative, as a researcher types it
NOTEBOOKS = [
    ("01_data_loading", {"n_examples": 2}),
    ("02_pair_training", {"attention": "cbam", "epochs": 1, "budget_images": 32, "overrides": TINY_TRAINING}),
    ("03_triplet_training", {"epochs": 1, "budget_images": 32, "m_per_class": 2, "overrides": TINY_TRAINING}),
    ("04_attention_visualisation", {"checkpoint": "scratch/contrastive-demo/best.ckpt", "n_pairs": 2}),
    ("05_experiment_analysis", {"runs_dir": "scratch", "out_dir": "scratch/analysis"}),
    ("06_pair_explorer", {"run": "scratch/contrastive-demo"}),
    ("07_reference_scores", {}),
]


def run_all(workbook: Path, cwd: Path, executed: Path) -> None:
    for name, parameters in NOTEBOOKS:
        execute(PROJECT / "notebooks" / f"{name}.ipynb", executed / f"{name}.ipynb", parameters, workbook, cwd=cwd)


def written(workbook: Path) -> set[str]:
    """What the notebooks wrote into the workbook (TensorBoard's event files are named by time and host)."""
    return {p.relative_to(workbook).as_posix() for p in workbook.rglob("*")
            if p.is_file() and "tensorboard" not in p.parts and p.parts[len(workbook.parts)] in ("experiments", "notebooks", "scratch")}  # fmt: skip


def test_from_notebooks_and_from_the_root_the_notebooks_write_the_same_files(tiny_synth, tmp_path, monkeypatch):
    monkeypatch.delenv("BACKBONE_PROJECT", raising=False)
    monkeypatch.delenv("BACKBONE_CACHE", raising=False)
    workbook = make_workbook(tmp_path / "wb", tiny_synth)

    run_all(workbook, workbook / "notebooks", tmp_path / "executed-in-notebooks")
    from_notebooks = written(workbook)
    assert not list((workbook / "notebooks").iterdir()), "nothing may land in notebooks/ (e.g. notebooks/experiments/)"
    for artefact in ("scratch/data-overview/figures/twins.png", "scratch/data-overview/analysis.json",
                     "scratch/contrastive-demo/best.ckpt", "scratch/contrastive-demo/figures/roc.png",
                     "scratch/triplet-demo/metrics.json", "scratch/attention-maps/figures/attention.png", "scratch/mark-oracle/metrics.json",
                     "scratch/analysis/results.md", "scratch/analysis/figures/roc.png", "scratch/analysis/figures/attention_contrastive-demo.png"):  # fmt: skip
        assert artefact in from_notebooks, artefact
    # the demo runs went to scratch/ (git-ignored): nothing lands in experiments/, so no grid's table can collect them
    assert not [p for p in from_notebooks if p.startswith("experiments/")], sorted(from_notebooks)
    assert (workbook / ".cache" / "faces").is_dir()  # the project's face cache, not notebooks/.cache
    config = (workbook / "scratch" / "contrastive-demo" / "config.yaml").read_text()
    assert "out_dir: scratch/contrastive-demo\n" in config and str(workbook) not in config  # stored as typed: relative

    shutil.rmtree(workbook / "scratch")
    run_all(workbook, workbook, tmp_path / "executed-in-root")
    assert written(workbook) == from_notebooks


# what a fresh clone without `make reproduce` says at the first cell, and the command it names
FRESH_CLONE = [
    ("01_data_loading", {}, "data root data/synthetic does not exist: run `make data`"),
    ("02_pair_training", {}, "data root data/synthetic, pair file files/synthetic_train_pairs.tsv"),
    ("04_attention_visualisation", {}, "checkpoint experiments/runs/triplet-cbam-s0/best.ckpt does not exist: checkpoints are "
                                       "not committed, so train the run again: `backbone experiments run --only triplet-cbam-s0 --force`"),
    ("05_experiment_analysis", {}, "the runs folder experiments/runs holds no finished run (with metrics.json): run the grid: `make grid`"),
    ("06_pair_explorer", {}, "data root data/synthetic does not exist: run `make data`"),
    ("07_reference_scores", {}, "data root data/synthetic does not exist: run `make data`"),
]  # fmt: skip


@pytest.mark.parametrize("name, parameters, message", FRESH_CLONE, ids=[n for n, _, _ in FRESH_CLONE])
def test_on_a_fresh_clone_each_notebook_says_what_to_run_first(name, parameters, message, tmp_path, monkeypatch):
    monkeypatch.delenv("BACKBONE_PROJECT", raising=False)
    workbook = make_workbook(tmp_path / "clone")
    (workbook / "experiments").mkdir()
    shutil.copy(PROJECT / "experiments" / "grid.yaml", workbook / "experiments" / "grid.yaml")
    if name != "05_experiment_analysis":  # a run as committed: finished, but its weights are not in git
        run = PROJECT / "experiments" / "runs" / "triplet-cbam-s0"
        shutil.copytree(
            run, workbook / "experiments" / "runs" / run.name, ignore=shutil.ignore_patterns("*.ckpt", "tensorboard")
        )
    output = tmp_path / f"{name}.ipynb"
    with pytest.raises(ExperimentFailed, match="MissingInput"):
        execute(PROJECT / "notebooks" / f"{name}.ipynb", output, parameters, workbook, cwd=workbook / "notebooks")
    cells = [c for c in json.loads(output.read_text())["cells"] if c["cell_type"] == "code"]
    first = next(i for i, c in enumerate(cells) if "parameters" not in c["metadata"].get("tags", []))
    errors = [(i, o) for i, c in enumerate(cells) for o in c["outputs"] if o["output_type"] == "error"]
    assert [i for i, _ in errors] == [first], "the first cell after the parameters stops the notebook"
    error = errors[0][1]
    assert error["ename"] == "MissingInput" and message in error["evalue"], error["evalue"]
    assert len(error["traceback"]) == 1, "one sentence, not a traceback through the library"
