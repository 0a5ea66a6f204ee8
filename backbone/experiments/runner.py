"""Run the experiment grid with papermill: each experiment's notebook executes into
``<runs>/<name>/`` (the executed notebook plus everything it writes), then the analysis notebook.

An experiment is complete when ``done.json`` holds its fingerprint (its parameters and its
notebook's code: ``grid.notebook_code``, so rewording a notebook or changing a cell tagged
``report`` leaves runs complete); complete ones are skipped. One interrupted with the same fingerprint (``started.json``) runs again
and its training resumes from the last checkpoint; a folder left by a different fingerprint is
stale and starts from scratch. A failing notebook stops the run with the failing cell's error.
Code changes do not change fingerprints: after changing ``backbone/``, run with ``--force``.

A finished run is never lost to its replacement (new parameters, or ``--force``): the training
settings are checked before any folder is touched, and the finished run is then moved aside, in
one rename, to ``<runs>/.<name>.previous``. When the new run finishes, that copy goes; when it
fails, the failed attempt moves to ``<runs>/.<name>.failed`` and the finished run comes back. A
run killed outright leaves the copy beside it: the next run resumes the new run, or, when the grid
asks for the old parameters again, puts the finished run back.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from backbone.atomic import atomic_write_json
from backbone.experiments.grid import Experiment, Grid, applicable, check_parameters, check_shared, merge_parameters
from backbone.experiments.slim import slim_notebook
from backbone.provenance import environment


class ExperimentFailed(RuntimeError):
    """A notebook raised; the message holds the failing cell's error, the executed notebook is kept."""


@dataclass
class RunReport:
    ran: list[str]
    skipped: list[str]
    seconds: float


def in_project(path: Path, root: Path) -> str:
    """A path as a notebook parameter: relative to the project root ``root`` when inside it (so
    run configs hold no machine's absolute paths), else absolute."""
    path = Path(path).absolute()
    try:
        return path.relative_to(Path(root).absolute()).as_posix()
    except ValueError:
        return str(path)


def is_complete(exp: Experiment, out: Path, root: Path) -> bool:
    done = out / "done.json"
    return done.is_file() and json.loads(done.read_text()).get("fingerprint") == exp.fingerprint(root)


def execute(
    notebook: Path, output: Path, parameters: dict, root: Path, log_output: bool = False, cwd: Path | None = None
) -> None:
    """papermill, with the kernel in ``cwd`` (default: the project root ``root``; relative paths
    mean the same from anywhere in the project, see ``backbone.paths``); a failing cell becomes
    ExperimentFailed with the cell's error. The executed notebook is then slimmed (each figure
    once, in a palette: ``backbone.experiments.slim``), ready to commit. Papermill writes a hidden
    ``.NAME.partial.ipynb`` beside ``output`` while it runs, renamed into place when it ends (failed or
    not), so a killed run never leaves a torn notebook."""
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    # papermill rewrites its output after every cell: a kill must never leave a torn notebook where a reader looks
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        pm.execute_notebook(
            str(notebook), str(partial), parameters=parameters, cwd=str(cwd or root), kernel_name="python3",
            progress_bar=False, log_output=log_output,
        )  # fmt: skip
    except pm.PapermillExecutionError as exc:
        partial.replace(output)
        trace = "\n".join(exc.traceback[-6:]) if exc.traceback else ""
        raise ExperimentFailed(
            f"{notebook.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); the executed notebook is {output}\n{trace}"
        ) from None
    slim_notebook(partial, output)
    partial.replace(output)


def _fingerprint_in(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def previous(out: Path) -> Path:
    """Where a finished run waits while a new run of its experiment replaces it."""
    return out.parent / f".{out.name}.previous"


def failed_attempt(out: Path) -> Path:
    """Where the last failed attempt to replace a finished run is kept (its executed notebook)."""
    return out.parent / f".{out.name}.failed"


def recover(exp: Experiment, runs: Path, root: Path) -> None:
    """Settle what a run killed while replacing a finished one left: when the grid asks for the
    set-aside run's own fingerprint again, it comes back; when the folder holds a finished run,
    the set-aside one was superseded and goes."""
    out, aside = runs / exp.name, previous(runs / exp.name)
    if not aside.is_dir():
        return
    if _fingerprint_in(out / "done.json") is not None:
        shutil.rmtree(aside)
    elif _fingerprint_in(aside / "done.json") == exp.fingerprint(root):
        if out.exists():
            shutil.rmtree(out)  # an unfinished run of other parameters
        aside.rename(out)


def run_experiment(exp: Experiment, runs: Path, root: Path, log_output: bool = False, force: bool = False) -> float:
    """Run one experiment into ``runs/<name>``: resumed when an unfinished run of the same
    fingerprint is there, from scratch otherwise (``force``: always), a finished run set aside
    until the new one finishes and put back if it fails."""
    out = runs / exp.name
    fingerprint = exp.fingerprint(root)
    started = out / "started.json"
    if out.exists() and (force or _fingerprint_in(started) != fingerprint):
        if _fingerprint_in(out / "done.json") is not None:
            if previous(out).exists():
                shutil.rmtree(previous(out))  # superseded by the finished run in ``out``
            out.rename(previous(out))
        else:
            shutil.rmtree(out)  # unfinished, of other parameters or another notebook: nothing to resume
    atomic_write_json(started, {"fingerprint": fingerprint})
    parameters = {**exp.parameters, "out_dir": in_project(out, root)}
    start = time.perf_counter()
    try:
        execute(root / exp.notebook, out / Path(exp.notebook).name, parameters, root, log_output)
    except BaseException as exc:
        if not previous(out).is_dir():
            raise
        if failed_attempt(out).exists():
            shutil.rmtree(failed_attempt(out))
        out.rename(failed_attempt(out))
        previous(out).rename(out)
        if isinstance(exc, ExperimentFailed):
            raise ExperimentFailed(
                f"{exc}\nthe finished run it was to replace is back in {out}; the failed attempt is in "
                f"{failed_attempt(out)}"
            ) from None
        raise
    seconds = time.perf_counter() - start
    done = {"fingerprint": fingerprint, "parameters": parameters, "seconds": seconds, "environment": environment()}
    atomic_write_json(out / "done.json", done)
    if previous(out).exists():
        shutil.rmtree(previous(out))
    return seconds


def run_grid(
    grid: Grid,
    runs: Path,
    root: Path,
    only: list[str] | None = None,
    shard: str | None = None,
    force: bool = False,
    extra: dict | None = None,
    progress: bool = True,
    log_output: bool = False,
    jobs: int = 1,
) -> RunReport:
    """Run the selected experiments that are not complete (all of them with ``force``), ``jobs``
    at a time (each notebook in its own kernel: on a GPU that small models leave mostly idle,
    several trainings share it; on a small CPU, keep 1).

    ``extra`` parameters go to every notebook that defines them, on top of the grid's (e.g. tiny
    settings in tests; ``overrides`` are appended to the experiment's); one that no selected
    notebook defines is an error. They are part of the fingerprint, so a tiny run never passes for
    a full one. A failing experiment stops the run (those already running finish first).
    """
    from backbone.experiments.configs import check_training  # PyTorch: not at import (`backbone --help`)

    extra = extra or {}
    start = time.perf_counter()
    ran, skipped = [], []
    chosen = grid.select(only, shard)
    check_shared([root / exp.notebook for exp in chosen], extra, f"{grid.path}: --param")
    chosen = [Experiment(e.name, e.notebook, merge_parameters(e.parameters, applicable(root / e.notebook, extra)))
              for e in chosen]  # fmt: skip
    for exp in chosen:  # every experiment is checked before the first one runs, or any folder is touched
        check_parameters(root / exp.notebook, {**exp.parameters, "out_dir": ""}, f"{grid.path}: {exp.name}")
        check_training(root / exp.notebook, exp.parameters, f"{grid.path}: {exp.name}")
    todo = []
    for exp in chosen:
        recover(exp, runs, root)
        if not force and is_complete(exp, runs / exp.name, root):
            skipped.append(exp.name)
        else:
            todo.append(exp)
    bar = tqdm(total=len(todo), desc="experiments", unit="exp", disable=not progress)

    failed = threading.Event()  # set by a failing experiment: none starts after it

    def run(exp: Experiment) -> str | None:
        if failed.is_set():
            return None
        try:
            seconds = run_experiment(exp, runs, root, log_output, force)
        except BaseException:
            failed.set()
            raise
        tqdm.write(f"{exp.name}: done in {seconds:.0f} s -> {runs / exp.name}")
        bar.update()
        return exp.name

    with ThreadPoolExecutor(max(jobs, 1)) as pool:
        futures = [pool.submit(run, exp) for exp in todo]
        try:
            ran += [name for future in as_completed(futures) if (name := future.result())]
        except BaseException:
            failed.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    order = [e.name for e in todo]
    return RunReport(sorted(ran, key=order.index), skipped, time.perf_counter() - start)


def run_analysis(
    grid: Grid, runs: Path, out_dir: Path, root: Path, extra: dict | None = None, log_output: bool = False
) -> Path:
    """Execute the grid's analysis notebook over whatever runs exist in ``runs``."""
    if not grid.analysis_notebook:
        raise ValueError(f"{grid.path} names no analysis notebook")
    notebook = root / grid.analysis_notebook
    output = out_dir / Path(grid.analysis_notebook).name
    parameters = {
        **grid.analysis_parameters,
        **(extra or {}),
        "runs_dir": in_project(runs, root),
        "out_dir": in_project(out_dir, root),
    }
    execute(notebook, output, parameters, root, log_output)
    return output
