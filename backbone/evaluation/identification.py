"""Identify a face in a gallery (1:N): who in a folder of people is the person of a probe photo?

A gallery is an identity-folder data set, one sub-folder per person (``gallery/alice/*.jpg``). Its
faces are aligned as the model expects and embedded once: the aligned crops go to the face cache
and the embeddings to the model's embedding store (keyed by the checkpoint's digest, the alignment
and each face's content hash), so a second search of the same gallery embeds nothing, and a
gallery that grew embeds only its new photos. Each person scores as their best-matching photo;
the people come back best first, each marked SAME when the score reaches the model's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from backbone.data.errors import DataError, NoFaceError
from backbone.data.layouts.load import load_index
from backbone.evaluation.checkpoints import cached_embeddings
from backbone.evaluation.verification import FoundFace, Verifier
from backbone.labels import SAME
from backbone.ranking import Match, rank_people


@dataclass
class Identification:
    """The people of a gallery most like the probe, best first."""

    probe: FoundFace
    matches: list[Match]
    threshold: float
    model: str  # which model and threshold, in words
    gallery: Path
    people: int
    images: int
    embedded: int  # gallery photos embedded by this call (0: all came from the store)
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Match | None:
        """The best match when it reaches the threshold, else None (nobody in the gallery)."""
        return self.matches[0] if self.matches and self.matches[0].same == SAME else None

    def text(self) -> str:
        best = self.best
        head = (
            f"{self.probe.name}: most like {best.person} (similarity {best.score:.4f} >= threshold {self.threshold:.4f})"
            if best
            else f"{self.probe.name}: nobody in the gallery reaches the threshold {self.threshold:.4f}"
        )
        width = max(len(m.person) for m in self.matches)
        rows = [f"  {i}. {m.person:{width}s}  {m.score:.4f}  {'SAME' if m.same == SAME else '-   '}  {m.image}"
                for i, m in enumerate(self.matches, 1)]  # fmt: skip
        cached = self.images - self.embedded
        caution = [c for c in [self.probe.caution()] if c]
        lines = [head, *caution, *rows, self.model, f"face of {self.probe.note()}",
                 f"gallery {self.gallery}: {self.people} people, {self.images} photos "
                 f"({self.embedded} embedded now, {cached} from the cache)", *self.notes]  # fmt: skip
        return "\n".join(lines)


def identify(
    verifier: Verifier,
    probe: str | Path | Image.Image,
    gallery: str | Path,
    top_k: int = 5,
    cache: str | Path | None = None,
    policy: str = "report",
    progress: bool = True,
) -> Identification:
    """The ``top_k`` people of ``gallery`` most like the face of ``probe``.

    Args:
        verifier: the model (a checkpoint's, or a pretrained one's: it needs its checkpoint file,
            which keys the embedding store).
        probe: the photo to identify (its largest face nearest the centre, as in evaluation).
        gallery: one sub-folder per person (any layout ``backbone.data.load_index`` reads).
        top_k: how many people to return.
        cache: the face cache folder (default ``.cache/faces``; embeddings beside it).
        policy: a gallery photo without a face: ``report`` refuses the gallery, listing every
            such photo; ``fallback`` uses its centre crop.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if verifier.checkpoint is None:
        raise ValueError("identify needs a verifier opened from a checkpoint (its digest keys the embedding store)")
    index = load_index(gallery)
    if not index.records:
        raise DataError(f"gallery {index.root} holds no photos: lay it out one sub-folder per person")
    found = verifier.find_face(probe)
    paths = [r.path for r in index.records]
    try:
        vectors, embedded = cached_embeddings(
            verifier.model, verifier.checkpoint, verifier.aligner.config, verifier.image_size, index, paths, cache,
            policy, progress,
        )  # fmt: skip
    except NoFaceError as exc:
        raise NoFaceError(
            f"gallery {index.root}: {len(exc.problems)} photos without a face; remove them, or use their centre "
            "crops (policy 'fallback', --no-face fallback)",
            exc.problems,
        ) from None
    with torch.inference_mode():
        probe_vector = verifier.embed_face(found.crop)  # on the model's device
        gallery_vectors = vectors.to(probe_vector.device)
        scores = verifier.model.score(probe_vector.expand(len(paths), -1), gallery_vectors).cpu().tolist()
    matches, people = rank_people(paths, scores, index.identity_of, top_k, verifier.threshold)
    singles = sum(len(v) == 1 for v in index.by_identity.values())
    notes = [f"{singles} people have one photo only: more photos per person make the search surer"] if singles else []
    return Identification(
        found, matches, verifier.threshold, verifier.description, index.root, people, len(paths), embedded, notes
    )
