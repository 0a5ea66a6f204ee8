"""The aligned-face cache: every epoch reads ready crops instead of decoding and detecting again.

Layout under the cache root (default ``<project>/.cache/faces``, or ``$BACKBONE_CACHE``)::

    sources.json                      path -> [size, mtime_ns, sha1]: content hashes, re-hashed on change
    <config key>/config.json          the AlignConfig the folder was made with
    <config key>/records.jsonl        one JSON line per aligned source (by content hash)
    <config key>/faces/ab/<sha1>.png  the crop

A crop is keyed by the *content* of its source file and the alignment config, so a changed
file or changed parameters invalidate just what changed, and the same image in two data sets
is aligned once. Each crop is written atomically *before* its record line is appended; a crash
leaves at worst a crop without a record (redone on the next run) or a torn last line (ignored),
never an entry that reads as valid but is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from backbone.atomic import atomic_path, atomic_write_json
from backbone.data.errors import DataError, ImageReadError, Problem
from backbone.data.faces.align import FACE, FALLBACK, NO_FACE, POLICIES, AlignConfig, FaceAligner, center_crop
from backbone.data.images import load_rgb
from backbone.data.index import IdentityIndex
from backbone.paths import is_workbook, project_path, project_root


def default_cache_root() -> Path:
    """``$BACKBONE_CACHE``, else ``.cache/faces`` in the project (git-ignored)."""
    if os.environ.get("BACKBONE_CACHE"):
        return project_path(os.environ["BACKBONE_CACHE"])
    if is_workbook(project_root()):
        return project_root() / ".cache" / "faces"
    return Path.home() / ".cache" / "backbone" / "faces"


def file_digest(path: str | Path) -> str:
    """The SHA-1 of a file's content (what caches are keyed by)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class NoFaceError(DataError):
    """An image in which no face was found, under the ``report`` policy."""


@dataclass(frozen=True)
class Record:
    sha1: str
    status: str  # FACE, FALLBACK or NO_FACE
    box: list[float] | None = None
    prob: float | None = None


@dataclass
class AlignSummary:
    """What one alignment run did; ``counts`` covers every image of the index."""

    images: int = 0
    aligned_now: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    no_face: list[str] = field(default_factory=list)
    unreadable: list[Problem] = field(default_factory=list)

    def text(self) -> str:
        rate = f", {self.aligned_now / self.seconds:.1f} img/s" if self.aligned_now and self.seconds else ""
        parts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
        return f"{self.images} images ({parts}); aligned {self.aligned_now} now in {self.seconds:.1f} s{rate}"


class FaceCache:
    """Aligned crops for one :class:`AlignConfig` under a cache root."""

    def __init__(self, root: str | Path | None, config: AlignConfig, policy: str = "fallback"):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.root = project_path(root) if root is not None else default_cache_root()
        self.config = config
        self.policy = policy
        self.dir = self.root / config.key()
        self._records: dict[str, Record] | None = None
        self._hashes: dict[str, list] | None = None

    # ---- content hashes of source files

    def source_hashes(self, paths: Iterable[Path], progress: bool = False) -> dict[Path, str]:
        """sha1 of each source file, re-hashing only files whose size or mtime changed."""
        memo_path = self.root / "sources.json"
        if self._hashes is None:
            self._hashes = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
        out: dict[Path, str] = {}
        changed = False
        for path in tqdm(list(paths), desc="hashing sources", unit="img", disable=not progress, leave=False):
            key = str(path.resolve())
            try:
                st = path.stat()
            except FileNotFoundError:
                raise ImageReadError(path, "no such file") from None
            memo = self._hashes.get(key)
            if memo is None or memo[0] != st.st_size or memo[1] != st.st_mtime_ns:
                memo = [st.st_size, st.st_mtime_ns, file_digest(path)]
                self._hashes[key] = memo
                changed = True
            out[path] = memo[2]
        if changed:
            atomic_write_json(memo_path, self._hashes)
        return out

    # ---- records and crops

    @property
    def records(self) -> dict[str, Record]:
        if self._records is None:
            self._records = {}
            log = self.dir / "records.jsonl"
            if log.is_file():
                text = log.read_text(encoding="utf-8")
                if text and not text.endswith("\n"):
                    # A torn last line from an interrupted run: cut it off so the next
                    # append starts on a line of its own (that image is simply redone).
                    text = text[: text.rfind("\n") + 1]
                    os.truncate(log, len(text.encode("utf-8")))
                for line in text.splitlines():
                    try:
                        rec = Record(**json.loads(line))
                    except (json.JSONDecodeError, TypeError):
                        continue
                    if rec.status == NO_FACE or self.face_path(rec.sha1).is_file():
                        self._records[rec.sha1] = rec
        return self._records

    def face_path(self, sha1: str) -> Path:
        return self.dir / "faces" / sha1[:2] / f"{sha1}.png"

    def is_done(self, sha1: str) -> bool:
        """Whether this source needs no work under the current policy."""
        rec = self.records.get(sha1)
        return rec is not None and not (rec.status == NO_FACE and self.policy == "fallback")

    def add(self, record: Record, crop: np.ndarray | None) -> None:
        """Store one result: the crop first (atomically), then its record line."""
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.dir / "config.json", asdict(self.config))
        if crop is not None:
            with atomic_path(self.face_path(record.sha1)) as tmp:
                Image.fromarray(crop, "RGB").save(tmp, format="PNG")
        with open(self.dir / "records.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(record)) + "\n")
        self.records[record.sha1] = record

    def load(self, sha1: str, source: str | Path = "") -> np.ndarray:
        """The cached crop (HxWx3 uint8). No face under ``report``, or not aligned yet, raises."""
        rec = self.records.get(sha1)
        if rec is None:
            raise DataError(f"{source or sha1} is not in the face cache {self.dir}; run `backbone data align` first")
        if rec.status == NO_FACE or (rec.status == FALLBACK and self.policy == "report"):
            raise NoFaceError(f"no face found in {source or sha1} (policy {self.policy!r})")
        with Image.open(self.face_path(sha1)) as img:
            return np.array(img.convert("RGB"))

    def status_counts(self, hashes: Iterable[str]) -> dict[str, int]:
        """How many of these sources are faces, fallbacks, no-face, or not aligned yet."""
        return dict(Counter(self.records[h].status if h in self.records else "not aligned" for h in hashes))


class _Sources(Dataset):
    """Decodes source images in DataLoader workers (and centre-crops them when that is all we do)."""

    def __init__(self, items: list[tuple[Path, str]], config: AlignConfig):
        self.items, self.config = items, config

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, sha = self.items[i]
        try:
            img = load_rgb(path)
        except ImageReadError as exc:
            return path, sha, None, exc.reason
        if self.config.detector == "none":
            return path, sha, center_crop(img, self.config.size, self.config.crop), None
        return path, sha, img, None


def align_index(
    index: IdentityIndex,
    cache: FaceCache,
    workers: int = 2,
    batch_size: int = 16,
    progress: bool = True,
    aligner: FaceAligner | None = None,
) -> AlignSummary:
    """Align every image of ``index`` not yet in ``cache``; resumable, with a progress bar.

    Unreadable images are listed in the summary (nothing is stored for them); under the
    ``report`` policy so are images with no face.
    """
    start = time.perf_counter()
    paths = [index.absolute(r.path) for r in index.records]
    summary = AlignSummary(images=len(paths))
    hashes = cache.source_hashes(paths, progress=progress)
    todo: dict[str, Path] = {}
    for path in paths:
        if not cache.is_done(hashes[path]):
            todo.setdefault(hashes[path], path)
    aligner = aligner or FaceAligner(cache.config)
    loader = DataLoader(
        _Sources([(p, s) for s, p in todo.items()], cache.config),
        batch_size=batch_size,
        num_workers=workers if len(todo) > batch_size else 0,
        collate_fn=list,
    )
    with tqdm(
        total=len(todo), desc=f"aligning ({cache.config.key()})", unit="img", disable=not progress or not todo
    ) as bar:
        for batch in loader:
            good = [(path, sha, img) for path, sha, img, err in batch if err is None]
            summary.unreadable += [Problem(str(path), err) for path, _, _, err in batch if err is not None]
            if cache.config.detector == "none":
                for _, sha, crop in good:
                    cache.add(Record(sha, FACE), crop)
            else:
                for (_, sha, img), det in zip(good, aligner.align([g[2] for g in good])):
                    if det.crop is not None:
                        cache.add(Record(sha, FACE, det.box, det.prob), det.crop)
                    elif cache.policy == "fallback":
                        cache.add(Record(sha, FALLBACK), center_crop(img, cache.config.size, cache.config.crop))
                    else:
                        cache.add(Record(sha, NO_FACE), None)
            summary.aligned_now += len(good)
            bar.update(len(batch))
    summary.counts = cache.status_counts(hashes[p] for p in paths)
    refused = {NO_FACE} | ({FALLBACK} if cache.policy == "report" else set())
    summary.no_face = [
        str(p) for p in paths if hashes[p] in cache.records and cache.records[hashes[p]].status in refused
    ]
    summary.seconds = time.perf_counter() - start
    return summary


class CachedFaces:
    """Path -> aligned uint8 tensor (3xHxW), read from the cache: what the Datasets use.

    ``preload=True`` decodes every crop of the index once into one in-memory array (RAM:
    images x size^2 x 3 bytes, 1 GB for LFW at 160 px). Reading then costs next to nothing,
    which matters on a small CPU where loader workers and the model share the cores
    (``benchmarks/align_cache.py`` measures both ways).
    """

    def __init__(self, index: IdentityIndex, cache: FaceCache, preload: bool = False, progress: bool = False):
        self.index = index
        self.cache = cache
        by_file = cache.source_hashes(index.absolute(r.path) for r in index.records)
        self.hashes = {r.path: by_file[index.absolute(r.path)] for r in index.records}
        missing = [p for p, h in self.hashes.items() if h not in cache.records]
        if missing:
            raise DataError(
                f"{len(missing)} of {len(self.hashes)} images of {index.root} are not in the face cache {cache.dir} "
                f"(first: {missing[0]}); run `backbone data align {index.root} --cache {cache.root}` first"
            )
        self._rows: dict[str, int] = {}
        self._array: np.ndarray | None = None
        if preload:
            paths = list(self.hashes)
            first = self._read(paths[0])
            self._array = np.empty((len(paths), *first.shape), np.uint8)
            for i, path in enumerate(tqdm(paths, desc="preloading faces", unit="img", disable=not progress)):
                self._array[i] = first if i == 0 else self._read(path)
                self._rows[path] = i

    def _read(self, path: str) -> np.ndarray:
        return self.cache.load(self.hashes[path], source=self.index.absolute(path))

    def __call__(self, path: str) -> torch.Tensor:
        arr = self._array[self._rows[path]].copy() if self._array is not None else self._read(path)
        return torch.from_numpy(arr).permute(2, 0, 1)


def alignment_status(index: IdentityIndex, root: str | Path | None = None) -> dict[str, dict]:
    """For every alignment config in the cache: its settings and how this index's images fared."""
    root = project_path(root) if root is not None else default_cache_root()
    out: dict[str, dict] = {}
    hashes = None
    for config_file in sorted(root.glob("*/config.json")):
        cache = FaceCache(root, AlignConfig(**json.loads(config_file.read_text())))
        if hashes is None:
            hashes = list(cache.source_hashes(index.absolute(r.path) for r in index.records).values())
        out[cache.config.key()] = {"config": asdict(cache.config), "counts": cache.status_counts(hashes)}
    return out


def open_faces(
    index: IdentityIndex,
    config: AlignConfig,
    policy: str = "fallback",
    cache_root: str | Path | None = None,
    preload: bool = False,
    workers: int = 2,
    progress: bool = True,
) -> CachedFaces:
    """Cached faces of ``index``, aligning whatever is not cached yet (a no-op when all is).

    Unreadable images, and images without a face under the ``report`` policy, raise a
    DataError that lists them: nothing is dropped silently.
    """
    cache = FaceCache(cache_root, config, policy=policy)
    summary = align_index(index, cache, workers=workers, progress=progress)
    if summary.unreadable:
        raise DataError(f"{len(summary.unreadable)} unreadable images in {index.root}", summary.unreadable)
    if summary.no_face:
        problems = [Problem(p, f"no face found (policy {policy!r})") for p in summary.no_face]
        raise NoFaceError(f"{len(problems)} images without a face in {index.root}", problems)
    return CachedFaces(index, cache, preload=preload, progress=progress)
