"""Copy a results table into the README between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

    python -m backbone.experiments.readme README.md experiments/results.md            # block "results"
    python -m backbone.experiments.readme README.md experiments/lfw/results.md lfw-results

An experiment table (one row per experiment) goes in by its main columns (:data:`COMPACT_COLUMNS`,
at most :data:`MAX_COLUMNS` of those that hold a number), with a link to the full ``results.md``;
any other table (the service's load test) goes in whole. ``make grid`` and the other grid targets
run it after their grids, so the README always shows the tables the pipeline made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from backbone.atomic import atomic_write_text

#: The columns an experiment table keeps in the README, in order of preference.
COMPACT_COLUMNS = (
    "experiment",
    "attention",
    "loss",
    "accuracy @ val thr. (± SE)",
    "AUC (± SE)",
    "twin-negative AUC (± SE)",
    "other-negative AUC (± SE)",
    "10-fold accuracy",
    "EER (± SE)",
    "training budget",
)
MAX_COLUMNS = 8


def markers(name: str = "results") -> tuple[str, str]:
    """The comments that open and close the README block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


START, END = markers()


def results_block(results_md: str) -> str:
    """``results.md`` without its title line."""
    lines = results_md.strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def experiment_table(results_md: str) -> tuple[list[str], list[list[str]]] | None:
    """The header and rows of the first table whose first column is ``experiment``, or None."""
    lines = results_md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and _cells(line)[0] == "experiment":
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return _cells(line), rows
    return None


def compact_block(results_md: str, link: str) -> str:
    """The experiment table of ``results_md`` by its main columns, then a link to all of it.

    Columns come from :data:`COMPACT_COLUMNS` in that order, leaving out any that no row fills
    (all ``n/a``), at most :data:`MAX_COLUMNS`. Rows keep their order and their values as written.
    """
    table = experiment_table(results_md)
    if table is None:
        raise ValueError("no experiment table (a header row starting with '| experiment |')")
    header, rows = table
    filled = [c for c in COMPACT_COLUMNS if c in header and any(r[header.index(c)] != "n/a" for r in rows)]
    keep = [header.index(c) for c in filled[:MAX_COLUMNS]]
    out = ["| " + " | ".join(header[k] for k in keep) + " |", "|" + "---|" * len(keep)]
    out += ["| " + " | ".join(r[k] for k in keep) + " |" for r in rows]
    left = len(header) - len(keep)
    out += ["", f"Test pairs, each run at the threshold it chose on its validation pairs (± standard error). "
            f"The other {left} columns, how each is measured, the versions and hardware, and the comparisons "
            f"under the table: [{link}]({link})."]  # fmt: skip
    return "\n".join(out)


def readme_block(results: Path, readme: Path) -> str:
    """What the README shows of ``results``: an experiment table by its main columns, else all of it."""
    text = results.read_text()
    if experiment_table(text) is None:
        return results_block(text)
    link = Path(os.path.relpath(results.resolve(), readme.resolve().parent)).as_posix()
    return compact_block(text, link)


def update_readme(readme: Path, results: Path, name: str = "results") -> bool:
    """Replace the block ``name``; returns whether the README changed."""
    start, end = markers(name)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{readme_block(results, readme)}\n{end}{tail}"
    if new != text:
        atomic_write_text(readme, new)
    return new != text


if __name__ == "__main__":
    readme, results = map(Path, sys.argv[1:3])
    name = sys.argv[3] if len(sys.argv) > 3 else "results"
    print(f"{readme} ({name}): {'updated' if update_readme(readme, results, name) else 'already up to date'}")
