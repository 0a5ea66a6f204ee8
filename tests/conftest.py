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


@pytest.fixture(scope="session")
def tiny_run(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run folder: a small local-global (CBAM) model trained for a few steps on
    ``tiny_synth``, with test_scores.tsv, metrics.json, config.yaml and best.ckpt. Read-only."""
    from backbone.data import generate_pairs, load_index, write_pairs
    from backbone.training.config import TrainConfig
    from backbone.training.trainer import train

    base = tmp_path_factory.mktemp("run")
    index = load_index(tiny_synth)
    write_pairs(generate_pairs(index, 60, seed=0, twin_share=0.0), base / "train.tsv")
    write_pairs(generate_pairs(index, 40, seed=1, twin_share=0.5), base / "test.tsv")
    cfg = TrainConfig.from_dict({
        "name": "tiny", "out_dir": str(base / "tiny"), "epochs": 1, "batch_size": 16, "steps_per_epoch": 2, "seed": 0,
        "data": {"root": str(tiny_synth), "train_pairs": str(base / "train.tsv"), "val_pairs": str(base / "test.tsv"),
                 "test_pairs": str(base / "test.tsv"), "align": {"size": 64, "detector": "none"}, "cache": str(base / "cache"), "workers": 0},
        "model": {"input_size": 64, "embedding_dim": 32, "attention": "cbam", "branch_dim": 32},
    })  # fmt: skip
    train(cfg, progress=False)
    return base / "tiny"
