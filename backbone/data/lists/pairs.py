"""Verification pairs: the ``Pair`` record, the TSV pair format, and format dispatch.

Two file formats are read and written:

* TSV with a header, ``path_a  path_b  same  [fold]  [twins]`` (paths relative to the data
  root; ``same`` is :data:`~backbone.labels.SAME` (1) for the same person, ``DIFFERENT`` (0)
  otherwise; ``twins`` is 1 for a different-person pair of twin siblings);
* the LFW pairs format (``pairsDevTrain.txt``, View 2 ``pairs.txt``), see :mod:`backbone.data.layouts.lfw`.

Readers never drop a line: malformed lines and pairs whose images are missing raise a
:class:`~backbone.data.errors.DataError` that lists every offending line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backbone.atomic import atomic_write_text
from backbone.data.errors import DataError, Problem, existing
from backbone.data.images import check_images_exist
from backbone.labels import DIFFERENT, SAME
from backbone.paths import project_path

TSV_COLUMNS = ("path_a", "path_b", "same", "fold", "twins")
_REQUIRED = TSV_COLUMNS[:3]


@dataclass(frozen=True)
class Pair:
    """Two images and whether they show the same person (``same == SAME``)."""

    path_a: str
    path_b: str
    same: int
    fold: int | None = None
    twins: bool = False
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.same not in (SAME, DIFFERENT):
            raise ValueError(f"pair label must be SAME={SAME} or DIFFERENT={DIFFERENT}, got {self.same!r}")
        if self.twins and self.same == SAME:
            raise ValueError("a twins pair shows two different people (same must be DIFFERENT)")


def pair_format(path: str | Path) -> str:
    """``"tsv"`` for ``*.tsv`` files, ``"lfw"`` for anything else (``*.txt``)."""
    return "tsv" if Path(path).suffix.lower() == ".tsv" else "lfw"


def _parse_flag(value: str, column: str) -> int:
    if value not in ("0", "1"):
        raise ValueError(f"{column} must be 0 or 1, got {value!r}")
    return int(value)


def read_tsv_pairs(path: str | Path) -> list[Pair]:
    """Parse a TSV pair file; every malformed line is reported with its number."""
    return read_tsv_table(path)[0]


def read_tsv_table(path: str | Path, extra: Sequence[str] = ()) -> tuple[list[Pair], dict[str, list[str]]]:
    """Pairs plus the raw text of required ``extra`` columns (e.g. a score file's ``score``),
    one value per pair; every malformed line is reported with its number."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DataError(f"{path}: empty pair file (expected a header {chr(9).join(_REQUIRED + tuple(extra))})")
    header = lines[0].split("\t")
    missing = [c for c in (*_REQUIRED, *extra) if c not in header]
    unknown = [c for c in header if c not in TSV_COLUMNS and c not in extra]
    if missing or unknown:
        raise DataError(
            f"{path}:1: bad header {header}: missing {missing}, unknown {unknown}; columns are {[*TSV_COLUMNS, *extra]}"
        )
    col = {name: i for i, name in enumerate(header)}
    pairs: list[Pair] = []
    values: dict[str, list[str]] = {name: [] for name in extra}
    problems: list[Problem] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            problems.append(
                Problem(str(path), f"expected {len(header)} tab-separated fields, got {len(fields)}: {line!r}", lineno)
            )
            continue
        try:
            fold = fields[col["fold"]] if "fold" in col else ""
            pairs.append(
                Pair(
                    path_a=fields[col["path_a"]],
                    path_b=fields[col["path_b"]],
                    same=_parse_flag(fields[col["same"]], "same"),
                    fold=int(fold) if fold not in ("", "-") else None,
                    twins=bool(_parse_flag(fields[col["twins"]], "twins")) if "twins" in col else False,
                    line=lineno,
                )
            )
        except ValueError as exc:
            problems.append(Problem(str(path), f"{exc}: {line!r}", lineno))
            continue
        for name in extra:
            values[name].append(fields[col[name]])
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed pair lines", problems)
    return pairs, values


def format_tsv_pairs(pairs: Iterable[Pair], extra: dict[str, Sequence[str]] | None = None) -> str:
    """TSV text of ``pairs``; ``extra`` adds columns after the pair columns (one value per pair)."""
    pairs = list(pairs)
    extra = extra or {}
    with_fold = any(p.fold is not None for p in pairs)
    columns = ["path_a", "path_b", "same"] + (["fold"] if with_fold else []) + ["twins", *extra]
    rows = ["\t".join(columns)]
    for i, p in enumerate(pairs):
        for name in ("path_a", "path_b"):
            value = getattr(p, name)
            if "\t" in value or "\n" in value:
                raise ValueError(f"path {value!r} cannot be written to a TSV pair file")
        row = [p.path_a, p.path_b, str(p.same)]
        if with_fold:
            row.append("-" if p.fold is None else str(p.fold))
        row.append(str(int(p.twins)))
        row += [str(values[i]) for values in extra.values()]
        rows.append("\t".join(row))
    return "\n".join(rows) + "\n"


def check_pair_images(pairs: Iterable[Pair], root: str | Path, source: str | Path) -> None:
    """Raise a DataError listing every pair line whose image is missing under ``root``."""
    check_images_exist(((path, p.line) for p in pairs for path in (p.path_a, p.path_b)), root, source)


def read_pairs(path: str | Path, root: str | Path | None = None, ext: str = ".jpg") -> list[Pair]:
    """Read a pair file (TSV or LFW format by extension); with ``root``, check every image exists.

    ``ext`` is the image extension LFW-format lines refer to.
    """
    from backbone.data.layouts import lfw  # lfw builds on Pair; imported here to keep the modules acyclic

    path = existing(path, "pair file")
    pairs = read_tsv_pairs(path) if pair_format(path) == "tsv" else lfw.read_lfw_pairs(path, ext=ext)
    if root is not None:
        check_pair_images(pairs, project_path(root), path)
    return pairs


def write_pairs(pairs: Iterable[Pair], path: str | Path, fmt: str | None = None) -> None:
    """Write pairs atomically in the format of ``fmt`` or the file extension."""
    from backbone.data.layouts import lfw

    fmt = fmt or pair_format(path)
    if fmt not in ("tsv", "lfw"):
        raise ValueError(f"unknown pair format {fmt!r} (tsv or lfw)")
    text = format_tsv_pairs(pairs) if fmt == "tsv" else lfw.format_lfw_pairs(pairs)
    atomic_write_text(path, text)
