"""Export (backbone.deploy.export): ONNX Runtime and TorchScript give the PyTorch embeddings, and
the sidecar beside the file says what serving needs. Exports are slow (seconds each): every model
is exported once per format for the whole module."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from backbone.cli import main
from backbone.data.errors import DataError
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.transforms import eval_transform
from backbone.data.images import center_crop, load_rgb
from backbone.deploy import export
from backbone.deploy.export import checkpoint_embedder, export_model
from backbone.deploy.runtime import FORMATS, Sidecar, load_engine, sidecar_path
from backbone.devices import exact_fp32
from backbone.models.build import ModelConfig, build_model, load_model, save_model
from backbone.models.mark_map import MarkMapNet

# The bound on the largest absolute difference of an embedding entry, exported against eager
# PyTorch, each on the device the engine runs on (like with like: a TorchScript engine on a GPU is
# compared with eager PyTorch on that GPU, an ONNX Runtime CPU engine with PyTorch on the CPU), in
# full fp32 on a GPU (``exact_fp32``): the same bound then holds on every device.
TOLERANCE = 1e-4

# model kind -> (config, alignment size A). cbam's crops are larger than its input (the graph
# resizes them); the others take crops at their input size; global embeds its zoomed and mirrored views too.
KINDS = {
    "global": (ModelConfig(input_size=64, embedding_dim=32, flip_average=True, tta_zoom=0.9), 64),
    "cbam": (ModelConfig(input_size=64, embedding_dim=32, attention="cbam", branch_dim=32), 80),
    "marks": (ModelConfig(backbone="small_grid", attention="marks", input_size=64), 64),
    "dlib": (ModelConfig(backbone="dlib_resnet", pretrained=False, embedding_dim=128), 150),
}


def make_checkpoint(path: Path, config: ModelConfig, align_size: int, **extra) -> Path:
    """A checkpoint of an untrained ``config`` (fixed seed) aligned by centre crops of ``align_size``."""
    torch.manual_seed(0)
    align = {"size": align_size, "detector": "none"}
    save_model(build_model(config, load_pretrained=False).eval(), config, path,
               extra={"train_config": {"data": {"align": align}}, **extra})  # fmt: skip
    return path


def crops_of(paths: list[Path], size: int) -> np.ndarray:
    """Centre crops at ``size``, as the exported graph takes them: (N, 3, size, size) uint8."""
    return np.stack([center_crop(load_rgb(p), size) for p in paths]).transpose(0, 3, 1, 2)


def pytorch_embeddings(checkpoint: Path, crops: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Eager PyTorch's embeddings on ``device`` (an engine's: like with like)."""
    embedder, _ = checkpoint_embedder(checkpoint)
    with torch.inference_mode():
        return embedder.to(device)(torch.from_numpy(crops).to(device)).cpu().numpy()


@pytest.fixture(autouse=True, scope="module")
def references_in_full_fp32():
    with exact_fp32():
        yield


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint of every kind, with a validation threshold of 0.7."""
    base = tmp_path_factory.mktemp("checkpoints")
    return {kind: make_checkpoint(base / f"{kind}.ckpt", config, size, val_threshold=0.7)
            for kind, (config, size) in KINDS.items()}  # fmt: skip


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    """``exported(kind, fmt)`` -> (model file, returned sidecar), each exported at most once."""
    base = tmp_path_factory.mktemp("exported")
    done: dict[tuple[str, str], tuple[Path, Sidecar]] = {}

    def get(kind: str, fmt: str) -> tuple[Path, Sidecar]:
        if (kind, fmt) not in done:
            out = base / f"{kind}.{'onnx' if fmt == 'onnx' else 'pt'}"
            done[kind, fmt] = out, export_model(models[kind], fmt, out)
        return done[kind, fmt]

    return get


@pytest.fixture(scope="module")
def synth_faces(tiny_synth) -> list[Path]:
    """32 synthetic face images (of 12 people)."""
    paths = sorted(tiny_synth.glob("*/*.png"))[:32]
    assert len(paths) == 32
    return paths


@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_gives_the_pytorch_embeddings_of_synthetic_faces(exported, models, synth_faces, fmt, kind, batch):
    crops = crops_of(synth_faces[:batch], KINDS[kind][1])
    path, sidecar = exported(kind, fmt)
    engine = load_engine(path)
    got = engine.embed(crops)
    want = pytorch_embeddings(models[kind], crops, engine.device)
    assert got.shape == want.shape == (batch, sidecar.embedding_dim) and got.dtype == np.float32
    assert np.abs(got - want).max() <= TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    if batch > 1:  # different faces, different embeddings: the graph does look at its input
        assert np.abs(got[0] - got[1]).max() > 10 * TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_gives_the_pytorch_embeddings_of_real_lfw_faces(exported, models, lfw_root, fmt):
    paths = sorted((lfw_root / "lfw-deepfunneled").glob("*/*.jpg"))[:32]
    assert len(paths) == 32
    crops = crops_of(paths, KINDS["cbam"][1])
    engine = load_engine(exported("cbam", fmt)[0])
    got = engine.embed(crops)
    assert np.abs(got - pytorch_embeddings(models["cbam"], crops, engine.device)).max() <= TOLERANCE


@pytest.mark.parametrize("kind", ["global", "marks", "dlib"])  # crops at the model's input size
@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_embeddings_equal_the_evaluation_pipelines(exported, models, synth_faces, fmt, kind):
    """Where no resize is needed, serving sees a crop as ``backbone evaluate`` does."""
    size = KINDS[kind][1]
    crops = crops_of(synth_faces[:8], size)
    engine = load_engine(exported(kind, fmt)[0])
    model, config, _ = load_model(models[kind], device=engine.device)
    assert config.image_size == size
    transform = eval_transform(config.image_size)
    with torch.inference_mode():
        batch = torch.stack([transform(torch.from_numpy(c)) for c in crops]).to(engine.device)
        want = model.embed(batch).cpu().numpy()
    got = engine.embed(crops)
    assert np.abs(got - want).max() <= TOLERANCE


def test_sidecar_records_input_alignment_threshold_and_origin(exported, models):
    path, returned = exported("cbam", "onnx")
    sidecar = Sidecar.read(sidecar_path(path))
    assert sidecar == returned and sidecar_path(path).name == "cbam.onnx.json"
    assert (sidecar.format, sidecar.file, sidecar.sha256) == ("onnx", "cbam.onnx", sha256(path))
    assert (sidecar.input_size, sidecar.model_input_size, sidecar.embedding_dim) == (80, 64, 32)
    assert sidecar.alignment == asdict(AlignConfig(size=80, detector="none"))
    assert (sidecar.distance, sidecar.threshold, sidecar.threshold_source) == ("cosine", 0.7, "validation")
    assert sidecar.model_config == asdict(KINDS["cbam"][0])
    assert sidecar.checkpoint["sha256"] == sha256(models["cbam"])
    assert sidecar.checkpoint["path"].endswith("cbam.ckpt")
    assert set(sidecar.exported_with) == {"backbone", "commit", "torch"}
    assert sidecar.exported_with["torch"] == torch.__version__


def test_sidecar_of_the_mark_map_counts_its_mark_cells_in_the_embedding(exported):
    _, sidecar = exported("marks", "torchscript")
    assert sidecar.embedding_dim == KINDS["marks"][0].embedding_dim + MarkMapNet.cells(64)


def test_without_a_validation_threshold_cosine_uses_the_fixed_one_and_other_distances_none(tmp_path):
    cosine = make_checkpoint(tmp_path / "cos.ckpt", ModelConfig(input_size=64, embedding_dim=16), 64)
    sidecar = export_model(cosine, "torchscript", tmp_path / "cos.pt")
    assert (sidecar.threshold, sidecar.threshold_source) == (0.6, "fixed")
    assert Sidecar.read(tmp_path / "cos.pt.json").threshold == 0.6
    l1 = make_checkpoint(tmp_path / "l1.ckpt", ModelConfig(input_size=64, embedding_dim=16, distance="l1"), 64)
    sidecar = export_model(l1, "torchscript", tmp_path / "l1.pt")
    assert (sidecar.distance, sidecar.threshold, sidecar.threshold_source) == ("l1", None, None)


def test_a_pair_head_model_is_refused_with_a_reason_and_nothing_is_written(tmp_path):
    config = ModelConfig(input_size=64, embedding_dim=16, pair_head=True)
    ckpt = make_checkpoint(tmp_path / "head.ckpt", config, 64)
    with pytest.raises(ValueError, match="pair head.*nor the service can reproduce its scores"):
        export_model(ckpt, "onnx", tmp_path / "out" / "head.onnx")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_unknown_format_is_refused_naming_the_formats(models, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'; choose one of onnx, torchscript"):
        export_model(models["global"], "tflite", tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []


def test_export_leaves_only_the_model_and_its_sidecar(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.ckpt", ModelConfig(input_size=64, embedding_dim=16), 64)
    out = tmp_path / "out"
    export_model(ckpt, "torchscript", out / "m.pt")
    export_model(ckpt, "torchscript", out / "m.pt")  # again, over the first
    assert sorted(p.name for p in out.iterdir()) == ["m.pt", "m.pt.json"]


def test_a_failed_export_leaves_no_partial_file_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "m.ckpt", ModelConfig(input_size=64, embedding_dim=16), 64)
    out = tmp_path / "out" / "m.pt"
    export_model(ckpt, "torchscript", out)
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}

    def broken(embedder, sidecar, tmp):
        tmp.write_bytes(b"half a model")
        raise RuntimeError("exporter crashed")

    monkeypatch.setitem(export.WRITERS, "torchscript", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_model(ckpt, "torchscript", out)
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    assert load_engine(out).embed(np.zeros((1, 3, 64, 64), np.uint8)).shape == (1, 16)


def copy_export(path: Path, to: Path, sidecar: bool = True) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    (to / path.name).write_bytes(path.read_bytes())
    if sidecar:
        sidecar_path(to / path.name).write_bytes(sidecar_path(path).read_bytes())
    return to / path.name


def test_load_engine_refuses_a_model_file_its_sidecar_does_not_describe(exported, tmp_path):
    path = copy_export(exported("global", "torchscript")[0], tmp_path)
    path.write_bytes(exported("cbam", "torchscript")[0].read_bytes())  # another model under its name
    with pytest.raises(DataError, match=r"global\.pt\.json describes global\.pt .*re-export"):
        load_engine(path)


def test_load_engine_refuses_a_renamed_model_file(exported, tmp_path):
    path = copy_export(exported("global", "torchscript")[0], tmp_path)
    renamed = path.rename(tmp_path / "other.pt")
    sidecar_path(path).rename(sidecar_path(renamed))
    with pytest.raises(DataError, match=r"describes global\.pt .*not the content of .*other\.pt"):
        load_engine(renamed)


def test_load_engine_refuses_a_model_without_its_sidecar_naming_it(exported, tmp_path):
    path = copy_export(exported("global", "onnx")[0], tmp_path, sidecar=False)
    with pytest.raises(DataError, match=r"global\.onnx\.json: the exported model's sidecar is missing"):
        load_engine(path)
    with pytest.raises(DataError, match=r"nowhere\.onnx: no such model file"):
        load_engine(tmp_path / "nowhere.onnx")


@pytest.mark.parametrize("missing", ["distance", "sha256"])
def test_a_sidecar_without_a_field_is_refused_naming_the_field(exported, tmp_path, missing):
    data = json.loads(sidecar_path(exported("global", "onnx")[0]).read_text())
    del data[missing]
    (tmp_path / "m.onnx.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"m\.onnx\.json: not a sidecar .*missing field '{missing}'"):
        Sidecar.read(tmp_path / "m.onnx.json")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("threshold", "high", "threshold must be a finite number or null, got 'high'"),
        ("threshold", float("nan"), "threshold must be a finite number or null, got nan"),
        ("embedding_dim", 0, "embedding_dim must be at least 1, got 0"),
        ("alignment", [], r"alignment must be a mapping, got \[\]"),
    ],
)
def test_a_sidecar_field_of_the_wrong_type_or_range_is_refused_by_name(exported, tmp_path, field, value, message):
    """Issue 30, defect F: ``"threshold": "high"`` ended in a format-code error when serving."""
    data = json.loads(sidecar_path(exported("global", "onnx")[0]).read_text())
    (tmp_path / "m.onnx.json").write_text(json.dumps({**data, field: value}))
    with pytest.raises(DataError, match=rf"m\.onnx\.json: not a sidecar of `backbone export`: {message}"):
        Sidecar.read(tmp_path / "m.onnx.json")


@pytest.mark.parametrize("content", ["[]", '"a string"'])
def test_a_sidecar_that_is_not_an_object_is_refused_naming_the_file(tmp_path, content):
    (tmp_path / "m.onnx.json").write_text(content)
    with pytest.raises(DataError, match=r"m\.onnx\.json: not a sidecar"):
        Sidecar.read(tmp_path / "m.onnx.json")


@pytest.mark.parametrize("content", ["null", "5"])
def test_a_sidecar_of_null_or_a_number_is_refused_naming_the_file(tmp_path, content):
    (tmp_path / "m.onnx.json").write_text(content)
    with pytest.raises(DataError, match=r"m\.onnx\.json"):
        Sidecar.read(tmp_path / "m.onnx.json")


def test_a_sidecar_with_an_unknown_distance_is_refused(exported, tmp_path):
    data = json.loads(sidecar_path(exported("global", "onnx")[0]).read_text())
    (tmp_path / "m.onnx.json").write_text(json.dumps({**data, "distance": "hamming"}))
    with pytest.raises(DataError, match="distance 'hamming' is not one of"):
        Sidecar.read(tmp_path / "m.onnx.json")


def test_backbone_export_writes_the_model_and_its_sidecar(tiny_run, tmp_path, capsys):
    out = tmp_path / "served" / "tiny.pt"
    argv = ["export", "--checkpoint", str(tiny_run / "best.ckpt"), "--format", "torchscript", "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file() and sidecar_path(out).is_file()
    sidecar = Sidecar.read(sidecar_path(out))
    val_threshold = torch.load(tiny_run / "best.ckpt", weights_only=True)["val_threshold"]
    assert (sidecar.threshold, sidecar.threshold_source) == (pytest.approx(val_threshold), "validation")
    printed = capsys.readouterr().out
    assert f"threshold {val_threshold:.4f} (validation)" in printed and "tiny.pt.json" in printed
    assert load_engine(out).embed(np.zeros((2, 3, 64, 64), np.uint8)).shape == (2, sidecar.embedding_dim)


def test_backbone_export_of_a_pair_head_model_fails_with_the_reason(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "head.ckpt", ModelConfig(input_size=64, embedding_dim=16, pair_head=True), 64)
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "h.onnx")]) == 1
    assert "pair head" in capsys.readouterr().err and not (tmp_path / "h.onnx").exists()


def test_every_runtime_format_has_a_writer():
    from backbone.deploy.export import WRITERS
    from backbone.deploy.runtime import ENGINES, FORMATS

    assert set(WRITERS) == set(FORMATS) == set(ENGINES)
