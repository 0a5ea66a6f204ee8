"""Transforms on cached uint8 crops (3xHxW tensors), ending in facenet's fixed standardisation.

Train-time augmentation is mild (small affine, colour jitter, optional horizontal flip): faces
are already aligned. Flipping mirrors moles and scars, which are what tells twins apart, so
twin experiments usually set ``hflip=0``.

Two ways to augment the same way: ``train_transform``, one image at a time in the DataLoader's
workers; or :class:`BatchAugment`, a whole uint8 batch at once in the training process (one
``grid_sample`` for flip, rotation, scale and shift; jitter as per-image factors), which on a
few CPU cores costs a small fraction of the per-image pipeline and leaves the cores to the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from facenet_pytorch import fixed_image_standardization  # (x - 127.5) / 128
from torch import nn
from torchvision.transforms import v2


def _resize(size: int | None) -> list:
    return [v2.Resize((size, size), antialias=True)] if size else []


STANDARDISE = [v2.ToDtype(torch.float32), v2.Lambda(fixed_image_standardization)]


def augment_ranges(strength: float = 1.0) -> dict:
    """The augmentation ranges of ``train_transform`` and ``BatchAugment`` at a ``strength``
    (1: their defaults, mild, for aligned faces; 2: twice the rotation, shift, zoom and colour
    jitter, for small training sets that a model learns by heart)."""
    if strength < 0:
        raise ValueError(f"augmentation strength must be 0 or more, got {strength}")
    return {"degrees": 8.0 * strength, "translate": 0.04 * strength,
            "scale": (1 - 0.05 * strength, 1 + 0.05 * strength), "jitter": min(0.2 * strength, 0.9)}  # fmt: skip


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


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of RGB images (B, 3, H, W) -> (B, 1, H, W), as torchvision's grayscale."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


class BatchAugment(nn.Module):
    """``train_transform``'s augmentation for a whole batch, in the training process.

    Each image gets its own random flip (probability ``hflip``), rotation (± ``degrees``), scale
    and shift (± ``translate`` of the side), applied by one bilinear ``grid_sample`` (zeros
    outside, as ``RandomAffine``), then brightness, contrast and saturation factors in
    ``1 ± jitter``; then facenet's standardisation. Random numbers come from torch's global
    generator (seeded per epoch by the trainer).

    ``forward``: uint8 or float images ``(B, 3, H, W)`` in 0..255 -> standardised float ``(B, 3, H, W)``.
    """

    def __init__(
        self,
        hflip: float = 0.5,
        degrees: float = 8.0,
        translate: float = 0.04,
        scale: tuple[float, float] = (0.95, 1.05),
        jitter: float = 0.2,
    ):
        super().__init__()
        self.hflip, self.degrees, self.translate, self.scale, self.jitter = hflip, degrees, translate, scale, jitter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, device = len(x), x.device
        x = x.float()
        angle = _uniform(b, -self.degrees, self.degrees, device) * (math.pi / 180)
        zoom = _uniform(b, *self.scale, device)
        flip = torch.where(torch.rand(b, device=device) < self.hflip, -1.0, 1.0)
        shift = _uniform(2 * b, -2 * self.translate, 2 * self.translate, device).view(b, 2)  # [-1, 1] coordinates
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                             torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # fmt: skip
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.jitter:

            def factor() -> torch.Tensor:
                return _uniform(b, 1 - self.jitter, 1 + self.jitter, device).view(b, 1, 1, 1)

            x = (x * factor()).clamp(0, 255)  # brightness
            mean = _gray(x).mean(dim=(2, 3), keepdim=True)
            x = ((x - mean) * factor() + mean).clamp(0, 255)  # contrast
            gray = _gray(x)
            x = ((x - gray) * factor() + gray).clamp(0, 255)  # saturation
        return (x - 127.5) / 128.0


class Standardise(nn.Module):
    """``eval_transform``'s standardisation for a whole batch of crops already at the model size.

    ``forward``: uint8 images ``(B, 3, H, W)`` -> float ``(B, 3, H, W)``, ``(x - 127.5) / 128``,
    the very values ``eval_transform`` gives image by image.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fixed_image_standardization(x.to(torch.float32))
