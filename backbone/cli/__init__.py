"""``backbone`` command line: ``python -m backbone`` or the ``backbone`` console script.

Each command group lives in its own module and adds its subcommands with ``register``.
Errors go to stderr as one readable message and a non-zero exit: 1 for bad data or a failed
check, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys

from backbone import __version__
from backbone.cli import data, deploy, evaluate, experiments, train
from backbone.data.errors import DataError

GROUPS = (data, train, evaluate, experiments, deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backbone", description="Face-verification workbook tools.")
    parser.add_argument("--version", action="version", version=f"backbone {__version__}")
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, FileNotFoundError, FileExistsError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"backbone: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("backbone: interrupted", file=sys.stderr)
        return 130
