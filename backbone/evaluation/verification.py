"""Verify two face images with a trained checkpoint: align them as training did, embed, score.

``Verifier.from_checkpoint(path)`` is what ``backbone verify`` and the pair explorer use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from backbone.data.errors import DataError
from backbone.data.faces.align import AlignConfig, FaceAligner
from backbone.data.faces.cache import NoFaceError
from backbone.data.faces.transforms import eval_transform
from backbone.data.images import load_rgb
from backbone.devices import exact_fp32
from backbone.evaluation.checkpoints import checkpoint_align_config
from backbone.evaluation.embeddings import default_threshold
from backbone.labels import DIFFERENT, SAME
from backbone.models.build import load_model
from backbone.models.siamese import SiameseNet


@dataclass
class Verdict:
    score: float
    threshold: float
    same: int  # SAME (1) when score >= threshold

    def text(self) -> str:
        word = "SAME person" if self.same == SAME else "DIFFERENT people"
        return f"similarity {self.score:.4f}, threshold {self.threshold:.4f}: {word}"


class Verifier:
    """Aligns, embeds and scores photos on the device of ``model`` (its detector too)."""

    def __init__(self, model: SiameseNet, align: AlignConfig, image_size: int, threshold: float | None = None):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.aligner = FaceAligner(align, device=self.device)
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
        model, config, ckpt = load_model(path, device=device)
        if threshold is None:
            threshold = ckpt.get("val_threshold")
        return cls(model, checkpoint_align_config(ckpt, config.image_size, path), config.image_size, threshold)

    def face(self, image: str | Path | Image.Image, name: str | None = None) -> np.ndarray:
        """The aligned crop (HxWx3 uint8); no face raises NoFaceError naming the image."""
        img = image if isinstance(image, Image.Image) else load_rgb(image)
        (det,) = self.aligner.align([img.convert("RGB")])
        label = name or (image if not isinstance(image, Image.Image) else "the image")
        if det.error is not None:
            raise DataError(f"{label}: {det.error}")
        if det.crop is None:
            raise NoFaceError(f"no face found in {label} (detector {self.aligner.config.detector})")
        return det.crop

    @torch.inference_mode()
    def embed_face(self, face: np.ndarray) -> torch.Tensor:
        x = self.transform(torch.from_numpy(face).permute(2, 0, 1)).to(self.device)  # one crop: resized on the CPU
        with exact_fp32():  # the same score on any device
            return self.model.embed(x[None])

    @torch.inference_mode()
    def verify_faces(self, a: np.ndarray, b: np.ndarray) -> Verdict:
        """Score two aligned crops (what :meth:`face` returns)."""
        score = float(self.model.score(self.embed_face(a), self.embed_face(b))[0])
        return Verdict(score, self.threshold, SAME if score >= self.threshold else DIFFERENT)

    def verify(self, a: str | Path | Image.Image, b: str | Path | Image.Image) -> Verdict:
        return self.verify_faces(self.face(a), self.face(b))
