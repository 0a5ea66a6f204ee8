"""Where the project is, and how relative paths in configs and notebooks are found.

Run configs name data roots and pair files relative to the project root (the experiment runner's
working directory), while a notebook opened in JupyterLab runs in ``notebooks/``. ``resolve``
lets both work.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve(path: str | Path) -> Path:
    """``path`` itself when absolute or present from here, else under the project root if it is
    there; otherwise unchanged, so that the error a caller raises names what was asked for."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    candidate = PROJECT_ROOT / path
    return candidate if candidate.exists() else path
