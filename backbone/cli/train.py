"""``backbone train``: train a model from a config file (YAML or JSON)."""

from __future__ import annotations

import argparse

from backbone.paths import cli_folder, cli_path, project_relative


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="train a verification model", description=cmd_train.__doc__)
    p.add_argument("--config", type=cli_path, help="YAML/JSON training config (default: built-in defaults)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. model.attention=cbam"
    )
    p.add_argument("--out-dir", type=cli_folder, help="where checkpoints, history and metrics go")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start again instead of resuming; the run already there stays until the new first checkpoint",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser(
        "upgrade-checkpoint", help="re-save a checkpoint of an earlier version", description=cmd_upgrade.__doc__
    )
    p.add_argument("checkpoints", nargs="+", type=cli_path, metavar="FILE", help="checkpoints to re-save in place")
    p.add_argument("--trust", action="store_true", help="required: the files are yours (loading them runs their code)")
    p.set_defaults(func=cmd_upgrade)


def cmd_train(args: argparse.Namespace) -> int:
    """Train; an interrupted run resumes from its last checkpoint when started again.

    Several GPUs or processes: torchrun --nproc_per_node=N -m backbone train --config FILE (see docs/multi-gpu.md)"""
    from backbone.training.config import TrainConfig  # PyTorch: imported by the command
    from backbone.training.trainer import TrainingDiverged, train

    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    overrides = args.set + ([f"out_dir={project_relative(args.out_dir)}"] if args.out_dir else [])
    config = config.with_overrides(overrides)
    try:
        result = train(config, resume=not args.fresh, progress=not args.no_progress)
    except TrainingDiverged as exc:  # the settings' doing (a learning rate too high, most often): no traceback
        raise ValueError(str(exc)) from None
    if not result.global_zero:
        return 0  # under torchrun: process 0 reports
    best = f"{result.best_metric:.4f}" if result.best_metric is not None else "n/a"
    print(f"{result.out_dir}: {result.epochs_run} epochs, best {config.monitor} {best} at epoch {result.best_epoch}"
          + (" (stopped early)" if result.stopped_early else ""))  # fmt: skip
    if result.test_metrics:
        print(f"test metrics: {result.out_dir / 'metrics.json'}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    """Re-save checkpoints written by an earlier version of the workbook (which stored numpy random
    states) so that they load without running code (weights_only). Reading them this once runs any
    code they hold, so only upgrade files you made: --trust says you did."""
    from backbone.training.trainer import upgrade_checkpoint

    if not args.trust:
        raise ValueError("upgrading unpickles each file, which runs any code it holds: pass --trust for files you made")
    for path in args.checkpoints:
        print(f"upgraded {project_relative(upgrade_checkpoint(path))}")
    return 0
