"""Triplet files: ``anchor  positive  negative  twins`` (TSV with a header, paths relative to the root)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from backbone.atomic import atomic_write_text
from backbone.data.errors import DataError, DataWarning, Problem, existing
from backbone.data.images import check_images_exist
from backbone.data.lists.pairs import check_inside_root
from backbone.data.text import text_lines

TRIPLET_COLUMNS = ("anchor", "positive", "negative", "twins")


@dataclass(frozen=True)
class Triplet:
    """Anchor and positive show one person; the negative another (a twin sibling if ``twins``)."""

    anchor: str
    positive: str
    negative: str
    twins: bool = False
    line: int | None = field(default=None, compare=False)


def write_triplets(triplets: Iterable[Triplet], path: str | Path) -> None:
    rows = ["\t".join(TRIPLET_COLUMNS)]
    rows += [f"{t.anchor}\t{t.positive}\t{t.negative}\t{int(t.twins)}" for t in triplets]
    atomic_write_text(path, "\n".join(rows) + "\n")


def read_triplets(path: str | Path, root: str | Path | None = None, allow_outside_root: bool = False) -> list[Triplet]:
    """Parse a triplet file, reporting every malformed line; with ``root``, check images exist.
    Image paths must stay inside the data root unless ``allow_outside_root``."""
    path = existing(path, "triplet file")
    lines = text_lines(path, "triplet file")
    if not lines or tuple(lines[0].split("\t")) != TRIPLET_COLUMNS:
        raise DataError(f"{path}:1: expected the header {chr(9).join(TRIPLET_COLUMNS)!r}")
    triplets: list[Triplet] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or fields[3] not in ("0", "1"):
            problems.append(Problem(str(path), f"expected 'anchor positive negative twins(0/1)', got {line!r}", lineno))
            continue
        triplets.append(Triplet(*fields[:3], twins=fields[3] == "1", line=lineno))
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed triplet lines", problems)
    refs = [(p, t.line) for t in triplets for p in (t.anchor, t.positive, t.negative)]
    check_inside_root(refs, path, allow_outside_root)
    if not triplets:
        warnings.warn(f"triplet file {path} holds no triplets", DataWarning, stacklevel=2)
    if root is not None:
        check_images_exist(refs, root, path)
    return triplets
