"""The benchmarks' one timer: run a call over and over for a few seconds, after a warm-up.

Imported by the scripts beside it (``python benchmarks/NAME.py`` puts this folder on the path).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def seconds_per_call(fn: Callable[[], object], seconds: float, min_calls: int = 1) -> float:
    """Mean seconds of ``fn()`` over at least ``seconds`` and ``min_calls`` calls, after one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < min_calls:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def per_second(fn: Callable[[], object], items: int, seconds: float, min_calls: int = 1) -> float:
    """Items per second of ``fn``, which handles ``items`` per call (see ``seconds_per_call``)."""
    return items / seconds_per_call(fn, seconds, min_calls)
