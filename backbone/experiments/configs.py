"""From a notebook's parameters to a training config: what the training notebooks call.

The *budget* is the number of images the network sees per epoch, the same for every regime:
a batch of 64 pairs shows 128 images, a mined batch of 64 images shows 64, so with one budget a
triplet run takes twice as many steps as a contrastive one and sees as many faces.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from backbone.experiments.grid import UNKNOWN, notebook_defaults
from backbone.settings import ConfigError
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


def check_training(notebook: Path, parameters: dict, where: str) -> None:
    """For a training notebook (its parameters cell defines ``regime`` and ``overrides``, as
    ``experiment_config`` takes them), the training config its parameters make must be valid: what
    the grid runner checks before it touches any run folder, so that a bad value (``optim.lr=fast``)
    stops the run with its name and never costs a finished run. Other notebooks pass unchecked;
    their first cell checks what they take."""
    defaults = notebook_defaults(notebook)
    if not {"regime", "overrides"} <= set(defaults):
        return
    takes = set(inspect.signature(experiment_config).parameters) - {"out_dir", "check"}
    args = {k: v for k, v in {**defaults, **parameters}.items() if k in takes and v is not UNKNOWN}
    try:
        experiment_config("check", **args, check=False)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
