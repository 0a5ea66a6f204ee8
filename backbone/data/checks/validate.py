"""Check a data set and its pair/triplet files before anything trains on them.

Errors (the run exits non-zero): unreadable, corrupt, truncated or zero-byte images; malformed
pair lines and list files that are not UTF-8; pairs or triplets naming missing images or unknown
people, or paths outside the data root; labels that contradict the identity folders. Warnings:
identities with a single image (normal in LFW, where 4,069 people have one photo), repeated
pairs, list files with no pairs. ``strict`` turns warnings into failures.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from backbone.data.errors import DataError, DataWarning, ImageReadError, Problem
from backbone.data.images import load_rgb
from backbone.data.index import IdentityIndex
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, read_pairs, repeated_pairs
from backbone.data.lists.triplets import TRIPLET_COLUMNS, read_triplets
from backbone.data.text import text_lines
from backbone.labels import SAME


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    kind: str
    problem: Problem

    def __str__(self) -> str:
        return f"{self.severity}: [{self.kind}] {self.problem}"


@dataclass
class ValidationReport:
    root: Path
    images: int = 0
    identities: int = 0
    pair_files: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def ok(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(f"{f.severity}:{f.kind}" for f in self.findings).items()))


def _check_image(path: str) -> str | None:
    try:
        load_rgb(path)
    except ImageReadError as exc:
        return exc.reason
    return None


def check_images(index: IdentityIndex, workers: int = 2, progress: bool = True) -> list[Finding]:
    """Decode every image fully; report the ones that fail."""
    paths = [str(index.absolute(r.path)) for r in index.records]
    bar = dict(total=len(paths), desc="decoding images", unit="img", disable=not progress)
    if workers > 1 and len(paths) > 200:
        with ProcessPoolExecutor(workers) as pool:
            reasons = list(tqdm(pool.map(_check_image, paths, chunksize=64), **bar))
    else:
        reasons = [_check_image(p) for p in tqdm(paths, **bar)]
    kinds = {"zero-byte file": "zero-byte"}
    return [
        Finding("error", kinds.get(reason, "unreadable"), Problem(path, reason))
        for path, reason in zip(paths, reasons)
        if reason is not None
    ]


def _reference_findings(index: IdentityIndex, refs: Iterable[tuple[str, int | None]], source: str) -> list[Finding]:
    out = []
    people = set(index.by_identity)
    for path, line in refs:
        if path in index.identity_of:
            continue
        person = path.split("/", 1)[0]
        kind = "missing-image" if person in people or "/" not in path else "unknown-person"
        what = (
            f"image {path} is not in the data set"
            if kind == "missing-image"
            else f"person {person!r} is not in the data set ({path})"
        )
        out.append(Finding("error", kind, Problem(source, what, line)))
    return out


def check_pairs(index: IdentityIndex, pairs: list[Pair], source: str) -> list[Finding]:
    """Missing images, unknown people, labels that contradict identities, repeated pairs, pairs of
    an image with itself."""
    refs = [(path, p.line) for p in pairs for path in (p.path_a, p.path_b)]
    findings = _reference_findings(index, refs, source)
    for p in pairs:
        ia, ib = index.identity_of.get(p.path_a), index.identity_of.get(p.path_b)
        if ia is not None and ib is not None and (ia == ib) != (p.same == SAME):
            label = "same" if p.same == SAME else "different"
            findings.append(
                Finding("error", "wrong-label", Problem(source, f"labelled {label} but shows {ia} and {ib}", p.line))
            )
    repeated, itself = repeated_pairs(pairs)
    findings += [Finding("warning", "repeated-pair", Problem(source, f"same pair as line {first}", p.line))
                 for p, first in repeated]  # fmt: skip
    findings += [Finding("warning", "self-pair", Problem(
        source, "a pair of an image with itself: its score says nothing of the model", p.line)) for p in itself]  # fmt: skip
    return findings


def _is_triplet_file(path: Path) -> bool:
    lines = text_lines(path, "pair file")
    return bool(lines) and tuple(lines[0].split("\t")) == TRIPLET_COLUMNS


def validate_dataset(
    root: str | Path,
    pair_files: Iterable[str | Path] = (),
    kind: str = "auto",
    decode: bool = True,
    workers: int = 2,
    progress: bool = True,
    allow_outside_root: bool = False,
) -> ValidationReport:
    """Validate the data set at ``root`` and the given pair or triplet files against it (their
    image paths must stay inside ``root`` unless ``allow_outside_root``)."""
    report = ValidationReport(root=Path(root))
    try:
        index = load_index(root, kind)
    except DataError as exc:
        report.findings += [Finding("error", "index", p) for p in exc.problems] or [
            Finding("error", "index", Problem(str(root), str(exc)))
        ]
        return report
    report.images, report.identities = len(index), len(index.by_identity)
    if decode:
        report.findings += check_images(index, workers=workers, progress=progress)
    report.findings += [
        Finding(
            "warning",
            "single-image",
            Problem(str(index.absolute(paths[0])), f"identity {identity!r} has only one image"),
        )
        for identity, paths in index.by_identity.items()
        if len(paths) == 1
    ]
    for pair_file in map(Path, pair_files):
        report.findings += _check_list_file(report, index, pair_file, allow_outside_root)
    return report


def _check_list_file(
    report: ValidationReport, index: IdentityIndex, path: Path, allow_outside_root: bool
) -> list[Finding]:
    """The findings of one pair or triplet file (its count goes to ``report.pair_files``)."""
    try:
        if not path.is_file():
            raise DataError(f"pair file {path} does not exist")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # an empty file becomes a finding below
            if _is_triplet_file(path):
                triplets = read_triplets(path, allow_outside_root=allow_outside_root)
                refs = [(p, t.line) for t in triplets for p in (t.anchor, t.positive, t.negative)]
                findings, count = _reference_findings(index, refs, str(path)), len(triplets)
            else:
                pairs = read_pairs(path, ext=index_image_ext(index), allow_outside_root=allow_outside_root)
                findings, count = check_pairs(index, pairs, str(path)), len(pairs)
    except DataError as exc:
        problems = exc.problems or [Problem(str(path), str(exc))]
        return [Finding("error", "malformed-line", p) for p in problems]
    report.pair_files[str(path)] = count
    if not count:
        findings.append(Finding("warning", "empty-file", Problem(str(path), "holds no pairs or triplets")))
    return findings


def index_image_ext(index: IdentityIndex) -> str:
    """The most common image extension of the index (what LFW-format lines refer to)."""
    counts = Counter(Path(r.path).suffix for r in index.records)
    return counts.most_common(1)[0][0] if counts else ".jpg"
