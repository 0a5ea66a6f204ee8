"""Copy the results table into the README between ``<!-- results:start -->`` and ``<!-- results:end -->``.

    python -m backbone.experiments.readme README.md experiments/results.md

``make reproduce`` runs it after the grid, so the README always shows the table the pipeline made.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backbone.atomic import atomic_write_text

START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_block(results_md: str) -> str:
    """``results.md`` without its title line."""
    lines = results_md.strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()


def update_readme(readme: Path, results: Path) -> bool:
    """Replace the marked block; returns whether the README changed."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{results_block(results.read_text())}\n{END}{tail}"
    if new != text:
        atomic_write_text(readme, new)
    return new != text


if __name__ == "__main__":
    readme, results = map(Path, sys.argv[1:3])
    print(f"{readme}: {'updated' if update_readme(readme, results) else 'already up to date'}")
