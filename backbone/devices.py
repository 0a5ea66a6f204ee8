"""Where models run: one ``device`` setting for the command line, the notebooks and the Python API.

``"auto"`` (the default everywhere) is a GPU when one is present, else the CPU; ``"cpu"``,
``"cuda"`` and ``"cuda:N"`` ask for one. Training goes through Lightning Fabric's own
``accelerator`` and ``devices`` settings instead (several GPUs, several machines).

How fp32 is computed on a GPU: training steps in TF32 (``backbone.training.trainer.tf32``),
everything that scores faces (evaluation, verification, attention maps, the service) in full
fp32 (``exact_fp32``), so a checkpoint's scores are the same, to ~1e-6, on any device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PyTorch is imported where a device is made: the command line's parser needs only the names
    import torch

DEVICES_HELP = 'where models run: "auto" (a GPU when present, else the CPU), "cpu", "cuda" or "cuda:N"'


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device ``device`` names (None or "auto": ``default_device()``); a ValueError says why
    one cannot be used here (a typo, no CUDA in this PyTorch or machine, no such GPU)."""
    import torch

    if device is None or device == "auto":
        return _indexed(default_device())
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {device!r} is not a device: use {DEVICES_HELP}") from None
    if found.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this machine or this PyTorch ({torch.__version__}) has no CUDA GPU; "
                             'use "cpu" or "auto"')  # fmt: skip
        if found.index is not None and found.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA GPUs (cuda:0 ...)")
    return _indexed(found)


def _indexed(device: torch.device) -> torch.device:
    """A GPU named with its index ("cuda" -> "cuda:0", the current one): what is reported is exact."""
    import torch

    return (
        torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda" and device.index is None else device
    )


@contextmanager
def allow_tf32(allowed: bool) -> Iterator[None]:
    """PyTorch's TF32 switches for matrix products and cuDNN as ``allowed``, put back afterwards
    (process-wide flags of PyTorch's; they change nothing on the CPU). The legacy flags are the
    ones PyTorch itself and its exporters read: cuDNN's convolutions and RNNs stay alike."""
    import torch

    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = allowed
        yield
    finally:
        for f, value in zip(flags, before):
            f.allow_tf32 = value


def exact_fp32() -> AbstractContextManager[None]:
    """Full fp32 on a GPU, not TF32 (PyTorch's default for cuDNN convolutions, whose 10-bit
    mantissa moves a score by ~1e-3): what every path that scores faces runs under."""
    return allow_tf32(False)
