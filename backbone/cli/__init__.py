"""``backbone`` command line: ``python -m backbone`` or the ``backbone`` console script.

Each command group lives in its own module and adds its subcommands with ``register``.
Errors go to stderr as one readable message and a non-zero exit: 1 for bad data or a failed
check, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap

from backbone import __version__
from backbone.cli import data, deploy, evaluate, experiments, train
from backbone.data.errors import DataError

GROUPS = (data, train, evaluate, experiments, deploy)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help (unless it has none, is a flag or an empty list, or the
    help already says it), and descriptions taken from the commands' docstrings: their paragraphs
    kept, re-wrapped, and reStructuredText's marks (``literal``, :role:`target`) removed."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        quiet = default is None or default is False or default == [] or default is argparse.SUPPRESS
        if quiet or "default" in text or not (action.option_strings or action.nargs in ("?", "*")):
            return text
        return f"{text} (default: %(default)s)"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", inspect.cleandoc(text)).replace("``", "")
        paragraphs = (" ".join(p.split()) for p in text.split("\n\n"))
        return "\n\n".join(textwrap.fill(p, width, initial_indent=indent, subsequent_indent=indent) for p in paragraphs)


class Parser(argparse.ArgumentParser):
    """The command line's parsers (subcommands' too: argparse makes them of their parent's class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="backbone", description="Face-verification workbook tools.")
    parser.add_argument("--version", action="version", version=f"backbone {__version__}")
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def error_message(exc: BaseException) -> str:
    """What the user reads of an error: its message; for an operating system's error, the file
    first and the reason ("out/x.json: Is a directory"), never a traceback."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, DataError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError, KeyError, OSError) as exc:
        print(f"backbone: error: {error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("backbone: interrupted", file=sys.stderr)
        return 130
