"""The common jobs in one call each, like deepface's ``verify`` and ``find``::

    import backbone

    result = backbone.verify("a.jpg", "b.jpg")      # Verdict: .score, .threshold, .is_same, .text()
    found = backbone.identify("probe.jpg", "gallery/")  # Identification: .best, .matches, .text()

With no ``checkpoint`` both use the default pretrained model (dlib's ResNet as it is, each face
embedded with its mirror image, at the threshold chosen on LFW's validation pairs); a trained
run's ``best.ckpt`` works the same way. Models load once per process and stay loaded.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image

from backbone.evaluation.identification import Identification
from backbone.evaluation.identification import identify as identify_in
from backbone.evaluation.verification import Verdict, Verifier
from backbone.paths import project_path

Photo = str | Path | Image.Image


@functools.lru_cache(maxsize=4)
def verifier(checkpoint: str | None = None, threshold: float | None = None, device: str = "auto") -> Verifier:
    """The model of ``checkpoint`` (None: the default pretrained one), loaded once per arguments."""
    if checkpoint is None:
        return Verifier.pretrained(threshold=threshold, device=device)
    return Verifier.from_checkpoint(checkpoint, threshold, device)


def _key(checkpoint: str | Path | None) -> str | None:
    return None if checkpoint is None else str(project_path(checkpoint))


def verify(
    a: Photo, b: Photo, checkpoint: str | Path | None = None, threshold: float | None = None, device: str = "auto"
) -> Verdict:
    """Are the faces of photos ``a`` and ``b`` (paths or PIL images) the same person?

    Returns a :class:`~backbone.evaluation.verification.Verdict`: ``score`` (higher: more alike),
    ``threshold``, ``same`` (1: the same person), ``model`` (which model and threshold, in words)
    and ``faces`` (which face of each photo). A photo without a face raises ``NoFaceError``
    naming it; an unreadable one ``ImageReadError``."""
    return verifier(_key(checkpoint), threshold, device).verify(a, b)


def identify(
    probe: Photo,
    gallery: str | Path,
    top_k: int = 5,
    checkpoint: str | Path | None = None,
    threshold: float | None = None,
    device: str = "auto",
    cache: str | Path | None = None,
    policy: str = "report",
    progress: bool = True,
) -> Identification:
    """The ``top_k`` people of ``gallery`` (one sub-folder of photos per person) most like the face
    of ``probe``, best first (``backbone.evaluation.identification.identify``); the gallery's
    embeddings are cached on disk, so a second search of it is fast."""
    model = verifier(_key(checkpoint), threshold, device)
    return identify_in(model, probe, gallery, top_k, cache, policy, progress)
