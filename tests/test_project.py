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
