"""Numbers typed on the command line (``argparse`` types): finite, and in the range a setting takes.

``nan`` and ``inf`` parse as floats in Python; as a threshold, ``nan`` would make every pair
"DIFFERENT" and exit 0. These types refuse them with argparse's own message.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def finite(arg: str) -> float:
    """A finite number."""
    try:
        value = float(arg)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{arg!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{arg!r} is not a finite number")
    return value


def within(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """A finite number from ``low`` (excluded with ``low_open``) to ``high``."""

    def parse(arg: str) -> float:
        value = finite(arg)
        if value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{arg} is not in {'(' if low_open else '['}{low:g}, {high:g}]")
        return value

    return parse
