"""Shared fixtures: a tiny synthetic twins set, an image factory, a tiny workbook laid out as the
project, and the real LFW copy if present."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backbone.data.synth import SynthConfig, generate

PROJECT = Path(__file__).resolve().parents[1]
LFW_ROOT = PROJECT.parent / "shared" / "data" / "lfw"

CUDA = torch.cuda.is_available()
# dlib's .dat files (face-recognition-models, 100 MB): installed by `make setup`; a machine that runs the
# suite without them (the GPU check, with the wheels it is given) skips what needs them
needs_dlib_models = pytest.mark.skipif(
    importlib.util.find_spec("face_recognition_models") is None,
    reason="face-recognition-models (dlib's ResNet and shape predictor) is not installed",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu``-marked tests skip, saying why, where PyTorch sees no CUDA GPU (CI, this CPU machine)."""
    if CUDA:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU (PyTorch {torch.__version__} sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


def make_workbook(base: Path, synth: Path | None = None) -> Path:
    """A folder laid out as this workbook (``pyproject.toml`` beside ``notebooks/``), so that
    notebooks run in it as in a clone. With ``synth``, that data set is its ``data/synthetic``
    and ``files/`` holds the pair and triplet lists the default training config names."""
    from backbone.data import generate_pairs, generate_triplets, load_index, write_pairs, write_triplets

    (base / "notebooks").mkdir(parents=True)
    (base / "pyproject.toml").write_text('[project]\nname = "workbook-under-test"\n')
    if synth is not None:
        shutil.copytree(synth, base / "data" / "synthetic")
        index = load_index(base / "data" / "synthetic")
        for split, seed, twins in (("train", 0, 0.0), ("val", 1, 0.5), ("test", 2, 0.5)):
            write_pairs(
                generate_pairs(index, 40, seed=seed, twin_share=twins), base / "files" / f"synthetic_{split}_pairs.tsv"
            )
        write_triplets(generate_triplets(index, 40, seed=3), base / "files" / "synthetic_train_triplets.tsv")
    return base


# settings that make the default training config tiny (64 px, small heads, 8 pairs a batch)
TINY_TRAINING = ["data.align.size=64", "data.workers=0", "model.input_size=64", "model.embedding_dim=32",
                 "model.branch_dim=32", "batch_size=8", "loss.m_per_class=2"]  # fmt: skip
