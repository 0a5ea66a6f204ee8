"""Face detection and alignment with facenet-pytorch's MTCNN, and centre crops for pre-aligned sets.

A crop is ``size`` pixels square around the selected face box plus ``margin`` pixels (in output
pixels, the facenet convention: 160 px with margin 14). When an image holds several faces the
one a verification benchmark means is chosen: the largest face weighted by nearness to the image
centre (MTCNN's ``center_weighted_size`` selection). When no face is found the policy decides:
``fallback`` stores a centre crop and records that it fell back; ``report`` stores nothing and
the image is reported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch
from PIL import Image

from backbone.devices import default_device

ALIGN_VERSION = 1
DETECTORS = ("mtcnn", "none")
POLICIES = ("fallback", "report")

FACE, FALLBACK, NO_FACE = "face", "fallback", "no-face"


@dataclass(frozen=True)
class AlignConfig:
    """What a cached crop depends on. The no-face policy is not part of it (see ``FaceCache``)."""

    size: int = 160
    margin: int = 14
    detector: str = "mtcnn"  # "none": centre-crop every image (already-aligned sets)
    crop: float = 1.0  # centre crop: the fraction of the shorter side kept (detector "none", fallbacks)
    min_face_size: int = 20

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if not 0 < self.crop <= 1:
            raise ValueError(f"crop must be in (0, 1], got {self.crop}")
        if self.size <= self.margin:
            raise ValueError(f"size ({self.size}) must exceed margin ({self.margin})")

    def key(self) -> str:
        """A short stable name for this configuration (the cache folder name)."""
        text = json.dumps({"version": ALIGN_VERSION, **asdict(self)}, sort_keys=True)
        return f"{self.detector}-{self.size}px-" + hashlib.sha1(text.encode()).hexdigest()[:10]


def center_crop(img: Image.Image, size: int, fraction: float = 1.0) -> np.ndarray:
    """The central square (``fraction`` of the shorter side) resized to ``size``: HxWx3 uint8."""
    side = min(img.size) * fraction
    left, top = (img.width - side) / 2, (img.height - side) / 2
    box = tuple(round(v) for v in (left, top, left + side, top + side))
    return np.array(img.crop(box).resize((size, size), Image.BILINEAR), dtype=np.uint8)


@dataclass
class Detection:
    """The aligned crop of one image, or None when no face was found."""

    crop: np.ndarray | None
    box: list[float] | None = None
    prob: float | None = None


class FaceAligner:
    """Batched MTCNN detection that survives batches mixing images with and without faces.

    facenet-pytorch's batched ``select_boxes`` stacks per-image results with ``np.array`` and
    fails when some images have no face; here detection runs batched and the library's own
    selection and extraction run per image.
    """

    def __init__(self, config: AlignConfig, device: torch.device | str | None = None):
        self.config = config
        self.device = torch.device(device) if device is not None else default_device()

    @cached_property
    def mtcnn(self):
        from facenet_pytorch import MTCNN  # weights ship inside the package: no download

        return MTCNN(
            image_size=self.config.size,
            margin=self.config.margin,
            min_face_size=self.config.min_face_size,
            selection_method="center_weighted_size",
            post_process=False,
            device=self.device,
        ).eval()

    def align(self, images: list[Image.Image]) -> list[Detection]:
        """Align a batch of RGB images (any sizes; equal sizes are detected together)."""
        if self.config.detector == "none":
            return [Detection(center_crop(img, self.config.size, self.config.crop)) for img in images]
        from facenet_pytorch import extract_face

        out: list[Detection | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            by_size.setdefault(img.size, []).append(i)
        for indices in by_size.values():
            batch = [images[i] for i in indices]
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            for i, img, b, p, pt in zip(indices, batch, boxes, probs, points):
                if b is None:
                    out[i] = Detection(None)
                    continue
                box, prob, _ = self.mtcnn.select_boxes(b, p, pt, img, method="center_weighted_size")
                face = extract_face(img, box[0], self.config.size, self.config.margin)
                crop = face.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
                out[i] = Detection(crop, [round(float(v), 2) for v in box[0]], round(float(prob), 5))
        return out  # type: ignore[return-value]
