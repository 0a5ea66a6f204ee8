"""Where a result or an artefact came from: the commit of the code that made it, and the
environment it ran in (versions, and what decides a CPU run's arithmetic)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

from backbone.paths import project_root

# what makes results and models: uncommitted changes here mark a commit "-dirty"
CODE = ("backbone", "notebooks", "pyproject.toml")
# what decides a training run's arithmetic beyond the code: the instruction set PyTorch's own kernels
# dispatch to (ATEN_CPU_CAPABILITY), the cap on oneDNN's (ONEDNN_MAX_CPU_ISA: oneDNN, which runs the
# convolutions, picks its kernels itself, by the CPU), the CPU, oneDNN, the thread count, torch,
# deterministic algorithms, the GPU. Two runs that agree in all of these compute the same numbers;
# in any one of them, they may part.
FINGERPRINT = ("cpu_capability", "onednn_isa", "cpu_model", "onednn", "cpu_threads", "torch",
               "deterministic_algorithms", "cuda")  # fmt: skip
# everything else that touches pixels or training: a fresh install changing one changes the numbers
LIBRARIES = ("torchvision", "pillow", "timm", "pytorch-metric-learning", "lightning-fabric", "facenet-pytorch")


def code_commit() -> str:
    """The project's short commit, ``-dirty`` when the code has uncommitted changes; "unknown"
    outside a git checkout."""
    try:
        git = [subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=project_root()).stdout.strip()
               for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", *CODE])]  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return git[0] + ("-dirty" if git[1] else "")


def environment() -> dict:
    """Versions and hardware of this process, recorded next to results: Python and the libraries,
    the machine, the ``FINGERPRINT`` keys and the code's commit."""
    import numpy as np
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        **{name: _version(name) for name in LIBRARIES},
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": _onednn_version(),
        "onednn_isa": onednn_isa(),
        "cpu_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),  # the trainer keeps the default
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": code_commit(),
    }


def runs_environment(recorded: dict[str, dict | None], here: dict) -> dict:
    """The environment a set of runs was made in, for ``environment.json`` beside their table.

    Args:
        recorded: Each run's environment as its runner recorded it (None: a run from before
            runs recorded one).
        here: This process's ``environment()`` (the analysis).

    Returns:
        ``here`` with the ``FINGERPRINT`` keys taken from the runs, and ``fingerprint_from``: "runs"
        (a key on which the runs differ holds the sorted list of their values), "analysis" (no
        run recorded one: the analysis's own, as before runs recorded theirs) or "unknown: ..."
        (some did, some did not: no fingerprint can stand for all of them).
    """
    known = {name: env for name, env in recorded.items() if env}
    if not known:
        return {**here, "fingerprint_from": "analysis"}
    if len(known) < len(recorded):
        missing = sorted(set(recorded) - set(known))
        return {**here, "fingerprint_from": f"unknown: {len(missing)} of {len(recorded)} runs recorded none "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"}  # fmt: skip
    out = {**here, "fingerprint_from": "runs"}
    for key in FINGERPRINT:
        values = {repr(env.get(key)): env.get(key) for env in known.values()}
        out[key] = next(iter(values.values())) if len(values) == 1 else [values[k] for k in sorted(values)]
    return out


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's name from ``/proc/cpuinfo`` (Linux), else what ``platform`` says."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def onednn_isa() -> str | None:
    """The cap set on oneDNN's instruction set (``ONEDNN_MAX_CPU_ISA``, or its old name
    ``DNNL_MAX_CPU_ISA``), None when unset: oneDNN then takes the best the CPU has, which the CPU
    model stands for. (``ATEN_CPU_CAPABILITY`` leaves oneDNN's convolutions as they are: a run of the
    default grid under ``=avx2`` alone gives the same numbers as without it.)"""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or None


def _onednn_version() -> str | None:
    """oneDNN's version as PyTorch's build reports it (``torch.__config__.show()``)."""
    import torch

    found = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", torch.__config__.show())
    return found.group(1) if found else None
