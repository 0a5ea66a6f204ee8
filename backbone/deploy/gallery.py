"""The service's gallery for ``POST /identify``: one sub-folder of photos per person (as ``backbone
identify`` takes it), embedded once by the served model and searched by every request.

Its embeddings are kept in one file per model and alignment (``gallery-<model>-<alignment>.npz``
in the cache folder), keyed by each photo's content, so a restart embeds nothing and a gallery
that grew embeds only its new photos. A photo without a face, or one that does not decode, is left
out, named in the service's log and counted in every answer (``skipped``); the rest still serve.
The search ranks as ``backbone identify`` does (``backbone.ranking``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from backbone.atomic import atomic_write_bytes
from backbone.data.errors import DataError
from backbone.data.images import load_rgb
from backbone.data.layouts.load import load_index
from backbone.deploy.runtime import FaceModel
from backbone.ranking import Match, rank_people

log = logging.getLogger("backbone.serve")


class Gallery:
    """A gallery's photos embedded by ``model``.

    Args:
        root: the gallery folder, one sub-folder per person.
        model: the served model (its engine embeds, its alignment aligns, its threshold marks SAME).
        cache: the folder of the embeddings file; None keeps them in memory only.
        chunk: photos embedded per forward pass.
    """

    def __init__(self, root: str | Path, model: FaceModel, cache: str | Path | None = None, chunk: int = 32):
        self.model = model
        index = load_index(root)
        if not index.records:
            raise DataError(f"gallery {index.root}: no photos; lay it out one sub-folder per person")
        self.root, self.person_of = index.root, index.identity_of
        digests = {r.path: hashlib.sha1(index.absolute(r.path).read_bytes()).hexdigest() for r in index.records}
        key = json.dumps(model.sidecar.alignment, sort_keys=True).encode()
        name = f"gallery-{model.sidecar.sha256[:16]}-{hashlib.sha1(key).hexdigest()[:10]}.npz"
        self.file = Path(cache) / name if cache is not None else None
        known = self._read()
        todo = [p for p in digests if digests[p] not in known]
        self.skipped: dict[str, str] = {}
        for start in range(0, len(todo), chunk):
            known.update(self._embed(todo[start : start + chunk], index, digests))
        if todo:
            self._write(known)
        self.paths = [p for p in digests if digests[p] in known]
        self.vectors = np.stack([known[digests[p]] for p in self.paths]) if self.paths else np.zeros((0, 1), np.float32)
        self.embedded = len(todo) - len(self.skipped)
        for path, why in self.skipped.items():
            log.warning("gallery %s: left out %s: %s", self.root.name, path, why)

    @property
    def people(self) -> int:
        return len({self.person_of[p] for p in self.paths})

    def search(self, probe: np.ndarray, top_k: int) -> list[Match]:
        """The ``top_k`` people best first for the probe's embedding ``probe`` (D,)."""
        if not self.paths:
            return []
        scores = self.model.score(np.repeat(probe[None], len(self.paths), axis=0), self.vectors)
        return rank_people(self.paths, scores.tolist(), self.person_of, top_k, self.model.threshold)[0]

    def _embed(self, paths: list[str], index, digests: dict[str, str]) -> dict[str, np.ndarray]:
        crops, done = [], []
        for path in paths:
            try:
                crops.append(self.model.face(load_rgb(index.absolute(path)), path).crop)
                done.append(path)
            except DataError as exc:  # no face, unreadable, too large: named, the rest go on
                self.skipped[path] = str(exc)
        if not crops:
            return {}
        vectors = self.model.embed(crops)
        return {digests[p]: v.astype(np.float32) for p, v in zip(done, vectors, strict=True)}

    def _read(self) -> dict[str, np.ndarray]:
        if self.file is None or not self.file.is_file():
            return {}
        try:
            with np.load(self.file) as stored:
                return dict(zip(stored["digests"].tolist(), stored["vectors"], strict=True))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("gallery embeddings %s unreadable (%s): embedding the gallery again", self.file.name, exc)
            return {}

    def _write(self, known: dict[str, np.ndarray]) -> None:
        if self.file is None or not known:
            return
        out = io.BytesIO()
        np.savez(out, digests=np.array(list(known)), vectors=np.stack(list(known.values())))
        try:
            atomic_write_bytes(self.file, out.getvalue())
        except OSError as exc:  # a read-only place (a container's): the embeddings stay in memory
            log.warning("gallery embeddings not kept (%s: %s); they are in memory", self.file, exc.strerror)
            self.file = None
