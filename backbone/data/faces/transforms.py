"""Transforms on cached uint8 crops (3xHxW tensors), ending in facenet's fixed standardisation.

Train-time augmentation is mild (small affine, colour jitter, optional horizontal flip): faces
are already aligned. Flipping mirrors moles and scars, which are what tells twins apart, so
twin experiments usually set ``hflip=0``.
"""

from __future__ import annotations

import torch
from facenet_pytorch import fixed_image_standardization  # (x - 127.5) / 128
from torchvision.transforms import v2


def _resize(size: int | None) -> list:
    return [v2.Resize((size, size), antialias=True)] if size else []


STANDARDISE = [v2.ToDtype(torch.float32), v2.Lambda(fixed_image_standardization)]


def eval_transform(size: int | None = None) -> v2.Compose:
    """Resize (optional) and standardise: what evaluation and verification use."""
    return v2.Compose(_resize(size) + STANDARDISE)


def train_transform(
    size: int | None = None,
    hflip: float = 0.5,
    degrees: float = 8.0,
    translate: float = 0.04,
    scale: tuple[float, float] = (0.95, 1.05),
    jitter: float = 0.2,
) -> v2.Compose:
    """Resize first (augmenting fewer pixels is cheaper), mild augmentation, then standardise."""
    steps = [
        v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale),
        v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 10),
    ]
    if hflip > 0:
        steps.insert(0, v2.RandomHorizontalFlip(hflip))
    return v2.Compose(_resize(size) + steps + STANDARDISE)


def to_uint8_image(x: torch.Tensor) -> torch.Tensor:
    """Undo the standardisation (for showing model inputs): 3xHxW float -> uint8."""
    return (x * 128.0 + 127.5).round().clamp(0, 255).to(torch.uint8)
