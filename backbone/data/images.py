"""Image files: which files count as images, and loading any of them as 8-bit RGB.

Decoding is bounded: an image of more than ``max_image_pixels()`` pixels (40 megapixels, or
``$BACKBONE_MAX_IMAGE_PIXELS``) is never decoded at full size. A JPEG is decoded at 1/2, 1/4 or
1/8 scale (the decoder's own reduction, so the full-size pixels never exist in memory); any other
format is refused with an :class:`ImageReadError`. Decompression bombs (a 48 KB PNG claiming
20000x20000 pixels) are refused that way before a byte of pixel data is decoded.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from backbone.data.errors import DataError, ImageReadError, ImageTooLarge, Problem

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".gif", ".bmp"})
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # 120 MB as 8-bit RGB; a face photo needs far less


def max_image_pixels() -> int:
    """The largest image decoded at full size: ``$BACKBONE_MAX_IMAGE_PIXELS`` or 40 megapixels."""
    value = os.environ.get("BACKBONE_MAX_IMAGE_PIXELS", "")
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not value.isdigit() or int(value) <= 0:
        raise DataError(f"BACKBONE_MAX_IMAGE_PIXELS must be a positive whole number of pixels, got {value!r}")
    return int(value)


def read_failure(exc: OSError) -> str:
    """Why a file could not be opened, in the words an image error uses."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"cannot read the file ({exc.strerror or exc})"


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
        with open(path, "rb") as f:  # opened here, so that permission denied is not taken for corruption
            return _decode(f, path)
    except OSError as exc:
        raise ImageReadError(path, read_failure(exc)) from None


def decode_rgb(data: bytes, name: str, max_side: int | None = None) -> Image.Image:
    """Like :func:`load_rgb` for image bytes (an upload); errors name ``name``. With ``max_side``,
    the image comes at most that long on its longer side: a JPEG decoded at a reduced scale (its
    full-size pixels never exist), any other format reduced right after decoding (a service's
    working resolution: a detector needs no 36 megapixels)."""
    if not data:
        raise ImageReadError(name, "zero-byte file")
    return _decode(io.BytesIO(data), name, max_side)


def image_header(data: bytes, name: str) -> tuple[tuple[int, int], str]:
    """Size (width, height) and format of image bytes, from the header (nothing decoded)."""
    if not data:
        raise ImageReadError(name, "zero-byte file")
    with _opened(io.BytesIO(data), name) as img:
        return img.size, img.format or "?"


def _decode(source: io.IOBase, name: str | Path, max_side: int | None = None) -> Image.Image:
    with _opened(source, name) as img:
        _bound(img, name, max_side)
        img.load()  # decode now: a truncated file fails here, not later in a worker
        rgb = _to_rgb(img)
        if max_side and max(rgb.size) > max_side:
            scale = max_side / max(rgb.size)
            size = (max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale)))
            return rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return rgb.copy()


def read_header(path: str | Path) -> tuple[tuple[int, int], str, str]:
    """Size, mode and format from an image file's header (nothing decoded); errors as :func:`load_rgb`'s."""
    path = Path(path)
    try:
        with open(path, "rb") as f, _opened(f, path) as img:
            return img.size, img.mode, img.format or "?"
    except OSError as exc:
        raise ImageReadError(path, read_failure(exc)) from None


@contextmanager
def _opened(source: io.IOBase, name: str | Path) -> Iterator[Image.Image]:
    """The PIL image of ``source``; every way PIL fails becomes an ImageReadError naming ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused or reduced by _bound
            with Image.open(source) as img:
                yield img
    except DataError:
        raise  # ours (from _bound): already says why
    except Image.DecompressionBombError as exc:  # PIL's own limit (twice its MAX_IMAGE_PIXELS), met at open
        raise ImageTooLarge(name, too_large(exc)) from None
    except UnidentifiedImageError:
        raise ImageReadError(name, "not a recognised image format (corrupt?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(name, f"corrupt or truncated ({exc})") from None


def decoded_size(
    size: tuple[int, int], fmt: str | None, name: str | Path, max_side: int | None = None
) -> tuple[int, int]:
    """The size an image of ``size`` (width, height) in format ``fmt`` is decoded at: the one rule
    every reader follows (loading, validation, analysis, alignment, verification, the service).
    Up to ``max_image_pixels()``: its own size; above, a JPEG at the first of 1/2, 1/4 and 1/8
    scale that fits; any other format raises ImageTooLarge naming ``name``. With ``max_side`` (a
    service's working resolution), a JPEG is decoded at the smallest scale still that long."""
    limit = max_image_pixels()
    width, height = size
    scales = (1, 2, 4, 8) if fmt == "JPEG" else (1,)  # what libjpeg can reduce by while decoding

    def at(scale: int) -> tuple[int, int]:
        return -(-width // scale), -(-height // scale)  # a side comes out as ceil(side / scale)

    fitting = [s for s in scales if at(s)[0] * at(s)[1] <= limit]
    if not fitting:
        raise ImageTooLarge(name, too_large(width * height, f"{width}x{height} is "))
    scale = fitting[0]
    if max_side:
        scale = max([scale] + [s for s in fitting if max(at(s)) >= max_side])
    return at(scale)


def _bound(img: Image.Image, name: str | Path, max_side: int | None = None) -> None:
    """Refuse, or (JPEG) reduce while decoding, an image above ``max_image_pixels()``; with
    ``max_side``, a JPEG is decoded at the smallest scale still at least that long."""
    target = decoded_size(img.size, img.format, name, max_side)
    if target != img.size:
        img.draft(img.mode, target)


def too_large(pixels: int | Image.DecompressionBombError, size: str = "") -> str:
    """Why an image is refused: its pixel count (or PIL's refusal, which states it) against the limit."""
    if isinstance(pixels, Image.DecompressionBombError):
        found = re.search(r"\((\d+) pixels\)", str(pixels))
        pixels = int(found[1]) if found else 0
    return (
        f"{size}{pixels / 1e6:.0f} megapixels, above the limit of {max_image_pixels() / 1e6:g} "
        "(BACKBONE_MAX_IMAGE_PIXELS; a decompression bomb or a needlessly large photo)"
    )


def center_box(size: tuple[int, int], fraction: float = 1.0) -> tuple[int, int, int, int]:
    """The central square (``fraction`` of the shorter side) of an image of ``size`` (width,
    height): ``(left, top, right, bottom)`` in pixels."""
    width, height = size
    side = min(width, height) * fraction
    left, top = (width - side) / 2, (height - side) / 2
    return tuple(round(v) for v in (left, top, left + side, top + side))


def center_crop(img: Image.Image, size: int, fraction: float = 1.0) -> np.ndarray:
    """The central square (``fraction`` of the shorter side) resized to ``size``: HxWx3 uint8."""
    return np.array(img.crop(center_box(img.size, fraction)).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def load_rgb_array(path: str | Path) -> np.ndarray:
    """Like :func:`load_rgb` but returns an ``(H, W, 3)`` uint8 array."""
    return np.asarray(load_rgb(path))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def check_images_exist(refs: Iterable[tuple[str, int | None]], root: str | Path, source: str | Path) -> None:
    """Raise a DataError listing every ``(path, line)`` reference with no file under ``root``."""
    root = Path(root)
    problems = [
        Problem(str(source), f"image {path} does not exist under {root}", line)
        for path, line in refs
        if not _is_file(root / path)
    ]
    if problems:
        raise DataError(f"{source}: {len(problems)} missing images", problems)
