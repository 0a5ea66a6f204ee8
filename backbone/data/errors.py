"""Errors of the data layer. Each names the file (and line) it is about."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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


class ImageReadError(DataError):
    """An image file that cannot be decoded (missing, empty, corrupt or truncated)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")
