"""Procedural synthetic twins: the embedded default data set (no downloads, fully seeded).

Every identity has *global* traits (face shape, skin tone, hair, eye/brow/nose/mouth geometry)
and *local* marks (moles, a scar, freckles, small asymmetries). Identical twins share all
global traits and differ only in their local marks, so telling twins apart needs local detail.
Every image varies in nuisances: pose, lighting, expression, blur, noise and background.

The output is the identity-folder layout plus ``pairs.json`` (the ND-TWIN convention):
``<out>/<identity>/<identity>_0001.png``; ``synth.json`` records the parameters and
``traits.json`` every identity's traits (in face units: the face spans about -0.6..0.6).

Where each photo shows its local marks is recorded beside it, so that where a model looks can be
measured (``backbone.evaluation.pointing``):

- ``marks.json``: per photo (its path relative to ``<out>``), ``pose``, the 2x3 affine map from
  face units to its pixel coordinates (pixel edges at integers; the marks' and features' map,
  which includes the small yaw shift), and ``marks``, each mark's ``kind`` (mole, freckle, scar)
  and pixel ``box`` ``[x0, y0, x1, y1]``.
- ``marks.npz``: per photo (same key), a ``(2, size, size)`` uint8 coverage array: ``[0]`` the
  visible marks (not where hair or a brow covers them), ``[1]`` the face (its outline), 255 where
  a pixel lies wholly inside, drawn with the photo's pose before its blur and noise.

``backbone.evaluation.references`` scores pairs with what the generator knows (an upper bound)
and with a simple pixel baseline, to show what the set allows.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from backbone.atomic import atomic_write_json
from backbone.data.layouts.ndtwin import TWIN_PAIRS_FILE
from backbone.paths import project_path

SYNTH_VERSION = 2  # 2: marks.json and marks.npz (the images are those of version 1)
MARKS_FILE = "marks.json"
MASKS_FILE = "marks.npz"
SUPERSAMPLE = 2  # draw at 2x, then downsample: cheap anti-aliasing
ZOOM = 1.25  # face units to canvas: the face fills the crop like an aligned face would
LIFT = -0.06  # the face sits a little above the centre, leaving room for the neck
FRECKLE_RADIUS = 0.007  # face units, as the marks' sizes in local_traits
SCAR_WIDTH = 0.012


@dataclass(frozen=True)
class SynthConfig:
    """Size and seed of a synthetic twins data set."""

    twin_pairs: int = 100
    singletons: int = 100
    images_per_identity: int = 10
    size: int = 112
    seed: int = 0

    def identities(self) -> list[tuple[str, int, int | None]]:
        """``(name, trait_seed_index, twin_pair_index)`` of every identity, in a fixed order."""
        names: list[tuple[str, int | None]] = []
        for p in range(self.twin_pairs):
            names += [(f"twin{p:03d}a", p), (f"twin{p:03d}b", p)]
        names += [(f"solo{s:03d}", None) for s in range(self.singletons)]
        return [(name, k, pair) for k, (name, pair) in enumerate(names)]


# ---------------------------------------------------------------- traits

SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 94], [141, 85, 54], [92, 58, 40]], float
)
HAIR_COLOURS = np.array(
    [[25, 20, 18], [70, 45, 30], [120, 80, 45], [200, 160, 90], [150, 60, 30], [150, 150, 150]], float
)
IRIS_COLOURS = np.array([[60, 40, 25], [90, 60, 30], [60, 100, 140], [80, 110, 70], [110, 110, 120]], float)


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> list[int]:
    t = rng.uniform(0, len(palette) - 1)
    lo = int(t)
    c = palette[lo] * (1 - (t - lo)) + palette[min(lo + 1, len(palette) - 1)] * (t - lo)
    return [int(v) for v in np.clip(c + rng.normal(0, jitter, 3), 0, 255)]


def global_traits(rng: np.random.Generator) -> dict:
    """Traits twins share. Lengths are in face units (the canvas spans -1..1)."""
    return {
        "face_rx": rng.uniform(0.46, 0.60),
        "face_ry": rng.uniform(0.62, 0.76),
        "jaw": rng.uniform(0.0, 0.35),  # how much the lower face narrows towards the chin
        "skin": _colour(rng, SKIN_TONES, 6),
        "hair": _colour(rng, HAIR_COLOURS, 8),
        "hair_style": int(rng.integers(4)),  # 0 short, 1 fringe, 2 long, 3 receding
        "hairline": rng.uniform(-0.52, -0.36),
        "eye_y": rng.uniform(-0.16, -0.04),
        "eye_dx": rng.uniform(0.16, 0.23),
        "eye_w": rng.uniform(0.075, 0.11),
        "eye_h": rng.uniform(0.035, 0.055),
        "iris": _colour(rng, IRIS_COLOURS, 10),
        "brow_gap": rng.uniform(0.05, 0.10),
        "brow_w": rng.uniform(0.012, 0.03),
        "brow_tilt": rng.uniform(-0.3, 0.3),
        "nose_len": rng.uniform(0.13, 0.22),
        "nose_w": rng.uniform(0.045, 0.085),
        "mouth_y": rng.uniform(0.30, 0.42),
        "mouth_w": rng.uniform(0.10, 0.17),
        "lip": rng.uniform(0.015, 0.035),
        "lip_colour": [int(v) for v in np.clip(np.array([170, 90, 90]) + rng.normal(0, 15, 3), 0, 255)],
        "ear": rng.uniform(0.07, 0.11),
    }


def local_traits(rng: np.random.Generator, g: dict) -> dict:
    """Marks twins do not share: 1-3 moles, maybe a scar, maybe freckles, small asymmetries."""

    def on_skin() -> list[float]:
        # Cheeks, forehead below the hairline, chin; away from eyes and mouth.
        while True:
            x = rng.uniform(-0.8, 0.8) * g["face_rx"]
            y = rng.uniform(g["hairline"] + 0.08, 0.55 * g["face_ry"] + 0.12)
            near_eye = abs(y - g["eye_y"]) < 0.07 and abs(abs(x) - g["eye_dx"]) < g["eye_w"] + 0.03
            near_mouth = abs(y - g["mouth_y"]) < 0.06 and abs(x) < g["mouth_w"] + 0.03
            if not (near_eye or near_mouth):
                return [float(x), float(y)]

    moles = [on_skin() + [float(rng.uniform(0.012, 0.022))] for _ in range(int(rng.integers(1, 4)))]
    scar = None
    if rng.random() < 0.5:
        x, y = on_skin()
        angle, length = rng.uniform(0, math.pi), rng.uniform(0.07, 0.14)
        scar = [x, y, float(x + length * math.cos(angle)), float(y + length * math.sin(angle))]
    freckles = None
    if rng.random() < 0.4:
        side = 1 if rng.random() < 0.5 else -1
        centre = [side * g["eye_dx"], g["eye_y"] + 0.13]
        freckles = [
            [float(centre[0] + rng.normal(0, 0.04)), float(centre[1] + rng.normal(0, 0.03))]
            for _ in range(int(rng.integers(5, 12)))
        ]
    return {
        "moles": moles,
        "scar": scar,
        "freckles": freckles,
        "eye_shift": float(rng.normal(0, 0.008)),  # one eye a little higher
        "brow_shift": float(rng.normal(0, 0.01)),
        "mouth_tilt": float(rng.normal(0, 0.01)),
    }


def nuisances(rng: np.random.Generator) -> dict:
    """What changes from one photo of a person to the next."""
    return {
        "angle": rng.uniform(-10, 10),
        "scale": rng.uniform(0.92, 1.08),
        "shift": rng.uniform(-0.06, 0.06, 2).tolist(),
        "yaw": rng.uniform(-0.04, 0.04),
        "light_dir": rng.uniform(0, 2 * math.pi),
        "light_amp": rng.uniform(0.0, 0.35),
        "brightness": rng.uniform(0.78, 1.15),
        "tint": rng.normal(0, 0.04, 3).tolist(),
        "smile": rng.uniform(-0.4, 1.0),
        "mouth_open": rng.uniform(0, 1) ** 3,
        "eye_open": rng.uniform(0.55, 1.0),
        "brow_raise": rng.uniform(-0.015, 0.025),
        "blur": rng.uniform(0, 1.0),
        "noise": rng.uniform(0, 6),
        "background": [int(v) for v in rng.integers(30, 230, 3)],
        "background2": [int(v) for v in rng.integers(30, 230, 3)],
        "clutter": int(rng.integers(0, 4)),
    }


# ---------------------------------------------------------------- drawing


class _Canvas:
    """Face units (-1..1, y down) to pixels of the supersampled canvas."""

    ink = None  # the marks' colour: None, their own (see _MaskCanvas)

    def __init__(self, size: int, yaw: float = 0.0, mode: str = "RGBA"):
        self.n = size * SUPERSAMPLE
        self.yaw = yaw
        self.img = Image.new(mode, (self.n, self.n), 0)
        self.draw = ImageDraw.Draw(self.img)

    def xy(self, x: float, y: float, feature: bool = True) -> tuple[float, float]:
        x = (x + (self.yaw if feature else 0.0)) * ZOOM
        y = y * ZOOM + LIFT
        return ((x + 1) * self.n / 2, (y + 1) * self.n / 2)

    def px(self, length: float) -> float:
        return length * ZOOM * self.n / 2

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill, feature: bool = True) -> None:
        x, y = self.xy(cx, cy, feature)
        self.draw.ellipse([x - self.px(rx), y - self.px(ry), x + self.px(rx), y + self.px(ry)], fill=tuple(fill))

    def polygon(self, points, fill, feature: bool = True) -> None:
        self.draw.polygon([self.xy(x, y, feature) for x, y in points], fill=tuple(fill))

    def line(self, points, fill, width: float, feature: bool = True) -> None:
        self.draw.line(
            [self.xy(x, y, feature) for x, y in points], fill=tuple(fill), width=max(1, round(self.px(width)))
        )


class _MaskCanvas(_Canvas):
    """A canvas on which a face drawing leaves only its visible marks: the marks paint in 255
    (``ink``), everything else in 0, so whatever is drawn over a mark (hair, a brow) hides it."""

    ink = (255,)

    def __init__(self, size: int, yaw: float = 0.0):
        super().__init__(size, yaw, mode="L")

    def ellipse(self, cx, cy, rx, ry, fill, feature=True) -> None:
        super().ellipse(cx, cy, rx, ry, fill if fill == self.ink else (0,), feature)

    def polygon(self, points, fill, feature=True) -> None:
        super().polygon(points, fill if fill == self.ink else (0,), feature)

    def line(self, points, fill, width, feature=True) -> None:
        super().line(points, fill if fill == self.ink else (0,), width, feature)


def _shade(colour, factor: float) -> list[int]:
    return [int(np.clip(c * factor, 0, 255)) for c in colour]


def _draw_marks(c: _Canvas, loc: dict, skin) -> None:
    """The local marks, which sit on the skin and move with the face: in their colours on
    ``skin``, or all in the canvas's ``ink`` when it has one (the marks mask)."""
    ink = c.ink
    for x, y, r in loc["moles"]:
        c.ellipse(x, y, r, r, ink or _shade(skin, 0.35))
    for x, y in loc["freckles"] or []:
        c.ellipse(x, y, FRECKLE_RADIUS, FRECKLE_RADIUS, ink or _shade(skin, 0.7))
    if loc["scar"]:
        x0, y0, x1, y1 = loc["scar"]
        scar = ink or [min(255, skin[0] + 10), int(skin[1] * 0.75), int(skin[2] * 0.75)]
        c.line([(x0, y0), (x1, y1)], scar, SCAR_WIDTH)


def _face_outline(g: dict, n: int = 48) -> list[tuple[float, float]]:
    pts = []
    for t in np.linspace(0, 2 * math.pi, n, endpoint=False):
        s = math.sin(t)
        narrow = 1 - g["jaw"] * max(0.0, s) ** 2
        pts.append((g["face_rx"] * math.cos(t) * narrow, g["face_ry"] * s + 0.05))
    return pts


def _draw_face(c: _Canvas, g: dict, loc: dict, nu: dict) -> None:
    skin, hair = g["skin"], g["hair"]
    rx, ry = g["face_rx"], g["face_ry"]
    if g["hair_style"] == 2:  # long hair falls behind the face
        c.polygon([(-rx - 0.12, -0.3), (rx + 0.12, -0.3), (rx + 0.2, 1.0), (-rx - 0.2, 1.0)], hair, feature=False)
    c.polygon([(-0.2, 0.5), (0.2, 0.5), (0.24, 1.0), (-0.24, 1.0)], _shade(skin, 0.85), feature=False)  # neck
    for side in (-1, 1):
        c.ellipse(side * rx, 0.0, g["ear"] * 0.6, g["ear"], _shade(skin, 0.93), feature=False)
    c.polygon(_face_outline(g), skin, feature=False)

    _draw_marks(c, loc, skin)

    # Eyes: white, iris, pupil, then the upper lid closes by (1 - eye_open).
    for side in (-1, 1):
        ex = side * g["eye_dx"]
        ey = g["eye_y"] + (loc["eye_shift"] if side > 0 else 0.0)
        w, h = g["eye_w"], g["eye_h"]
        c.ellipse(ex, ey, w, h, (245, 245, 240))
        c.ellipse(ex, ey, h * 0.95, h * 0.95, g["iris"])
        c.ellipse(ex, ey, h * 0.4, h * 0.4, (10, 10, 10))
        lid = ey - h + 2 * h * (1 - nu["eye_open"]) * 0.8
        c.polygon(
            [(ex - w * 1.1, ey - h * 1.3), (ex + w * 1.1, ey - h * 1.3), (ex + w * 1.1, lid), (ex - w * 1.1, lid)], skin
        )
        c.line([(ex - w, lid), (ex + w, lid)], _shade(skin, 0.55), 0.008)
        by = ey - h - g["brow_gap"] - nu["brow_raise"] + (loc["brow_shift"] if side < 0 else 0.0)
        tilt = g["brow_tilt"] * side * 0.04
        c.line([(ex - w * 1.1, by + tilt), (ex + w * 1.1, by - tilt)], _shade(hair, 0.8), g["brow_w"])

    # Nose: a shaded ridge and two nostrils.
    top, bottom = g["eye_y"] + 0.02, g["eye_y"] + 0.02 + g["nose_len"]
    c.line([(0.015, top), (0.03, bottom - 0.02)], _shade(skin, 0.8), 0.012)
    c.polygon(
        [(-g["nose_w"], bottom), (0, bottom - 0.05), (g["nose_w"], bottom), (0, bottom + 0.015)], _shade(skin, 0.88)
    )
    for side in (-1, 1):
        c.ellipse(side * g["nose_w"] * 0.5, bottom, 0.014, 0.009, _shade(skin, 0.45))

    # Mouth: a curved band whose corners rise with the smile; open mouths show a dark gap.
    my, mw, lip = g["mouth_y"], g["mouth_w"], g["lip"]
    curve = 0.04 * nu["smile"]
    gap = 0.035 * nu["mouth_open"]
    xs = np.linspace(-mw, mw, 13)
    centre = [my + curve * (1 - (x / mw) ** 2) + loc["mouth_tilt"] * x / mw for x in xs]
    upper = [(x, y - lip - gap / 2) for x, y in zip(xs, centre)]
    lower = [(x, y + lip + gap / 2) for x, y in zip(xs[::-1], centre[::-1])]
    c.polygon(upper + lower, g["lip_colour"])
    if gap > 0.004:
        c.polygon(
            [(x, y - gap / 2) for x, y in zip(xs, centre)] + [(x, y + gap / 2) for x, y in zip(xs[::-1], centre[::-1])],
            (60, 20, 25),
        )

    # Hair on top, drawn last so it covers the forehead down to the hairline.
    hl = g["hairline"] + (0.06 if g["hair_style"] == 3 else 0.0)
    top = -ry + 0.05 - 0.1  # the crown, a little above the face outline
    cap = [(rx * 1.08 * math.cos(t), hl - (hl - top) * math.sin(t)) for t in np.linspace(0, math.pi, 24)]
    c.polygon([(rx * 1.08, hl + 0.05)] + cap + [(-rx * 1.08, hl + 0.05)], hair, feature=False)
    if g["hair_style"] == 1:  # fringe
        c.polygon([(-rx * 0.9, hl), (rx * 0.7, hl), (rx * 0.3, hl + 0.12), (-rx * 0.6, hl + 0.1)], hair, feature=False)


def _background(size: int, nu: dict, rng: np.random.Generator) -> Image.Image:
    n = size * SUPERSAMPLE
    t = np.linspace(0, 1, n)[None, :, None]
    a, b = np.array(nu["background"], float), np.array(nu["background2"], float)
    bg = np.broadcast_to(a * (1 - t) + b * t, (n, n, 3)).copy()
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(nu["clutter"]):  # blurry shapes standing in for a cluttered scene
        x, y, r = rng.uniform(0, n), rng.uniform(0, n), rng.uniform(n * 0.1, n * 0.3)
        d.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(20, 235, 3)))
    return img.filter(ImageFilter.GaussianBlur(n * 0.02))


def _pose_coefficients(nu: dict, n: int) -> tuple[float, ...]:
    """PIL's inverse affine map (output pixel -> canvas pixel) of a photo's pose: rotation and
    scale about the centre, then the shift; ``n`` is the supersampled canvas size."""
    theta = math.radians(nu["angle"])
    s = nu["scale"]
    a, b = math.cos(theta) / s, math.sin(theta) / s
    d, e = -b, a
    cx = cy = n / 2
    tx, ty = nu["shift"][0] * n / 2, nu["shift"][1] * n / 2
    return (a, b, cx - a * (cx + tx) - b * (cy + ty), d, e, cy - d * (cx + tx) - e * (cy + ty))


def face_to_pixels(nu: dict, size: int) -> np.ndarray:
    """The 2x3 affine map from face units to the pixel coordinates of the photo rendered under
    the nuisances ``nu`` at ``size`` px: ``pixel = M @ (x, y, 1)``, pixel edges at integers (the
    centre of pixel ``(i, j)`` is ``(i + 0.5, j + 0.5)``). It includes the yaw shift that moves the
    eyes, nose, mouth and marks but not the face outline (see ``_Canvas.xy``)."""
    n = size * SUPERSAMPLE
    half = n / 2
    yaw = nu["yaw"]
    # face units -> canvas pixels: X = (x + yaw) * ZOOM * half + half, Y = (y * ZOOM + LIFT + 1) * half
    canvas = np.array([[ZOOM * half, 0, (yaw * ZOOM + 1) * half], [0, ZOOM * half, (LIFT + 1) * half], [0, 0, 1]])
    a, b, c, d, e, f = _pose_coefficients(nu, n)
    inverse = np.linalg.inv(np.array([[a, b, c], [d, e, f], [0, 0, 1]]))  # canvas pixel -> output pixel
    return ((inverse @ canvas) / SUPERSAMPLE)[:2]


def render(g: dict, loc: dict, nu: dict, size: int, rng: np.random.Generator) -> Image.Image:
    """One photo of the person with traits ``g`` + ``loc`` under the nuisances ``nu``."""
    c = _Canvas(size, yaw=nu["yaw"])
    _draw_face(c, g, loc, nu)
    n = c.n
    face = c.img.transform((n, n), Image.AFFINE, _pose_coefficients(nu, n), resample=Image.BILINEAR)
    img = _background(size, nu, rng).convert("RGBA")
    img.alpha_composite(face)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    # Lighting: a directional gradient, overall brightness and a colour tint.
    yy, xx = np.mgrid[-1 : 1 : n * 1j, -1 : 1 : n * 1j]
    light = 1 + nu["light_amp"] * (math.cos(nu["light_dir"]) * xx + math.sin(nu["light_dir"]) * yy)
    arr = arr * (light * nu["brightness"])[..., None] * (1 + np.array(nu["tint"], np.float32))
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").resize((size, size), Image.LANCZOS)
    if nu["blur"] > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(nu["blur"]))
    noisy = np.asarray(out, np.float32) + rng.normal(0, nu["noise"], (size, size, 3))
    return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8), "RGB")


def render_masks(g: dict, loc: dict, nu: dict, size: int) -> np.ndarray:
    """Where the photo ``render(g, loc, nu, size, ...)`` shows the local marks and the face, as
    ``(2, size, size)`` uint8 coverage (255: the pixel lies wholly inside): ``[0]`` the visible
    marks (moles, freckles, scar; not where hair or a brow covers them), ``[1]`` the face (its
    outline, whatever lies on it; not the ears or neck). Drawn with the photo's own pose, before
    its blur and noise."""
    marks = _MaskCanvas(size, yaw=nu["yaw"])
    _draw_face(marks, g, loc, nu)
    face = _Canvas(size, yaw=nu["yaw"], mode="L")
    face.polygon(_face_outline(g), (255,), feature=False)
    out = []
    for c in (marks, face):
        posed = c.img.transform((c.n, c.n), Image.AFFINE, _pose_coefficients(nu, c.n), resample=Image.BILINEAR)
        out.append(np.asarray(posed.resize((size, size), Image.BOX)))
    return np.stack(out)


def mark_boxes(loc: dict, nu: dict, size: int) -> list[dict]:
    """Each local mark of a photo as ``{"kind", "box": [x0, y0, x1, y1]}`` in its pixels (mole,
    freckle: the circle's bounding box; scar: the segment's, widened by its width), half a pixel
    wider all round; hidden marks too (the masks show only the visible ones)."""
    m = face_to_pixels(nu, size)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # pixels per face unit

    def box(points: list[tuple[float, float]], radius: float) -> list[float]:
        xy = np.array([m @ (x, y, 1.0) for x, y in points])
        r = radius * scale + 0.5  # and half a pixel: the resampling's reach
        return [round(float(v), 2) for v in (*(xy.min(0) - r), *(xy.max(0) + r))]

    marks = [{"kind": "mole", "box": box([(x, y)], r)} for x, y, r in loc["moles"]]
    marks += [{"kind": "freckle", "box": box([(x, y)], FRECKLE_RADIUS)} for x, y in loc["freckles"] or []]
    if loc["scar"]:
        x0, y0, x1, y1 = loc["scar"]
        marks.append({"kind": "scar", "box": box([(x0, y0), (x1, y1)], SCAR_WIDTH / 2)})
    return marks


# ---------------------------------------------------------------- data set


def recorded(root: str | Path, name: str) -> Path:
    """The marks file ``name`` (``MARKS_FILE`` or ``MASKS_FILE``) of the set at ``root``, or a
    FileNotFoundError that says which sets have one and how to make it."""
    file = Path(root) / name
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} not found: a synthetic twins set records its marks from version 2 of the generator on "
            "(`make data` makes the default set again)"
        )
    return file


def stored_masks(root: str | Path, paths: Sequence[str], channels: int | slice = slice(None)) -> dict[str, np.ndarray]:
    """The ``uint8`` masks (channel 0: the visible marks; 1: the face) of ``paths`` (relative to the
    set ``root``) as ``MASKS_FILE`` stores them, ``channels`` of each; a clear error when the file
    or a path is missing."""
    file = recorded(root, MASKS_FILE)
    with np.load(file) as masks:
        absent = [p for p in paths if p not in masks]
        if absent:
            raise KeyError(f"{file} has no masks for {len(absent)} image(s), e.g. {absent[:3]}")
        return {p: masks[p][channels] for p in paths}


def identity_traits(config: SynthConfig) -> dict[str, dict]:
    """Every identity's ``{"global": ..., "local": ..., "twin_of": ...}``; twins share ``global``."""
    names = config.identities()
    out: dict[str, dict] = {}
    for name, k, pair in names:
        g_seed = [config.seed, 1, pair] if pair is not None else [config.seed, 2, k]
        g = global_traits(np.random.default_rng(g_seed))
        loc = local_traits(np.random.default_rng([config.seed, 3, k]), g)
        twin = None if pair is None else next(n for n, _, p in names if p == pair and n != name)
        out[name] = {"global": g, "local": loc, "twin_of": twin}
    return out


def _render_identity(args: tuple[str, int, dict, SynthConfig, str]) -> tuple[dict, dict]:
    """Write one identity's photos; returns each photo's marks record and masks, by relative path."""
    name, k, traits, config, out = args
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    records, masks = {}, {}
    for i in range(config.images_per_identity):
        rng = np.random.default_rng([config.seed, 4, k, i])
        nu = nuisances(rng)
        img = render(traits["global"], traits["local"], nu, config.size, rng)
        img.save(folder / f"{name}_{i + 1:04d}.png", optimize=False)
        key = f"{name}/{name}_{i + 1:04d}.png"
        pose = face_to_pixels(nu, config.size)
        records[key] = {"pose": np.round(pose, 6).tolist(), "marks": mark_boxes(traits["local"], nu, config.size)}
        masks[key] = render_masks(traits["global"], traits["local"], nu, config.size)
    return records, masks


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or a job's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate(
    config: SynthConfig, out: str | Path, workers: int | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Write the data set to ``out`` with ``workers`` processes (None: one per available core;
    the images are the same for any number); returns ``out``.

    Generation goes to ``out.partial`` and is renamed when complete, so an interrupted run
    never leaves a data set that looks finished. An existing set made with the same config
    is kept as it is (re-running is free), or made again if an older version of this generator
    wrote it; one with another config needs ``force``.
    """
    out = project_path(out)
    meta = {"version": SYNTH_VERSION, "config": asdict(config)}
    meta_path = out / "synth.json"
    if out.exists():
        found = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        if found == meta and not force:
            return out
        older = found is not None and found.get("config") == meta["config"] and found.get("version", 0) < SYNTH_VERSION
        if not (force or older):  # an older generator's output of this config is simply redone
            raise FileExistsError(
                f"{out} exists and was not made with this config; pass force=True (--force) to replace it"
            )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    traits = identity_traits(config)
    jobs = [(name, k, traits[name], config, str(tmp)) for name, k, _ in config.identities()]
    bar = tqdm(total=len(jobs), desc="synthetic identities", unit="id", disable=not progress)
    records, masks = {}, {}
    workers = min(workers or available_cores(), len(jobs))
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for r, m in pool.map(_render_identity, jobs, chunksize=4) if pool else map(_render_identity, jobs):
            records.update(r)
            masks.update(m)
            bar.update()
    bar.close()
    atomic_write_json(tmp / MARKS_FILE, records)
    np.savez_compressed(tmp / MASKS_FILE, **masks)
    twins = sorted({tuple(sorted((n, t["twin_of"]))) for n, t in traits.items() if t["twin_of"]})
    (tmp / TWIN_PAIRS_FILE).write_text(json.dumps([list(p) for p in twins], indent=1) + "\n")
    atomic_write_json(tmp / "traits.json", traits)
    atomic_write_json(tmp / "synth.json", meta)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
