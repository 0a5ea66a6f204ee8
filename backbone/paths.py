"""Where the project is, what a relative path means, and what makes an input that is missing.

**One rule**: a relative path in a notebook parameter, a training config, a grid or a checkpoint
is relative to the *project root*, whatever the working directory. The experiment runner starts
its kernels in the project root and JupyterLab starts a notebook's kernel in ``notebooks/``; with
this rule both read and write the same files. Every library entry point that takes a path applies
it through ``project_path``; the command line reads its arguments as a shell does (from where it
runs) and makes them absolute first (``cli_path``).

The project root is ``$BACKBONE_PROJECT`` when set; else the nearest folder at or above the working
directory that holds ``pyproject.toml`` and ``notebooks/`` (the workbook a notebook was opened
in); else the checkout this package was imported from; else the working directory.

``how_to_make`` knows the command that makes each missing project input (the synthetic data, a
grid's runs and their checkpoints); ``backbone.data.errors.MissingInput`` puts it in one sentence.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

PACKAGE_CHECKOUT = Path(__file__).resolve().parents[1]


def is_workbook(folder: Path) -> bool:
    """A folder laid out as this workbook: ``pyproject.toml`` beside ``notebooks/``."""
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def project_root() -> Path:
    """The folder relative paths are read from (see the module's docstring for the order)."""
    if os.environ.get("BACKBONE_PROJECT"):
        return Path(os.environ["BACKBONE_PROJECT"]).expanduser().absolute()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if is_workbook(folder):
            return folder
    return PACKAGE_CHECKOUT if is_workbook(PACKAGE_CHECKOUT) else here


def project_path(path: str | Path) -> Path:
    """``path`` as an absolute path: as it is when absolute, else under the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def project_relative(path: str | Path) -> str:
    """``path`` as configs and messages write it: relative to the project root when inside it."""
    path = project_path(path)
    try:
        return path.relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def shareable_path(path: str | Path) -> str:
    """``path`` as an artefact others may read holds it (a sidecar, a metrics file, a service's
    answer): relative to the project root when inside it, else its file name alone. Never the
    absolute path of the machine that wrote it (a user name, a folder layout)."""
    relative = project_relative(path)
    return relative if not Path(relative).is_absolute() else Path(relative).name


def cli_path(arg: str) -> Path:
    """A path typed on the command line: relative to where the command runs, made absolute
    (an ``argparse`` ``type``)."""
    return Path(arg).expanduser().absolute()


def cli_folder(arg: str) -> Path:
    """A folder typed on the command line (``cli_path``); an existing file there is refused."""
    path = cli_path(arg)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{arg} is a file, not a folder")
    return path


def cli_file(arg: str) -> Path:
    """A file a command writes, typed on the command line (``cli_path``); a folder there is refused."""
    path = cli_path(arg)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{arg} is a folder: name a file to write")
    return path


def _grid_command(runs: Path, name: str, force: bool) -> str | None:
    """The command that (re)trains experiment ``name`` of the grid whose runs live in ``runs``."""
    from backbone.experiments.grid import read_grid  # paths is imported by everything; grids import it too

    grid = runs.parent / "grid.yaml"
    try:
        names = {e.get("name") for e in read_grid(grid).get("experiments") or [] if isinstance(e, dict)}
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None
    if name not in names:
        return None
    option = "" if runs.parent == project_root() / "experiments" else f" --grid {project_relative(grid)}"
    return f"`backbone experiments run{option} --only {name}{' --force' if force else ''}`"


def how_to_make(path: str | Path) -> str | None:
    """What makes a missing project input, as an imperative clause ("run `make data`"), when the
    project knows: the synthetic data and its pair lists, a grid's runs and their checkpoints."""
    path = project_path(path)
    rel = project_relative(path)
    if rel == "data/synthetic" or rel.startswith(("data/synthetic/", "files/synthetic_")):
        return "run `make data` (the first step of `make reproduce`)"
    if rel == "data/synthetic-train" or rel.startswith("data/synthetic-train/"):
        return "run `make twins-data` (the first step of `make twins`)"
    if rel.startswith("pretrained/"):
        return "put the weights file there (see pretrained/README.md)"
    train_first = "train it first (notebooks 02 and 03 train into their out_dir)"
    if path.suffix == ".ckpt" and path.parent.parent.name == "runs":
        command = _grid_command(path.parent.parent, path.parent.name, force=True)
        return f"checkpoints are not committed, so train the run again: {command}" if command else train_first
    if path.parent.name == "runs":
        command = _grid_command(path.parent, path.name, force=False)
        return f"train it: {command}" if command else train_first
    if rel == "experiments/runs":
        return "run the grid: `make grid` (or `backbone experiments run`)"
    if path.name == "runs" and (path.parent / "grid.yaml").is_file():
        return f"run the grid: `backbone experiments run --grid {project_relative(path.parent / 'grid.yaml')}`"
    return None
