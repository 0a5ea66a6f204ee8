"""Verification pairs: the ``Pair`` record, the TSV pair format, and format dispatch.

Two file formats are read and written:

* TSV with a header, ``path_a  path_b  same  [fold]  [twins]`` (paths relative to the data
  root; ``same`` is :data:`~backbone.labels.SAME` (1) for the same person, ``DIFFERENT`` (0)
  otherwise; ``twins`` is 1 for a different-person pair of twin siblings);
* the LFW pairs format (``pairsDevTrain.txt``, View 2 ``pairs.txt``), see :mod:`backbone.data.layouts.lfw`.

Readers never drop a line: malformed lines, pairs whose images are missing and image paths that
leave the data root (``../``, absolute) raise a :class:`~backbone.data.errors.DataError` that lists
every offending line (paths outside the root only pass with ``allow_outside_root=True``). Files are
UTF-8 (a byte-order mark is accepted); a file with no pairs gives a :class:`DataWarning` naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from backbone.atomic import atomic_write_text
from backbone.data.errors import DataError, DataWarning, Problem, existing
from backbone.data.images import check_images_exist
from backbone.data.text import text_lines
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


def leaves_root(path: str) -> bool:
    """Whether an image path of a list file points outside the data root: absolute (``/x``,
    ``C:\\x``, ``~``) or climbing out through ``..``."""
    if path.startswith(("/", "\\", "~")) or PureWindowsPath(path).drive:
        return True
    return ".." in PurePosixPath(path.replace("\\", "/")).parts


def check_inside_root(refs: Iterable[tuple[str, int | None]], source: str | Path, allow: bool = False) -> None:
    """Raise a DataError listing every ``(path, line)`` that leaves the data root (unless ``allow``)."""
    if allow:
        return
    problems = [
        Problem(str(source), f"image path {path!r} leaves the data root (pass allow_outside_root / --allow-outside-root to accept it)", line)
        for path, line in refs
        if leaves_root(path)
    ]  # fmt: skip
    if problems:
        raise DataError(f"{source}: {len(problems)} image paths outside the data root", problems)


def _parse_flag(value: str, column: str) -> int:
    if value not in ("0", "1"):
        raise ValueError(f"{column} must be 0 or 1, got {value!r}")
    return int(value)


def _parse_fold(value: str) -> int | None:
    """A fold: a whole number of 0 or more; ``-`` or empty for none (what ``write_pairs`` writes)."""
    if value in ("", "-"):
        return None
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"fold must be a whole number of 0 or more (or '-' for none), got {value!r}")
    return int(value)


def read_tsv_pairs(path: str | Path, allow_outside_root: bool = False) -> list[Pair]:
    """Parse a TSV pair file; every malformed line is reported with its number."""
    return read_tsv_table(path, allow_outside_root=allow_outside_root)[0]


def read_tsv_table(
    path: str | Path, extra: Sequence[str] = (), allow_outside_root: bool = False
) -> tuple[list[Pair], dict[str, list[str]]]:
    """Pairs plus the raw text of required ``extra`` columns (e.g. a score file's ``score``),
    one value per pair; every malformed line is reported with its number."""
    path = Path(path)
    lines = text_lines(path, "pair file")
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
                    fold=_parse_fold(fold),
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
    check_inside_root(((p, pair.line) for pair in pairs for p in (pair.path_a, pair.path_b)), path, allow_outside_root)
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
        if p.fold is not None and p.fold < 0:
            raise ValueError(f"fold {p.fold} of pair {p.path_a} / {p.path_b}: a fold is 0 or more (None: no fold)")
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


def read_pairs(
    path: str | Path, root: str | Path | None = None, ext: str = ".jpg", allow_outside_root: bool = False
) -> list[Pair]:
    """Read a pair file (TSV or LFW format by extension); with ``root``, check every image exists.

    ``ext`` is the image extension LFW-format lines refer to. Image paths must stay inside the
    data root unless ``allow_outside_root``. A file without pairs warns (``DataWarning``).
    """
    from backbone.data.layouts import lfw  # lfw builds on Pair; imported here to keep the modules acyclic

    path = existing(path, "pair file")
    if pair_format(path) == "tsv":
        pairs = read_tsv_pairs(path, allow_outside_root)
    else:
        pairs = lfw.read_lfw_pairs(path, ext=ext, allow_outside_root=allow_outside_root)
    if not pairs:
        warnings.warn(f"pair file {path} holds no pairs", DataWarning, stacklevel=2)
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


def repeated_pairs(pairs: Iterable[Pair]) -> tuple[list[tuple[Pair, int | None]], list[Pair]]:
    """The pairs listed again (in either order), each with the line of its first listing, and the
    pairs of an image with itself: what ``data validate`` warns of and ``evaluate`` names."""
    first: dict[frozenset, int | None] = {}
    repeated, itself = [], []
    for p in pairs:
        key = frozenset((p.path_a, p.path_b))
        if p.path_a == p.path_b:
            itself.append(p)
        elif key in first:
            repeated.append((p, first[key]))
        first.setdefault(key, p.line)
    return repeated, itself
