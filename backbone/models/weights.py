"""Reading weight files and checkpoints safely, and fitting their weights to a model.

A ``.ckpt``/``.pt`` file is a pickle, and unpickling arbitrary objects can run arbitrary code. Every
checkpoint and weight file here is read with ``torch.load(weights_only=True)``: tensors, numbers,
strings and plain containers load; anything else (a class, a function, ``os.system``) is refused
with :class:`UnsafeCheckpoint` before it runs. The checkpoints this workbook writes hold nothing else
(random states are stored as tensors and lists).
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backbone.data.errors import DataError, existing


class CheckpointError(DataError):
    """A checkpoint or weight file that cannot be used: unreadable, not ours, or not fitting its model."""


class UnsafeCheckpoint(CheckpointError):
    """A checkpoint or weight file holding Python objects beyond weights: refused, nothing of it ran."""


def read_weights(path: str | Path, what: str = "checkpoint", map_location: Any = "cpu", hint: str | None = None) -> Any:
    """The content of a torch file, loaded with ``weights_only=True``; errors name the file."""
    path = existing(path, what, hint=hint)
    try:
        with warnings.catch_warnings():  # torch's note on a raw pickle's protocol: the refusal below says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused(str(exc), path)
        if refused is None:
            raise CheckpointError(f"cannot read {what} {path}: not a torch file, or damaged") from None
        earlier = (
            "; a checkpoint of an earlier version of this workbook holds numpy random states: if you made it, "
            "`backbone upgrade-checkpoint FILE --trust` re-saves it safely"
            if "numpy" in refused
            else ""
        )
        raise UnsafeCheckpoint(
            f"refused to load {what} {path}: it holds {refused}, and loading that could run code from the file. "
            "Nothing of it ran. Only load files you trust with torch.load(weights_only=False); "
            f"checkpoints written by this workbook never need it{earlier}"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, zipfile errors... for damaged files
        raise CheckpointError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from None


def _refused(message: str, path: Path) -> str | None:
    """What torch's weights-only reader refused, in words, from its error message: a global (allowed
    or blocked), or a pickle instruction a file of weights never holds in a raw pickle (a file that
    starts with pickle's PROTO opcode); None for a damaged or foreign file."""
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"Unsupported global: ([\w.]+)", message)
    if found:
        return f"Python objects beyond weights ({found.group(1)})"
    with open(path, "rb") as f:
        is_pickle = f.read(1) == b"\x80"  # PROTO: how every pickle of protocol 2 or later starts
    if "Weights only load failed" in message and is_pickle:
        detail = re.search(r"(Unsupported operand \d+|Unsupported class [\w.]+)", message)
        return f"pickle content that is no file of weights ({detail.group(1) if detail else 'refused by the reader'})"
    return None


def fit_weights(model: nn.Module, state: Any, source: str | Path, what: str = "checkpoint") -> None:
    """Load ``state`` into ``model`` when it fits exactly; otherwise a CheckpointError naming
    ``source`` and the missing, unexpected and wrongly shaped keys."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{what} {source} holds no state dict (a mapping of names to tensors)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state) if own[k].shape != state[k].shape)  # fmt: skip
    if missing or unexpected or wrong:
        parts = [f"{len(keys)} {kind} (e.g. {', '.join(keys[:3])})" for kind, keys in
                 (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong)) if keys]  # fmt: skip
        raise CheckpointError(f"{what} {source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state)
