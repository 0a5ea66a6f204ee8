"""A trained checkpoint at inference time: the alignment it was trained with, the faces of its
data, and its scores on a pair list.

``backbone evaluate``, ``backbone verify``, the attention figure, the pair explorer and the
distillation regime's teacher all open checkpoints through here, so they see faces exactly as
training did.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backbone.data.checks.validate import check_pairs
from backbone.data.errors import DataError, DataWarning
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.cache import CachedFaces, default_cache_root, open_faces
from backbone.data.faces.transforms import eval_transform
from backbone.data.index import IdentityIndex
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, read_pairs, repeated_pairs
from backbone.evaluation.embeddings import EmbeddingStore, PairEvaluation, embed_paths, evaluate_pairs
from backbone.evaluation.metrics import with_val_threshold
from backbone.models.build import ModelConfig, load_model
from backbone.models.siamese import SiameseNet
from backbone.models.weights import CheckpointError
from backbone.paths import project_path
from backbone.settings import ConfigError, build


def _store_dir(cache: str | Path | None) -> Path:
    """Where embeddings of checkpoints are cached: ``embeddings/`` beside the face cache."""
    return (project_path(cache) if cache else default_cache_root()).parent / "embeddings"


def checkpoint_embeddings(
    checkpoint: str | Path,
    index: IdentityIndex,
    paths: Sequence[str],
    cache: str | Path | None = None,
    policy: str = "fallback",
    progress: bool = True,
    device: str | torch.device | None = "auto",
) -> torch.Tensor:
    """L2-normalised embeddings ``(len(paths), D)`` (on the CPU) of images of ``index`` by
    ``checkpoint`` on ``device``, on faces aligned as its run trained it, cached like every
    evaluation of it (one store per checkpoint and alignment): a second call embeds only images
    it has not seen."""
    checkpoint = project_path(checkpoint)
    model, config, ckpt = load_model(checkpoint, device=device)
    align = checkpoint_align_config(ckpt, config.image_size, checkpoint)
    vectors, _ = cached_embeddings(
        model, checkpoint, align, config.image_size, index, paths, cache, policy, progress, device
    )
    return vectors


def cached_embeddings(
    model: SiameseNet,
    checkpoint: Path,
    align: AlignConfig,
    image_size: int,
    index: IdentityIndex,
    paths: Sequence[str],
    cache: str | Path | None = None,
    policy: str = "fallback",
    progress: bool = True,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, int]:
    """:func:`checkpoint_embeddings` with the checkpoint's model already loaded (on its device):
    the embeddings ``(len(paths), D)`` and how many images were embedded now (the rest came from
    the store, keyed by the checkpoint's digest, the alignment and each face's content hash). The
    detector runs on ``device`` (default: the model's)."""
    device = device if device is not None else next(model.parameters()).device
    faces = open_faces(index.only_paths(set(paths)), align, policy, cache_root=cache, progress=progress, device=device)
    store = EmbeddingStore.for_checkpoint(checkpoint, _store_dir(cache), align.key())
    todo = [p for p in dict.fromkeys(paths) if faces.hashes[p] not in store.vectors]
    if todo:
        fresh = embed_paths(model, todo, faces, eval_transform(image_size), progress=progress)
        store.vectors.update({faces.hashes[p]: v for p, v in zip(todo, fresh)})
        store.save()
    return torch.stack([store.vectors[faces.hashes[p]] for p in paths]), len(todo)


def checkpoint_data(ckpt: dict) -> dict:
    """The ``data`` section of the training config saved in a checkpoint ({} if none)."""
    return ckpt.get("train_config", {}).get("data", {})


def checkpoint_align_config(ckpt: dict, image_size: int, source: str | Path = "checkpoint") -> AlignConfig:
    """The alignment a checkpoint was trained with (a centre crop at the model size if unknown)."""
    align = checkpoint_data(ckpt).get("align")
    if not align:
        return AlignConfig(size=image_size, detector="none")
    try:
        return build(AlignConfig, align, "data.align.")
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {source}: {exc}") from None


def with_alignment(checkpoint: str | Path, out: str | Path, **changes) -> Path:
    """A copy of ``checkpoint`` at ``out`` whose faces are aligned with ``changes`` to its
    alignment (e.g. ``retry_dark=True``): the same weights and thresholds, compared as another model.
    Written atomically, and only when missing or older than ``checkpoint``."""
    from backbone.atomic import atomic_path
    from backbone.models.build import read_checkpoint

    checkpoint, out = project_path(checkpoint), project_path(out)
    if out.is_file() and out.stat().st_mtime >= checkpoint.stat().st_mtime:
        return out
    ckpt = read_checkpoint(checkpoint)
    data = ckpt.setdefault("train_config", {}).setdefault("data", {})
    data["align"] = {**data.get("align", {}), **changes}
    build(AlignConfig, data["align"], "data.align.")  # a setting that does not exist fails here, naming it
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
    return out


def label_conflicts(index: IdentityIndex, pairs: list[Pair], source: Path, trust_labels: bool = False) -> int:
    """How many pairs' labels contradict the identities of ``index``; a DataError listing them
    unless ``trust_labels`` (then a DataWarning)."""
    problems = [f.problem for f in check_pairs(index, pairs, str(source)) if f.kind == "wrong-label"]
    if problems and not trust_labels:
        raise DataError(
            f"{source}: {len(problems)} pair labels contradict the identity folders of {index.root}, so the metrics "
            "would be wrong; fix the labels, or pass trust_labels (--trust-labels) to score the file's labels anyway",
            problems,
        )
    if problems:
        warnings.warn(
            f"{source}: {len(problems)} of {len(pairs)} pair labels contradict the identity folders of {index.root}; "
            "scoring the file's labels as asked (--trust-labels)",
            DataWarning,
            stacklevel=2,
        )
    return len(problems)


@dataclass
class CheckpointEvaluation:
    model: SiameseNet
    config: ModelConfig
    checkpoint: dict
    align: AlignConfig
    pairs: list[Pair]
    faces: CachedFaces
    evaluation: PairEvaluation


def odd_pairs(pairs: list[Pair], source: Path) -> dict[str, int]:
    """Pairs listed again (either order) and pairs of an image with itself: counted, and named by
    line in one DataWarning when there are any (``data validate`` reports them too)."""
    again, same_image = repeated_pairs(pairs)
    repeated, itself = [p.line for p, _ in again], [p.line for p in same_image]
    if repeated or itself:

        def lines(found: list[int | None]) -> str:
            return ", ".join(str(n) for n in found[:10]) + (" ..." if len(found) > 10 else "")

        said = ([f"{len(repeated)} repeated (lines {lines(repeated)})"] if repeated else []) + (
            [f"{len(itself)} of an image with itself (lines {lines(itself)})"] if itself else [])  # fmt: skip
        warnings.warn(f"{source}: {' and '.join(said)}; scored as listed, so they weigh on the metrics",
                      DataWarning, stacklevel=3)  # fmt: skip
    return {"repeated_pairs": len(repeated), "self_pairs": len(itself)}


def evaluate_checkpoint(
    checkpoint: str | Path,
    pairs_file: str | Path,
    root: str | Path | None = None,
    cache: str | Path | None = None,
    threshold: float | None = None,
    batch_size: int = 128,
    progress: bool = True,
    trust_labels: bool = False,
    allow_outside_root: bool = False,
    device: str | torch.device | None = "auto",
) -> CheckpointEvaluation:
    """Scores and metrics of ``checkpoint`` on a pair list, on faces aligned as in training.

    ``root`` defaults to the data root the checkpoint was trained on; embeddings are cached per
    checkpoint next to the face cache, so a second pair list only embeds new images. A checkpoint
    of a training run also scores the pairs at the threshold its run chose on the validation
    pairs (``at_val_threshold``), beside ``threshold`` (default: the model's fixed one).

    Pair labels that contradict the identity folders (``same`` for two people, or different for
    one) make the metrics wrong: they raise a DataError listing the lines, unless ``trust_labels``
    (then a DataWarning says how many, and ``label_conflicts`` in the metrics counts them). An
    empty pair list raises; paths leaving the data root need ``allow_outside_root``. Repeated pairs
    and pairs of an image with itself are scored as given (a pair is never dropped), with a
    DataWarning naming their lines, and counted in the metrics (``repeated_pairs``, ``self_pairs``):
    they weigh on the metrics the way they are listed. The model runs on ``device`` (``backbone.devices.resolve_device``), moved there once."""
    checkpoint = project_path(checkpoint)
    model, config, ckpt = load_model(checkpoint, device=device)
    data = checkpoint_data(ckpt)
    index = load_index(root or data.get("root", "."))
    pairs = read_pairs(pairs_file, root=index.root, allow_outside_root=allow_outside_root)
    if not pairs:
        raise DataError(f"pair file {project_path(pairs_file)} holds no pairs: nothing to evaluate")
    conflicts = label_conflicts(index, pairs, project_path(pairs_file), trust_labels)
    oddities = odd_pairs(pairs, project_path(pairs_file))
    align = checkpoint_align_config(ckpt, config.image_size, checkpoint)
    cache = cache or data.get("cache")
    paths = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
    faces = open_faces(index.only_paths(paths), align, cache_root=cache, progress=progress, device=device)
    store = EmbeddingStore.for_checkpoint(checkpoint, _store_dir(cache), align.key())
    ev = evaluate_pairs(
        model,
        pairs,
        faces,
        eval_transform(config.image_size),
        threshold,
        faces.hashes,
        store,
        batch_size,
        progress=progress,
    )
    labels = np.array([p.same for p in pairs])
    ev.metrics = with_val_threshold(
        ev.metrics, ev.scores, labels, ckpt.get("val_threshold"), ckpt.get("val_far_threshold")
    )
    if trust_labels:
        ev.metrics["label_conflicts"] = conflicts
    ev.metrics.update(oddities)
    return CheckpointEvaluation(model, config, ckpt, align, pairs, faces, ev)
