"""Embeddings/s of one model three ways, side by side in one run on this CPU: PyTorch eager (the
checkpoint), its TorchScript export and its ONNX export under ONNX Runtime, at batch 1 and 32.

.venv/bin/python benchmarks/export_speed.py [--model twins|cbam|dlib] [--checkpoint CKPT] [--seconds 4]

Each contender is a ``backbone.deploy.runtime`` engine, called as the service calls it: aligned
uint8 crops in (NumPy), embeddings out. Speed does not depend on the weights, so without
``--checkpoint`` the model is built from its configuration with fresh weights (a fresh clone has
no trained checkpoints): ``twins`` is the twins grid's mark-map network (small_grid, 112 px),
``cbam`` the default grid's local-global network, ``dlib`` dlib's face ResNet (150 px). The goal:
the fastest exported path at least 1.3 times eager at batch 1.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import per_second

from backbone.deploy.export import export_model
from backbone.deploy.runtime import CheckpointEngine, load_engine
from backbone.experiments.analysis import cpu_model
from backbone.models.build import ModelConfig, build_model, save_model

MODELS = {
    "twins": ModelConfig(backbone="small_grid", attention="marks", input_size=112),
    "cbam": ModelConfig(attention="cbam", input_size=112),
    "dlib": ModelConfig(backbone="dlib_resnet", embedding_dim=128),
}


def fresh_checkpoint(name: str, folder: Path) -> Path:
    """A checkpoint of ``MODELS[name]`` with fresh (seeded) weights, aligned at the model's input size."""
    torch.manual_seed(0)
    config = MODELS[name]
    path = folder / f"{name}.ckpt"
    align = {"size": config.image_size, "detector": "none"}
    save_model(build_model(config, load_pretrained=False), config, path, {"train_config": {"data": {"align": align}}})
    return path


def engines(checkpoint: Path, folder: Path) -> dict:
    """The three contenders on ``checkpoint``."""
    export_model(checkpoint, "torchscript", folder / "model.pt")
    export_model(checkpoint, "onnx", folder / "model.onnx")
    return {
        "PyTorch eager": CheckpointEngine(checkpoint),
        "TorchScript": load_engine(folder / "model.pt"),
        "ONNX Runtime": load_engine(folder / "model.onnx"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="twins")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint instead of fresh weights")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per contender and batch size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint or fresh_checkpoint(args.model, folder)
        contenders = engines(checkpoint, folder)
        side = contenders["ONNX Runtime"].sidecar.input_size
        faces = np.random.default_rng(0).integers(0, 256, (32, 3, side, side), dtype=np.uint8)
        rates = {(name, b): per_second(lambda e=e, b=b: e.embed(faces[:b]), b, args.seconds, 5)
                 for name, e in contenders.items() for b in (1, 32)}  # fmt: skip
    import onnxruntime

    print(f"{checkpoint.name if args.checkpoint else args.model + ' (fresh weights)'}: {side} px crops; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"{platform.machine()}, {cpu_model()}")  # fmt: skip
    print(
        "| engine | batch 1 (embeddings/s) | vs eager | batch 32 (embeddings/s) | vs eager |\n|---|---:|---:|---:|---:|"
    )
    for name in contenders:
        cells = [f"{rates[name, b]:.1f} | {rates[name, b] / rates['PyTorch eager', b]:.2f}x" for b in (1, 32)]
        print(f"| {name} | {' | '.join(cells)} |")
    best = max(("TorchScript", "ONNX Runtime"), key=lambda n: rates[n, 1])
    ratio = rates[best, 1] / rates["PyTorch eager", 1]
    print(
        f"fastest exported path at batch 1: {best}, {ratio:.2f}x eager (goal >= 1.3x: {'met' if ratio >= 1.3 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
