"""The grid runner never loses a finished run: bad settings are refused before any folder is touched,
a replacement that fails gives the finished run back, and a kill while replacing leaves both recoverable."""

from __future__ import annotations

import json

import nbformat
import pytest

from backbone.experiments.grid import Experiment, load_grid
from backbone.experiments.runner import ExperimentFailed, failed_attempt, previous, run_grid
from backbone.settings import ConfigError

from conftest import PROJECT

NOTEBOOK = "notebooks/writes.ipynb"


@pytest.fixture
def project(tmp_path):
    """A workbook with one quick notebook: it writes ``value`` into its run, or fails when asked."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('out_dir = "scratch/x"\nvalue = 1\nfail = False\n')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "out = pathlib.Path(out_dir)\n"
        "(out / 'result.json').write_text(json.dumps({'value': value}))\n"
        "assert not fail, 'asked to fail'\n"
    )]  # fmt: skip
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / NOTEBOOK)
    return tmp_path


def grid(root, parameters: dict, notebook: str = NOTEBOOK, folder=None):
    path = (folder or root) / "grid.yaml"
    path.write_text(json.dumps({"experiments": [{"name": "exp", "notebook": notebook, "parameters": parameters}]}))
    return load_grid(path, root)


def test_a_failed_replacement_gives_the_finished_run_back(project):
    runs = project / "runs"
    run_grid(grid(project, {"value": 1}), runs, project, progress=False)
    finished = {p.name: p.read_bytes() for p in (runs / "exp").iterdir() if p.is_file()}
    with pytest.raises(ExperimentFailed, match="asked to fail") as failure:
        run_grid(grid(project, {"value": 2, "fail": True}), runs, project, progress=False)
    assert f"the finished run it was to replace is back in {runs / 'exp'}" in str(failure.value)
    assert {p.name: p.read_bytes() for p in (runs / "exp").iterdir() if p.is_file()} == finished
    attempt = failed_attempt(runs / "exp")
    assert json.loads((attempt / "result.json").read_text()) == {"value": 2} and not (attempt / "done.json").exists()
    assert not previous(runs / "exp").exists()
    with pytest.raises(ExperimentFailed):  # with --force as well
        run_grid(grid(project, {"value": 1, "fail": True}), runs, project, progress=False, force=True)
    assert {p.name: p.read_bytes() for p in (runs / "exp").iterdir() if p.is_file()} == finished
    again = run_grid(grid(project, {"value": 1}), runs, project, progress=False)
    assert again.skipped == ["exp"]  # the finished run is complete for its own parameters


def test_a_replacement_that_finishes_drops_the_set_aside_run(project):
    runs = project / "runs"
    run_grid(grid(project, {"value": 1}), runs, project, progress=False)
    run_grid(grid(project, {"value": 2}), runs, project, progress=False)
    assert json.loads((runs / "exp" / "result.json").read_text()) == {"value": 2}
    assert [p.name for p in runs.iterdir()] == ["exp"]
    assert sorted(p.name for p in (runs / "exp").iterdir() if p.suffix == ".ipynb") == ["writes.ipynb"]  # no partial


def test_a_run_killed_while_replacing_resumes_or_gives_the_finished_run_back(project):
    runs = project / "runs"
    old = grid(project, {"value": 1})
    run_grid(old, runs, project, progress=False)
    new = Experiment("exp", NOTEBOOK, {"value": 2})
    (runs / "exp").rename(previous(runs / "exp"))  # as a kill in the new run's notebook leaves it:
    (runs / "exp").mkdir()  # the new run started, the finished one set aside
    (runs / "exp" / "started.json").write_text(json.dumps({"fingerprint": new.fingerprint(project)}))
    report = run_grid(old, runs, project, progress=False)  # the old parameters again: the finished run is back
    assert report.skipped == ["exp"] and not previous(runs / "exp").exists()
    assert json.loads((runs / "exp" / "result.json").read_text()) == {"value": 1}


def test_bad_training_settings_are_refused_before_a_finished_run_is_touched(tmp_path):
    runs = tmp_path / "runs"
    (runs / "exp").mkdir(parents=True)
    finished = {"done.json": '{"fingerprint": "an earlier one"}', "best.ckpt": "weights", "metrics.json": "{}"}
    for name, text in finished.items():
        (runs / "exp" / name).write_text(text)
    settings = {"regime": "contrastive", "overrides": ["optim.lr=fast"]}
    bad = grid(PROJECT, settings, "notebooks/02_pair_training.ipynb", folder=tmp_path)
    with pytest.raises(ConfigError, match=r"grid.yaml: exp: optim.lr must be a finite number, got 'fast'"):
        run_grid(bad, runs, PROJECT, progress=False)
    assert {p.name: p.read_text() for p in (runs / "exp").iterdir()} == finished


def test_set_aside_and_failed_runs_never_become_rows(tmp_path):
    from backbone.experiments.analysis import collect_runs

    for name in ("kept", ".kept.previous", ".kept.failed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text("{}")
        (tmp_path / name / "reference.json").write_text('{"label": "x"}')
    assert [run.name for run in collect_runs(tmp_path)] == ["kept"]
