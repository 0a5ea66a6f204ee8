"""The inference runtime (backbone.deploy.runtime): scores as training computes them, alignment as
training did it, the threshold and where it came from, and no PyTorch where none is needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backbone.data.errors import NoFaceError
from backbone.data.faces.quality import face_quality
from backbone.data.images import load_rgb
from backbone.deploy.export import checkpoint_embedder, export_model
from backbone.deploy.runtime import SCORES, FaceModel, load_engine
from backbone.devices import exact_fp32
from backbone.models.build import ModelConfig, build_model, save_model
from backbone.models.siamese import DISTANCES

from conftest import PROJECT


def make_checkpoint(path: Path, align: dict, distance: str = "cosine", **extra) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(input_size=64, embedding_dim=16, distance=distance)
    save_model(build_model(config, load_pretrained=False).eval(), config, path,
               extra={"train_config": {"data": {"align": align}}, **extra})  # fmt: skip
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runtime")
    return {
        # centre crops of half the shorter side, at 32 px (the graph resizes them to 64)
        "none": make_checkpoint(base / "none.ckpt", {"size": 32, "detector": "none", "crop": 0.5}, val_threshold=0.7),
        "mtcnn": make_checkpoint(base / "mtcnn.ckpt", {"size": 64, "detector": "mtcnn"}, val_threshold=0.7),
        "l1": make_checkpoint(base / "l1.ckpt", {"size": 64, "detector": "none"}, distance="l1"),
    }


def test_every_registered_distance_has_a_numpy_score_that_agrees_with_training():
    assert set(SCORES) == set(DISTANCES.names())
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 8, 16)).astype(np.float32)  # not unit length: cosine must normalise
    for name in DISTANCES.names():
        want = DISTANCES.create(name).score(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        np.testing.assert_allclose(SCORES[name](a, b), want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "name, expected", [("cosine", 1 / np.sqrt(2)), ("euclidean", -5.0), ("sqeuclidean", -25.0), ("l1", -7.0)]
)
def test_scores_by_hand(name, expected):
    a, b = np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])
    if name != "cosine":
        a, b = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert SCORES[name](a, b) == pytest.approx([expected])


def test_detector_none_takes_the_centre_crop_and_reports_its_box(checkpoints):
    model = FaceModel(load_engine(checkpoints["none"]))
    pixels = np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)  # 100 wide, 80 high: half of 80 is a 40 px square at (30, 20)
    face = model.face(img, "photo.jpg")
    assert face.box == [30.0, 20.0, 70.0, 60.0] and face.detector == "none" and face.prob is None
    want = np.array(img.crop((30, 20, 70, 60)).resize((32, 32), Image.BILINEAR))
    assert face.crop.dtype == np.uint8 and np.array_equal(face.crop, want)
    quality = face_quality(face.crop, None).as_dict()  # no detector box: no face width
    assert face.info() == {"box": [30.0, 20.0, 70.0, 60.0], "detector": "none", "prob": None, "quality": quality}
    assert quality["face_px"] is None


def test_embed_takes_crops_as_images_and_gives_the_checkpoints_embeddings(checkpoints, tiny_synth):
    model = FaceModel(load_engine(checkpoints["none"]))
    faces = [model.face(load_rgb(p), p.name) for p in sorted(tiny_synth.glob("*/*.png"))[:3]]
    embedder, _ = checkpoint_embedder(checkpoints["none"])
    device = model.engine.device  # eager PyTorch on the engine's device: like with like
    with torch.inference_mode(), exact_fp32():  # (N, A, A, 3) crops are (N, 3, A, A) to the network
        crops = torch.from_numpy(np.stack([f.crop for f in faces])).permute(0, 3, 1, 2)
        want = embedder.to(device)(crops.to(device)).cpu().numpy()
        got = model.embed([f.crop for f in faces])
    assert got.shape == (3, 16) and np.abs(got - want).max() < 1e-5
    assert model.score(got[:1], got[:1])[0] == pytest.approx(1.0, abs=1e-5)
    assert model.score(got[:1], got[1:2])[0] < 0.9999


def test_threshold_from_validation_unless_one_is_given(checkpoints):
    engine = load_engine(checkpoints["none"])
    default = FaceModel(engine)
    assert (default.threshold, default.threshold_source) == (0.7, "validation")
    given = FaceModel(engine, threshold=0.25)
    assert (given.threshold, given.threshold_source) == (0.25, "given")
    version = given.version()
    assert (version["threshold"], version["threshold_source"]) == (0.25, "given")
    assert version["model"]["backend"] == "pytorch" and version["model"]["file"] == "none.ckpt"
    assert version["model"]["distance"] == "cosine" and version["model"]["input_size"] == 32


def test_a_model_without_a_threshold_needs_one(checkpoints):
    engine = load_engine(checkpoints["l1"])
    assert engine.sidecar.threshold is None
    with pytest.raises(ValueError, match="no threshold for distance 'l1': pass one"):
        FaceModel(engine)
    assert FaceModel(engine, threshold=-3.5).threshold == -3.5


def test_an_unknown_no_face_policy_is_refused(checkpoints):
    with pytest.raises(ValueError, match="no-face policy must be one of"):
        FaceModel(load_engine(checkpoints["none"]), no_face="skip")


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_mtcnn_model_reports_an_image_without_a_face_or_falls_back_to_its_centre(checkpoints, kind):
    pixels = np.full((120, 160, 3), 128, np.uint8)
    if kind == "noise":
        pixels = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    engine = load_engine(checkpoints["mtcnn"])
    with pytest.raises(NoFaceError, match="no face found in wall.png by mtcnn"):
        FaceModel(engine, no_face="report").face(img, "wall.png")
    face = FaceModel(engine, no_face="fallback").face(img, "wall.png")
    assert face.detector == "fallback" and face.box == [20.0, 0.0, 140.0, 120.0] and face.crop.shape == (64, 64, 3)


def test_mtcnn_model_finds_a_real_face(checkpoints, lfw_root):
    path = sorted((lfw_root / "lfw-deepfunneled").glob("*/*.jpg"))[0]
    face = FaceModel(load_engine(checkpoints["mtcnn"])).face(load_rgb(path), path.name)
    left, top, right, bottom = face.box
    assert face.detector == "mtcnn" and face.prob > 0.9 and face.crop.shape == (64, 64, 3)
    assert 0 < left < 125 < right < 250 and 0 < top < 125 < bottom < 250  # deep-funneled: the face is central


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=120)


def test_importing_the_service_does_not_import_torch():
    out = run_python(
        "import sys, backbone.deploy.service, backbone.deploy.serving, backbone.deploy.runtime\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'facenet_pytorch') if m in sys.modules))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_onnx_model_with_centre_crops_runs_without_torch(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.ckpt", {"size": 64, "detector": "none"}, val_threshold=0.5)
    export_model(ckpt, "onnx", tmp_path / "m.onnx")
    out = run_python(
        "import sys\n"
        "from PIL import Image\n"
        "from backbone.deploy.runtime import FaceModel, load_engine\n"
        "from backbone.deploy.service import create_app\n"
        f"model = FaceModel(load_engine({str(tmp_path / 'm.onnx')!r}))\n"
        "face = model.face(Image.new('RGB', (90, 90), (200, 150, 120)), 'x')\n"
        "create_app(model)\n"
        "print(model.engine.backend, model.embed([face.crop]).shape, 'torch' in sys.modules)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "onnxruntime (1, 16) False"


def test_an_mtcnn_model_where_pytorch_is_missing_is_refused_saying_why(checkpoints, monkeypatch):
    import importlib.util

    from backbone.data.errors import DataError

    engine = load_engine(checkpoints["mtcnn"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(DataError, match="aligned by mtcnn, which needs PyTorch and facenet-pytorch"):
        FaceModel(engine)
    FaceModel(load_engine(checkpoints["none"]))  # a centre-crop model needs neither


def test_a_pair_head_checkpoint_is_not_served(tmp_path):
    config = ModelConfig(input_size=64, embedding_dim=16, pair_head=True)
    save_model(build_model(config, load_pretrained=False), config, tmp_path / "head.ckpt")
    with pytest.raises(ValueError, match="pair head.*nor the service"):
        load_engine(tmp_path / "head.ckpt")
