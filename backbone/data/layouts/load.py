"""Open any supported data set by looking at its root folder."""

from __future__ import annotations

from pathlib import Path

from backbone.data.errors import existing
from backbone.data.index import IdentityIndex
from backbone.data.layouts.celeba import CELEBA_IDENTITY_FILE, read_celeba
from backbone.data.layouts.folders import read_identity_folders
from backbone.data.layouts.lfw import LFW_IMAGE_DIRS, read_lfw_index
from backbone.data.layouts.ndtwin import TWIN_PAIRS_FILE, read_twin_folders

KINDS = ("auto", "folders", "lfw", "twins", "celeba")


def detect_kind(root: str | Path) -> str:
    """``twins`` (has pairs.json), ``celeba`` (identity_CelebA.txt), ``lfw`` (lfw-* folder) or ``folders``."""
    root = Path(root)
    if (root / TWIN_PAIRS_FILE).is_file():
        return "twins"
    if (root / CELEBA_IDENTITY_FILE).is_file():
        return "celeba"
    if any((root / d).is_dir() for d in LFW_IMAGE_DIRS):
        return "lfw"
    return "folders"


def load_index(root: str | Path, kind: str = "auto") -> IdentityIndex:
    """Build the identity index of the data set at ``root`` (relative: under the project root);
    ``kind`` overrides detection."""
    if kind not in KINDS:
        raise ValueError(f"unknown data set kind {kind!r}; choose from {KINDS}")
    root = existing(root, "data root", kind="dir")
    kind = detect_kind(root) if kind == "auto" else kind
    reader = {
        "folders": read_identity_folders,
        "lfw": read_lfw_index,
        "twins": read_twin_folders,
        "celeba": read_celeba,
    }
    return reader[kind](root)
