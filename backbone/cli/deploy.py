"""``backbone export`` and ``backbone serve``: a trained model outside Python, and behind HTTP
(``serve`` lives in ``backbone.deploy.serving``, which the container runs without PyTorch)."""

from __future__ import annotations

import argparse

from backbone.deploy.serving import register_serve
from backbone.paths import cli_file, cli_path, project_relative


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export", help="a checkpoint's embedding network as ONNX or TorchScript",
                            description=cmd_export.__doc__)  # fmt: skip
    p.add_argument("--checkpoint", required=True, type=cli_path, help="a training run's best.ckpt (or any checkpoint)")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="the model file's format")
    p.add_argument("--out", required=True, type=cli_file, help="the model file; its sidecar goes beside it (FILE.json)")
    p.set_defaults(func=cmd_export)
    register_serve(commands)


def cmd_export(args: argparse.Namespace) -> int:
    """Write the checkpoint's embedding network (aligned uint8 crops in, L2-normalised embeddings
    out, dynamic batch) and its sidecar (input, alignment, distance, the run's validation-chosen
    threshold, provenance) beside it."""
    from backbone.deploy.export import describe, export_model
    from backbone.deploy.runtime import sidecar_path

    sidecar = export_model(args.checkpoint, args.format, args.out)
    print(describe(sidecar))
    print(f"wrote {project_relative(args.out)} and {project_relative(sidecar_path(args.out))}")
    return 0
