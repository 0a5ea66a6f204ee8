"""Where the explorer's pairs, faces and model come from: a finished run folder, a score file with
its data root, or a checkpoint and a pair list (scored on the spot).

Faces are shown as the model saw them: aligned with the run's alignment, from the face cache.
A model (the run's ``best.ckpt`` or the given checkpoint) is optional; it enables the attention
overlay (local-global models) and verifies two new images at the review's threshold. Without one,
new images are verified by the default pretrained model at its own threshold, and a pair list
without a checkpoint is scored by it (``backbone.evaluation.pretrained``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from backbone.data.errors import DataError, existing
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.cache import open_faces
from backbone.data.images import decode_rgb, load_rgb, load_rgb_array
from backbone.data.index import IdentityIndex
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import check_pair_images
from backbone.evaluation.checkpoints import checkpoint_align_config, checkpoint_data, evaluate_checkpoint
from backbone.evaluation.embeddings import default_threshold
from backbone.evaluation.explain import attention_maps
from backbone.evaluation.metrics import fixed_threshold, reported_threshold
from backbone.evaluation.pretrained import pretrained_checkpoint
from backbone.evaluation.scores import ScoredPairs, read_scores
from backbone.evaluation.verification import Verdict, Verifier
from backbone.explorer.review import PairReview
from backbone.models.build import load_model
from backbone.models.local_global import LocalGlobalNet
from backbone.models.siamese import SiameseNet
from backbone.paths import project_path
from backbone.training.config import TrainConfig

# An image to verify: a path (absolute, from here, or under the data root) or an upload (name, bytes).
ImageInput = str | Path | tuple[str, bytes]


@dataclass
class Verification:
    faces: tuple[np.ndarray, np.ndarray]  # the aligned crops the model compared
    verdict: Verdict


@dataclass
class ExplorerSource:
    """Everything the explorer shows: the review, a face for each image path, an optional model."""

    review: PairReview
    root: Path
    faces: Callable[[str], np.ndarray]  # path under root -> HxWx3 uint8 face, as the model saw it
    title: str
    model: SiameseNet | None = None
    image_size: int | None = None
    align: AlignConfig | None = None

    @property
    def has_attention(self) -> bool:
        return self.model is not None and isinstance(self.model.net, LocalGlobalNet)

    def attention(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """Attention maps of HxWx3 faces (model input size); ValueError without a local-global model."""
        if not self.has_attention:
            raise ValueError("attention maps need a local-global model (a checkpoint with attention)")
        return attention_maps(self.model, [torch.from_numpy(f).permute(2, 0, 1) for f in faces], self.image_size)

    def read_image(self, image: ImageInput) -> tuple[Image.Image, str]:
        """An uploaded or named image as RGB, and the name errors use."""
        if isinstance(image, tuple):
            name, data = image
            return decode_rgb(bytes(data), name), name
        path = Path(image)
        found = project_path(path)
        if not found.exists() and not path.is_absolute() and (self.root / path).exists():
            found = self.root / path
        return load_rgb(found), str(path)

    @cached_property
    def verifier(self) -> Verifier:
        """The model with the run's alignment (built once: MTCNN loads on first use); without a
        model of the source's own, the default pretrained one, at its own threshold."""
        if self.model is None:
            return Verifier.pretrained()
        return Verifier(self.model, self.align, self.image_size, self.review.threshold, "the explorer's model")

    def verify(self, a: ImageInput, b: ImageInput) -> Verification:
        """Align both images as the model expects, embed and score them at the review's threshold
        (the pretrained model's own threshold when the source has no model).

        An unreadable file raises ImageReadError, an image without a face NoFaceError; both name it."""
        verifier = self.verifier
        if self.model is not None:
            verifier.threshold = self.review.threshold
            verifier.description = f"the explorer's model; threshold {self.review.threshold:.4f} (the review's)"
        (img_a, name_a), (img_b, name_b) = self.read_image(a), self.read_image(b)
        found = (verifier.find_face(img_a, name_a), verifier.find_face(img_b, name_b))
        verdict = verifier.verify_faces(found[0].crop, found[1].crop)
        verdict.faces = found
        return Verification((found[0].crop, found[1].crop), verdict)


def _index(root: Path, kind: str, scored: ScoredPairs, source: Path) -> IdentityIndex:
    """The data set's index; score files name images relative to its ``root`` (for LFW, the
    ``lfw-deepfunneled`` folder inside the data root), and every one of them must exist."""
    index = load_index(root, kind)
    check_pair_images(scored.pairs, index.root, source)
    return index


def _aligned_faces(
    index: IdentityIndex,
    scored: ScoredPairs,
    align: AlignConfig,
    policy: str,
    cache: str | None,
    progress: bool,
    device: str | None = "auto",
) -> Callable[[str], np.ndarray]:
    paths = {p for pair in scored.pairs for p in (pair.path_a, pair.path_b)}
    cached = open_faces(
        index.only_paths(paths), align, policy=policy, cache_root=cache, progress=progress, device=device
    )
    return lambda path: cached(path).permute(1, 2, 0).numpy()


def open_run(
    run: str | Path,
    threshold: float | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    device: str | None = "auto",
) -> ExplorerSource:
    """A finished run folder: its ``test_scores.tsv``, config and, when present, ``best.ckpt``.

    The threshold defaults to the run's operating threshold: the one chosen on its validation
    pairs, or the fixed one its metrics were reported at."""
    run = existing(run, "run folder", kind="dir")
    if not (run / "test_scores.tsv").is_file():
        raise DataError(f"{run} is not a finished run: no test_scores.tsv (train it, or pass a score file)")
    config = TrainConfig.load(run / "config.yaml")
    scored = read_scores(run / "test_scores.tsv")
    index = _index(
        existing(config.data.root, "data root", kind="dir"), config.data.kind, scored, run / "test_scores.tsv"
    )
    if threshold is None and (run / "metrics.json").is_file():
        threshold = reported_threshold(json.loads((run / "metrics.json").read_text()))
    checkpoint = (
        project_path(checkpoint) if checkpoint else run / "best.ckpt"
    )  # a named one must exist; the run's may not
    model, model_config, _ = (
        load_model(checkpoint, device=device)
        if checkpoint.is_file() or checkpoint != run / "best.ckpt"
        else (None, None, None)
    )
    threshold = threshold if threshold is not None else _default_threshold(model)
    faces = _aligned_faces(index, scored, config.data.align, config.data.policy, config.data.cache, progress, device)
    title = f"{run.name}: {len(scored.pairs)} test pairs" + (
        "" if model else " (no best.ckpt: attention and verify are off)"
    )
    image_size = model_config.image_size if model_config else None
    return ExplorerSource(PairReview(scored, threshold), index.root, faces, title, model, image_size, config.data.align)


def open_scores(
    scores: str | Path,
    root: str | Path,
    checkpoint: str | Path | None = None,
    threshold: float | None = None,
    progress: bool = True,
    device: str | None = "auto",
) -> ExplorerSource:
    """A score file (``test_scores.tsv``, ``scores_<pairs>.tsv``) over the images under ``root``.

    With a checkpoint, faces are aligned as it was trained; without, images are shown whole."""
    scores = existing(scores, "score file")
    scored = read_scores(scores)
    model = ckpt = image_size = align = None
    if checkpoint:
        model, config, ckpt = load_model(checkpoint, device=device)
        image_size, align = config.image_size, checkpoint_align_config(ckpt, config.image_size)
    data = checkpoint_data(ckpt or {})
    index = _index(existing(root, "data root", kind="dir"), data.get("kind", "auto"), scored, scores)

    def faces(path: str) -> np.ndarray:  # whole images: without a checkpoint the alignment is unknown
        return load_rgb_array(index.absolute(path))

    if checkpoint:
        faces = _aligned_faces(
            index, scored, align, data.get("policy", "fallback"), data.get("cache"), progress, device
        )
    threshold = threshold if threshold is not None else _default_threshold(model, ckpt)
    return ExplorerSource(
        PairReview(scored, threshold),
        index.root,
        faces,
        f"{scores.name}: {len(scored.pairs)} pairs",
        model,
        image_size,
        align,
    )


def open_checkpoint(
    checkpoint: str | Path,
    pairs: str | Path,
    root: str | Path | None = None,
    threshold: float | None = None,
    progress: bool = True,
    device: str | None = "auto",
) -> ExplorerSource:
    """Score a pair list with a checkpoint now (embeddings cached), then explore it."""
    result = evaluate_checkpoint(checkpoint, pairs, root, threshold=None, progress=progress, device=device)
    scored = ScoredPairs(result.pairs, result.evaluation.scores, str(pairs))
    threshold = threshold if threshold is not None else _default_threshold(result.model, result.checkpoint)

    def faces(path: str) -> np.ndarray:
        return result.faces(path).permute(1, 2, 0).numpy()

    title = f"{Path(checkpoint).name} on {Path(pairs).name}: {len(scored.pairs)} pairs"
    return ExplorerSource(
        PairReview(scored, threshold),
        result.faces.index.root,
        faces,
        title,
        result.model,
        result.config.image_size,
        result.align,
    )


def open_source(
    run: str | Path | None = None,
    scores: str | Path | None = None,
    checkpoint: str | Path | None = None,
    pairs: str | Path | None = None,
    root: str | Path | None = None,
    threshold: float | None = None,
    progress: bool = True,
    device: str | None = "auto",
) -> ExplorerSource:
    """The notebook's entry point: a run folder, a score file plus data root, or a pair list with a
    checkpoint (or with its data root: scored by the default pretrained model); the model (verify,
    attention) runs on ``device`` (``backbone.devices.resolve_device``)."""
    if run:
        return open_run(run, threshold, checkpoint, progress, device)
    if scores:
        if not root:
            raise ValueError("a score file needs the data root its paths are relative to (root=...)")
        return open_scores(scores, root, checkpoint, threshold, progress, device)
    if pairs:
        if not checkpoint and not root:
            raise ValueError("a pair list scored by the pretrained model needs the data root its paths are relative to (root=...)")  # fmt: skip
        return open_checkpoint(checkpoint or pretrained_checkpoint(), pairs, root, threshold, progress, device)
    raise ValueError(
        "open a run folder (run=...), a score file (scores=..., root=...) or a pair list (pairs=..., with "
        "checkpoint=... or root=... for the pretrained model)"
    )


def _default_threshold(model: SiameseNet | None, ckpt: dict | None = None) -> float:
    """The threshold a checkpoint's run chose on its validation pairs, else the model's fixed one."""
    if ckpt is not None and ckpt.get("val_threshold") is not None:
        return float(ckpt["val_threshold"])
    chosen = default_threshold(model) if model is not None else fixed_threshold()
    if chosen is None:
        raise ValueError(f"no default threshold for distance {model.distance!r}: pass threshold=...")
    return chosen
