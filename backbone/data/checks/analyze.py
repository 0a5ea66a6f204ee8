"""Describe a data set: counts, images per identity, image sizes and modes, and for data sets
with twin groups a low-resolution pixel baseline that shows how hard twins are to tell apart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from backbone.data.errors import ImageReadError
from backbone.data.images import decoded_size, load_rgb, read_header
from backbone.data.index import IdentityIndex
from backbone.data.lists.pairs import Pair
from backbone.data.lists.sampling import generate_pairs, pair_capacity
from backbone.labels import SAME

_BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, None))


def images_per_identity(index: IdentityIndex) -> dict:
    counts = np.array([len(v) for v in index.by_identity.values()])
    buckets = {}
    for lo, hi in _BUCKETS:
        label = f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}-{hi}")
        buckets[label] = int(((counts >= lo) & (counts <= (hi or counts.max()))).sum())
    return {
        "min": int(counts.min()),
        "median": float(np.median(counts)),
        "mean": round(float(counts.mean()), 3),
        "max": int(counts.max()),
        "histogram": buckets,
    }


def image_properties(index: IdentityIndex, progress: bool = True, shown: int = 20) -> dict:
    """Sizes, modes and formats from the image headers (no full decode). Files without a readable
    header, or that no reader would decode (``backbone.data.images.decoded_size``: above the
    limit and not a JPEG to reduce), are counted and the first ``shown`` listed with the reason;
    ``reduced`` counts the large JPEGs every reader decodes at a reduced scale."""
    sizes: Counter = Counter()
    modes: Counter = Counter()
    formats: Counter = Counter()
    problems: dict[str, str] = {}
    reduced = 0
    for r in tqdm(index.records, desc="reading headers", unit="img", disable=not progress):
        path = index.absolute(r.path)
        try:
            (width, height), mode, fmt = read_header(path)
        except ImageReadError as exc:
            problems[str(path)] = exc.reason
            continue
        sizes[f"{width}x{height}"] += 1
        modes[mode] += 1
        formats[fmt] += 1
        try:
            reduced += decoded_size((width, height), fmt, path) != (width, height)
        except ImageReadError as exc:
            problems[str(path)] = exc.reason
    return {
        "sizes": dict(sizes.most_common(10)),
        "distinct_sizes": len(sizes),
        "modes": dict(modes.most_common()),
        "formats": dict(formats.most_common()),
        "reduced": reduced,
        "unreadable": len(problems),
        "unreadable_files": dict(list(problems.items())[:shown]),
    }


def _tiny_gray(path: Path, size: int) -> np.ndarray:
    x = np.asarray(load_rgb(path).convert("L").resize((size, size), Image.BILINEAR), np.float64).ravel()
    return (x - x.mean()) / (x.std() + 1e-6)


def pixel_baseline(
    index: IdentityIndex, n_pairs: int = 2000, size: int = 16, seed: int = 0, progress: bool = True
) -> dict:
    """ROC AUC of a whole-face, low-resolution pixel distance, for twin vs random negatives.

    Each kind of negative is scored against the matched pairs of the same population: twin
    negatives against matched pairs of identities that have a twin, random negatives against
    all matched pairs (identities differ in how much their photos vary, so mixing populations
    would measure that instead). An AUC near 0.5 for twin negatives means a model that sees only the whole face at low resolution cannot tell
    twins apart; the random-negative AUC shows the same features do work across families.
    """
    cap = pair_capacity(index)  # stay at half of what the set can give, so sampling stays cheap
    n_pairs = min(n_pairs, cap["same"], 2 * cap["twin"]) // 2 * 2
    pairs: list[Pair] = generate_pairs(index, n_pairs, seed=seed, twin_share=0.5)
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    feats = {}
    for p in tqdm(paths, desc="pixel baseline", unit="img", disable=not progress):
        try:
            feats[p] = _tiny_gray(index.absolute(p), size)
        except ImageReadError:
            continue  # listed under image_properties; its pairs are counted as skipped below
    drawn = len(pairs)
    pairs = [p for p in pairs if p.path_a in feats and p.path_b in feats]
    score = np.array([-np.linalg.norm(feats[p.path_a] - feats[p.path_b]) for p in pairs])
    same = np.array([p.same == SAME for p in pairs])
    twins = np.array([p.twins for p in pairs])
    in_group = np.array([index.group_of[index.identity_of[p.path_a]] is not None for p in pairs])

    def auc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
        mask = positives | negatives
        if negatives.sum() == 0:
            return None
        return round(float(roc_auc_score(positives[mask], score[mask])), 4)

    return {
        "features": f"{size}x{size} grayscale pixels, standardised, euclidean distance",
        "pairs": len(pairs),
        "pairs_skipped_unreadable": drawn - len(pairs),
        "auc_twin_negatives": auc(same & in_group, twins & ~same),
        "auc_random_negatives": auc(same, ~twins & ~same),
    }


def analyze_dataset(index: IdentityIndex, baseline: bool = True, progress: bool = True) -> dict:
    """Everything ``backbone data analyze`` reports, as a JSON-serialisable dict."""
    report = {
        "root": str(index.root),
        "images": len(index),
        "identities": len(index.by_identity),
        "groups": len(index.groups),
        "identities_in_groups": sum(len(v) for v in index.groups.values()),
        "images_per_identity": images_per_identity(index),
        "image_properties": image_properties(index, progress=progress),
    }
    if baseline and index.groups:
        report["pixel_baseline"] = pixel_baseline(index, progress=progress)
    return report


def format_report(report: dict) -> str:
    """The analysis as a short human-readable text."""
    ipi, props = report["images_per_identity"], report["image_properties"]
    lines = [
        f"{report['root']}: {report['images']} images, {report['identities']} identities, "
        f"{report['groups']} groups ({report['identities_in_groups']} identities in groups)",
        f"images per identity: min {ipi['min']}, median {ipi['median']:g}, mean {ipi['mean']:g}, max {ipi['max']}",
        "  " + ", ".join(f"{k}: {v}" for k, v in ipi["histogram"].items() if v),
        f"sizes ({props['distinct_sizes']} distinct): " + ", ".join(f"{k} x{v}" for k, v in props["sizes"].items()),
        "modes: "
        + ", ".join(f"{k} x{v}" for k, v in props["modes"].items())
        + "; formats: "
        + ", ".join(f"{k} x{v}" for k, v in props["formats"].items()),
    ]
    if props.get("reduced"):
        lines.append(f"large JPEGs decoded at reduced scale (above BACKBONE_MAX_IMAGE_PIXELS): {props['reduced']}")
    if props["unreadable"]:
        lines.append(f"unreadable images: {props['unreadable']} (`backbone data validate` decodes every image)")
        lines += [f"  {path}: {reason}" for path, reason in props.get("unreadable_files", {}).items()]
    if "pixel_baseline" in report:
        b = report["pixel_baseline"]
        lines.append(
            f"pixel baseline ({b['features']}, {b['pairs']} pairs"
            + (
                f", {b['pairs_skipped_unreadable']} skipped: unreadable images"
                if b.get("pairs_skipped_unreadable")
                else ""
            )
            + "): ROC AUC twin negatives "
            f"{b['auc_twin_negatives']}, random negatives {b['auc_random_negatives']}"
        )
    for key, entry in report.get("alignment", {}).items():
        counts = ", ".join(f"{v} {k}" for k, v in sorted(entry["counts"].items()))
        lines.append(f"alignment {key}: {counts}")
    return "\n".join(lines)
