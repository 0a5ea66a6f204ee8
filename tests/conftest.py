"""Shared fixtures: a tiny synthetic twins set, an image factory, and the real LFW copy if present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backbone.data.synth import SynthConfig, generate

PROJECT = Path(__file__).resolve().parents[1]
LFW_ROOT = PROJECT.parent / "shared" / "data" / "lfw"

TINY = SynthConfig(twin_pairs=4, singletons=4, images_per_identity=4, size=64, seed=7)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 twins + 4 singletons x 4 images at 64 px. Read-only: copy it before changing it."""
    return generate(TINY, tmp_path_factory.mktemp("synth") / "tiny", workers=1, progress=False)


@pytest.fixture
def lfw_root() -> Path:
    if not (LFW_ROOT / "lfw-deepfunneled").is_dir():
        pytest.skip(f"real LFW copy not found at {LFW_ROOT}")
    return LFW_ROOT


def write_image(path: Path, size: int = 24, seed: int = 0, fmt: str | None = None) -> Path:
    """A small random RGB image file (format from the extension unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(path, format=fmt)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """An identity-folder data set: alice x3, bob x2, carol x1 (plus a stray text file)."""
    root = tmp_path / "people"
    for name, n in (("alice", 3), ("bob", 2), ("carol", 1)):
        for i in range(1, n + 1):
            write_image(root / name / f"{name}_{i:04d}.jpg", seed=i + len(name))
    (root / "alice" / "notes.txt").write_text("not an image")
    return root
