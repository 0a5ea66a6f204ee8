"""A stress set: the pairs of a pair list again, every image under one change of light or quality.

Each condition is registered in ``CONDITIONS`` with its strengths (mildest first) and changes a
whole image, deterministically (a condition that needs a choice, the shadow's side, takes it from
the image's path), so the set is the same on every machine:

- ``gamma``: darker mid-tones, ``255 (x / 255) ** gamma``.
- ``exposure``: under-exposure, the light multiplied by the strength and rounded to 8 bits again
  (dark images lose their gradations, as a camera's do).
- ``shadow``: a one-sided shadow, a horizontal gradient from 1 on one side to the strength on the
  other multiplied across the image (the side alternates between images by their path).
- ``grayscale``: the luminance (ITU-R 601) in all three channels.
- ``blur``: a Gaussian blur of ``strength`` pixels (sigma, at the image's own size).
- ``jpeg``: JPEG compression at quality ``strength``.
- ``low-res``: the image scaled down so that its face is ``strength`` pixels wide (a face is taken
  to fill ``FACE_FRACTION`` of the shorter side, as in LFW's deep-funneled 250 px images), and kept
  small: the detector sees the small face.

``write_stress_set`` writes ``<out>/<condition>-<strength>/<the image's path>`` (PNG, lossless;
JPEG for ``jpeg``) and beside the images ``pairs.tsv`` with the same pairs and labels in the same
order, and ``<out>/stress.json`` listing the sets. Images are written atomically and skipped when
present, so a re-run resumes; the pair list of a set is written last.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from backbone.atomic import atomic_path, atomic_write_json
from backbone.data.faces.align import FACE_FRACTION
from backbone.data.images import load_rgb
from backbone.data.lists.pairs import Pair, write_pairs
from backbone.paths import project_relative
from backbone.registry import Registry

Change = Callable[[Image.Image, float, str], Image.Image]  # (image, strength, its path) -> changed image
CONDITIONS: Registry[Change] = Registry("stress condition")
PAIRS_FILE = "pairs.tsv"
INDEX_FILE = "stress.json"


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


def _image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "RGB")


@CONDITIONS.register("gamma", strengths=(2.0, 3.0), unit="", what="darker mid-tones, 255 (x/255)^gamma")
def gamma(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    return _image(255 * (_pixels(img) / 255) ** strength)


@CONDITIONS.register(
    "exposure", strengths=(0.25, 0.08), unit="x the light", what="under-exposed: the light multiplied, 8-bit again"
)
def exposure(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    return _image(_pixels(img) * strength)


def shadow_side(path: str) -> int:
    """0: the shadow falls on the image's left, 1: on its right (from the path, deterministic)."""
    return hashlib.sha1(path.encode()).digest()[0] % 2


@CONDITIONS.register(
    "shadow",
    strengths=(0.3, 0.1),
    unit="x the light on the dark side",
    what="one-sided shadow: a horizontal gradient from 1 to the strength",
)
def shadow(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    arr = _pixels(img)
    ramp = np.linspace(strength, 1.0, arr.shape[1], dtype=np.float32)  # dark on the left
    ramp = ramp[::-1] if shadow_side(path) else ramp
    return _image(arr * ramp[None, :, None])


@CONDITIONS.register("grayscale", strengths=(1.0,), unit="", what="the luminance in all three channels")
def grayscale(img: Image.Image, strength: float = 1.0, path: str = "") -> Image.Image:
    return img.convert("L").convert("RGB")


@CONDITIONS.register("blur", strengths=(2.0, 4.0), unit="sigma, px", what="Gaussian blur")
def blur(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(strength))


@CONDITIONS.register("jpeg", strengths=(15, 5), unit="quality", what="JPEG compression")
def jpeg(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(strength))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@CONDITIONS.register(
    "low-res", strengths=(60, 40), unit="face width, px", what="scaled down until the face is this wide, kept small"
)
def low_res(img: Image.Image, strength: float, path: str = "") -> Image.Image:
    scale = strength / (FACE_FRACTION * min(img.size))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS) if scale < 1 else img


@dataclass(frozen=True)
class StressSet:
    """One condition at one strength: its folder (a data root of identity folders) and pair list."""

    condition: str
    strength: float
    root: Path

    @property
    def name(self) -> str:
        return f"{self.condition}-{self.strength:g}"

    @property
    def pairs_file(self) -> Path:
        return self.root / PAIRS_FILE

    @property
    def unit(self) -> str:
        return CONDITIONS.info(self.condition)["unit"]


def stress_sets(out: str | Path, conditions: Sequence[str] | None = None) -> list[StressSet]:
    """Every set of ``conditions`` (default: all registered) at each of its strengths, under ``out``."""
    out = Path(out)
    names = conditions or CONDITIONS.names()
    return [StressSet(c, float(s), out / f"{c}-{float(s):g}") for c in names for s in CONDITIONS.info(c)["strengths"]]


def stressed_path(condition: str, path: str) -> str:
    """Where an image's changed copy goes inside its set: the same path, PNG (JPEG for ``jpeg``)."""
    return str(Path(path).with_suffix(".jpg" if condition == "jpeg" else ".png"))


def write_stress_set(
    root: str | Path, pairs: Sequence[Pair], out: str | Path, conditions: Sequence[str] | None = None,
    progress: bool = True,
) -> list[StressSet]:  # fmt: skip
    """Write every stress set of ``pairs`` (images under ``root``) into ``out``; see the module doc."""
    from tqdm.auto import tqdm

    root, out = Path(root), Path(out)
    sets = stress_sets(out, conditions)
    paths = list(dict.fromkeys(p for pair in pairs for p in (pair.path_a, pair.path_b)))
    for s in tqdm(sets, desc="stress sets", unit="set", disable=not progress):
        change = CONDITIONS.get(s.condition)
        for path in tqdm(paths, desc=s.name, unit="img", leave=False, disable=not progress):
            target = s.root / stressed_path(s.condition, path)
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                if s.condition == "jpeg":  # the file itself is the compressed one
                    load_rgb(root / path).save(tmp, format="JPEG", quality=int(s.strength))
                else:
                    change(load_rgb(root / path), s.strength, path).save(tmp, format="PNG")
        moved = [replace(p, path_a=stressed_path(s.condition, p.path_a), path_b=stressed_path(s.condition, p.path_b))
                 for p in pairs]  # fmt: skip
        write_pairs(moved, s.pairs_file, fmt="tsv")
    atomic_write_json(out / INDEX_FILE, {
        "source": project_relative(root), "pairs": len(pairs), "images": len(paths),
        "sets": [{"name": s.name, "condition": s.condition, "strength": s.strength, "unit": s.unit,
                  "what": CONDITIONS.info(s.condition)["what"]} for s in sets],
    })  # fmt: skip
    return sets
