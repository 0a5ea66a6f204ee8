"""What a run shows: the closing cell of every notebook, read from the run's own results.

Each function reads numbers that the pipeline wrote (``metrics.json``, ``history.json``, a data
set's report, the analysis' rows) and returns a :class:`Findings`, a title and a few plain
sentences; nothing is typed in, so the words and the tables cannot disagree. A notebook shows it
as Markdown (its last expression); ``str()`` gives the same text.

Every AUC is read against chance with its standard error: "above chance" when its 95% interval
(± 1.96 SE) lies above 0.5, "at chance" when the interval holds 0.5.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from backbone.data.errors import existing

Z95 = 1.96
REFERENCE = "none (reference)"  # the analysis' "training" of a row that scores without a model


@dataclass(frozen=True)
class Findings:
    """A few sentences on what a run shows. ``points`` are Markdown sentences, one bullet each."""

    title: str
    points: tuple[str, ...]

    def markdown(self) -> str:
        return f"**{self.title}**\n\n" + "\n".join(f"- {p}" for p in self.points)

    def _repr_markdown_(self) -> str:  # Jupyter shows the closing cell's value as Markdown
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()


def against_chance(auc: float, se: float | None) -> str:
    """``auc`` read against chance (0.5) at 95%: "above chance", "below chance" or "at chance"."""
    if not se:
        return "above chance" if auc > 0.5 else "at or below chance"
    low, high = auc - Z95 * se, auc + Z95 * se
    return "above chance" if low > 0.5 else "below chance" if high < 0.5 else "at chance"


def _auc(m: dict) -> str:
    se = m.get("auc_se")
    return f"{m['auc']:.3f} ± {se:.3f}" if se else f"{m['auc']:.3f}"


def _pct(x: float, se: float | None = None) -> str:
    return f"{100 * x:.1f}%" + (f" ± {100 * se:.1f}" if se else "")


def _verification(m: dict) -> list[str]:
    """The sentences every scored run shares: accuracy at the validation threshold, AUC, and
    twin against other negatives when the pairs have twins."""
    points = []
    at = m.get("at_val_threshold")
    if at:
        points.append(
            f"At the threshold chosen on the validation pairs ({at['threshold']:.3f}), the test accuracy is "
            f"{_pct(at['accuracy'], at.get('accuracy_se'))} over {m['same'] + m['different']:,} pairs "
            f"(FAR {at['far']:.3f}, FRR {at['frr']:.3f}); the AUC is {_auc(m)}."
        )
    else:
        points.append(f"The AUC on the test pairs is {_auc(m)}.")
    twins, others = m.get("twin_negatives"), m.get("other_negatives")
    if twins and others:
        told = against_chance(twins["auc"], twins.get("auc_se"))
        points.append(
            f"Against twin negatives alone the AUC is {_auc(twins)}, **{told}**; against other people it is "
            f"{_auc(others)}, {against_chance(others['auc'], others.get('auc_se'))}. "
            + (
                "It tells identical twins apart."
                if told == "above chance"
                else "It tells different people apart but not identical twins."
                if against_chance(others["auc"], others.get("auc_se")) == "above chance"
                else "It tells neither twins nor other people apart."
            )
        )
    if "pointing" in m:
        p = m["pointing"]
        points.append(
            f"Its attention's pointing score is {p['score']:.2f} over {p['images']} test faces: the share of "
            f"attention on the local marks is {p['score']:.2f} times their share of the face (1: no preference)."
        )
    if "faces" in m:
        from backbone.data.faces.align import FaceCounts

        points.append(f"Faces of the test pairs: {FaceCounts(**m['faces']).text()}.")
    return points


def training_findings(run_dir: str | Path) -> Findings:
    """A training run (notebooks 02 and 03): its test result, twins against others, and the epoch
    kept, from ``metrics.json`` and ``history.json``."""
    run = existing(run_dir, "run folder", kind="dir")
    m = json.loads(existing(run / "metrics.json", "the run's metrics").read_text())
    history_file = run / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    points = _verification(m)
    if history:
        minutes = sum(h.get("train_seconds", 0.0) for h in history) / 60
        images = sum(h.get("images", 0) for h in history)
        kept = m.get("epoch")
        kept_text = (
            f"; the checkpoint kept is epoch {kept}'s, the best on the validation pairs" if kept is not None else ""
        )
        points.append(
            f"Training took {minutes:.1f} minutes over {len(history)} epoch{'s' if len(history) != 1 else ''}"
            + (f" and {images:,} images" if images else "")
            + f"{kept_text}."
        )
    return Findings(f"What this run shows ({run.name})", tuple(points))


def reference_findings(metrics: dict, method: str) -> Findings:
    """A reference scorer (notebook 07): what the images allow without training."""
    return Findings(f"What this run shows ({method}, no training)", tuple(_verification(metrics)))


def data_findings(report: dict, pairs: list | None = None) -> Findings:
    """A data set (notebook 01): its size, and the kinds of pairs a pair list holds."""
    points = [
        f"{report['identities']:,} identities and {report['images']:,} images"
        + (f", {report['groups']:,} families of twins" if report.get("groups") else "")
        + "."
    ]
    if report.get("single_image_identities"):
        points.append(f"{report['single_image_identities']:,} identities have a single image (no same-person pair).")
    if pairs:
        same = sum(p.same == 1 for p in pairs)
        twins = sum(bool(p.twins) for p in pairs)
        others = len(pairs) - same - twins
        points.append(
            f"The pair list holds {len(pairs):,} pairs: {same:,} of one person (same = 1), {twins:,} twin "
            f"negatives and {others:,} other negatives. A verifier that ignores the twins' marks can reach "
            f"at most {_pct((same + others) / len(pairs) + twins / len(pairs) / 2)} accuracy (guessing on the twins)."
            if twins
            else f"The pair list holds {len(pairs):,} pairs: {same:,} of one person and {len(pairs) - same:,} of two."
        )
    return Findings("What this data set shows", tuple(points))


def explorer_findings(counts: dict, threshold: float) -> Findings:
    """The explorer (notebook 06) at the threshold it ends on: its errors, from the review's counts
    (``tp``, ``fp``, ``tn``, ``fn``, and ``twin_fp`` when the pairs have twins)."""
    n = counts["tp"] + counts["fp"] + counts["tn"] + counts["fn"]
    accuracy = (counts["tp"] + counts["tn"]) / n if n else math.nan
    points = [
        f"At threshold {threshold:.3f}: {counts['fp']:,} false accepts and {counts['fn']:,} false rejects among "
        f"{n:,} pairs (accuracy {_pct(accuracy)})."
    ]
    if counts.get("twin_fp") is not None and counts["fp"]:
        points.append(
            f"{counts['twin_fp']:,} of the {counts['fp']:,} false accepts ({_pct(counts['twin_fp'] / counts['fp'])}) are "
            "identical twins: filter on them to see what the model misses."
        )
    return Findings("What this threshold shows", tuple(points))


def analysis_findings(rows: list[dict], verdicts: list[str]) -> Findings:
    """A grid (notebook 05): its best run, the twin-negative AUCs of the trained runs, and the
    comparisons the analysis made (``verdicts``: its sentences, paired by seed when there are seeds)."""
    scored = [r for r in rows if r.get("accuracy_at_val_threshold") is not None]
    models = [r for r in scored if r.get("training") != REFERENCE]
    points = []
    if models:
        best = max(models, key=lambda r: r["accuracy_at_val_threshold"])
        se = best.get("accuracy_at_val_threshold_se")
        points.append(
            f"{len(rows)} runs. The best test accuracy at its validation threshold is {best['experiment']}'s, "
            f"{_pct(best['accuracy_at_val_threshold'], se)} (AUC {best['auc']:.3f})"
            + "".join(
                f"; the reference {r['experiment']}, which trains nothing, reaches {_pct(r['accuracy_at_val_threshold'])}"
                for r in scored
                if r.get("training") == REFERENCE
            )
            + "."
        )
    trained = [r for r in rows if r.get("twin_auc") is not None and r.get("training") != REFERENCE]
    if trained:
        low, high = min(trained, key=lambda r: r["twin_auc"]), max(trained, key=lambda r: r["twin_auc"])
        above = [
            r["experiment"] for r in trained if against_chance(r["twin_auc"], r.get("twin_auc_se")) == "above chance"
        ]
        points.append(
            f"Twin-negative AUC ranges from {low['twin_auc']:.3f} ({low['experiment']}) to {high['twin_auc']:.3f} "
            f"({high['experiment']}); " + (f"above chance: {', '.join(above)}." if above else "none is above chance.")
        )
    points += [v.removeprefix("- ") for v in verdicts]
    return Findings("What this grid shows", tuple(points))


def attention_findings(checkpoint: str | Path) -> Findings:
    """An attention figure's run (notebook 04): the pointing score its run measured over every test
    face, from the ``metrics.json`` beside ``checkpoint``."""
    checkpoint = existing(checkpoint, "checkpoint")
    metrics_file = checkpoint.parent / "metrics.json"
    m = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if "pointing" not in m:
        return Findings(
            f"What this run shows ({checkpoint.parent.name})",
            (
                f"{metrics_file} holds no pointing score: it needs a local-global model tested on faces with mark "
                "masks (the synthetic twins), so the figure above is all there is to read.",
            ),
        )
    p = m["pointing"]
    verdict = (
        "it prefers the marks"
        if p["score"] > 2
        else "it does not prefer the marks"
        if p["score"] < 1.5
        else "a slight preference for the marks"
    )
    points = [
        f"Pointing score {p['score']:.2f} over {p['images']} test faces: the attention on the marks is "
        f"{p['score']:.2f} times their share of the face ({100 * p['area']:.2f}% of its area); {verdict} (1: none)."
    ]
    twins = m.get("twin_negatives")
    if twins:
        points.append(
            f"On twin negatives its AUC is {_auc(twins)}, {against_chance(twins['auc'], twins.get('auc_se'))}."
        )
    return Findings(f"What this run shows ({checkpoint.parent.name})", tuple(points))
