"""From a notebook's parameters to a training config: what the training notebooks call.

The *budget* is the number of images the network sees per epoch, the same for every regime:
a batch of 64 pairs shows 128 images, a mined batch of 64 images shows 64, so with one budget a
triplet run takes twice as many steps as a contrastive one and sees as many faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from backbone.training.config import TrainConfig
from backbone.training.data import check_inputs
from backbone.training.regimes import REGIMES


def experiment_config(
    out_dir: str | Path,
    config_file: str | Path | None = None,
    regime: str = "contrastive",
    attention: str | None = None,
    epochs: int = 4,
    budget_images: int | None = None,
    seed: int = 0,
    overrides: Sequence[str] = (),
    check: bool = True,
) -> TrainConfig:
    """The training config of one experiment: a config file (or the defaults) plus the
    experiment's settings; ``overrides`` are ``key=value`` strings applied last.

    Relative paths are under the project root (``backbone.paths``). With ``check``, the inputs
    the config names must exist, so a notebook stops here, at its first cell, saying what makes a
    missing one (``MissingInput``)."""
    base = TrainConfig.load(config_file) if config_file else TrainConfig()
    sets = [
        f"name={Path(out_dir).name}",
        f"out_dir={out_dir}",
        f"loss.regime={regime}",
        f"model.attention={attention or 'null'}",
        f"epochs={epochs}",
        f"seed={seed}",
    ]
    cfg = base.with_overrides(sets + list(overrides))
    if budget_images:
        steps = max(1, budget_images // REGIMES.get(cfg.loss.regime).images_per_batch(cfg))
        cfg = cfg.with_overrides([f"steps_per_epoch={steps}"])
    if check:
        check_inputs(cfg)
    return cfg
