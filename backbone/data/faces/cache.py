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

Alignment runs hold a lock on the config folder (``.lock``), so two ``data align`` runs on one
cache do the work once: the second waits, re-reads the records and finds the work done. Only the
aligning process holds the lock, never its loader workers, and a lock whose holder died is taken
over (``backbone.locks``), so a killed run never hangs the next one. Under the
lock, a record log with repeated, torn or invalid lines is compacted. A crop damaged outside the
program (it no longer decodes as a ``size``-square RGB image) is re-aligned from its source when
it is read, or by ``data align --verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import resize
from tqdm.auto import tqdm

from backbone.atomic import atomic_path, atomic_write_json
from backbone.data.errors import DataError, DataWarning, ImageReadError, NoFaceError, Problem
from backbone.data.faces.align import (
    FACE,
    FALLBACK,
    NO_FACE,
    POLICIES,
    AlignConfig,
    Detection,
    FaceAligner,
    FaceCounts,
    center_crop,
)
from backbone.data.images import load_rgb, read_failure
from backbone.data.index import IdentityIndex
from backbone.devices import resolve_device
from backbone.locks import exclusive_lock
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
    damaged: list[str] = field(default_factory=list)  # cached crops found damaged (``verify``) and redone

    def text(self) -> str:
        rate = f", {self.aligned_now / self.seconds:.1f} img/s" if self.aligned_now and self.seconds else ""
        parts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
        damaged = f"; {len(self.damaged)} damaged crops found and redone" if self.damaged else ""
        return f"{self.images} images ({parts}); aligned {self.aligned_now} now in {self.seconds:.1f} s{rate}{damaged}"


class FaceCache:
    """Aligned crops for one :class:`AlignConfig` under a cache root."""

    def __init__(
        self,
        root: str | Path | None,
        config: AlignConfig,
        policy: str = "fallback",
        device: str | torch.device | None = None,
    ):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.root = project_path(root) if root is not None else default_cache_root()
        self.config = config
        self.policy = policy
        self.device = device  # where the face detector runs (None, "auto": a GPU when present)
        self.dir = self.root / config.key()
        self._records: dict[str, Record] | None = None
        self._hashes: dict[str, list] | None = None

    # ---- content hashes of source files

    def source_hashes(self, paths: Iterable[Path], progress: bool = False) -> dict[Path, str]:
        """sha1 of each source file (see :meth:`hash_sources`); a DataError lists unreadable files."""
        hashes, problems = self.hash_sources(paths, progress)
        if problems:
            raise DataError(f"{len(problems)} unreadable images", problems)
        return hashes

    def hash_sources(self, paths: Iterable[Path], progress: bool = False) -> tuple[dict[Path, str], list[Problem]]:
        """sha1 of each readable source file, re-hashing only files whose size or mtime changed;
        and a problem for each file that cannot be read (missing, permission denied)."""
        memo_path = self.root / "sources.json"
        if self._hashes is None:
            self._hashes = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
        out: dict[Path, str] = {}
        problems: list[Problem] = []
        changed = False
        for path in tqdm(list(paths), desc="hashing sources", unit="img", disable=not progress, leave=False):
            key = str(path.resolve())
            try:
                st = path.stat()
                memo = self._hashes.get(key)
                if memo is None or memo[0] != st.st_size or memo[1] != st.st_mtime_ns:
                    memo = [st.st_size, st.st_mtime_ns, file_digest(path)]
                    self._hashes[key] = memo
                    changed = True
            except OSError as exc:
                problems.append(Problem(str(path), read_failure(exc)))
                continue
            out[path] = memo[2]
        if changed:
            atomic_write_json(memo_path, self._hashes)
        return out, problems

    # ---- records and crops

    @property
    def records(self) -> dict[str, Record]:
        """sha1 -> record, from the record log (the last line of a source wins; torn or invalid
        lines, and records whose crop file is gone, are skipped: those sources are redone)."""
        if self._records is None:
            self._records, _ = self._read_log()
        return self._records

    def _read_log(self) -> tuple[dict[str, Record], bool]:
        """The records, and whether the log needs compacting (repeated, torn or invalid lines)."""
        records: dict[str, Record] = {}
        log = self.dir / "records.jsonl"
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        lines = text.split("\n")
        untidy = lines[-1] != ""  # a torn last line from an interrupted run
        for line in lines[:-1] if not untidy else lines:
            try:
                rec = Record(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                untidy = True
                continue
            untidy |= rec.sha1 in records
            if rec.status == NO_FACE or self.face_path(rec.sha1).is_file():
                records[rec.sha1] = rec
            else:
                untidy = True
        return records, untidy

    @contextmanager
    def locked(self, progress: bool = True) -> Iterator[None]:
        """Hold this config folder's lock (one aligning process at a time); on entry the records
        are re-read (another process may have added some) and an untidy log is compacted."""
        say = tqdm.write if progress else None
        with exclusive_lock(self.dir / ".lock", f"aligning into {self.dir}", say):
            self._records, untidy = self._read_log()
            self._hashes = None
            if untidy:
                self._write_log()
            yield

    def _write_log(self) -> None:
        """Rewrite the record log with one line per record (atomically; under the lock)."""
        with atomic_path(self.dir / "records.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(asdict(r)) + "\n" for r in self.records.values()), encoding="utf-8")

    def face_path(self, sha1: str) -> Path:
        return self.dir / "faces" / sha1[:2] / f"{sha1}.png"

    def is_done(self, sha1: str) -> bool:
        """Whether this source needs no work under the current policy."""
        rec = self.records.get(sha1)
        return rec is not None and not (rec.status == NO_FACE and self.policy == "fallback")

    def add(self, record: Record, crop: np.ndarray | None) -> None:
        """Store one result: the crop first (atomically), then its record line."""
        if not (self.dir / "config.json").is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.dir / "config.json", asdict(self.config))
        if crop is not None:
            with atomic_path(self.face_path(record.sha1)) as tmp:
                Image.fromarray(crop, "RGB").save(tmp, format="PNG")
        with open(self.dir / "records.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(record)) + "\n")
        self.records[record.sha1] = record

    def load(self, sha1: str, source: str | Path = "") -> np.ndarray:
        """The cached crop (HxWx3 uint8). No face under ``report``, or not aligned yet, raises.
        A damaged crop is re-aligned from ``source`` (with a warning naming both)."""
        rec = self.records.get(sha1)
        if rec is None:
            raise DataError(f"{source or sha1} is not in the face cache {self.dir}; run `backbone data align` first")
        if rec.status == NO_FACE or (rec.status == FALLBACK and self.policy == "report"):
            raise NoFaceError(f"no face found in {source or sha1} (policy {self.policy!r})")
        crop = self._read_crop(sha1)
        if crop is None:
            crop = self._realign(sha1, source)
        return crop

    def _read_crop(self, sha1: str) -> np.ndarray | None:
        """The crop, or None when its file is missing or damaged (not a size-square RGB image)."""
        try:
            with Image.open(self.face_path(sha1)) as img:
                crop = np.array(img.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return None
        return crop if crop.shape == (self.config.size, self.config.size, 3) else None

    def _realign(self, sha1: str, source: str | Path) -> np.ndarray:
        damaged = self.face_path(sha1)
        if not source or not Path(source).is_file() or file_digest(source) != sha1:
            raise DataError(
                f"the cached face {damaged} of {source or sha1} is damaged and its source is gone or changed; "
                "run `backbone data align` on the data set again"
            )
        warnings.warn(
            f"the cached face of {source} was damaged ({damaged}); aligned it again", DataWarning, stacklevel=3
        )
        with self.locked(progress=False):
            image = load_rgb(source)
            self._store(sha1, image, self.aligner.align([image])[0])  # the aligner centre-crops for detector none
        crop = self._read_crop(sha1)
        if crop is None:
            raise DataError(f"{source}: the face cache {self.dir} cannot store its crop again")
        return crop

    def verify(self, hashes: Iterable[str], progress: bool = True) -> list[str]:
        """Decode every cached crop of ``hashes``; forget the damaged ones (their sources are
        aligned again by the next alignment run). Returns their sha1s."""
        damaged = []
        wanted = [h for h in dict.fromkeys(hashes) if h in self.records and self.records[h].status != NO_FACE]
        for sha in tqdm(wanted, desc="verifying cached faces", unit="img", disable=not progress, leave=False):
            if self._read_crop(sha) is None:
                self.face_path(sha).unlink(missing_ok=True)
                del self.records[sha]
                damaged.append(sha)
        return damaged

    @cached_property
    def aligner(self) -> FaceAligner:
        return FaceAligner(self.config, device=resolve_device(self.device))

    def _store(self, sha: str, img: Image.Image | np.ndarray, det: Detection | None) -> None:
        """One source's result under the policy: its face, a centre-crop fallback, or no face."""
        if isinstance(img, np.ndarray):  # detector "none": already the crop
            self.add(Record(sha, FACE), img)
        elif det is not None and det.crop is not None:
            self.add(Record(sha, FACE, det.box, det.prob), det.crop)
        elif self.policy == "fallback":
            self.add(Record(sha, FALLBACK), center_crop(img, self.config.size, self.config.crop))
        else:
            self.add(Record(sha, NO_FACE), None)

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
    verify: bool = False,
) -> AlignSummary:
    """Align every image of ``index`` not yet in ``cache``; resumable, with a progress bar.

    Unreadable images (and images on which detection itself fails) are listed in the summary,
    nothing is stored for them, and the others are still aligned; under the ``report`` policy
    images with no face are listed too. The cache's lock is held throughout (see ``FaceCache``).
    ``verify`` first decodes every cached crop of the index and aligns damaged ones again.
    """
    start = time.perf_counter()
    paths = [index.absolute(r.path) for r in index.records]
    summary = AlignSummary(images=len(paths))
    with cache.locked(progress):
        hashes, summary.unreadable = cache.hash_sources(paths, progress=progress)
        if verify:
            summary.damaged = _damaged(cache, hashes, progress)
        todo: dict[str, Path] = {}
        for path, sha in hashes.items():
            if not cache.is_done(sha):
                todo.setdefault(sha, path)
        _align(cache, todo, aligner or cache.aligner, summary, workers, batch_size, progress)
    failed = {p.path for p in summary.unreadable}
    summary.counts = cache.status_counts(sha for p, sha in hashes.items() if str(p) not in failed)
    if failed:
        summary.counts["unreadable"] = len(failed)
    refused = {NO_FACE} | ({FALLBACK} if cache.policy == "report" else set())
    summary.no_face = [
        str(p) for p, sha in hashes.items() if sha in cache.records and cache.records[sha].status in refused
    ]
    summary.seconds = time.perf_counter() - start
    return summary


def _damaged(cache: FaceCache, hashes: dict[Path, str], progress: bool) -> list[str]:
    damaged = set(cache.verify(hashes.values(), progress))
    return [str(p) for p, sha in hashes.items() if sha in damaged]


def _align(cache: FaceCache, todo: dict[str, Path], aligner: FaceAligner, summary: AlignSummary, workers: int,
           batch_size: int, progress: bool) -> None:  # fmt: skip
    """Decode (in loader workers) and align the sources of ``todo`` (sha1 -> path) into ``cache``."""
    loader = DataLoader(
        _Sources([(p, s) for s, p in todo.items()], cache.config),
        batch_size=batch_size,
        num_workers=workers if len(todo) > batch_size else 0,
        collate_fn=list,
    )
    desc = f"aligning ({cache.config.key()})"
    with tqdm(total=len(todo), desc=desc, unit="img", disable=not progress or not todo) as bar:
        for batch in loader:
            good = [(path, sha, img) for path, sha, img, err in batch if err is None]
            summary.unreadable += [Problem(str(path), err) for path, _, _, err in batch if err is not None]
            if cache.config.detector == "none":
                detections: list[Detection | None] = [None] * len(good)
            else:
                detections = list(aligner.align([img for _, _, img in good]))
            for (path, sha, img), det in zip(good, detections):
                if det is not None and det.error is not None:
                    summary.unreadable.append(Problem(str(path), det.error))
                    continue
                cache._store(sha, img, det)
                summary.aligned_now += 1
            bar.update(len(batch))


class CachedFaces:
    """Path -> aligned uint8 tensor (3xHxW), read from the cache: what the Datasets use.

    ``preload=True`` decodes every crop of the index once into one in-memory array (RAM:
    images x size^2 x 3 bytes, 1 GB for LFW at 160 px). Reading then costs next to nothing,
    which matters on a small CPU where loader workers and the model share the cores
    (``benchmarks/align_cache.py`` measures both ways). ``size`` resizes every crop to a square
    of that side as it is read (once, with ``preload``): the model's input size, when augmentation
    works on whole batches and the loader does nothing else.
    """

    def __init__(
        self,
        index: IdentityIndex,
        cache: FaceCache,
        preload: bool = False,
        progress: bool = False,
        size: int | None = None,
    ):
        self.index = index
        self.cache = cache
        self.size = size
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
        arr = self.cache.load(self.hashes[path], source=self.index.absolute(path))
        if self.size is None or arr.shape[:2] == (self.size, self.size):
            return arr
        chw = torch.from_numpy(arr).permute(2, 0, 1)
        return resize(chw, [self.size, self.size], antialias=True).permute(1, 2, 0).contiguous().numpy()

    def counts(self, paths: Iterable[str]) -> FaceCounts:
        """How the crops of ``paths`` (images of the index) were made: detected or fallen back."""
        status = Counter(self.cache.records[self.hashes[p]].status for p in dict.fromkeys(paths))
        detector, total = self.cache.config.detector, sum(status.values())
        detected = 0 if detector == "none" else status[FACE]
        return FaceCounts(total, detected, status[FALLBACK], detector, self.cache.policy)

    def __call__(self, path: str) -> torch.Tensor:
        arr = self._array[self._rows[path]].copy() if self._array is not None else self._read(path)
        return torch.from_numpy(arr).permute(2, 0, 1)

    def stack(self, paths: list[str], progress: bool = False) -> torch.Tensor:
        """The crops of ``paths`` as one uint8 tensor ``(len(paths), 3, H, W)`` (from the preloaded
        array when there is one, else read once each)."""
        if self._array is not None:
            arr = self._array[[self._rows[p] for p in paths]]
        else:
            reads = tqdm(paths, desc="loading faces", unit="img", disable=not progress, leave=False)
            arr = np.stack([self._read(p) for p in reads])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def alignment_status(index: IdentityIndex, root: str | Path | None = None) -> dict[str, dict]:
    """For every alignment config in the cache: its settings and how this index's images fared."""
    root = project_path(root) if root is not None else default_cache_root()
    out: dict[str, dict] = {}
    hashes = None
    for config_file in sorted(root.glob("*/config.json")):
        cache = FaceCache(root, AlignConfig(**json.loads(config_file.read_text())))
        if hashes is None:
            hashes = list(cache.hash_sources(index.absolute(r.path) for r in index.records)[0].values())
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
    size: int | None = None,
    device: str | torch.device | None = None,
) -> CachedFaces:
    """Cached faces of ``index``, aligning whatever is not cached yet (a no-op when all is; the
    detector runs on ``device``, by default a GPU when present).

    Unreadable images, and images without a face under the ``report`` policy, raise a
    DataError that lists them: nothing is dropped silently.
    """
    cache = FaceCache(cache_root, config, policy=policy, device=device)
    summary = align_index(index, cache, workers=workers, progress=progress)
    if summary.unreadable:
        raise DataError(f"{len(summary.unreadable)} unreadable images in {index.root}", summary.unreadable)
    if summary.no_face:
        problems = [Problem(p, f"no face found (policy {policy!r})") for p in summary.no_face]
        raise NoFaceError(f"{len(problems)} images without a face in {index.root}", problems)
    return CachedFaces(index, cache, preload=preload, progress=progress, size=size)
