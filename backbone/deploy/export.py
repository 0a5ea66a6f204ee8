"""Export a checkpoint's embedding network to ONNX or TorchScript, with the sidecar that serving needs.

The exported graph is :class:`FaceEmbedder`: aligned face crops in, L2-normalised embeddings out.
It takes the crops exactly as the checkpoint's alignment makes them (``uint8``, ``(B, 3, A, A)``,
RGB, ``A`` the alignment size), so a client never re-implements the preprocessing: the graph
resizes to the model's input size when the two differ, standardises (``(x - 127.5) / 128``, as
training did) and embeds, with the test-time views (flip, zoom) its configuration names. The
batch axis is dynamic.

Beside the model, ``<file>.json`` (:func:`sidecar_path`) holds what inference needs and where the
model came from: input and output, the alignment, the distance, the threshold the run chose on
its validation pairs (or the model's fixed one, and which), the model configuration, the
checkpoint's digest and the commit of the code. ``backbone.deploy.runtime`` reads it back.

Both files are written atomically. A model with a pair head scores pairs with the head, not with
a distance of embeddings: it is refused, by the export and by the service alike.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from facenet_pytorch import fixed_image_standardization
from torch import nn

from backbone import __version__
from backbone.atomic import atomic_path, atomic_write_json
from backbone.deploy.runtime import INPUT_NAME, OUTPUT_NAME, Sidecar, file_sha256, sidecar_path
from backbone.evaluation.checkpoints import checkpoint_align_config
from backbone.evaluation.embeddings import default_threshold
from backbone.models.build import load_model
from backbone.models.siamese import SiameseNet
from backbone.paths import project_path, shareable_path
from backbone.provenance import code_commit

ONNX_OPSET = 18  # the first with an antialiased Resize


class FaceEmbedder(nn.Module):
    """A SiameseNet's embedding, from aligned crops as the alignment makes them.

    Args:
        model: the verification model (its ``embed``: network, test-time views, L2 normalisation).
        image_size: the model's input size ``S``; crops of another size are resized to it
            (bilinear, antialiased, in float: torchvision's uint8 resize in training rounds to
            whole levels, so there embeddings differ by up to ~1e-3).
    """

    def __init__(self, model: SiameseNet, image_size: int):
        super().__init__()
        self.model, self.image_size = model, image_size

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """``faces`` (B, 3, A, A) uint8 RGB -> embeddings (B, D) float32, L2-normalised."""
        x = faces.float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        return self.model.embed(fixed_image_standardization(x))  # (x - 127.5) / 128, as training


def checkpoint_embedder(checkpoint: str | Path) -> tuple[FaceEmbedder, Sidecar]:
    """The :class:`FaceEmbedder` of a checkpoint (eval mode, on the CPU) and its sidecar (``format``
    and ``file`` still empty). A pair-head model raises ValueError."""
    checkpoint = project_path(checkpoint)
    model, config, ckpt = load_model(checkpoint, map_location="cpu")
    if model.pair_head is not None:
        raise ValueError(
            f"{checkpoint}: this model scores pairs with its pair head, not with a distance of embeddings, "
            "so neither an exported embedding network nor the service can reproduce its scores; "
            "`backbone verify --checkpoint` and `backbone evaluate` score it in Python"
        )
    align = checkpoint_align_config(ckpt, config.image_size, checkpoint)
    threshold, source = ckpt.get("val_threshold"), "validation"
    if threshold is None:
        threshold, source = default_threshold(model), "fixed"
    sidecar = Sidecar(
        format="",
        file="",
        sha256="",
        input_size=align.size,
        model_input_size=config.image_size,
        embedding_dim=model.embedding_dim,
        alignment=asdict(align),
        distance=model.distance,
        threshold=None if threshold is None else float(threshold),
        threshold_source=source if threshold is not None else None,
        model_config={**asdict(config), "weights": config.weights and shareable_path(config.weights)},
        checkpoint={"path": shareable_path(checkpoint), "sha256": file_sha256(checkpoint)},
        exported_with={"backbone": __version__, "commit": code_commit(), "torch": torch.__version__},
    )
    return FaceEmbedder(model, config.image_size).eval(), sidecar


def _example(sidecar: Sidecar, batch: int = 2) -> torch.Tensor:
    """Crops to trace with (their values do not enter the graph; the global RNG is left alone)."""
    side = sidecar.input_size
    return torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _write_onnx(embedder: FaceEmbedder, sidecar: Sidecar, tmp: Path) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes about its own internals, and its progress lines
        program = torch.onnx.export(
            embedder, (_example(sidecar),), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET, dynamo=True, verbose=False,
        )  # fmt: skip
    onnx.save_model(program.model_proto, str(tmp))  # one file: a face model is far below protobuf's 2 GB


def _write_torchscript(embedder: FaceEmbedder, sidecar: Sidecar, tmp: Path) -> None:
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what C++
        # (libtorch) and torch.jit.load read; tracing records this model exactly (no data-dependent
        # control flow: the tracer's warnings are about shapes that are fixed for a given input size)
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(embedder, (_example(sidecar),), check_trace=False)
        torch.jit.save(torch.jit.freeze(traced), str(tmp))


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}  # one per runtime.FORMATS


def export_model(checkpoint: str | Path, fmt: str, out: str | Path) -> Sidecar:
    """Export the embedding network of ``checkpoint`` as ``fmt`` (``onnx`` or ``torchscript``) to
    ``out``, and its sidecar beside it; returns the sidecar."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(WRITERS)}")
    out = project_path(out)
    embedder, sidecar = checkpoint_embedder(checkpoint)
    with atomic_path(out) as tmp:
        WRITERS[fmt](embedder, sidecar, tmp)
    sidecar.format, sidecar.file, sidecar.sha256 = fmt, out.name, file_sha256(out)
    atomic_write_json(sidecar_path(out), asdict(sidecar))
    return sidecar


def describe(sidecar: Sidecar) -> str:
    """A few lines on an exported model: what goes in and out, and the threshold."""
    threshold = "none (pass --threshold when serving)" if sidecar.threshold is None else (
        f"{sidecar.threshold:.4f} ({sidecar.threshold_source})")  # fmt: skip
    return "\n".join([
        f"{sidecar.format} model {sidecar.file} (sha256 {sidecar.sha256[:12]}...)",
        f"input  {INPUT_NAME}: uint8 (batch, 3, {sidecar.input_size}, {sidecar.input_size}) RGB crops, "
        f"aligned as {json.dumps(sidecar.alignment, sort_keys=True)}",
        f"output {OUTPUT_NAME}: float32 (batch, {sidecar.embedding_dim}), L2-normalised; distance {sidecar.distance}",
        f"threshold {threshold}",
    ])  # fmt: skip
