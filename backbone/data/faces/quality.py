"""Is a face good enough to trust a verdict on? Three measures of an aligned face and its box, each
with the threshold below which the stress set (``backbone.data.stress``, ``make stress``) shows
the pretrained model losing accuracy:

- ``face_px``: the detector's box width in the photo's own pixels (a small face has little detail);
- ``brightness``: the mean luminance (ITU-R 601, 0..255) of the aligned crop;
- ``sharpness``: the variance of the Laplacian of the crop's luminance over the variance of the
  luminance itself (so a dark or low-contrast face is not also called blurred), the crop first
  resized to ``SHARPNESS_SIZE`` px so the measure does not depend on the model's input size.

NumPy and Pillow only: the ONNX-only service measures faces too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SHARPNESS_SIZE = 128
# Thresholds from the stress set (experiments/lfw/stress/results.md, LFW DevTest, the pretrained port
# as aligned for it; medians of each set's faces):
# - brightness: the port loses 0.9 points of accuracy at gamma 3 (median 42) and 1.8 at exposure
#   0.25 (median 29), 37 at exposure 0.08 (median 8); none at gamma 2 (median 67).
MIN_BRIGHTNESS = 40.0
# - face width: no loss down to the smallest tested, 40 px (-0.7 points, 1.3 SE): below it the
#   stress set vouches for nothing.
MIN_FACE_PX = 40.0
# - sharpness: blur sigma 2 (median 0.0021) loses 2.3 points, sigma 4 (0.0005) 13.5; faces 40 px
#   wide (0.0107) and the clean set (0.0200) lose none.
MIN_SHARPNESS = 0.006


@dataclass(frozen=True)
class FaceQuality:
    """The three measures of one face and what falls short (``problems``: one sentence each)."""

    face_px: float | None  # None: no detector box (a centre crop of a pre-aligned image)
    brightness: float
    sharpness: float

    @property
    def problems(self) -> tuple[str, ...]:
        out = []
        if self.face_px is not None and self.face_px < MIN_FACE_PX:
            out.append(f"too small: the face is {self.face_px:.0f} px wide (under {MIN_FACE_PX:.0f})")
        if self.brightness < MIN_BRIGHTNESS:
            out.append(f"too dark: mean brightness {self.brightness:.0f} of 255 (under {MIN_BRIGHTNESS:.0f})")
        if self.sharpness < MIN_SHARPNESS:
            out.append(f"too blurred: sharpness {self.sharpness:.3f} (under {MIN_SHARPNESS:g})")
        return tuple(out)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """One line: the measures, and what falls short or "good enough"."""
        size = f"face {self.face_px:.0f} px, " if self.face_px is not None else ""
        verdict = "; ".join(self.problems) if self.problems else "good enough"
        return f"{size}brightness {self.brightness:.0f}, sharpness {self.sharpness:.3f}: {verdict}"

    def as_dict(self) -> dict:
        return {"face_px": self.face_px, "brightness": round(self.brightness, 2), "sharpness": round(self.sharpness, 4),
                "ok": self.ok, "problems": list(self.problems)}  # fmt: skip


def luminance(crop: np.ndarray) -> np.ndarray:
    """``(H, W)`` float luminance of an ``(H, W, 3)`` uint8 crop."""
    return crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def relative_sharpness(lum: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian over the inner pixels of ``lum`` ``(H, W)``, over
    the variance of those pixels (0 for a flat image): unchanged when the light is scaled."""
    lap = lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:] - 4 * lum[1:-1, 1:-1]
    spread = float(lum[1:-1, 1:-1].var())
    return float(lap.var()) / spread if spread > 0 else 0.0


def face_quality(crop: np.ndarray, box: list[float] | None = None) -> FaceQuality:
    """The quality of an aligned face ``crop`` ``(A, A, 3)`` uint8 found at ``box`` (left, top,
    right, bottom in the photo's pixels; None for a centre crop)."""
    lum = luminance(crop)
    small = np.asarray(Image.fromarray(lum, mode="F").resize((SHARPNESS_SIZE,) * 2, Image.Resampling.BILINEAR))
    width = None if box is None else float(box[2] - box[0])
    return FaceQuality(width, float(lum.mean()), relative_sharpness(small))
