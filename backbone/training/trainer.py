"""The training loop, read top to bottom in short functions, as Lightning Fabric's example trainer.

``train(config)`` builds the data, model, regime, optimiser and scheduler; runs the epochs with a
progress bar; validates on the validation pairs every epoch; writes ``history.json``, TensorBoard
scalars (Fabric's logger), ``last.ckpt`` and ``best.ckpt`` (``fabric.save``, atomically); stops
early when the monitored metric stops improving; resumes exactly from ``last.ckpt``; and finally
evaluates the best checkpoint on the test pairs into ``metrics.json`` and ``test_scores.tsv``.

Fabric does the plumbing: devices (the CPU here, a GPU when one is present, several under
``torchrun --nproc_per_node=N -m backbone train --config ...``), precision, seeding, checkpoint
files and logging.
"""

from __future__ import annotations

import copy
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from lightning_fabric import Fabric
from lightning_fabric.loggers import TensorBoardLogger
from lightning_fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from backbone.atomic import atomic_path, atomic_write_json
from backbone.devices import allow_tf32
from backbone.evaluation.embeddings import evaluate_pairs
from backbone.evaluation.metrics import confusion_at, far_threshold, summary_row, with_val_threshold
from backbone.evaluation.pointing import pairs_pointing
from backbone.evaluation.scores import write_scores
from backbone.models.build import build_model, read_checkpoint
from backbone.paths import project_path, shareable_path
from backbone.settings import ConfigError
from backbone.training.config import MONITORS, TrainConfig
from backbone.training.data import EvalSet, TrainingData, build_training_data, check_inputs, resolved
from backbone.training.optim import create_optimizer, create_scheduler, steps_per_optimiser_step
from backbone.training.regimes import REGIMES, Regime


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
    global_zero: bool = True  # the process that writes files and prints summaries (several under torchrun)


@dataclass
class Progress:
    """Where a run stands: saved in every checkpoint, restored on resume."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    steps_per_epoch: int | None = None  # a time budget's steps, as calibrated (None: the loader's)
    calibration: dict | None = None  # how they were measured (budget_minutes)

    def update(self, value: float | None, mode: str) -> bool:
        """Count the epoch just run; whether ``value`` of the monitored metric is the best yet."""
        improved = value is None or self.best is None or (value > self.best if mode == "max" else value < self.best)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.epoch += 1
        return improved


def resolve_precision(precision: str) -> str:
    """``auto``: full precision ("32-true") on every device, its training steps in TF32 on a GPU
    (``tf32``). The workbook's models are small: on an H200 they are bound by kernel launches,
    not arithmetic, and bf16-mixed trained them slower than fp32 (the default model 5,480 against
    6,433 img/s, the recipe's 14,079 against 18,544: docs/gpu.md), as autocast adds casts to every
    layer. On the CPU fp32 keeps the committed results as they are. ``benchmarks/throughput.py``
    measures both again; "bf16-mixed" or "16-mixed" stay there to ask for."""
    return "32-true" if precision == "auto" else precision


@contextmanager
def tf32(device: torch.device) -> Iterator[None]:
    """On a GPU, fp32 matrix products and convolutions in TF32 (10-bit mantissa, fp32 range) for
    the training steps: what "32-true" costs there. The flags are put back afterwards, and
    validation and the test pairs are embedded in full fp32 (``backbone.devices.exact_fp32``), as
    ``backbone evaluate`` embeds them on any device. Nothing changes on the CPU."""
    if device.type != "cuda":
        yield
        return
    with allow_tf32(True):
        yield


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one process, so a resumed run draws the same batches."""
    return (seed * 1_000_003 + epoch * 7919 + rank) % 2**32


def rng_state() -> dict:
    """Every random state as tensors, numbers and lists, so a checkpoint loads with ``weights_only=True``."""
    version, words, gauss = random.getstate()
    _, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(words), gauss],
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(cached)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def upgrade_checkpoint(path: str | Path) -> Path:
    """Re-save a checkpoint written before checkpoints held only weights and plain data (it stored
    numpy random states), so that it loads with ``weights_only=True``.

    This unpickles the file with ``weights_only=False``, which runs any code it holds: only for
    files you made or otherwise trust (``backbone upgrade-checkpoint FILE --trust``)."""
    path = project_path(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("rng"), dict) and isinstance(ckpt["rng"].get("numpy"), tuple):
        rng = ckpt["rng"]
        version, words, gauss = rng["python"]
        _, key, pos, has_gauss, cached = rng["numpy"]
        rng["python"] = [version, list(words), gauss]
        rng["numpy"] = {"key": torch.from_numpy(np.asarray(key).astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(cached)}  # fmt: skip
    with atomic_path(path) as tmp:
        torch.save(_plain(ckpt), tmp)
    read_checkpoint(path)  # loads safely now
    return path


def _plain(obj):
    """``obj`` with numpy scalars and arrays as Python numbers and tensors (what weights_only loads)."""
    if isinstance(obj, dict):
        return type(obj)((k, _plain(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _comparable(d: dict) -> dict:
    """A config without what may change between a run and its resumption."""
    d = {k: v for k, v in d.items() if k not in ("epochs", "early_stopping_patience", "compile")}
    d["data"] = {k: v for k, v in d["data"].items() if k not in ("workers", "preload", "loader")}
    return d


def validate(model, val: EvalSet, transform) -> dict:
    ev = evaluate_pairs(model, val.pairs, val.faces, transform, progress=False)
    at = ev.metrics.get("at_threshold", ev.metrics["best"])
    return {
        "val_auc": ev.metrics["auc"],
        "val_accuracy": at["accuracy"],
        "val_best_accuracy": ev.metrics["best"]["accuracy"],
        # the operating thresholds chosen here are saved in checkpoints (see with_val_threshold)
        "val_threshold": ev.metrics["best"]["threshold"],
        "val_far_threshold": far_threshold(ev.scores, np.array([p.same for p in val.pairs])),
        "val_eer": ev.metrics["eer"],
        **_twin_auc("val", ev.metrics),
    }


def _twin_auc(prefix: str, metrics: dict) -> dict:
    """``{prefix}_twin_auc``: the twin negatives' AUC (against every matched pair), when the pairs have them."""
    twins = metrics.get("twin_negatives")
    return {f"{prefix}_twin_auc": twins["auc"]} if twins else {}


def check_monitor(cfg: TrainConfig, data: TrainingData) -> None:
    """The monitored metric can be measured: ``val_twin_auc`` needs twin negatives among the
    validation pairs (without validation pairs, each epoch counts as the best yet, as before)."""
    if data.val is None:
        return
    if cfg.monitor == "val_twin_auc" and not any(p.twins for p in data.val.pairs):
        raise ConfigError(
            f"monitor val_twin_auc needs twin negatives in the validation pairs, and {cfg.data.val_pairs} has none "
            "(its 'twins' column); monitor val_auc instead, or write pairs with twins (backbone data pairs)"
        )


def test_curve_point(model, test: EvalSet, transform, val_threshold: float | None) -> dict:
    """The test pairs after an epoch, for the accuracy-vs-time curve: AUC, and accuracy at the
    epoch's validation threshold (never a threshold chosen on these pairs)."""
    ev = evaluate_pairs(model, test.pairs, test.faces, transform, progress=False)
    point = {"test_auc": ev.metrics["auc"], **_twin_auc("test", ev.metrics)}
    if val_threshold is not None:
        labels = np.array([p.same for p in test.pairs])
        point["test_accuracy_at_val_threshold"] = confusion_at(ev.scores, labels, val_threshold)["accuracy"]
    return point


def save_checkpoint(fabric: Fabric, path: Path, state: dict) -> None:
    """``fabric.save`` beside ``path``, then one rename: a kill never leaves a half-written checkpoint."""
    partial = path.with_name(f".{path.name}.partial")
    fabric.save(partial, state)
    if fabric.is_global_zero:
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
    fabric.barrier()


def augmented(batch, transform, channels_last: bool = False) -> list:
    """The batch with ``transform`` (a batch augmentation or standardisation) applied to each of its
    image tensors (none: as they are), in the channels-last memory format if asked (the model's
    then: faster convolutions on CPU)."""
    if transform is None and not channels_last:
        return batch
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def prepared(x: torch.Tensor) -> torch.Tensor:
        return (transform(x) if transform is not None else x).contiguous(memory_format=fmt)

    return [prepared(x) if torch.is_tensor(x) and x.ndim == 4 else x for x in batch]


def _images_in(batch) -> int:
    return sum(len(x) for x in batch if torch.is_tensor(x) and x.ndim == 4)


def epoch_steps(cfg: TrainConfig, loader, run: Progress) -> int:
    """Optimiser steps per epoch: a time budget's calibrated steps, else ``steps_per_epoch`` capped by the loader."""
    return run.steps_per_epoch or min(len(loader), cfg.steps_per_epoch or len(loader))


def batches(loader, steps: int):
    """``steps`` batches of ``loader``, gone through as many times as that takes."""
    taken = 0
    while taken < steps:
        for batch in loader:
            yield batch
            taken += 1
            if taken == steps:
                return


def train_epoch(fabric: Fabric, cfg: TrainConfig, objective, optimizer, scheduler, loader, data: TrainingData,
                epoch: int, steps: int, last_path: Path, progress: bool) -> dict:  # fmt: skip
    """One epoch of ``steps`` batches; the epoch's loss and speed. A per-step scheduler steps here."""
    fabric.seed_everything(epoch_seed(cfg.seed, epoch, fabric.global_rank), workers=False, verbose=False)
    data.generator.manual_seed(cfg.seed * 1_000_003 + epoch)  # the same batches after a resume
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    frozen = set_trunk_frozen(objective, epoch < cfg.freeze_trunk_epochs)
    per_step = steps_per_optimiser_step(cfg.optim)
    losses = LossWatch(look_every(fabric.device), epoch, last_path)
    images, start = 0, time.perf_counter()
    show = progress and fabric.is_global_zero
    bar = tqdm(batches(loader, steps), total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
               disable=not show, leave=False)  # fmt: skip
    for step, batch in enumerate(bar):
        batch = augmented(batch, data.batch_transform, cfg.channels_last)
        loss = objective(*batch)
        if losses.add(loss, len(batch[0]), last=step == steps - 1):  # raises TrainingDiverged
            bar.set_postfix(loss=f"{losses.mean:.4f}")
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if cfg.optim.grad_clip:  # a non-finite norm is not checked here (a wait for the device): the loss is
            fabric.clip_gradients(objective, optimizer, max_norm=cfg.optim.grad_clip, error_if_nonfinite=False)
        optimizer.step()
        if per_step and scheduler is not None:
            scheduler.step()
        images += _images_in(batch)
    synchronize(fabric.device)
    seconds = time.perf_counter() - start
    return {
        "epoch": epoch + 1,
        "train_loss": losses.mean,
        "lr": optimizer.param_groups[0]["lr"],
        "images_per_s": images * fabric.world_size / seconds,
        "train_seconds": seconds,
        "images": images * fabric.world_size,
        "frozen_backbone": frozen,
        **gpu_memory(fabric.device),
    }


def gpu_memory(device: torch.device) -> dict:
    """``gpu_peak_mib``: the most GPU memory this process has held for tensors so far (a GPU only)."""
    return {"gpu_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20} if device.type == "cuda" else {}


def look_every(device: torch.device) -> int:
    """Steps between the host's looks at the loss: every step on the CPU; on a GPU every 25th, as
    each look waits for the device to finish, and the host would otherwise never queue work ahead."""
    return 1 if device.type == "cpu" else 25


def synchronize(device: torch.device) -> None:
    """Wait for ``device`` to finish its queued work (so that a time measured includes it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LossWatch:
    """An epoch's losses, looked at every ``every`` steps (one wait for the device a look): their
    mean so far, and a non-finite one raises ``TrainingDiverged`` naming its step. The look comes
    before the step's backward pass, so on the CPU (``every`` 1) no step trains on a bad loss."""

    def __init__(self, every: int, epoch: int, last_path: Path):
        self.every, self.epoch, self.last_path = every, epoch, last_path
        self.pending: list[tuple[torch.Tensor, int]] = []
        self.total, self.seen, self.steps = 0.0, 0, 0

    @property
    def mean(self) -> float:
        return self.total / max(self.seen, 1)

    def add(self, loss: torch.Tensor, n: int, last: bool = False) -> bool:
        """Count one step's loss over ``n`` items; whether it looked (then ``mean`` is new)."""
        self.pending.append((loss.detach(), n))
        if len(self.pending) < self.every and not last:
            return False
        values = torch.stack([v for v, _ in self.pending]).float().cpu()
        for k, (value, (_, count)) in enumerate(zip(values.tolist(), self.pending)):
            if not math.isfinite(value):
                self._diverged(value, self.steps + k + 1)
            self.total += value * count
            self.seen += count
        self.steps += len(self.pending)
        self.pending.clear()
        return True

    def _diverged(self, value: float, step: int):
        kept = (
            f"the last good checkpoint {self.last_path} is kept"
            if self.last_path.is_file()
            else "no checkpoint was written yet"
        )
        raise TrainingDiverged(f"loss became {value} at epoch {self.epoch + 1}, step {step}; {kept}. "
                               "Lower optim.lr or set optim.grad_clip")  # fmt: skip


def set_trunk_frozen(objective, frozen: bool) -> bool:
    """Train mode, with the trunk taking no gradient and keeping its batch-norm statistics when ``frozen``."""
    trunk = objective.model.net.trunk
    for p in trunk.parameters():
        p.requires_grad_(not frozen)
    objective.train()
    if frozen:
        trunk.eval()
    return frozen


def calibrate(fabric: Fabric, cfg: TrainConfig, objective, optimizer, loader, augment, warmup: int = 3,
              timed: int = 20) -> dict:  # fmt: skip
    """The steps per epoch that fill ``cfg.budget_minutes / cfg.epochs`` minutes of training, from
    the time of ``timed`` training steps (after ``warmup``); the model and optimiser are restored
    afterwards, so the run itself starts from its seeded initial state. Process 0's figure holds."""
    saved = copy.deepcopy(objective.state_dict()), copy.deepcopy(optimizer.state_dict())
    set_trunk_frozen(objective, cfg.freeze_trunk_epochs > 0)
    it = batches(loader, warmup + timed)
    start = 0.0
    for i, batch in enumerate(it):
        if i == warmup:
            synchronize(fabric.device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(objective(*augmented(batch, augment, cfg.channels_last)))
        optimizer.step()
    synchronize(fabric.device)
    step_seconds = (time.perf_counter() - start) / timed
    objective.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    epoch_seconds = cfg.budget_minutes * 60 / max(cfg.epochs, 1)
    steps = fabric.broadcast(max(1, round(epoch_seconds / step_seconds)), src=0)
    return {"step_seconds": step_seconds, "steps_per_epoch": steps, "timed_steps": timed,
            "budget_minutes": cfg.budget_minutes}  # fmt: skip


def budget_steps(fabric: Fabric, cfg: TrainConfig, objective, optimizer, loader, augment) -> dict:
    """The steps per epoch of a time budget: ``steps_per_epoch`` if the config pins them (a
    committed run re-run takes the same steps on any machine), else ``calibrate``'s."""
    if cfg.steps_per_epoch:
        found = {"steps_per_epoch": cfg.steps_per_epoch, "pinned": True, "budget_minutes": cfg.budget_minutes}
        fabric.print(f"budget {cfg.budget_minutes:g} min: {cfg.epochs} epochs of {cfg.steps_per_epoch} steps (pinned)")
        return found
    found = calibrate(fabric, cfg, objective, optimizer, loader, augment)
    fabric.print(
        f"budget {cfg.budget_minutes:g} min: {found['step_seconds']:.3f} s per step, "
        f"{cfg.epochs} epochs of {found['steps_per_epoch']} steps"
    )
    return found


def running_totals(history: list[dict], record: dict) -> dict:
    """Training minutes and images seen up to the end of ``record``'s epoch (the budget spent)."""
    return {
        "train_minutes": (sum(r.get("train_seconds", 0.0) for r in history) + record["train_seconds"]) / 60,
        "images_seen": sum(r.get("images", 0) for r in history) + record["images"],
    }


def step_scheduler(scheduler, value: float | None, cfg: TrainConfig) -> None:
    """The epoch's scheduler step (per-step schedulers step in ``train_epoch``)."""
    if steps_per_optimiser_step(cfg.optim):
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if value is not None:
            scheduler.step(value)
    elif scheduler is not None:
        scheduler.step()


def log_epoch(fabric: Fabric, out: Path, cfg: TrainConfig, record: dict, history: list[dict]) -> None:
    """``history.json``, TensorBoard scalars and a one-line summary (process 0)."""
    fabric.log_dict(
        {k: v for k, v in record.items() if isinstance(v, int | float) and k != "epoch"}, step=record["epoch"]
    )
    if fabric.is_global_zero:
        atomic_write_json(out / "history.json", history)
        for logger in fabric.loggers:
            logger.experiment.flush()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith(("val_", "test_")))
    fabric.print(
        f"epoch {record['epoch']}/{cfg.epochs}: loss {record['train_loss']:.4f}{', ' + shown if shown else ''}, "
        f"{record['images_per_s']:.0f} img/s"
    )


def test_best(
    fabric: Fabric, model, out: Path, data: TrainingData, best_epoch: int | None, image_size: int, progress: bool
) -> dict | None:
    """The best checkpoint on the test pairs: ``metrics.json`` and ``test_scores.tsv`` (process 0).

    Beside the model's fixed threshold, the test pairs are scored at the checkpoint's
    operating thresholds chosen on the validation pairs: ``at_val_threshold`` (the best accuracy)
    and ``at_val_far_threshold`` (a false accept rate of at most 1e-3). A local-global model on
    a synthetic set with mark masks also gets its ``pointing`` score (``backbone.evaluation.pointing``)."""
    best_path = out / "best.ckpt"
    if data.test is None or not fabric.is_global_zero or not best_path.is_file():
        return None
    best = read_checkpoint(best_path)
    model.load_state_dict(best["model"])  # process 0 only
    ev = evaluate_pairs(model, data.test.pairs, data.test.faces, data.eval_transform, progress=progress)
    labels = np.array([p.same for p in data.test.pairs])
    metrics = with_val_threshold(
        ev.metrics, ev.scores, labels, best.get("val_threshold"), best.get("val_far_threshold")
    )
    metrics = {**metrics, "checkpoint": shareable_path(best_path), "epoch": best_epoch}
    pointing = pairs_pointing(model, data.test.pairs, data.test.faces, image_size)
    if pointing is not None:  # a local-global model on a set with mark masks
        metrics["pointing"] = pointing
    metrics["summary"] = summary_row(metrics)
    atomic_write_json(out / "metrics.json", metrics)
    write_scores(out / "test_scores.tsv", data.test.pairs, ev.scores)
    return metrics


def keep_initial(fabric: Fabric, model, data: TrainingData, run: Progress, state, best_path: Path, last_path: Path,
                 out: Path, cfg: TrainConfig) -> None:  # fmt: skip
    """``epochs: 0``: the initial model (a pretrained backbone as it is) is the run's result, validated
    and saved as ``best.ckpt`` (epoch 0) and ``last.ckpt``."""
    metrics = validate(model, data.val, data.eval_transform) if data.val is not None and fabric.is_global_zero else {}
    run.best, run.best_epoch = fabric.broadcast(metrics.get(cfg.monitor), src=0), 0
    run.history.append({"epoch": 0, "train_seconds": 0.0, **metrics})
    save_checkpoint(fabric, best_path, state())
    if fabric.is_global_zero:
        atomic_write_json(out / "history.json", run.history)
    save_checkpoint(fabric, last_path, state())


def train(config: TrainConfig, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train ``config`` into its ``out_dir``, resuming from its ``last.ckpt`` unless ``resume`` is
    False. A fresh run where a run is already trains in a folder beside it (``fresh_folder``) and
    takes the run's place when its first checkpoint is written: killed before, the old run is as
    it was; never a folder of both."""
    check_inputs(config)
    target = project_path(config.out_dir)
    if rank_zero_only.rank == 0:
        settle_fresh(target)
    out = fresh_folder(target) if not resume and _holds_run(target) else target
    if out != target and rank_zero_only.rank == 0 and out.exists():
        shutil.rmtree(out)  # an earlier fresh start that never reached its first checkpoint
    logger = TensorBoardLogger(root_dir=str(out), name="tensorboard", version="")
    fabric = Fabric(accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes,
                    precision=resolve_precision(config.precision), loggers=logger)  # fmt: skip
    fabric.launch()
    # "auto" settings as they are on this device (the run's config.yaml records them)
    return _train(fabric, resolved(config, fabric.device), out, logger, resume, progress, target)


def fresh_folder(out: Path) -> Path:
    """Where a fresh run trains until its first checkpoint, while ``out`` keeps the run it replaces."""
    return out.parent / f".{out.name}.fresh"


def _replaced(out: Path) -> Path:
    return out.parent / f".{out.name}.replaced"


def _holds_run(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def settle_fresh(out: Path) -> None:
    """Finish what a fresh run killed around its first checkpoint left: a fresh folder without a
    checkpoint goes (the old run is in ``out``, as it was); one whose swap was cut between its two
    renames takes ``out``'s place; the replaced run goes once ``out`` is whole again."""
    fresh, replaced = fresh_folder(out), _replaced(out)
    if fresh.is_dir():
        if not out.exists() and (fresh / "last.ckpt").is_file():
            fresh.rename(out)
        else:
            shutil.rmtree(fresh)
    if replaced.is_dir():
        if out.exists():
            shutil.rmtree(replaced)
        else:
            replaced.rename(out)


def swap_in(fabric: Fabric, fresh: Path, out: Path, logger: TensorBoardLogger) -> Path:
    """The fresh run, whose first checkpoint is written, takes ``out``'s place (two renames; the
    replaced run is then deleted); returns ``out``. Its TensorBoard file is closed first and the
    logger goes on in ``out`` (TensorBoard appends to its event file by path)."""
    logger.finalize("success")
    if fabric.is_global_zero:
        if out.exists():
            out.rename(_replaced(out))
        fresh.rename(out)
        shutil.rmtree(_replaced(out), ignore_errors=True)
    fabric.barrier()
    logger._root_dir, logger._experiment = str(out), None  # Fabric's logger has no public way to move
    return out


def _train(fabric: Fabric, cfg: TrainConfig, out: Path, logger, resume: bool, progress: bool,
           target: Path | None = None) -> TrainResult:  # fmt: skip
    mode = MONITORS[cfg.monitor]
    target = target or out
    last_path, best_path = out / "last.ckpt", out / "best.ckpt"
    rank0 = fabric.is_global_zero

    prior = read_checkpoint(last_path) if resume and last_path.is_file() else None  # weights_only: runs no code
    if prior is not None and _comparable(TrainConfig.from_dict(prior["train_config"]).to_dict()) != _comparable(
        cfg.to_dict()
    ):
        raise ValueError(f"{out} holds a run with another configuration; use another out_dir or remove it (--fresh)")

    # ---- model, data, regime, optimiser (the initial weights depend on the seed alone)
    fabric.seed_everything(
        cfg.seed, workers=False, verbose=False
    )  # workers=False: loader workers draw from the loader generator, as before
    model = build_model(cfg.model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = build_training_data(cfg, progress=progress and rank0, rank=fabric.global_rank, world_size=fabric.world_size,
                               device=fabric.device)  # fmt: skip
    check_monitor(cfg, data)
    objective: Regime = REGIMES.create(cfg.loss.regime, model, cfg.loss, data.num_classes)
    raw_optimizer = optimizer = create_optimizer(objective.parameters(), cfg.optim)
    run = Progress()
    extra_keys = [k for k in objective.state_dict() if not k.startswith("model.")]  # e.g. ArcFace centres
    if prior is not None:
        model.load_state_dict(prior["model"])
        objective.load_state_dict(prior["objective_extra"], strict=False)
        optimizer.load_state_dict(prior["optimizer"])
        run = Progress(**{k: prior[k] for k in vars(Progress()) if k in prior})
        set_rng_state(prior["rng"])
        fabric.print(f"resuming {out} after epoch {run.epoch}")
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.ckpt.partial"):  # left by a kill inside save_checkpoint: never read
            stale.unlink()
        cfg.save(out / "config.yaml")
    raw_objective = objective
    if cfg.compile:
        objective = torch.compile(objective)  # its parameters are raw_objective's: checkpoints are unchanged
    objective, optimizer = fabric.setup(objective, optimizer)
    loader = data.loader  # TensorBatches: on the device already; a DataLoader's batches Fabric moves there
    if isinstance(loader, DataLoader):
        loader = fabric.setup_dataloaders(loader, use_distributed_sampler=False)  # sharded already
    if cfg.budget_minutes and cfg.epochs and prior is None:
        with tf32(fabric.device):
            run.calibration = budget_steps(fabric, cfg, objective, optimizer, loader, data.batch_transform)
        run.steps_per_epoch = run.calibration["steps_per_epoch"]
    steps = epoch_steps(cfg, loader, run)
    scheduler = create_scheduler(raw_optimizer, cfg.optim, cfg.epochs, cfg.epochs * steps, mode)
    if prior is not None and scheduler is not None and prior["scheduler"] is not None:
        scheduler.load_state_dict(prior["scheduler"])
    stopped_early = False

    def state() -> dict:
        return {
            "model_config": cfg.to_dict()["model"],
            "train_config": cfg.to_dict(),
            "model": model,
            "objective_extra": {k: v for k, v in raw_objective.state_dict().items() if k in extra_keys},
            "optimizer": optimizer,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            **vars(run),
            "rng": rng_state(),
            **{k: run.history[-1].get(k) if run.history else None for k in ("val_threshold", "val_far_threshold")},
        }

    # ---- epochs (none: the initial model is evaluated as it is)
    if cfg.epochs == 0 and prior is None:
        keep_initial(fabric, model, data, run, state, best_path, last_path, out, cfg)
        if out != target:
            out = swap_in(fabric, out, target, logger)
            last_path, best_path = out / "last.ckpt", out / "best.ckpt"
    while run.epoch < cfg.epochs:
        with tf32(fabric.device):  # the training steps only: validation and the test pairs embed in full fp32
            record = train_epoch(
                fabric, cfg, objective, optimizer, scheduler, loader, data, run.epoch, steps, last_path, progress
            )
        metrics = validate(model, data.val, data.eval_transform) if data.val is not None and rank0 else {}
        if cfg.test_every_epoch and data.test is not None and rank0:
            metrics.update(test_curve_point(model, data.test, data.eval_transform, metrics.get("val_threshold")))
        value = fabric.broadcast(metrics.get(cfg.monitor), src=0)
        step_scheduler(scheduler, value, cfg)
        record = {**record, **metrics, **running_totals(run.history, record)}
        run.history.append(record)
        improved = run.update(value, mode)
        # last.ckpt is the commit point: what derives from this epoch (best.ckpt, history.json) is
        # written first, so a kill anywhere before it just redoes the epoch, identically.
        if improved:
            save_checkpoint(fabric, best_path, state())
        log_epoch(fabric, out, cfg, record, run.history)
        save_checkpoint(fabric, last_path, state())
        if out != target:  # a fresh run's first checkpoint: it takes the old run's place
            out = swap_in(fabric, out, target, logger)
            last_path, best_path = out / "last.ckpt", out / "best.ckpt"
        if cfg.early_stopping_patience and run.bad_epochs >= cfg.early_stopping_patience:
            stopped_early = True
            fabric.print(
                f"early stop: {cfg.monitor} has not improved for {run.bad_epochs} epochs "
                f"(best {run.best} at epoch {run.best_epoch})"
            )
            break
    logger.finalize("success")

    test_metrics = test_best(fabric, model, out, data, run.best_epoch, cfg.model.image_size, progress)
    return TrainResult(out, run.epoch, run.best_epoch, run.best, stopped_early, run.history, test_metrics, rank0)
