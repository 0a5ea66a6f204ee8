"""Evaluate a verification model on a pair list: embed every unique image once, score all pairs
at once, compute :func:`backbone.evaluation.metrics.verification_metrics`.

Embeddings can be cached per checkpoint (:class:`EmbeddingStore`): keyed by the checkpoint's
content and each image's content, so evaluating the same checkpoint on another pair list only
embeds the images it has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from backbone.atomic import atomic_path
from backbone.data.faces.cache import CachedFaces, file_digest
from backbone.data.lists.pairs import Pair
from backbone.devices import exact_fp32
from backbone.evaluation.metrics import fixed_threshold, verification_metrics
from backbone.models.siamese import SiameseNet


class _Images(Dataset):
    def __init__(self, paths: Sequence[str], faces: Callable[[str], torch.Tensor], transform):
        self.paths, self.faces, self.transform = list(paths), faces, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.faces(self.paths[i]))


@torch.inference_mode()
def embed_paths(
    model: SiameseNet,
    paths: Sequence[str],
    faces: Callable[[str], torch.Tensor],
    transform,
    batch_size: int = 128,
    workers: int = 0,
    device: torch.device | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """L2-normalised embeddings ``(len(paths), D)`` on the CPU, in the order of ``paths``, computed
    on the model's device in full fp32 (``exact_fp32``: no TF32 on a GPU)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = DataLoader(_Images(paths, faces, transform), batch_size=batch_size, num_workers=workers)
    with exact_fp32():
        out = [
            model.embed(x.to(device)).float().cpu()
            for x in tqdm(loader, desc="embedding", unit="batch", disable=not progress)
        ]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.embedding_dim)


def default_threshold(model: SiameseNet) -> float | None:
    """The model's fixed threshold (``backbone.evaluation.metrics.fixed_threshold``)."""
    return fixed_threshold(model.distance, model.pair_head is not None)


@torch.inference_mode()
def score_pairs(
    model: SiameseNet, embeddings: torch.Tensor, rows: dict[str, int], pairs: Sequence[Pair], chunk: int = 65536
) -> np.ndarray:
    """Scores of all pairs from precomputed embeddings, vectorised in chunks (higher = more alike)."""
    a = torch.tensor([rows[p.path_a] for p in pairs], dtype=torch.long)
    b = torch.tensor([rows[p.path_b] for p in pairs], dtype=torch.long)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [
        model.score(embeddings[a[i : i + chunk]].to(device), embeddings[b[i : i + chunk]].to(device)).float().cpu()
        for i in range(0, len(pairs), chunk)
    ]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.empty(0)


class EmbeddingStore:
    """Embeddings of one checkpoint, keyed by image content hash, in one file (written atomically)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.vectors: dict[str, torch.Tensor] = {}
        if self.path.is_file():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            self.vectors = dict(zip(saved["hashes"], saved["vectors"]))

    @classmethod
    def for_checkpoint(cls, checkpoint: str | Path, directory: str | Path, tag: str = "") -> EmbeddingStore:
        """The store of ``checkpoint`` under ``directory`` (its name includes the checkpoint's digest)."""
        return cls(Path(directory) / f"{file_digest(checkpoint)[:16]}{'-' + tag if tag else ''}.pt")

    def save(self) -> None:
        hashes = sorted(self.vectors)
        with atomic_path(self.path) as tmp:
            torch.save({"hashes": hashes, "vectors": torch.stack([self.vectors[h] for h in hashes])}, tmp)


@dataclass
class PairEvaluation:
    metrics: dict
    scores: np.ndarray
    embedded: int  # images put through the network in this call


def evaluate_pairs(
    model: SiameseNet,
    pairs: Sequence[Pair],
    faces: Callable[[str], torch.Tensor],
    transform,
    threshold: float | None = None,
    hashes: dict[str, str] | None = None,
    store: EmbeddingStore | None = None,
    batch_size: int = 128,
    workers: int = 0,
    progress: bool = True,
) -> PairEvaluation:
    """Embed each unique image of ``pairs`` once, score every pair, compute all metrics.

    ``hashes`` (image path -> content hash, e.g. ``CachedFaces.hashes``) lets ``store`` reuse
    embeddings across calls and pair lists. When ``faces`` is a :class:`CachedFaces`, the metrics
    say how its crops were made (``faces``: detected, fell back, the detector and the policy).
    """
    if not pairs:
        raise ValueError("no pairs to evaluate")
    unique = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    rows = {p: i for i, p in enumerate(unique)}
    todo = unique
    if store is not None and hashes is not None:
        todo = [p for p in unique if hashes[p] not in store.vectors]
    fresh = embed_paths(model, todo, faces, transform, batch_size, workers, progress=progress) if todo else None
    if store is not None and hashes is not None:
        if fresh is not None:
            store.vectors.update({hashes[p]: v for p, v in zip(todo, fresh)})
            store.save()
        embeddings = torch.stack([store.vectors[hashes[p]] for p in unique])
    else:
        embeddings = fresh
    scores = score_pairs(model, embeddings, rows, pairs)
    threshold = default_threshold(model) if threshold is None else threshold  # None: the model's fixed one
    folds = (
        np.array([-1 if p.fold is None else p.fold for p in pairs]) if any(p.fold is not None for p in pairs) else None
    )
    twins = np.array([p.twins for p in pairs]) if any(p.twins for p in pairs) else None
    labels = np.array([p.same for p in pairs])
    metrics = verification_metrics(scores, labels, threshold=threshold, folds=folds, twins=twins)
    metrics["unique_images"] = len(unique)
    if isinstance(faces, CachedFaces):
        metrics["faces"] = asdict(faces.counts(unique))
    return PairEvaluation(metrics, scores, len(todo))
