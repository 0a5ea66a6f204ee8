"""Models on a stress set (``backbone.data.stress``): AUC and accuracy at each model's validation
threshold, per condition and strength, and how many faces each model's detector found.

A model is dlib's own pipeline (``dlib-native``, its threshold chosen here on the clean validation
pairs) or a checkpoint (its threshold is the one its run chose on the clean validation pairs, kept
in the checkpoint): no threshold is ever chosen on stressed or test pairs. The clean test pairs
are the first row (condition ``none``), so each condition reads against them.

``backbone experiments stress`` (``make stress``) writes the set, scores it and writes
``results.md``, ``stress.csv`` and ``figures/stress_auc.png``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from backbone.data.faces.align import FaceCounts
from backbone.data.lists.pairs import read_pairs
from backbone.data.stress import StressSet

CLEAN = "none"


def _dlib_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlib-bin")
    except PackageNotFoundError:
        return "not installed"


def setting_name(condition: str, strength: float, unit: str) -> str:
    """A set in words: "clean", or "blur 2 (sigma, px)"."""
    if condition == CLEAN:
        return "clean"
    return f"{condition} {strength:g}" + (f" ({unit})" if unit else "")


@dataclass(frozen=True)
class StressRow:
    """One model on one set: AUC ± SE, accuracy ± SE at its validation threshold, its faces."""

    model: str
    condition: str  # CLEAN for the test pairs as they are
    strength: float
    unit: str
    pairs: int
    auc: float
    auc_se: float
    accuracy: float
    accuracy_se: float
    threshold: float
    faces: FaceCounts

    @property
    def setting(self) -> str:
        return setting_name(self.condition, self.strength, self.unit)

    def flat(self) -> dict:
        """The row with its face counts as columns (``faces_detected``, ...): a CSV line."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "faces"}
        return row | {f"faces_{k}": v for k, v in asdict(self.faces).items()}


def _row(model: str, s: StressSet | None, metrics: dict, faces: FaceCounts) -> StressRow:
    at = metrics["at_val_threshold"]
    return StressRow(
        model=model, condition=s.condition if s else CLEAN, strength=s.strength if s else 0.0, unit=s.unit if s else "",
        pairs=metrics["same"] + metrics["different"], auc=metrics["auc"], auc_se=metrics["auc_se"],
        accuracy=at["accuracy"], accuracy_se=at["accuracy_se"], threshold=at["threshold"], faces=faces,
    )  # fmt: skip


Target = tuple[Path, Path, "StressSet | None"]  # (data root, pair file, the set; None: the clean pairs)


def checkpoint_rows(
    name: str, checkpoint: str | Path, targets: Sequence[Target], progress: bool = True
) -> list[StressRow]:
    """A checkpoint on each target, at the threshold its run chose on its validation pairs."""
    from backbone.evaluation.checkpoints import evaluate_checkpoint

    rows = []
    for root, pairs_file, s in targets:
        metrics = evaluate_checkpoint(checkpoint, pairs_file, root, progress=progress).evaluation.metrics
        if "at_val_threshold" not in metrics:
            raise ValueError(f"checkpoint {checkpoint} holds no validation threshold: it cannot be scored here")
        rows.append(_row(name, s, metrics, FaceCounts(**metrics["faces"])))
    return rows


def dlib_native_rows(
    val_root: Path, val_pairs: Path, targets: Sequence[Target], progress: bool = True
) -> list[StressRow]:
    """dlib's own pipeline on each target, at the threshold of the best accuracy on the clean validation pairs."""
    from backbone.evaluation.dlib_native import DlibNative
    from backbone.evaluation.metrics import best_accuracy_threshold, verification_metrics, with_val_threshold

    native = DlibNative()
    val = read_pairs(val_pairs, root=val_root)
    val_scores, _ = native.score(val_root, val, progress)
    threshold = best_accuracy_threshold(val_scores, np.array([p.same for p in val]))
    rows = []
    for root, pairs_file, s in targets:
        pairs = read_pairs(pairs_file, root=root)
        scores, faces = native.score(root, pairs, progress)
        labels = np.array([p.same for p in pairs])
        metrics = with_val_threshold(verification_metrics(scores, labels, threshold=None), scores, labels, threshold)
        rows.append(_row("dlib-native", s, metrics, faces))
    return rows


@dataclass(frozen=True)
class QualityRow:
    """The faces of one set as a checkpoint's detector found them: medians of the quality measures
    (``backbone.data.faces.quality``) and how many faces the quality check flags."""

    condition: str
    strength: float
    unit: str
    images: int
    face_px: float | None  # median over the detected faces (None: none detected)
    brightness: float
    sharpness: float
    flagged: int  # faces the check calls too small, too dark or too blurred

    @property
    def setting(self) -> str:
        return setting_name(self.condition, self.strength, self.unit)


def quality_rows(checkpoint: str | Path, targets: Sequence[Target]) -> list[QualityRow]:
    """The quality of every set's faces as ``checkpoint`` aligns them (from the face cache its
    evaluation filled: run :func:`checkpoint_rows` first)."""
    from backbone.data.faces.cache import FaceCache
    from backbone.data.faces.quality import face_quality
    from backbone.data.layouts.load import load_index
    from backbone.evaluation.checkpoints import checkpoint_align_config, checkpoint_data
    from backbone.models.build import ModelConfig, read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    align = checkpoint_align_config(ckpt, ModelConfig.from_dict(ckpt["model_config"]).image_size, checkpoint)
    cache = FaceCache(checkpoint_data(ckpt).get("cache"), align)
    out = []
    for root, pairs_file, s in targets:
        index = load_index(root)
        paths = {x for p in read_pairs(pairs_file, root=index.root) for x in (p.path_a, p.path_b)}
        hashes = cache.source_hashes(index.absolute(p) for p in sorted(paths)).values()
        found = [face_quality(cache.load(h), cache.records[h].box) for h in hashes]
        widths = [q.face_px for q in found if q.face_px is not None]
        out.append(QualityRow(
            s.condition if s else CLEAN, s.strength if s else 0.0, s.unit if s else "", len(found),
            float(np.median(widths)) if widths else None, float(np.median([q.brightness for q in found])),
            float(np.median([q.sharpness for q in found])), sum(not q.ok for q in found),
        ))  # fmt: skip
    return out


def quality_table(rows: Sequence[QualityRow]) -> str:
    """A markdown table of :class:`QualityRow`: one line per set."""
    lines = ["| condition | face width, px (median) | brightness (median) | sharpness (median) | flagged by the check |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        width = f"{r.face_px:.0f}" if r.face_px is not None else "n/a"
        lines.append(f"| {r.setting} | {width} | {r.brightness:.0f} | {r.sharpness:.4f} | {r.flagged} of {r.images} |")
    return "\n".join(lines)


def write_rows(rows: Sequence[StressRow], path: str | Path) -> None:
    """``stress.csv``: one line per model and set (atomically)."""
    from backbone.atomic import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].flat()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.flat() for r in rows)
    atomic_write_text(path, buffer.getvalue())


def read_rows(path: str | Path) -> list[StressRow]:
    """The rows of a ``stress.csv`` (numbers as numbers)."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for line in csv.DictReader(f):
            faces = FaceCounts(**{k[6:]: (v if k in ("faces_detector", "faces_policy") else int(v))
                                  for k, v in line.items() if k.startswith("faces_")})  # fmt: skip
            kinds: dict[str, Callable] = {"strength": float, "pairs": int, "auc": float, "auc_se": float,
                                          "accuracy": float, "accuracy_se": float, "threshold": float}  # fmt: skip
            values = {k: kinds.get(k, str)(v) for k, v in line.items() if not k.startswith("faces_")}
            out.append(StressRow(**values, faces=faces))
    return out


def stress_table(rows: Sequence[StressRow]) -> str:
    """A markdown table: one line per setting, per model its AUC ± SE, accuracy ± SE and faces
    that fell back (of the set's images)."""
    models = list(dict.fromkeys(r.model for r in rows))
    settings = list(dict.fromkeys((r.condition, r.strength) for r in rows))
    by = {(r.model, r.condition, r.strength): r for r in rows}
    head = ["condition"] + [f"{m}: {what}" for m in models for what in ("AUC ± SE", "accuracy ± SE", "fell back")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for condition, strength in settings:
        first = next(r for r in rows if (r.condition, r.strength) == (condition, strength))
        cells = [first.setting]
        for m in models:
            r = by.get((m, condition, strength))
            cells += ([f"{r.auc:.4f} ± {r.auc_se:.4f}", f"{r.accuracy:.4f} ± {r.accuracy_se:.4f}",
                       f"{r.faces.fallback} of {r.faces.images}"] if r else ["n/a"] * 3)  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class StressPlan:
    """What ``run_stress`` scores: the clean pairs, the set written from them, the models."""

    data_root: Path  # the clean images (e.g. LFW's lfw-deepfunneled)
    test_pairs: Path  # the clean test pairs the set is made from
    val_pairs: Path  # clean validation pairs: dlib-native's threshold
    set_dir: Path  # where the stress set is written (not committed)
    checkpoints: dict[str, Path]  # model name -> checkpoint with its validation threshold
    native: bool = True  # dlib's own pipeline too
    conditions: tuple[str, ...] | None = None  # default: every registered condition
    every: int = 1  # every n-th test pair (1: all)


@dataclass(frozen=True)
class StressResult:
    rows: list[StressRow]  # model by model: clean, then each condition at each strength
    quality: list[QualityRow]  # the first checkpoint's faces, set by set (empty without checkpoints)


def run_stress(plan: StressPlan, progress: bool = True) -> StressResult:
    """Write the stress set of ``plan.test_pairs`` (resuming), then score the clean pairs and every
    set with each model, and measure the quality of the first checkpoint's faces."""
    from backbone.data.layouts.load import load_index
    from backbone.data.lists.pairs import write_pairs
    from backbone.data.stress import write_stress_set

    index = load_index(plan.data_root)
    pairs = read_pairs(plan.test_pairs, root=index.root)[:: plan.every]
    sets = write_stress_set(index.root, pairs, plan.set_dir, plan.conditions, progress)
    clean = plan.set_dir / "clean.tsv"  # the same clean pairs as the sets', in their order
    write_pairs(pairs, clean, fmt="tsv")
    targets: list[Target] = [(index.root, clean, None)] + [(s.root, s.pairs_file, s) for s in sets]
    rows = dlib_native_rows(index.root, plan.val_pairs, targets, progress) if plan.native else []
    for name, checkpoint in plan.checkpoints.items():
        rows += checkpoint_rows(name, checkpoint, targets, progress)
    first = next(iter(plan.checkpoints.values()), None)
    return StressResult(rows, quality_rows(first, targets) if first is not None else [])


def write_report(result: StressResult, out: str | Path, plan: StressPlan, skipped: Sequence[str] = ()) -> Path:
    """``results.md`` (the table and what the set is), ``stress.csv`` and ``figures/stress_auc.png`` in ``out``."""
    from backbone.atomic import atomic_write_json, atomic_write_text
    from backbone.data.faces.quality import MIN_BRIGHTNESS, MIN_FACE_PX, MIN_SHARPNESS
    from backbone.data.stress import CONDITIONS
    from backbone.paths import project_path, shareable_path
    from backbone.plots import plot_stress, save_figure
    from backbone.provenance import environment

    out, env, rows = project_path(out), environment(), result.rows
    write_rows(rows, out / "stress.csv")
    atomic_write_json(out / "environment.json", env)
    save_figure(plot_stress(rows), out / "figures" / "stress_auc")
    pairs = rows[0].pairs
    conditions = "\n".join(f"- `{name}` ({', '.join(f'{s:g}' for s in CONDITIONS.info(name)['strengths'])}"
                           f"{' ' + CONDITIONS.info(name)['unit'] if CONDITIONS.info(name)['unit'] else ''}): "
                           f"{CONDITIONS.info(name)['what']}" for name in (plan.conditions or CONDITIONS.names()))  # fmt: skip
    text = (
        f"# Stress set: {shareable_path(plan.test_pairs)} under changes of light and quality\n\n"
        f"The same {pairs:,} pairs ({'every' if plan.every == 1 else f'every {plan.every}th'} pair of the list, labels "
        f"kept), every image changed by one condition at a time (`backbone.data.stress`, deterministic):\n\n{conditions}\n\n"
        "Each model at its own threshold chosen on the clean validation pairs "
        f"({shareable_path(plan.val_pairs)}; never on these pairs): AUC ± DeLong's SE, accuracy ± its binomial SE, and "
        "how many of the set's images fell back to a centre crop because the model's detector found no face. "
        f"Produced by `backbone experiments stress`; torch {env['torch']}, dlib {_dlib_version()}, on "
        f"{env['cpu_threads']} threads, {env['cpu_model']} ({env['cpu_capability']}), commit {env['git_commit']}.\n\n"
        + stress_table(rows) + "\n\n![AUC against strength per condition](figures/stress_auc.png)\n"
        + (f"\n## The faces' quality\n\nThe faces of each set as {next(iter(plan.checkpoints))} aligns them "
           "(`backbone.data.faces.quality`): medians of the detector's face width in the photo, the crop's mean "
           "brightness and its sharpness (variance of the Laplacian over that of the luminance, at 128 px), and how many faces the quality check of "
           f"verify, identify and serve flags (face under {MIN_FACE_PX:.0f} px, brightness under {MIN_BRIGHTNESS:.0f}, "
           f"sharpness under {MIN_SHARPNESS:g}).\n\n" + quality_table(result.quality) + "\n" if result.quality else "")
        + ("".join(f"\n{line}\n" for line in skipped))
    )  # fmt: skip
    atomic_write_text(out / "results.md", text)
    return out / "results.md"
