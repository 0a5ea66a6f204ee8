"""``backbone experiments``: run the experiment grid with papermill, and analyze the runs."""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from backbone.arguments import within
from backbone.atomic import atomic_write_text
from backbone.experiments.grid import load_grid
from backbone.experiments.runner import ExperimentFailed, run_analysis, run_grid
from backbone.paths import cli_folder, cli_path, project_relative, project_root


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("experiments", help="run the experiment grid and analyze it", description=__doc__)
    sub = group.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("run", help="execute every experiment notebook, then the analysis", description=cmd_run.__doc__)
    p.add_argument("--grid", type=cli_path, default=project_root() / "experiments" / "grid.yaml", help="the grid file")
    p.add_argument("--runs", type=cli_path, help="where runs go (default: runs/ beside the grid file)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run these experiments only")
    p.add_argument("--force", action="store_true", help="run again even when complete (from scratch)")
    p.add_argument(
        "--shard", metavar="K/N", help="run every N-th experiment starting at the K-th (e.g. one Slurm array task)"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a parameter for every notebook (YAML value)"
    )
    p.add_argument(
        "--out",
        type=cli_folder,
        help="where the analysis writes its tables and figures (default: beside the grid file)",
    )
    p.add_argument("--no-analysis", action="store_true", help="skip the analysis notebook")
    p.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="experiments at a time (default 1; on a GPU, several small trainings share it)")  # fmt: skip
    p.add_argument("--svg", action="store_true", help="write every figure as SVG too (default: PNG only)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "analyze", help="run only the analysis notebook over the existing runs", description=cmd_analyze.__doc__
    )
    p.add_argument("--grid", type=cli_path, default=project_root() / "experiments" / "grid.yaml", help="the grid file")
    p.add_argument("--runs", type=cli_path, help="the runs' folder (default: runs/ beside the grid file)")
    p.add_argument("--out", type=cli_folder, help="where the tables and figures go (default: beside the grid file)")
    p.set_defaults(func=cmd_analyze)
    p = sub.add_parser(
        "compare", help="compare a re-run's results with the committed ones", description=cmd_compare.__doc__
    )
    p.add_argument("committed", type=cli_path, help="the folder of the committed results.csv (e.g. experiments)")
    p.add_argument("rerun", type=cli_path, help="the folder of the re-run's results.csv (e.g. experiments/reproduced)")
    p.add_argument(
        "--k",
        type=within(0, 100, low_open=True),
        default=2.0,
        help="rows that train nothing agree within K standard errors of their test pairs (default 2)",
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 unless every committed result is re-run and reproduces"
    )
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser(
        "stress", help="score models on test pairs under changes of light and quality", description=cmd_stress.__doc__
    )
    p.add_argument("--lfw", type=cli_folder, default=project_root().parent / "shared" / "data" / "lfw",
                   help="the clean images' data root (default: ../shared/data/lfw)")  # fmt: skip
    p.add_argument("--test-pairs", type=cli_path, help="the clean test pairs (default: LFW/pairsDevTest.txt)")
    p.add_argument("--val-pairs", type=cli_path, default=project_root() / "files" / "lfw_val_pairs.tsv",
                   help="clean validation pairs: dlib-native's threshold (default: files/lfw_val_pairs.tsv)")  # fmt: skip
    p.add_argument("--set", type=cli_folder, default=project_root() / "data" / "lfw-stress",
                   help="where the stress set's images are written (default: data/lfw-stress)")  # fmt: skip
    p.add_argument("--out", type=cli_folder, default=project_root() / "experiments" / "lfw" / "stress",
                   help="where the table, CSV and figure go (default: experiments/lfw/stress)")  # fmt: skip
    p.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="a checkpoint to score (default: the pretrained port as it was (flip, no dark retry), "
                        "with the dark retry, the default (zoom too), and, when trained, the distilled one)")  # fmt: skip
    p.add_argument("--no-native", action="store_true", help="leave out dlib's own pipeline")
    p.add_argument("--conditions", nargs="+", metavar="NAME", help="these conditions only (default: all)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="every N-th test pair only (default 1: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_stress)


def _params(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param {item!r} must look like key=value")
        key, value = item.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Run the grid: complete experiments are skipped, interrupted ones resume, a failing notebook
    stops the run with its error. The analysis then merges whatever runs exist."""
    root = project_root()
    grid = load_grid(args.grid, root)
    runs = args.runs or args.grid.parent / "runs"
    if args.svg:  # the notebooks' kernels inherit it (backbone.plots.figure_formats)
        os.environ["BACKBONE_FIGURE_FORMATS"] = "png,svg"
    try:
        report = run_grid(grid, runs, root, args.only, args.shard, args.force, _params(args.param),
                          log_output=args.log_output, jobs=args.jobs)  # fmt: skip
        print(
            f"ran {len(report.ran)} ({', '.join(report.ran) or '-'}), skipped {len(report.skipped)} complete, in {report.seconds:.0f} s"
        )
        if not args.no_analysis:
            out = args.out or args.grid.parent
            notebook = run_analysis(grid, runs, out, root, log_output=args.log_output)
            print(f"analysis: {notebook}; tables in {out / 'results.md'}")
    except ExperimentFailed as exc:
        print(f"backbone: experiment failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Execute the analysis notebook over the runs that exist."""
    root = project_root()
    grid = load_grid(args.grid, root)
    try:
        notebook = run_analysis(grid, args.runs or args.grid.parent / "runs", args.out or args.grid.parent, root)
    except ExperimentFailed as exc:
        print(f"backbone: analysis failed: {exc}", file=sys.stderr)
        return 1
    print(f"analysis: {notebook}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare a re-run's results (``RERUN/results.csv``) with the committed ones. Where the
    environments' fingerprints match (instruction set, CPU, oneDNN, threads, torch, CUDA), every
    number of every run must agree to 4 decimals; where they differ, each setting's mean over its
    seeds (Welch's test, 95% family-wise) and every paired conclusion. Shows each run's wall time
    beside the committed one. Writes ``RERUN/comparison.md``."""
    from backbone.experiments.compare import compare, report  # SciPy's statistics: only when comparing

    comparison = compare(args.committed, args.rerun, args.k)
    text = report(comparison)
    title = f"# {project_relative(args.rerun)} against {project_relative(args.committed)}"
    atomic_write_text(args.rerun / "comparison.md", f"{title}\n\n{text}")
    print(text, end="")
    print(f"written to {args.rerun / 'comparison.md'}")
    return 1 if args.strict and not (comparison.ok and comparison.complete) else 0


DISTILLED = "experiments/lfw/runs/distilled-from-dlib/best.ckpt"


def cmd_stress(args: argparse.Namespace) -> int:
    """Write the stress set of the test pairs (every image under one change of light or quality,
    ``backbone.data.stress``), score it with dlib's own pipeline and with each checkpoint at its
    validation threshold, and write the table, ``stress.csv`` and the AUC figure into --out."""
    from backbone.evaluation.checkpoints import with_alignment
    from backbone.evaluation.pretrained import FLIP_MODEL, pretrained_checkpoint
    from backbone.evaluation.stress import StressPlan, run_stress, write_report

    skipped, checkpoints = [], {}
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--model {item!r} must look like NAME=CHECKPOINT")
        checkpoints[name] = cli_path(path)
    if not args.model:
        flip = pretrained_checkpoint(FLIP_MODEL)
        checkpoints["port (default)"] = pretrained_checkpoint()  # first: the quality table is of its faces
        checkpoints["port, flip + dark retry"] = flip
        checkpoints["port before (flip)"] = with_alignment(flip, flip.with_name(f"{flip.stem}-no-retry.ckpt"),
                                                           retry_dark=False)  # fmt: skip
        distilled = project_root() / DISTILLED
        if distilled.is_file():
            checkpoints["distilled-from-dlib"] = distilled
        else:
            skipped.append(f"distilled-from-dlib: not scored, {DISTILLED} does not exist (weights are not committed; "
                           "`make reproduce DATA=lfw` trains it, about an hour on 2 CPU cores)")  # fmt: skip
    plan = StressPlan(args.lfw, args.test_pairs or args.lfw / "pairsDevTest.txt", args.val_pairs, args.set,
                      checkpoints, not args.no_native, tuple(args.conditions) if args.conditions else None, args.every)  # fmt: skip
    for line in skipped:
        print(line)
    result = run_stress(plan, progress=not args.no_progress)
    print(f"written {write_report(result, args.out, plan, skipped)}")
    return 0
