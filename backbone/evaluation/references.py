"""Reference scores without training: how far the images let one tell twins apart, and the
pipelines a model must match. Each scores pairs like a model (higher: more alike) and is
registered in ``REFERENCES``; ``score_reference`` writes a run folder that the results table
shows as a reference row.

- ``mark-oracle``, an upper bound from what the generator knows (``marks.json``): each photo's
  marks are mapped through its pose into face units and from there through the other photo's
  pose into its pixels, where the oracle looks for a dark spot (the disc's luminance below the
  ring around it). Same person: the marks are there; twins: the sibling's marks are elsewhere.
  It reads only the pixels of the photos and where the marks would be, so a mark hidden by blur,
  noise or hair counts against it, as it would against any model.
- ``local-detail``, a baseline from the pixels alone: each face's dark fine detail (the
  luminance below a 2-pixel Gaussian blur of itself, at full resolution), compared by the best
  normalised cross-correlation over small turns and shifts (the poses differ). Eyes, brows and
  nostrils dominate it and are shared by twins; the marks add the rest.
- ``dlib-native``, dlib's own pipeline end to end on any face set (``backbone.evaluation.dlib_native``):
  its HOG detector, 5-point chip and ResNet descriptor; what the PyTorch port of the ResNet must
  match on LFW.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from backbone.data.faces.align import FaceCounts
from backbone.data.images import load_rgb
from backbone.data.lists.pairs import Pair
from backbone.data.synth import MARKS_FILE, recorded
from backbone.registry import Registry


@dataclass
class ReferenceScores:
    """A reference's scores of a pair list (higher: more alike) and, for one that finds faces, how."""

    scores: np.ndarray
    faces: FaceCounts | None = None


Scorer = Callable[[Path, Sequence[Pair], bool], ReferenceScores]
REFERENCES: Registry[Scorer] = Registry("reference")


def luminance(root: Path, path: str) -> np.ndarray:
    """An image of the set as float luminance (ITU-R 601), ``(H, W)`` in 0..255."""
    rgb = np.asarray(load_rgb(root / path), np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _to_face(pose: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 face -> pixel map, as a 2x3 pixel -> face map."""
    full = np.vstack([pose, [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def spot_contrast(lum: np.ndarray, x: float, y: float, radius: float) -> float:
    """How much darker the disc of ``radius`` pixels (at least one) around ``(x, y)`` is than the
    ring from ``radius + 1`` to ``radius + 3`` around it (pixel centres at ``i + 0.5``); 0 off the image."""
    h, w = lum.shape
    r = max(radius, 1.0)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    d = np.hypot(xx - x, yy - y)
    disc, ring = d <= r, (d > r + 1) & (d <= r + 3)
    if not disc.any() or not ring.any():
        return 0.0
    return float(lum[ring].mean() - lum[disc].mean())


def _marks_in(record_from: dict, record_to: dict) -> list[tuple[float, float, float]]:
    """The marks of one photo, placed in another's pixels: ``(x, y, radius)``."""
    to_face = _to_face(np.array(record_from["pose"]))
    to_pixels = np.array(record_to["pose"])
    scale = np.sqrt(abs(np.linalg.det(to_pixels[:, :2]) * np.linalg.det(to_face[:, :2])))
    out = []
    for mark in record_from["marks"]:
        x0, y0, x1, y1 = mark["box"]
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0])
        x, y = to_pixels @ np.append(to_face @ centre, 1.0)
        radius = (min(x1 - x0, y1 - y0) / 2 - 0.5) * scale  # the box less its half-pixel margin
        out.append((float(x), float(y), float(radius)))
    return out


@REFERENCES.register("mark-oracle", label="oracle: the generator's marks, looked for in the other photo")
def mark_oracle(root: Path, pairs: Sequence[Pair], progress: bool = True) -> ReferenceScores:
    records = json.loads(recorded(root, MARKS_FILE).read_text())
    lum = functools.cache(lambda path: luminance(root, path))
    scores = []
    for p in tqdm(pairs, desc="mark oracle", unit="pair", disable=not progress):
        ra, rb = records[p.path_a], records[p.path_b]
        contrasts = [spot_contrast(lum(p.path_b), *m) for m in _marks_in(ra, rb)]
        contrasts += [spot_contrast(lum(p.path_a), *m) for m in _marks_in(rb, ra)]
        scores.append(float(np.mean(contrasts)) if contrasts else 0.0)
    return ReferenceScores(np.array(scores))


def dark_detail(lum: np.ndarray) -> np.ndarray:
    """The luminance below its 2-pixel Gaussian blur (dark fine detail), smoothed by 1.5 pixels
    (so that a spot a pixel off still overlaps), centred and scaled to unit norm."""
    detail = np.clip(ndimage.gaussian_filter(lum, 2.0) - lum, 0, None)
    detail = ndimage.gaussian_filter(detail, 1.5)
    detail -= detail.mean()
    return detail / (np.linalg.norm(detail) or 1.0)


ANGLES = (-12, -8, -4, 0, 4, 8, 12)  # degrees: the synthetic poses turn by up to 10
MAX_SHIFT = 8  # pixels: the synthetic poses shift by up to 6% of the side


@REFERENCES.register("local-detail", label="baseline: dark fine detail, best correlation over small turns and shifts")
def local_detail(root: Path, pairs: Sequence[Pair], progress: bool = True) -> ReferenceScores:
    """The largest normalised cross-correlation of the two faces' dark fine detail over turns of
    ``ANGLES`` and shifts of up to ``MAX_SHIFT`` pixels (by FFT)."""
    paths = sorted({x for p in pairs for x in (p.path_a, p.path_b)})
    sizes, spectra, turned = {}, {}, {}
    for path in tqdm(paths, desc="local detail", unit="img", disable=not progress):
        lum = luminance(root, path)
        size = sizes[path] = (2 * lum.shape[0], 2 * lum.shape[1])  # zero-padded: no wrap-around
        spectra[path] = np.fft.rfft2(dark_detail(lum), s=size)
        turned[path] = [
            np.conj(np.fft.rfft2(dark_detail(ndimage.rotate(lum, a, reshape=False, mode="nearest")), s=size))
            for a in ANGLES
        ]
    scores = []
    for p in pairs:
        size = sizes[p.path_a]
        rows, cols = (np.r_[0 : MAX_SHIFT + 1, n - MAX_SHIFT : n] for n in size)  # shifts of at most MAX_SHIFT
        best = max(np.fft.irfft2(spectra[p.path_a] * t, s=size)[np.ix_(rows, cols)].max() for t in turned[p.path_b])
        scores.append(float(best))
    return ReferenceScores(np.array(scores))


@REFERENCES.register(
    "dlib-native", label="dlib's own pipeline: HOG detector, 5-point chip, its ResNet (minus distance)"
)
def dlib_native(root: Path, pairs: Sequence[Pair], progress: bool = True) -> ReferenceScores:
    """dlib's pipeline end to end (``backbone.evaluation.dlib_native``), its descriptors cached by image."""
    from backbone.evaluation.dlib_native import DlibNative

    return ReferenceScores(*DlibNative().score(root, pairs, progress))


def score_reference(
    method: str, root: str | Path, val_pairs: str | Path, test_pairs: str | Path, out_dir: str | Path,
    progress: bool = True,
) -> dict:  # fmt: skip
    """Score the validation and test pairs with the reference ``method`` and write a run folder
    the results table reads: ``reference.json`` (what it is), ``metrics.json`` (the test pairs'
    metrics, at the thresholds chosen on the validation pairs; ``faces``, how a reference that
    detects faces found them) and ``test_scores.tsv``."""
    from backbone.atomic import atomic_write_json
    from backbone.data.errors import existing
    from backbone.data.lists.pairs import read_pairs
    from backbone.evaluation.metrics import (
        best_accuracy_threshold,
        far_threshold,
        summary_row,
        verification_metrics,
        with_val_threshold,
    )
    from backbone.evaluation.scores import write_scores
    from backbone.paths import project_path, project_relative

    scorer = REFERENCES.get(method)
    from backbone.data.layouts.load import load_index

    root, out = load_index(existing(root, "data root", kind="dir")).root, project_path(out_dir)
    val_pairs, test_pairs = existing(val_pairs, "pair file"), existing(test_pairs, "pair file")
    val, test = read_pairs(val_pairs, root=root), read_pairs(test_pairs, root=root)
    val_scores, val_labels = scorer(root, val, progress).scores, np.array([p.same for p in val])
    scored, labels = scorer(root, test, progress), np.array([p.same for p in test])
    scores = scored.scores
    folds = (
        np.array([-1 if p.fold is None else p.fold for p in test]) if any(p.fold is not None for p in test) else None
    )
    twins = np.array([p.twins for p in test]) if any(p.twins for p in test) else None
    metrics = verification_metrics(scores, labels, threshold=None, folds=folds, twins=twins)
    metrics = with_val_threshold(
        metrics, scores, labels, best_accuracy_threshold(val_scores, val_labels), far_threshold(val_scores, val_labels)
    )
    metrics["summary"] = summary_row(metrics)
    if scored.faces is not None:
        metrics["faces"] = asdict(scored.faces)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "reference.json", {
        "method": method, "label": REFERENCES.info(method)["label"], "data_root": project_relative(root),
        "val_pairs": project_relative(val_pairs), "test_pairs": project_relative(test_pairs),
    })  # fmt: skip
    write_scores(out / "test_scores.tsv", test, scores)
    atomic_write_json(out / "metrics.json", metrics)  # last: a folder with metrics.json is complete
    return metrics
