"""Errors of the data layer. Each names the file (and line) it is about; a missing input also says what makes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backbone.paths import how_to_make, project_path, project_relative


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data file: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class DataError(ValueError):
    """Bad input data. ``problems`` lists every problem found, not just the first."""

    def __init__(self, summary: str, problems: list[Problem] | None = None, shown: int = 20):
        self.problems = list(problems or [])
        lines = [summary] + [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        super().__init__("\n".join(lines))


class DataWarning(UserWarning):
    """Input that is legal but probably not what was meant (e.g. a pair file with no pairs)."""


class ImageReadError(DataError):
    """An image file that cannot be decoded (missing, empty, corrupt or truncated)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")


class NoFaceError(DataError):
    """An image in which no face was found, under the ``report`` policy."""


class ImageTooLarge(ImageReadError):
    """An image of more pixels than ``backbone.data.images.max_image_pixels()`` (a decompression bomb)."""


class MissingInput(DataError, FileNotFoundError):
    """Something a notebook or command needs does not exist yet. The message is one sentence:
    what is missing and what makes it. Jupyter shows it as that sentence rather than a traceback
    through the library (IPython renders an exception with ``_render_traceback_`` that way)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def missing(what: str, path: str | Path, hint: str | None = None, state: str = "does not exist") -> MissingInput:
    """``<what> <path> does not exist: <what makes it>`` (``hint``, else ``backbone.paths.how_to_make``)."""
    hint = hint or how_to_make(path)
    return MissingInput(f"{what} {project_relative(path)} {state}" + (f": {hint}" if hint else ""))


def missing_all(named: list[tuple[str, str | Path]]) -> MissingInput:
    """One sentence for several missing inputs (``(what, path)``), grouped by what makes them:
    ``data root data/synthetic, pair file files/a.tsv do not exist: run `make data` ...``."""
    groups: dict[str | None, list[str]] = {}
    for what, path in named:
        groups.setdefault(how_to_make(path), []).append(f"{what} {project_relative(path)}")
    parts = [", ".join(names) + (" does not exist" if len(names) == 1 else " do not exist") + (f": {hint}" if hint else "")
             for hint, names in groups.items()]  # fmt: skip
    return MissingInput("; ".join(parts))


def existing(path: str | Path, what: str, kind: str = "file", hint: str | None = None) -> Path:
    """``path`` under the project's rule (``backbone.paths.project_path``), checked to be an
    existing file (or folder: ``kind="dir"``); otherwise ``MissingInput`` saying what makes it,
    or a ``DataError`` when something else stands there."""
    found = project_path(path)
    if not found.exists():
        raise missing(what, path, hint)
    if kind == "dir" and not found.is_dir():
        raise DataError(f"{what} {found} is not a directory")
    if kind == "file" and not found.is_file():
        raise DataError(f"{what} {found} is not a file")
    return found
