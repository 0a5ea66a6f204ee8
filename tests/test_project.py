"""The project's own shape: layout, and the dependency lists that must agree."""

import re
import tomllib

import yaml

from conftest import PROJECT


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_top_level_layout():
    for name in ("notebooks", "backbone", "files", "pretrained", "experiments", "tests", ".ci/run"):
        assert (PROJECT / name).exists(), name
    for name in ("environment.yml", "README.md", "pyproject.toml", "Makefile"):
        assert (PROJECT / name).is_file(), name
    assert "make test" in (PROJECT / ".ci" / "run").read_text()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = {normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {normalise(r) for r in pip if not r.startswith("-e")}
    assert listed == declared


def test_makefile_pins_the_same_torch_as_pyproject():
    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    makefile = (PROJECT / "Makefile").read_text()
    for pin in (d for d in deps if d.startswith(("torch==", "torchvision=="))):
        assert pin in makefile
    assert "--no-deps facenet-pytorch==2.6.0" in makefile


def test_the_notebooks_demo_runs_go_to_a_git_ignored_folder_no_grid_collects():
    """Run by hand, a notebook writes into ``scratch/`` (git-ignored); the grids collect only their own
    ``runs/`` folders under experiments/, so a demo run never becomes a table's row."""
    import json
    import shutil
    import subprocess

    import pytest

    defaults = {}
    for notebook in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        source = "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])
        match = re.search(r'(?m)^out_dir = "([^"]+)"', source)
        if match:
            defaults[notebook.stem] = match.group(1)
    assert {"01_data_loading", "02_pair_training", "03_triplet_training", "07_reference_scores"} <= set(defaults)
    demos = {name: out for name, out in defaults.items() if name != "05_experiment_analysis"}
    assert all(out.startswith("scratch/") for out in demos.values()), demos
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        pytest.skip("not a git checkout")
    for out in demos.values():
        probe = f"{out}/metrics.json"
        assert subprocess.run(["git", "check-ignore", "-q", probe], cwd=PROJECT).returncode == 0, (
            f"{probe} is not ignored"
        )
