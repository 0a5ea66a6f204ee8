"""Copy a results table into the README between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

    python -m backbone.experiments.readme README.md experiments/results.md            # block "results"
    python -m backbone.experiments.readme README.md experiments/lfw/results.md lfw-results

``make reproduce`` runs it after the grid (and ``make reproduce DATA=lfw`` after the LFW grid), so
the README always shows the tables the pipeline made.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backbone.atomic import atomic_write_text


def markers(name: str = "results") -> tuple[str, str]:
    """The comments that open and close the README block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


START, END = markers()


def results_block(results_md: str) -> str:
    """``results.md`` without its title line."""
    lines = results_md.strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()


def update_readme(readme: Path, results: Path, name: str = "results") -> bool:
    """Replace the block ``name``; returns whether the README changed."""
    start, end = markers(name)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{results_block(results.read_text())}\n{end}{tail}"
    if new != text:
        atomic_write_text(readme, new)
    return new != text


if __name__ == "__main__":
    readme, results = map(Path, sys.argv[1:3])
    name = sys.argv[3] if len(sys.argv) > 3 else "results"
    print(f"{readme} ({name}): {'updated' if update_readme(readme, results, name) else 'already up to date'}")
