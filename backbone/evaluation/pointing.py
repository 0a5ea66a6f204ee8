"""Where a local-global model looks, measured: an energy-based pointing score against the mark
masks the synthetic twins generator records (``marks.npz``, see ``backbone.data.synth``).

For one face, ``mass`` is the share of the attention that falls on the local marks out of the
attention on the face, and ``area`` the marks' share of the face's area. A model that spreads its
attention evenly over the face has mass = area; one that looks at the marks has mass > area. Over
a set of faces the score is ``mean(mass) / mean(area)``: 1 is no preference for the marks, 2 is
twice the attention the marks' area would get by chance (the energy-based pointing game of
Score-CAM, Wang et al. 2020, relative to the chance level).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backbone.data.synth import MASKS_FILE, stored_masks
from backbone.evaluation.uncertainty import ratio_se


def marks_share(attention: np.ndarray, marks: np.ndarray, face: np.ndarray) -> dict[str, float]:
    """One face: ``{"mass", "area"}``, the attention's share on the marks and their share of the face.

    Args:
        attention: ``(h, w)`` non-negative attention, any size (bilinearly resized to the masks').
        marks: ``(H, W)`` coverage of the marks in [0, 1] (the ``marks.npz`` arrays / 255).
        face: ``(H, W)`` coverage of the face in [0, 1]; the marks lie on it.
    """
    if marks.shape != face.shape:
        raise ValueError(f"marks {marks.shape} and face {face.shape} masks differ in size")
    if (attention < 0).any():
        raise ValueError("attention must be non-negative")
    a = torch.as_tensor(np.asarray(attention, np.float32))[None, None]
    a = F.interpolate(a, size=marks.shape, mode="bilinear", align_corners=False)[0, 0].clamp_min(0).numpy()
    on_face = float((a * face).sum())
    if on_face <= 0 or face.sum() <= 0:
        raise ValueError("no attention or no area on the face: the masks do not match this image")
    return {"mass": float((a * marks).sum()) / on_face, "area": float(marks.sum() / face.sum())}


def pointing_score(shares: Sequence[dict[str, float]]) -> dict[str, float]:
    """Over faces: ``{"score": mean mass / mean area, "score_se", "mass", "area", "images"}`` (see
    the module); ``score_se`` is the score's bootstrap standard error over the faces (None for one
    face)."""
    if not shares:
        raise ValueError("no faces to score")
    masses, areas = np.array([s["mass"] for s in shares]), np.array([s["area"] for s in shares])
    mass, area = float(masses.mean()), float(areas.mean())
    score = mass / area if area > 0 else float("nan")
    se = ratio_se(masses, areas) if len(shares) > 1 and area > 0 else None
    return {"score": score, "score_se": se, "mass": mass, "area": area, "images": len(shares)}


def read_masks(root: str | Path, paths: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``(2, H, W)`` float masks (marks, face; coverage in [0, 1]) of ``paths`` (relative to
    the data set ``root``), from its ``marks.npz``; a clear error when the file or a path is missing."""
    return {p: m.astype(np.float32) / 255 for p, m in stored_masks(root, paths).items()}


def model_pointing(
    attention_of: Callable[[Sequence[str]], list[np.ndarray]], root: str | Path, paths: Sequence[str], batch: int = 64
) -> dict[str, float]:
    """The pointing score of a model over the images ``paths`` of the data set ``root``.

    ``attention_of(paths)`` gives each image's attention map over the whole image (e.g.
    ``backbone.evaluation.explain.attention_maps`` on crops that are the whole image: the
    synthetic set cached with ``--detector none``)."""
    masks = read_masks(root, paths)
    shares = []
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        for path, att in zip(chunk, attention_of(chunk), strict=True):
            shares.append(marks_share(att, masks[path][0], masks[path][1]))
    return pointing_score(shares)


def pairs_pointing(model, pairs, faces, image_size: int) -> dict[str, float] | None:
    """The pointing score of a local-global ``model`` over every image of ``pairs`` (read through
    ``faces``, a ``CachedFaces``), when that is measurable: the data set has mark masks and its
    crops are whole images (detector "none", crop 1.0); else None."""
    from backbone.evaluation.explain import attention_maps
    from backbone.models.local_global import LocalGlobalNet

    net = getattr(model, "module", model)  # a Fabric-wrapped model
    align = faces.cache.config
    root = faces.index.root
    if not isinstance(getattr(net, "net", None), LocalGlobalNet) or not (Path(root) / MASKS_FILE).is_file():
        return None
    if align.detector != "none" or align.crop != 1.0:
        return None
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    return model_pointing(lambda chunk: attention_maps(net, [faces(p) for p in chunk], image_size), root, paths)
