"""Optimisers and learning-rate schedulers, registered by name (``optim.name``, ``optim.scheduler``).

A new one is one function with ``@OPTIMISERS.register("name")`` (``params, cfg -> Optimizer``) or
``@SCHEDULERS.register("name")`` (``optimizer, cfg, length, mode -> scheduler or None``; ``mode``
is ``"max"`` or ``"min"``, how the monitored metric improves). ``cfg`` is the ``optim`` section
of the training config. A scheduler steps once per epoch, and ``length`` is the run's epochs;
one registered with ``per_step=True`` steps after every optimiser step, and ``length`` is the
run's optimiser steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from backbone.registry import Registry

if TYPE_CHECKING:
    from backbone.training.config import OptimConfig

OPTIMISERS: Registry = Registry("optimiser")
SCHEDULERS: Registry = Registry("scheduler")


@OPTIMISERS.register("adamw")
def adamw(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMISERS.register("adam")
def adam(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMISERS.register("sgd")
def sgd(params: list, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (``cfg.momentum``)."""
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)


@SCHEDULERS.register("none")
def constant(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, mode: str) -> None:
    return None


@SCHEDULERS.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, mode: str) -> Any:
    """Cosine decay to 0 over the run's epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


@SCHEDULERS.register("cosine-steps", per_step=True)
def cosine_steps(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps: int, mode: str) -> Any:
    """Linear warm-up over ``cfg.warmup_steps``, then cosine decay to 0 at the run's last step."""
    warmup, steps = cfg.warmup_steps, max(steps, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup, steps - warmup) / max(steps - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@SCHEDULERS.register("step")
def step(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, mode: str) -> Any:
    """Multiply the rate by ``cfg.gamma`` every ``cfg.step_size`` epochs."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)


@SCHEDULERS.register("plateau")
def plateau(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, mode: str) -> Any:
    """Multiply the rate by ``cfg.gamma`` after ``cfg.plateau_patience`` epochs without a better
    monitored metric (stepped with its value)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=cfg.gamma, patience=cfg.plateau_patience
    )


def create_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg.name`` over the parameters that take gradients."""
    return OPTIMISERS.create(cfg.name, [p for p in params if p.requires_grad], cfg)


def steps_per_optimiser_step(cfg: OptimConfig) -> bool:
    """Whether the scheduler ``cfg.scheduler`` steps after every optimiser step (else once per epoch)."""
    return bool(SCHEDULERS.info(cfg.scheduler).get("per_step"))


def create_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, steps: int, mode: str) -> Any:
    """The scheduler ``cfg.scheduler`` (None for ``none``) over a run of ``epochs`` epochs of ``steps`` steps in all."""
    length = steps if steps_per_optimiser_step(cfg) else epochs
    return SCHEDULERS.create(cfg.scheduler, optimizer, cfg, length, mode)
