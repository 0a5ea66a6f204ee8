"""How long `backbone --help` and each command's `--help` take: a fresh Python each time, as a user
runs them (the best of ``--runs``, and the median), side by side in one run.

    .venv/bin/python benchmarks/cli_help.py [--runs 5]

Building the parser imports only the commands' names and defaults; each command imports what it
uses (PyTorch, scikit-learn, FastAPI) when it runs (tests/test_devices.py checks that).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [[], ["data", "synth"], ["train"], ["evaluate"], ["verify"], ["experiments", "run"], ["export"], ["serve"]]


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "backbone", *args, "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':34s} {'best s':>7s} {'median s':>9s}")
    for command in COMMANDS:
        times = [seconds(command) for _ in range(args.runs)]
        name = " ".join(["backbone", *command, "--help"])
        print(f"{name:34s} {min(times):7.2f} {statistics.median(times):9.2f}")


if __name__ == "__main__":
    main()
