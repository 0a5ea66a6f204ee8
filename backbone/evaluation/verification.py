"""Verify two face images: align them as the model's training (or its pretrained recipe) did,
embed, score.

``Verifier.from_checkpoint(path)`` opens a trained checkpoint, ``Verifier.pretrained()`` the
default pretrained model (``backbone.evaluation.pretrained``); ``backbone verify``, ``backbone
identify``, ``backbone.verify`` and the pair explorer use them. A :class:`Verdict` says the score,
the threshold, the verdict, which model and threshold were used, and which face of each photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from backbone.data.errors import DataError
from backbone.data.faces.align import AlignConfig, FaceAligner
from backbone.data.faces.cache import NoFaceError
from backbone.data.faces.quality import FaceQuality, face_quality
from backbone.data.faces.transforms import eval_transform
from backbone.data.images import load_rgb
from backbone.devices import exact_fp32
from backbone.evaluation.checkpoints import checkpoint_align_config
from backbone.evaluation.embeddings import default_threshold
from backbone.evaluation.pretrained import DEFAULT_MODEL, PretrainedModel, pretrained_checkpoint
from backbone.labels import DIFFERENT, SAME
from backbone.models.build import load_model
from backbone.models.siamese import SiameseNet
from backbone.paths import project_path, project_relative


@dataclass
class FoundFace:
    """The face of a photo that was compared: its aligned crop and where the detector found it."""

    name: str  # the photo, as errors and messages name it
    crop: np.ndarray  # (A, A, 3) uint8, as the model saw it
    box: list[float] | None = None  # left, top, right, bottom in the photo's pixels (None: centre crop)
    prob: float | None = None  # the detector's confidence
    faces: int = 1  # how many faces the detector found in the photo

    @cached_property
    def quality(self) -> FaceQuality:
        """Whether the face is large, bright and sharp enough to trust (``backbone.data.faces.quality``;
        measured once)."""
        return face_quality(self.crop, self.box)

    def caution(self) -> str | None:
        """A line saying why a verdict on this face is not to be trusted, or None when it can be."""
        problems = self.quality.problems
        return (
            f"CAUTION, {self.name}: {'; '.join(problems)}: a verdict on it is not to be trusted" if problems else None
        )

    def note(self) -> str:
        """Which face was used, in words."""
        if self.box is None:
            return f"{self.name}: the centre crop (no detector: pre-aligned images)"
        where = "box " + ", ".join(f"{v:.0f}" for v in self.box)
        if self.faces > 1:
            return f"{self.name}: {self.faces} faces found; used the largest nearest the centre ({where}, p={self.prob:.3f})"
        return f"{self.name}: one face ({where}, p={self.prob:.3f})"


@dataclass
class Verdict:
    score: float
    threshold: float
    same: int  # SAME (1) when score >= threshold
    model: str = ""  # which model and threshold, in words
    faces: tuple[FoundFace, ...] = ()

    @property
    def is_same(self) -> bool:
        return self.same == SAME

    @property
    def trusted(self) -> bool:
        """Every face passed the quality check (large, bright and sharp enough)."""
        return all(f.quality.ok for f in self.faces)

    def text(self) -> str:
        """The verdict line, a caution for each face too small, dark or blurred to trust; then the
        model and the faces used, when known."""
        word = "SAME person" if self.same == SAME else "DIFFERENT people"
        lines = [f"similarity {self.score:.4f}, threshold {self.threshold:.4f}: {word}"]
        lines += [c for c in (f.caution() for f in self.faces) if c]
        lines += [self.model] if self.model else []
        lines += [f"face of {f.note()}" for f in self.faces]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Verdict(score={self.score:.4f}, threshold={self.threshold:.4f}, same={self.same})"


class Verifier:
    """Aligns, embeds and scores photos on the device of ``model`` (its detector too)."""

    def __init__(
        self, model: SiameseNet, align: AlignConfig, image_size: int, threshold: float | None = None,
        description: str = "", checkpoint: Path | None = None,
    ):  # fmt: skip
        self.model = model.eval()
        self.description = description  # which model and threshold, in words (Verdict.model)
        self.checkpoint = checkpoint  # where the model came from, when a file
        self.device = next(model.parameters()).device
        self.aligner = FaceAligner(align, device=self.device)
        self.image_size = image_size
        self.transform = eval_transform(image_size)
        chosen = threshold if threshold is not None else default_threshold(model)
        if chosen is None:
            raise ValueError(f"no default threshold for distance {model.distance!r}: pass a threshold")
        self.threshold = chosen

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, threshold: float | None = None, device: str | torch.device | None = "auto"
    ) -> Verifier:
        """The model of a checkpoint on ``device`` (its face detector too), at ``threshold``, else
        the threshold its run chose on the validation pairs (``val_threshold``, saved in
        checkpoints of training runs), else the model's fixed one."""
        path = project_path(path)
        model, config, ckpt = load_model(path, device=device)
        given = threshold is not None
        if threshold is None:
            threshold = ckpt.get("val_threshold")
        verifier = cls(model, checkpoint_align_config(ckpt, config.image_size, path), config.image_size, threshold,
                       checkpoint=path)  # fmt: skip
        verifier.description = describe_model(ckpt, path, verifier.threshold, given)
        return verifier

    @classmethod
    def pretrained(
        cls, name: str = DEFAULT_MODEL, threshold: float | None = None, device: str | torch.device | None = "auto"
    ) -> Verifier:
        """A pretrained model (``backbone.evaluation.pretrained``; default: dlib's ResNet as it is,
        flip- and zoom-averaged) at the threshold chosen on LFW's validation pairs, unless ``threshold``."""
        return cls.from_checkpoint(pretrained_checkpoint(name), threshold, device)

    def find_face(self, image: str | Path | Image.Image, name: str | None = None) -> FoundFace:
        """The face the model compares: the aligned crop of the largest face nearest the centre (as
        evaluation selects it), and how many there were. No face raises NoFaceError naming the image."""
        img = image if isinstance(image, Image.Image) else load_rgb(image)
        (det,) = self.aligner.align([img.convert("RGB")])
        label = str(name or (image if not isinstance(image, Image.Image) else "the image"))
        if det.error is not None:
            raise DataError(f"{label}: {det.error}")
        if det.crop is None:
            config = self.aligner.config
            raise NoFaceError(f"no face found in {label} by {config.detector} (it needs a visible face of at least "
                              f"{config.min_face_size} px)")  # fmt: skip
        return FoundFace(label, det.crop, det.box, det.prob, det.faces if det.box is not None else 1)

    def face(self, image: str | Path | Image.Image, name: str | None = None) -> np.ndarray:
        """The aligned crop (HxWx3 uint8); no face raises NoFaceError naming the image."""
        return self.find_face(image, name).crop

    @torch.inference_mode()
    def embed_face(self, face: np.ndarray) -> torch.Tensor:
        x = self.transform(torch.from_numpy(face).permute(2, 0, 1)).to(self.device)  # one crop: resized on the CPU
        with exact_fp32():  # the same score on any device
            return self.model.embed(x[None])

    @torch.inference_mode()
    def verify_faces(self, a: np.ndarray, b: np.ndarray) -> Verdict:
        """Score two aligned crops (what :meth:`face` returns)."""
        score = float(self.model.score(self.embed_face(a), self.embed_face(b))[0])
        return Verdict(score, self.threshold, SAME if score >= self.threshold else DIFFERENT, self.description)

    def verify(self, a: str | Path | Image.Image, b: str | Path | Image.Image) -> Verdict:
        """Find, align, embed and score the faces of two photos (paths or PIL images)."""
        faces = (self.find_face(a), self.find_face(b))
        verdict = self.verify_faces(faces[0].crop, faces[1].crop)
        verdict.faces = faces
        return verdict


def describe_model(ckpt: dict, path: Path, threshold: float, given: bool = False) -> str:
    """Which model and threshold, in words: a pretrained recipe's summary, or the checkpoint's path
    and where its threshold came from."""
    if "pretrained" in ckpt and not given:
        return PretrainedModel(**ckpt["pretrained"]).summary()
    name = ckpt["pretrained"]["name"] if "pretrained" in ckpt else f"checkpoint {project_relative(path)}"
    if given:
        return f"model {name}; threshold {threshold:.4f} as given"
    if ckpt.get("val_threshold") is not None:
        return f"model {name}; threshold {threshold:.4f} chosen on its run's validation pairs"
    return f"model {name}; threshold {threshold:.4f}, the fixed one of its distance (no validation-chosen one)"
