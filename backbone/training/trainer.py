"""The training loop: one function, readable top to bottom.

``train(config)`` builds the data, model, objective, optimiser and scheduler; runs the epochs with a
progress bar; validates on the validation pairs every epoch; writes ``history.json``, TensorBoard
scalars, ``last.ckpt`` and ``best.ckpt`` (atomically); stops early when the monitored metric stops
improving; resumes exactly from ``last.ckpt``; and finally evaluates the best checkpoint on the test
pairs into ``metrics.json`` and ``test_scores.tsv``.

Devices go through Lightning Fabric: the CPU here, a GPU when one is present, and several GPUs with
the same code under ``torchrun --nproc_per_node=N -m backbone train --config ...``.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from lightning_fabric import Fabric
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from backbone.atomic import atomic_path, atomic_write_json
from backbone.evaluation import evaluate_pairs
from backbone.metrics import summary_row
from backbone.models.build import build_model
from backbone.scores import write_scores
from backbone.paths import project_path
from backbone.training.config import TrainConfig
from backbone.training.data import EvalSet, build_training_data, check_inputs
from backbone.training.objectives import create_objective

MONITORS = {"val_auc": "max", "val_accuracy": "max", "val_best_accuracy": "max", "val_eer": "min"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out_dir: Path
    epochs_run: int
    best_epoch: int | None
    best_metric: float | None
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    test_metrics: dict | None = None


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16 or fp16 mixed precision on a GPU that supports it, full precision on the CPU."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_optimizer(params, cfg) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg, epochs: int, mode: str):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.gamma, patience=cfg.plateau_patience)
    return None


def validate(model, val: EvalSet, transform) -> dict:
    ev = evaluate_pairs(model, val.pairs, val.faces, transform, progress=False)
    at = ev.metrics.get("at_threshold", ev.metrics["best"])
    return {
        "val_auc": ev.metrics["auc"],
        "val_accuracy": at["accuracy"],
        "val_best_accuracy": ev.metrics["best"]["accuracy"],
        "val_eer": ev.metrics["eer"],
    }


def _images_in(batch) -> int:
    return sum(len(x) for x in batch if torch.is_tensor(x) and x.ndim == 4)


def _comparable(d: dict) -> dict:
    """A config without what may change between a run and its resumption."""
    d = {k: v for k, v in d.items() if k not in ("epochs", "early_stopping_patience")}
    d["data"] = {k: v for k, v in d["data"].items() if k not in ("workers", "preload")}
    return d


def train(config: TrainConfig, resume: bool = True, progress: bool = True) -> TrainResult:
    cfg = config
    check_inputs(cfg)
    if cfg.monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {sorted(MONITORS)}, got {cfg.monitor!r}")
    mode = MONITORS[cfg.monitor]
    fabric = Fabric(accelerator=cfg.accelerator, devices=cfg.devices, precision=resolve_precision(cfg.precision, cfg.accelerator))
    fabric.launch()
    rank0 = fabric.is_global_zero
    out = project_path(cfg.out_dir)
    last_path, best_path = out / "last.ckpt", out / "best.ckpt"

    prior = torch.load(last_path, map_location="cpu", weights_only=False) if resume and last_path.is_file() else None
    if prior is not None and _comparable(prior["train_config"]) != _comparable(cfg.to_dict()):
        raise ValueError(f"{out} holds a run with another configuration; use another out_dir or remove it (--fresh)")

    # ---- model, data, objective, optimiser (the initial weights depend on the seed alone)
    seed_all(cfg.seed)
    model = build_model(cfg.model)
    data = build_training_data(cfg, progress=progress and rank0)
    objective = create_objective(model, cfg.loss, data.num_classes)
    optimizer = make_optimizer(objective.parameters(), cfg.optim)
    scheduler = make_scheduler(optimizer, cfg.optim, cfg.epochs, mode)
    epoch, history, best, best_epoch, bad_epochs = 0, [], None, None, 0
    if prior is not None:
        model.load_state_dict(prior["model"])
        objective.load_state_dict(prior["objective_extra"], strict=False)
        optimizer.load_state_dict(prior["optimizer"])
        if scheduler is not None and prior["scheduler"] is not None:
            scheduler.load_state_dict(prior["scheduler"])
        epoch, history = prior["epoch"], prior["history"]
        best, best_epoch, bad_epochs = prior["best"], prior["best_epoch"], prior["bad_epochs"]
        set_rng_state(prior["rng"])
        fabric.print(f"resuming {out} after epoch {epoch}")
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
    trunk = model.net.trunk
    extra_keys = [k for k in objective.state_dict() if not k.startswith("model.")]  # e.g. ArcFace centres
    raw_objective = objective
    objective, optimizer = fabric.setup(objective, optimizer)
    loader = fabric.setup_dataloaders(data.loader, use_distributed_sampler=fabric.world_size > 1)
    writer = SummaryWriter(str(out / "tensorboard")) if rank0 else None
    steps = min(len(loader), cfg.steps_per_epoch or len(loader))
    stopped_early = False

    # ---- epochs
    while epoch < cfg.epochs:
        seed_all(cfg.seed * 1_000_003 + epoch * 7919 + fabric.global_rank)  # same batches after a resume
        data.generator.manual_seed(cfg.seed * 1_000_003 + epoch)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        frozen = epoch < cfg.freeze_backbone_epochs
        for p in trunk.parameters():
            p.requires_grad_(not frozen)
        objective.train()
        if frozen:
            trunk.eval()  # keep the batch-norm statistics of the frozen trunk too
        total_loss, seen, images, start = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not (progress and rank0), leave=False)
        for step, batch in enumerate(bar):
            if step >= steps:
                break
            loss = objective(*batch)
            if not torch.isfinite(loss):
                kept = f"the last good checkpoint {last_path} is kept" if last_path.is_file() else "no checkpoint was written yet"
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; {kept}. Lower optim.lr or set optim.grad_clip")
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            if cfg.optim.grad_clip:
                fabric.clip_gradients(objective, optimizer, max_norm=cfg.optim.grad_clip)
            optimizer.step()
            total_loss += loss.item() * len(batch[0])
            seen += len(batch[0])
            images += _images_in(batch)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        train_seconds = time.perf_counter() - start

        metrics = validate(model, data.val, data.eval_transform) if data.val is not None and rank0 else {}
        value = fabric.broadcast(metrics.get(cfg.monitor), src=0)
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if value is not None:
                scheduler.step(value)
        elif scheduler is not None:
            scheduler.step()
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / max(seen, 1),
            **metrics,
            "lr": lr,
            "images_per_s": images * fabric.world_size / train_seconds,
            "train_seconds": train_seconds,
            "frozen_backbone": frozen,
        }
        history.append(record)
        improved = value is None or best is None or (value > best if mode == "max" else value < best)
        if improved:
            best, best_epoch, bad_epochs = value, epoch + 1, 0
        else:
            bad_epochs += 1
        epoch += 1

        state = {
            "model_config": cfg.to_dict()["model"],
            "train_config": cfg.to_dict(),
            "model": model.state_dict(),
            "objective_extra": {k: v for k, v in raw_objective.state_dict().items() if k in extra_keys},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch": epoch,
            "history": history,
            "best": best,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "rng": rng_state(),
        }
        if rank0:
            with atomic_path(last_path) as tmp:
                torch.save(state, tmp)
            if improved:
                with atomic_path(best_path) as tmp:
                    shutil.copyfile(last_path, tmp)
            atomic_write_json(out / "history.json", history)
            for key, v in record.items():
                if isinstance(v, (int, float)) and key != "epoch":
                    writer.add_scalar(key, v, epoch)
            writer.flush()
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_"))
            fabric.print(f"epoch {epoch}/{cfg.epochs}: loss {record['train_loss']:.4f}{', ' + shown if shown else ''}, {record['images_per_s']:.0f} img/s")
        fabric.barrier()
        if cfg.early_stopping_patience and bad_epochs >= cfg.early_stopping_patience:
            stopped_early = True
            fabric.print(f"early stop: {cfg.monitor} has not improved for {bad_epochs} epochs (best {best} at epoch {best_epoch})")
            break
    if writer is not None:
        writer.close()

    # ---- the best checkpoint on the test pairs
    test_metrics = None
    if data.test is not None and rank0 and best_path.is_file():
        model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=False)["model"])
        ev = evaluate_pairs(model, data.test.pairs, data.test.faces, data.eval_transform, progress=progress)
        test_metrics = {**ev.metrics, "checkpoint": str(best_path), "epoch": best_epoch, "summary": summary_row(ev.metrics)}
        atomic_write_json(out / "metrics.json", test_metrics)
        write_scores(out / "test_scores.tsv", data.test.pairs, ev.scores)
    return TrainResult(out, epoch, best_epoch, best, stopped_early, history, test_metrics)
