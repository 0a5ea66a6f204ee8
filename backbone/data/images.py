"""Image files: which files count as images, and loading any of them as 8-bit RGB."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from backbone.data.errors import DataError, ImageReadError, Problem

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".gif", ".bmp"})


def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension is one of ``IMAGE_EXTENSIONS``."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # High-bit-depth grayscale: PIL's convert() would clip at 255; rescale instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparent pixels on black, the usual background of face crops.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file fully and return it as an 8-bit RGB PIL image.

    Grayscale, palette, RGBA, CMYK and 16-bit files all come back as RGB. A missing,
    empty, corrupt or truncated file raises :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "zero-byte file")
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    return _decode(path, path)


def decode_rgb(data: bytes, name: str) -> Image.Image:
    """Like :func:`load_rgb` for image bytes (an upload); errors name ``name``."""
    if not data:
        raise ImageReadError(name, "zero-byte file")
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | io.BytesIO, name: str | Path) -> Image.Image:
    try:
        with Image.open(source) as img:
            img.load()  # decode now: a truncated file fails here, not later in a worker
            return _to_rgb(img).copy()
    except FileNotFoundError:
        raise ImageReadError(name, "no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(name, "not a recognised image format (corrupt?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(name, f"corrupt or truncated ({exc})") from None


def load_rgb_array(path: str | Path) -> np.ndarray:
    """Like :func:`load_rgb` but returns an ``(H, W, 3)`` uint8 array."""
    return np.asarray(load_rgb(path))


def check_images_exist(refs: Iterable[tuple[str, int | None]], root: str | Path, source: str | Path) -> None:
    """Raise a DataError listing every ``(path, line)`` reference with no file under ``root``."""
    root = Path(root)
    problems = [
        Problem(str(source), f"image {path} does not exist under {root}", line)
        for path, line in refs
        if not (root / path).is_file()
    ]
    if problems:
        raise DataError(f"{source}: {len(problems)} missing images", problems)
