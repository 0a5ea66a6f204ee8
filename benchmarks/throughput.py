"""Training throughput: each model alone against the same model fed by its data path, side by side.

    .venv/bin/python benchmarks/throughput.py [--device auto|cpu|cuda|all] [--steps N] [--json OUT]

On each device (``auto``: the CPU, and a GPU when there is one), for two models trained on the
synthetic twins set (``make data``):

- ``default``: the default grid's experiment: the small CNN at 112 px, batch-hard triplets over
  family batches, batch 64, per-image augmentation on the CPU;
- ``recipe``: the LFW recipe's network and loss (``experiments/lfw/recipe.yaml``: small_grid at
  64 px, CosFace, batch 128, channels-last, augmentation strength 2) on the synthetic identities.

Three figures each, in images/s:

- *model alone*: the trainer's step (objective, optimiser, gradient clipping, under Fabric at
  that precision) repeated on one ready batch already on the device, in fp32 (TF32 on a GPU, as
  the trainer's "auto"), in bf16-mixed, in fp32 with the other memory format (channels-last for
  the default model, contiguous for the recipe), and with ``--compile`` in fp32 under
  ``torch.compile`` (the default model on a GPU only; its compilation time apart);
- *data-fed*: ``backbone.training.train`` itself, 2 epochs of ``--steps`` steps, the second
  epoch's rate as its history.json records it (the device waited for), through each data path:
  ``workers`` (a DataLoader, per-image augmentation in one worker: the committed CPU runs' path)
  and ``tensors`` (the faces held on the device as one uint8 tensor, batches gathered there,
  ``BatchAugment`` on the device: the GPU's path);
- the ratio of the best data-fed rate to the model alone (fp32).

Everything is measured in one run, one measurement at a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from lightning_fabric import Fabric

from backbone.models import build_model
from backbone.paths import project_path
from backbone.training.config import TrainConfig
from backbone.training.data import build_training_data
from backbone.training.optim import create_optimizer
from backbone.training.regimes import REGIMES
from backbone.training.trainer import augmented, resolve_precision, synchronize, tf32, train

MODELS = {
    "default": [
        "loss.regime=triplet", "loss.family_batches=true", "batch_size=64",
    ],
    "recipe": [
        "loss.regime=cosface", "loss.margin=0.35", "loss.scale=30", "batch_size=128", "channels_last=true",
        "model.backbone=small_grid", "model.input_size=64", "model.dropout=0.4", "model.flip_average=true",
        "data.hflip=0.5", "data.augment_strength=2", "optim.name=sgd", "optim.lr=0.1",
    ],
}  # fmt: skip
PATHS = {"workers": ["data.loader=workers", "data.batch_augment=false", "data.workers=1"],
         "tensors": ["data.loader=tensors", "data.batch_augment=true"]}  # fmt: skip


def config(model: str, device: str, out: Path, steps: int, extra: list[str] = ()) -> TrainConfig:
    accelerator = "cpu" if device == "cpu" else "cuda"
    base = [f"out_dir={out}", "epochs=2", f"steps_per_epoch={steps}", "data.val_pairs=null", "data.test_pairs=null",
            f"accelerator={accelerator}", "devices=1"]  # fmt: skip
    return TrainConfig().with_overrides(base + MODELS[model] + list(extra))


def model_alone(cfg: TrainConfig, precision: str, steps: int) -> tuple[float, float]:
    """Images/s of the trainer's step on one ready batch on the device (after ``steps // 4``
    warm-ups), and the seconds of the first step (with ``cfg.compile``, the compilation)."""
    fabric = Fabric(accelerator=cfg.accelerator, devices=1, precision=resolve_precision(precision))
    data = build_training_data(cfg, progress=False, device=fabric.device)
    batch = [x.to(fabric.device) for x in next(iter(data.loader))]
    batch = augmented(batch, data.batch_transform, cfg.channels_last)
    images = sum(len(x) for x in batch if x.ndim == 4)
    fabric.seed_everything(0, verbose=False)
    model = build_model(cfg.model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    objective = REGIMES.create(cfg.loss.regime, model, cfg.loss, data.num_classes)
    optimizer = create_optimizer(objective.parameters(), cfg.optim)
    objective, optimizer = fabric.setup(torch.compile(objective) if cfg.compile else objective, optimizer)
    objective.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(objective(*batch))
        fabric.clip_gradients(objective, optimizer, max_norm=cfg.optim.grad_clip, error_if_nonfinite=False)
        optimizer.step()

    with tf32(fabric.device):
        start = time.perf_counter()
        step()
        synchronize(fabric.device)
        first = time.perf_counter() - start
        for _ in range(max(steps // 4, 3)):
            step()
        synchronize(fabric.device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(fabric.device)
    return steps * images / (time.perf_counter() - start), first


def data_fed(cfg: TrainConfig) -> float:
    """The second epoch's images/s of a real training run."""
    return train(cfg, resume=False, progress=False).history[-1]["images_per_s"]


def devices(asked: str) -> list[str]:
    if asked == "auto" or asked == "all":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [asked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help='"auto" (the CPU and a GPU when present), "cpu" or "cuda"')
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per measurement (default: 24 CPU, 60 GPU; a third, at least 10, for the slow "
                        "per-image path on a GPU)")  # fmt: skip
    parser.add_argument("--models", default="default,recipe")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--compile", action="store_true", help="also the default model under torch.compile (GPU)")
    args = parser.parse_args()
    if not project_path("files/synthetic_train_pairs.tsv").is_file():
        raise SystemExit("benchmarks/throughput.py trains on the synthetic twins set: run `make data` first")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ({platform.processor() or 'CPU'}), "
          f"GPU: {gpu or 'none'}")  # fmt: skip
    rows = []
    header = (f"{'device':6s} {'model':8s} {'alone fp32':>11s} {'alone bf16':>11s} {'other layout':>13s} {'compiled':>9s} "
              f"{'fed: workers':>13s} {'fed: tensors':>13s} {'best fed / alone':>17s}")  # fmt: skip
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices(args.device):
            steps = args.steps or (24 if device == "cpu" else 60)
            for model in args.models.split(","):
                out = Path(tmp) / f"{device}-{model}"
                row = {"device": device, "model": model, "steps": steps}
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                cfg = config(model, device, out, steps)
                row["alone_fp32"] = model_alone(cfg, "32-true", steps)[0]
                row["alone_bf16"] = model_alone(cfg, "bf16-mixed", steps)[0]
                other = cfg.with_overrides([f"channels_last={str(not cfg.channels_last).lower()}"])
                row["alone_fp32_other_layout"] = model_alone(other, "32-true", steps)[0]
                row["other_layout"] = "channels-last" if other.channels_last else "contiguous"
                if args.compile and device == "cuda" and model == "default":
                    compiled = cfg.with_overrides(["compile=true"])
                    try:  # a compiler that fails here is a finding, not the end of the benchmark
                        row["alone_fp32_compiled"], row["compile_seconds"] = model_alone(compiled, "32-true", steps)
                    except Exception as exc:  # noqa: BLE001 - torch.compile's errors have no common type
                        row["compile_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                for path, settings in PATHS.items():
                    slow = path == "workers" and device != "cpu"  # a few hundred images/s: fewer steps tell it
                    fed = config(model, device, out / path, max(steps // 3, 10) if slow else steps, settings)
                    row[f"fed_{path}"] = data_fed(fed)
                best = max(row["fed_workers"], row["fed_tensors"])
                row["fed_over_alone"] = best / row["alone_fp32"]
                if device == "cuda":
                    row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20  # this row's measurements
                rows.append(row)
                compiled = f"{row['alone_fp32_compiled']:9.0f}" if "alone_fp32_compiled" in row else f"{'-':>9s}"
                print(f"{device:6s} {model:8s} {row['alone_fp32']:11.0f} {row['alone_bf16']:11.0f} "
                      f"{row['alone_fp32_other_layout']:13.0f} {compiled} {row['fed_workers']:13.0f} "
                      f"{row['fed_tensors']:13.0f} {row['fed_over_alone']:16.0%}", flush=True)  # fmt: skip
                if "compile_seconds" in row:
                    print(f"  torch.compile: its first step (the compilation) took {row['compile_seconds']:.1f} s")
                if "compile_error" in row:
                    print(f"  torch.compile failed: {row['compile_error']}")
    if args.json:
        meta = {"torch": torch.__version__, "gpu": gpu, "cpu_threads": torch.get_num_threads()}
        args.json.write_text(json.dumps({"environment": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
