"""Reader for the identity-folder layout ``<root>/<Person>/<image>`` (LFW uses it)."""

from __future__ import annotations

import os
from pathlib import Path

from backbone.data.errors import DataError
from backbone.data.images import is_image_file
from backbone.data.index import IdentityIndex, ImageRecord


def scan_identity_folders(root: str | Path) -> dict[str, list[str]]:
    """Identity folder name -> sorted image file names inside it (non-images ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data root {root} is not a directory")
    out: dict[str, list[str]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            with os.scandir(entry.path) as files:
                names = sorted(f.name for f in files if f.is_file() and is_image_file(Path(f.name)))
            if names:
                out[entry.name] = names
    return dict(sorted(out.items()))


def read_identity_folders(root: str | Path, groups: dict[str, str] | None = None) -> IdentityIndex:
    """Index every image under ``root/<identity>/``; ``groups`` maps identity -> group."""
    root = Path(root)
    folders = scan_identity_folders(root)
    if not folders:
        raise DataError(f"no identity folders with images under {root} (expected <root>/<Person>/<image>)")
    groups = groups or {}
    records = [
        ImageRecord(path=f"{identity}/{name}", identity=identity, group=groups.get(identity))
        for identity, names in folders.items()
        for name in names
    ]
    return IdentityIndex.from_records(root, records, name=root.name)
