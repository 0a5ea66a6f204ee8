"""A verification model at inference time, outside training: an exported file or a checkpoint,
the alignment it was trained with, its distance and threshold.

:func:`load_engine` opens an ONNX file (ONNX Runtime), a TorchScript file or a training checkpoint
(PyTorch) behind one interface, :class:`Engine`: ``embed(faces)`` takes aligned ``uint8`` crops
``(B, 3, A, A)`` and gives L2-normalised embeddings ``(B, D)``. :class:`FaceModel` adds the
alignment (a centre crop, or MTCNN as in training) and the scores.

This module imports neither PyTorch nor the training code: an ONNX model whose alignment is a
centre crop is served with NumPy, Pillow and ONNX Runtime alone (the container does that).
PyTorch is imported when a TorchScript file, a checkpoint or MTCNN alignment needs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from backbone import __version__
from backbone.data.errors import DataError, NoFaceError
from backbone.data.images import center_box, center_crop
from backbone.settings import AT_LEAST_1, ConfigError, Range, build

FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "faces", "embeddings"
NO_FACE_POLICIES = ("report", "fallback")  # as the face cache's: refuse the image, or use its centre crop


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sidecar_path(model: str | Path) -> Path:
    """Where an exported model's sidecar lives: ``model.onnx`` -> ``model.onnx.json``."""
    model = Path(model)
    return model.with_name(model.name + ".json")


@dataclass
class Sidecar:
    """What serving an exported model needs, written beside it by ``backbone export``."""

    format: str  # one of FORMATS
    file: str  # the model file's name (beside the sidecar)
    sha256: str  # the model file's content
    input_size: int  # A: the aligned crops' side, what the graph takes
    model_input_size: int  # S: the network's input side (the graph resizes A to S)
    embedding_dim: int
    alignment: dict  # backbone.data.faces.align.AlignConfig's fields
    distance: str  # backbone.models.siamese.DISTANCES
    threshold: float | None  # SAME when the score is at or above it
    threshold_source: (
        str | None
    )  # "validation": chosen on the run's validation pairs; "fixed": the distance's convention
    model_config: dict = field(default_factory=dict)
    checkpoint: dict = field(default_factory=dict)  # path and sha256 of the checkpoint it came from
    exported_with: dict = field(default_factory=dict)  # backbone version, commit, torch version

    RANGES: ClassVar[dict[str, Range]] = dict.fromkeys(("input_size", "model_input_size", "embedding_dim"), AT_LEAST_1)

    @classmethod
    def read(cls, path: str | Path) -> Sidecar:
        """The sidecar at ``path``; a missing, unparsable or incomplete file raises DataError naming it."""
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"{path}: the exported model's sidecar is missing; `backbone export` writes it beside the model"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a readable sidecar ({exc})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: not a sidecar of `backbone export` (a JSON object), but {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        problems = [f"missing field {name!r}" for name in sorted(required - set(data))]
        problems += [f"unknown field {name!r}" for name in sorted(set(data) - names)]
        if not problems and data["format"] not in FORMATS:
            problems.append(f"format {data['format']!r} is not one of {', '.join(FORMATS)}")
        if not problems and data["distance"] not in SCORES:
            problems.append(f"distance {data['distance']!r} is not one of {', '.join(SCORES)}")
        if problems:
            raise DataError(f"{path}: not a sidecar of `backbone export`: {'; '.join(problems)}")
        try:
            return build(cls, data)  # every field of its type and range: "threshold": "high" is named
        except ConfigError as exc:
            raise DataError(f"{path}: not a sidecar of `backbone export`: {exc}") from None


# Scores of embedding pairs, higher = more alike, as backbone.models.siamese.DISTANCES computes them
# (tests/test_deploy_runtime.py checks that the two agree for every registered distance).
SCORES = {
    "cosine": lambda a, b: np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12),
    "euclidean": lambda a, b: -np.linalg.norm(a - b, axis=1),
    "sqeuclidean": lambda a, b: -np.sum((a - b) ** 2, axis=1),
    "l1": lambda a, b: -np.sum(np.abs(a - b), axis=1),
}


class Engine(ABC):
    """An embedding network: aligned crops in, embeddings out."""

    backend: str  # what runs it: "onnxruntime", "torchscript", "pytorch"
    device: str = "cpu"  # where it runs: "cpu", "cuda:0", ... (what /health reports)

    def __init__(self, sidecar: Sidecar, source: Path):
        self.sidecar, self.source = sidecar, source

    @abstractmethod
    def embed(self, faces: np.ndarray) -> np.ndarray:
        """``faces`` (B, 3, A, A) uint8 RGB -> (B, D) float32 L2-normalised embeddings."""


class OnnxEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, sidecar: Sidecar, source: Path, threads: int | None = None, device: str = "auto"):
        super().__init__(sidecar, source)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's threads spin between runs by default: in a service, that takes the cores
        # from decoding and from the HTTP side (at 16 clients: 161 verifies/s without, 139 with)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(source), options, providers=_onnx_providers(ort, device))
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's load errors have no common type; the file is named
            raise DataError(f"{source}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from None
        used = self.session.get_providers()[0]
        self.device = "cpu" if used == "CPUExecutionProvider" else f"cuda:{_cuda_index(device)}"

    def embed(self, faces: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(faces, dtype=np.uint8)})[0]


def _cuda_index(device: str) -> int:
    return int(device.split(":")[1]) if device.startswith("cuda:") else 0


def _onnx_providers(ort, device: str = "auto") -> list:
    """ONNX Runtime's providers for ``device``: "auto", a GPU when this ONNX Runtime has one
    (onnxruntime-gpu) and the CPU; "cpu"; "cuda" or "cuda:N", which needs that provider."""
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f'device {device!r} is not a device: use "auto", "cpu", "cuda" or "cuda:N"')
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device.startswith("cuda") and not cuda:
        raise DataError(f"device {device!r}: this ONNX Runtime has no CUDA provider (install onnxruntime-gpu), "
                        'or serve on "cpu"')  # fmt: skip
    if device == "cpu" or not cuda:
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": _cuda_index(device)}), "CPUExecutionProvider"]


class _TorchEngine(Engine):
    """A PyTorch module on its device (``backbone.devices.resolve_device``; "auto": a GPU when present)."""

    def __init__(self, sidecar: Sidecar, source: Path, module, device):
        super().__init__(sidecar, source)
        self.torch_device = device
        self.device = str(device)
        self.module = module.to(device).eval()

    def embed(self, faces: np.ndarray) -> np.ndarray:
        import torch

        from backbone.devices import exact_fp32

        with torch.inference_mode(), exact_fp32():  # the training checkpoint's scores, on any device
            x = torch.from_numpy(np.ascontiguousarray(faces)).to(self.torch_device)
            return self.module(x).float().cpu().numpy()


class TorchScriptEngine(_TorchEngine):
    backend = "torchscript"

    def __init__(self, sidecar: Sidecar, source: Path, device: str = "auto"):
        import warnings

        import torch

        from backbone.devices import resolve_device

        device = resolve_device(device)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; TorchScript files still load
                # loaded onto the device: a frozen module's weights are constants, which .to() does not move
                module = torch.jit.load(str(source), map_location=device)
        except Exception as exc:  # noqa: BLE001 - torch.jit.load's errors have no common type
            raise DataError(f"{source}: not a loadable TorchScript file ({type(exc).__name__}: {exc})") from None
        super().__init__(sidecar, source, module, device)


class CheckpointEngine(_TorchEngine):
    """A training checkpoint, run eagerly: what the export is compared with."""

    backend = "pytorch"

    def __init__(self, source: Path, device: str = "auto"):
        from backbone.deploy.export import checkpoint_embedder
        from backbone.devices import resolve_device

        embedder, sidecar = checkpoint_embedder(source)
        sidecar.format, sidecar.file, sidecar.sha256 = "checkpoint", source.name, sidecar.checkpoint["sha256"]
        super().__init__(sidecar, source, embedder, resolve_device(device))


ENGINES = {"onnx": OnnxEngine, "torchscript": TorchScriptEngine}


def load_engine(path: str | Path, device: str = "auto") -> Engine:
    """The engine of an exported model (its sidecar beside it, its digest checked) or of a
    checkpoint (``.ckpt``), on ``device``: "auto" (a GPU when the backend has one), "cpu",
    "cuda" or "cuda:N" (ONNX Runtime's CUDA provider; PyTorch's device)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file (an exported .onnx or TorchScript file, or a checkpoint)")
    if path.suffix == ".ckpt":
        return CheckpointEngine(path, device)
    sidecar = Sidecar.read(sidecar_path(path))
    if sidecar.file != path.name or sidecar.sha256 != file_sha256(path):
        raise DataError(
            f"{sidecar_path(path)} describes {sidecar.file} (sha256 {sidecar.sha256[:12]}...), not the content of "
            f"{path}: re-export the model, so that its sidecar matches it"
        )
    return ENGINES[sidecar.format](sidecar, path, device=device)


def as_batch(crops: list[np.ndarray]) -> np.ndarray:
    """An engine's input ``(N, 3, A, A)`` uint8 from aligned crops, each ``(A, A, 3)``."""
    return np.stack(crops).transpose(0, 3, 1, 2)


@dataclass
class Face:
    """An aligned face: the crop (A, A, 3) uint8 and where it was found in the image."""

    crop: np.ndarray
    box: list[float]  # left, top, right, bottom in the image's pixels
    detector: str  # "mtcnn", "none" (a centre crop of a pre-aligned image), "fallback" (no face; centre crop)
    prob: float | None = None  # the detector's confidence

    def info(self) -> dict[str, Any]:
        """The box, detector and confidence, and the face's quality (``backbone.data.faces.quality``;
        the box's width only where a detector found it)."""
        from backbone.data.faces.quality import face_quality

        found = self.detector not in ("none", "fallback")
        quality = face_quality(self.crop, self.box if found else None).as_dict()
        return {"box": self.box, "detector": self.detector, "prob": self.prob, "quality": quality}


class FaceModel:
    """An engine with the alignment it was trained with, its distance and a threshold.

    Args:
        engine: the embedding network.
        threshold: SAME when a score is at or above it; default the sidecar's (the run's
            validation-chosen threshold, else the distance's fixed one).
        no_face: ``report`` raises :class:`NoFaceError` for an image without a face;
            ``fallback`` embeds its centre crop (as the face cache's policy of that name).
    """

    def __init__(self, engine: Engine, threshold: float | None = None, no_face: str = "report"):
        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no-face policy must be one of {NO_FACE_POLICIES}, got {no_face!r}")
        self.engine, self.sidecar, self.no_face = engine, engine.sidecar, no_face
        self.threshold = threshold if threshold is not None else self.sidecar.threshold
        if self.threshold is None:
            raise ValueError(f"{engine.source}: no threshold for distance {self.sidecar.distance!r}: pass one")
        self.threshold_source = "given" if threshold is not None else self.sidecar.threshold_source
        align = self.sidecar.alignment
        self.size, self.detector, self.crop = align["size"], align["detector"], align.get("crop", 1.0)
        self._aligner = None
        if self.detector != "none" and not all(importlib.util.find_spec(m) for m in ("torch", "facenet_pytorch")):
            raise DataError(
                f"{engine.source}: its faces are aligned by {self.detector}, which needs PyTorch and facenet-pytorch; "
                "this environment has ONNX Runtime only (install the workbook, or serve a centre-crop model)"
            )

    @property
    def aligner(self):
        """MTCNN as training used it (imports PyTorch and facenet-pytorch on first use)."""
        if self._aligner is None:
            import torch

            from backbone.data.faces.align import AlignConfig, FaceAligner

            on_gpu = self.engine.device.startswith("cuda") and torch.cuda.is_available()
            self._aligner = FaceAligner(AlignConfig(**self.sidecar.alignment), self.engine.device if on_gpu else "cpu")
        return self._aligner

    def face(self, img: Image.Image, name: str) -> Face:
        """The aligned face of an RGB image; no face raises NoFaceError naming ``name`` (policy ``report``)."""
        if self.detector == "none":
            return Face(center_crop(img, self.size, self.crop), _box(img, self.crop), "none")
        (det,) = self.aligner.align([img])
        if det.error is not None:
            raise DataError(f"{name}: {det.error}")
        if det.crop is not None:
            return Face(det.crop, det.box, self.detector, det.prob)
        if self.no_face == "fallback":
            return Face(center_crop(img, self.size, self.crop), _box(img, self.crop), "fallback")
        raise NoFaceError(
            f"no face found in {name} by {self.detector} (no-face policy 'report'; the image needs a visible "
            f"face of at least {self.sidecar.alignment.get('min_face_size', 20)} px)"
        )

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embeddings (N, D) of aligned crops (each (A, A, 3) uint8), in one forward pass."""
        return self.engine.embed(as_batch(crops))

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores (N,) of embedding rows ``a``, ``b`` (N, D), higher = more alike."""
        return SCORES[self.sidecar.distance](a, b)

    def version(self) -> dict[str, Any]:
        """What is served: the model file, its origin, the threshold, the code."""
        s = self.sidecar
        return {
            "model": {"file": s.file, "format": s.format, "sha256": s.sha256, "backend": self.engine.backend,
                      "embedding_dim": s.embedding_dim, "input_size": s.input_size, "distance": s.distance,
                      "alignment": s.alignment,
                      "checkpoint": {"name": Path(str(s.checkpoint.get("path", ""))).name,  # never a path
                                     "sha256": s.checkpoint.get("sha256")}},
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "commit": s.exported_with.get("commit", "unknown"),
            "backbone": __version__,
        }  # fmt: skip


def _box(img: Image.Image, fraction: float) -> list[float]:
    return [float(v) for v in center_box(img.size, fraction)]
