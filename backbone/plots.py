"""Figures: training curves, ROC and F1 overlays, score distributions, seed spreads, confusion
heat maps, face and attention grids, AUC under stress; every one in the workbook's seaborn theme (:data:`THEME`).

Every function returns a matplotlib Figure; :func:`save_figure` writes it as PNG (and as SVG
too when ``$BACKBONE_FIGURE_FORMATS`` says so, e.g. ``png,svg``: ``backbone experiments run --svg``).
Scores follow the project's rule (higher = more alike; SAME = 1).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from backbone.atomic import atomic_write_bytes
from backbone.labels import SAME
from backbone.paths import project_path

#: One look for every figure: seaborn's white grid, without the top and right spines.
THEME = {"style": "whitegrid", "context": "notebook", "font_scale": 0.85,
         "rc": {"axes.spines.top": False, "axes.spines.right": False, "grid.alpha": 0.5}}  # fmt: skip
sns.set_theme(**THEME)

COLOURS = plt.get_cmap("tab10").colors
SAME_COLOUR, TWIN_COLOUR, OTHER_COLOUR = "#2a9d8f", "#e76f51", "#8d99ae"
PAIR_COLOURS = {"same person": SAME_COLOUR, "twin negatives": TWIN_COLOUR, "other negatives": OTHER_COLOUR}


def _subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, **kwargs):
    """``plt.subplots`` without pyplot: the figure is not registered with it, so a notebook shows it
    once, where it is displayed (a cell's value), and never again at the end of the cell that made it;
    and it is freed when no longer referenced."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _style(ax) -> None:
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


FORMATS_ENV = "BACKBONE_FIGURE_FORMATS"


def figure_formats() -> tuple[str, ...]:
    """The formats figures are written in: ``$BACKBONE_FIGURE_FORMATS`` (comma-separated), else PNG only."""
    chosen = tuple(f.strip().lower() for f in os.environ.get(FORMATS_ENV, "png").split(",") if f.strip())
    unknown = sorted(set(chosen) - {"png", "svg", "pdf"})
    if unknown or not chosen:
        raise ValueError(f"${FORMATS_ENV}={os.environ.get(FORMATS_ENV)!r}: use png, svg or pdf, comma-separated")
    return chosen


def save_figure(
    fig: Figure, stem: str | Path, formats: Sequence[str] | None = None, dpi: int = 150, close: bool = False
) -> list[Path]:
    """Write ``stem.png`` (and the other ``formats``; default :func:`figure_formats`) atomically;
    returns the paths. The PNG is in a palette of 256 colours (:func:`palette_png`): a third of
    the full-colour file, the same to the eye. ``close`` unregisters a figure made with pyplot (the
    workbook's own are made outside pyplot, so a notebook never shows them twice)."""
    stem = project_path(stem)
    formats = formats if formats is not None else figure_formats()
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        # a fixed salt and no date: the same figure gives the same bytes, so re-runs diff cleanly
        buffer = io.BytesIO()
        with plt.rc_context({"svg.hashsalt": "backbone"}):
            fig.savefig(
                buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None
            )
        atomic_write_bytes(path, palette_png(buffer.getvalue()) if fmt == "png" else buffer.getvalue())
        out.append(path)
    if close:
        plt.close(fig)
    return out


def palette_png(data: bytes, colours: int = 256) -> bytes:
    """PNG bytes re-encoded in a palette of ``colours`` (median cut, optimised): how the workbook
    stores figures and the images of executed notebooks (plots: about a third of the size; photos
    with attention maps: a fifth). A PNG already in a palette comes back as it is."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.mode == "P":
            return data
        small = img.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def plot_history(history: Sequence[dict], title: str = "") -> Figure:
    """Training loss and validation AUC per epoch (epoch 0: the initial model, validated untrained)."""
    epochs = [h["epoch"] for h in history]
    fig, ax = _subplots(figsize=(6.4, 3.6))
    ax.plot(epochs, [h.get("train_loss", np.nan) for h in history], "o-", color=COLOURS[0], label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color=COLOURS[0])
    _style(ax)
    if any("val_auc" in h for h in history):
        ax2 = ax.twinx()
        ax2.plot(epochs, [h.get("val_auc", np.nan) for h in history], "s-", color=COLOURS[1], label="validation AUC")
        ax2.set_ylabel("validation AUC", color=COLOURS[1])
        ax2.spines["top"].set_visible(False)
    ax.set_title(title or "training")
    fig.tight_layout()
    return fig


def has_time_curve(history: Sequence[dict]) -> bool:
    """Whether a run's history holds an accuracy-vs-training-time curve (two timed epochs or more)."""
    return sum("train_minutes" in h for h in history) >= 2


def plot_accuracy_vs_time(histories: Mapping[str, Sequence[dict]], title: str = "") -> Figure:
    """Accuracy against minutes of training, one colour per run: on the test pairs at each epoch's
    validation threshold (solid, when the run scored them every epoch) and the best accuracy on the
    validation pairs (dashed)."""
    fig, ax = _subplots(figsize=(6.4, 4.0))
    for i, (name, history) in enumerate(histories.items()):
        timed = [h for h in history if "train_minutes" in h]
        minutes = [h["train_minutes"] for h in timed]
        colour = COLOURS[i % 10]
        if any("test_accuracy_at_val_threshold" in h for h in timed):
            test = [100 * h.get("test_accuracy_at_val_threshold", np.nan) for h in timed]
            ax.plot(minutes, test, "o-", color=colour, lw=1.8, label=f"{name}: test pairs, val thr.")
            ax.annotate(f"{test[-1]:.1f}%", (minutes[-1], test[-1]), textcoords="offset points", xytext=(4, 4),
                        color=colour, fontsize=8)  # fmt: skip
        val = [100 * h.get("val_best_accuracy", np.nan) for h in timed]
        ax.plot(minutes, val, "s--", color=colour, lw=1.2, alpha=0.7, label=f"{name}: validation, best thr.")
    ax.set_xlabel("minutes of training")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlim(left=0)
    _style(ax)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "accuracy vs training time")
    fig.tight_layout()
    return fig


LOCAL_GLOBAL_BLUE = "#9ecae1"
REFERENCE_GREY = "#bdbdbd"


def plot_accuracy_bars(rows: Sequence[dict], title: str = "") -> Figure:
    """Test accuracy at each run's validation threshold, ± its standard error, one bar per run
    (best at the top): dark for global-only models, light for local-global ones, hatched for
    pretrained backbones, grey for references (``reference`` true). ``rows``: the analysis table's
    rows (``accuracy_at_val_threshold``, ``accuracy_at_val_threshold_se``, ``attention``,
    ``pretrained_on``, ``experiment``, ``reference``)."""
    rows = sorted((r for r in rows if r.get("accuracy_at_val_threshold") is not None),
                  key=lambda r: r["accuracy_at_val_threshold"])  # fmt: skip
    fig, ax = _subplots(figsize=(6.4, 0.9 + 0.32 * max(len(rows), 1)))
    for i, r in enumerate(rows):
        plain = r["attention"].startswith("none")
        colour = REFERENCE_GREY if r.get("reference") else COLOURS[0] if plain else LOCAL_GLOBAL_BLUE
        ax.barh(i, 100 * r["accuracy_at_val_threshold"], xerr=100 * (r.get("accuracy_at_val_threshold_se") or 0),
                color=colour, hatch="" if r["pretrained_on"] == "none" else "//",
                edgecolor="white", error_kw={"elinewidth": 1, "capsize": 2})  # fmt: skip
        ax.annotate(f"{100 * r['accuracy_at_val_threshold']:.1f}%", (100 * r["accuracy_at_val_threshold"], i),
                    textcoords="offset points", xytext=(14, -3), fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(rows)), [r["experiment"] for r in rows], fontsize=8)
    ax.set_xlabel("test accuracy at the validation threshold (%), ± SE")
    ax.set_xlim(50, 103)
    _style(ax)
    legend = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[0]), plt.Rectangle((0, 0), 1, 1, color=LOCAL_GLOBAL_BLUE),
              plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="grey", hatch="//")]  # fmt: skip
    names = ["global only", "local-global", "pretrained backbone"]
    if any(r.get("reference") for r in rows):
        legend.append(plt.Rectangle((0, 0), 1, 1, color=REFERENCE_GREY))
        names.append("reference (no training)")
    ax.legend(legend, names, fontsize=8, loc="lower right")
    ax.set_title(title or "accuracy of every run")
    fig.tight_layout()
    return fig


def plot_roc(runs: Mapping[str, dict], title: str = "ROC", log_far: bool = False) -> Figure:
    """ROC curves of several metrics dicts, overlaid, AUC in the legend."""
    fig, ax = _subplots(figsize=(5.6, 5.0))
    for i, (name, m) in enumerate(runs.items()):
        fpr, tpr = np.asarray(m["roc"]["fpr"]), np.asarray(m["roc"]["tpr"])
        ax.plot(fpr, tpr, color=COLOURS[i % 10], lw=1.8, label=f"{name} (AUC {m['auc']:.3f})")
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
    else:
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    _style(ax)
    fig.tight_layout()
    return fig


def plot_f1(runs: Mapping[str, dict], title: str = "F1 vs threshold") -> Figure:
    """F1-vs-threshold curves overlaid, each run's operating threshold marked on its curve: the
    one chosen on its validation pairs when its metrics have it, else the fixed one."""
    fig, ax = _subplots(figsize=(6.4, 4.0))
    kinds = set()
    for i, (name, m) in enumerate(runs.items()):
        colour = COLOURS[i % 10]
        ax.plot(m["f1_curve"]["thresholds"], m["f1_curve"]["f1"], color=colour, lw=1.8, label=name)
        at = m.get("at_val_threshold") or m.get("at_threshold")
        if at is not None:
            ax.plot([at["threshold"]], [at["f1"]], "o", color=colour, ms=5, mec="white", mew=0.8)
            kinds.add("chosen on validation pairs" if "at_val_threshold" in m else f"fixed, {at['threshold']:g}")
    if kinds:
        ax.plot([], [], "o", color="grey", label=f"operating threshold ({'; '.join(sorted(kinds))})")
    ax.set_xlabel("threshold (score: cosine similarity, or the pair head's probability)")
    ax.set_ylabel("F1")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _style(ax)
    fig.tight_layout()
    return fig


def _histogram(
    ax, scores: np.ndarray, labels: np.ndarray, twins: np.ndarray | None, threshold: float | None, title: str
) -> None:
    same = labels == SAME
    twins = np.zeros_like(same) if twins is None else twins.astype(bool)
    kinds = np.where(same, "same person", np.where(twins, "twin negatives", "other negatives"))
    present = [k for k in PAIR_COLOURS if (kinds == k).any()]
    counts = {k: int((kinds == k).sum()) for k in present}
    sns.histplot(
        x=scores, hue=np.array([f"{k} ({counts[k]})" for k in kinds]), bins=40, stat="density", common_norm=False,
        element="step", alpha=0.35, ax=ax, legend=True,
        hue_order=[f"{k} ({counts[k]})" for k in present],
        palette={f"{k} ({counts[k]})": PAIR_COLOURS[k] for k in present},
    )  # fmt: skip
    if threshold is not None:
        ax.axvline(threshold, ls="--", color="black", lw=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("score")


def plot_score_histograms(
    runs: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    thresholds: Mapping[str, float | None] | None = None,
) -> Figure:
    """Per run, the score distributions of same pairs, twin negatives and other negatives, with
    the run's operating threshold (``thresholds[name]``) marked."""
    n = len(runs)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = _subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, (scores, labels, twins)) in zip(axes.flat, runs.items()):
        _histogram(ax, np.asarray(scores), np.asarray(labels), twins, (thresholds or {}).get(name), name)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in list(axes.flat)[1:n]:  # one legend, on the first panel
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    legend = axes.flat[0].get_legend()
    if legend is not None:
        legend.set_title(None)
        for text in legend.get_texts():
            text.set_fontsize(7)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: Mapping[str, float], title: str = "") -> Figure:
    """The confusion matrix of one operating point as a heat map: counts, and each cell's share of
    its row (the true accept, false reject, false accept and true reject rates). ``confusion``:
    ``tp``, ``fn``, ``fp``, ``tn`` and ``threshold`` (a metrics entry such as ``at_val_threshold``)."""
    counts = np.array([[confusion["tp"], confusion["fn"]], [confusion["fp"], confusion["tn"]]], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    notes = np.array([[f"{int(c):,}\n{100 * r:.1f}%" for c, r in zip(crow, rrow)] for crow, rrow in zip(counts, rates)])
    fig, ax = _subplots(figsize=(4.4, 3.6))
    sns.heatmap(rates, annot=notes, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False, linewidths=1, ax=ax,
                xticklabels=["said same", "said different"], yticklabels=["same person", "different people"])  # fmt: skip
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title or f"at threshold {confusion['threshold']:.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_seed_spread(summaries: Sequence[dict], title: str = "") -> Figure:
    """Per setting trained with several seeds, each seed's AUC (dots) and their mean ± SD (bar), on
    twin negatives (left) and on other negatives (right), chance (0.5) dashed. ``summaries``:
    ``backbone.experiments.seeds.seed_summary``, with its per-seed ``twin_aucs`` and ``other_aucs``."""
    names = [s["attention"].replace("none (global only)", "global only") for s in summaries]
    if len(set(names)) < len(names):  # the same attention with several losses or backbones
        names = [f"{n}, {s.get('loss')}, {s.get('architecture')}" for n, s in zip(names, summaries)]
    panels = [("twin_aucs", "twin negatives", TWIN_COLOUR), ("other_aucs", "other negatives", OTHER_COLOUR)]
    fig, axes = _subplots(1, 2, figsize=(8.4, 1.0 + 0.55 * max(len(summaries), 1)), sharey=True)
    for ax, (key, label, colour) in zip(axes, panels):
        data = {"setting": [], "AUC": []}
        for name, s in zip(names, summaries):
            values = [v for v in s.get(key, []) if v is not None]
            data["setting"] += [name] * len(values)
            data["AUC"] += values
        if data["AUC"]:
            sns.pointplot(data=data, x="AUC", y="setting", order=names, errorbar="sd", color="black", ax=ax,
                          linestyle="none", markers="|", markersize=16, capsize=0.25, err_kws={"linewidth": 1.2})  # fmt: skip
            sns.stripplot(data=data, x="AUC", y="setting", order=names, color=colour, ax=ax, size=7, alpha=0.85,
                          jitter=False)  # fmt: skip
        ax.axvline(0.5, ls="--", color="grey", lw=1)
        ax.set_title(f"AUC against {label}", fontsize=10)
        ax.set_xlabel("per seed (dots), mean ± SD (bar)")
        ax.set_ylabel("")
    fig.suptitle(title or "seed to seed (0.5 is chance)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str] | None = None, cols: int = 8, size: float = 1.5
) -> Figure:
    """HxWx3 uint8 images in a grid with optional titles."""
    rows = int(np.ceil(len(images) / cols))
    fig, axes = _subplots(rows, cols, figsize=(size * cols, size * rows * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i])
            if titles:
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def overlay_attention(image: np.ndarray, attention: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend an attention map (HxW, any scale) over an HxWx3 uint8 image as a heat map."""
    a = attention.astype(np.float64)
    a = (a - a.min()) / (a.max() - a.min() + 1e-12)
    heat = (plt.get_cmap("inferno")(a)[..., :3] * 255).astype(np.float64)
    return np.clip((1 - alpha) * image.astype(np.float64) + alpha * heat, 0, 255).astype(np.uint8)


def plot_attention_grid(
    images: Sequence[np.ndarray], attentions: Sequence[np.ndarray], titles: Sequence[str] | None = None, cols: int = 6
) -> Figure:
    """Each face above its attention overlay: where the local branch looks."""
    n = len(images)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = _subplots(2 * rows, cols, figsize=(1.7 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, att) in enumerate(zip(images, attentions)):
        r, c = 2 * (i // cols), i % cols
        axes[r, c].imshow(img)
        axes[r + 1, c].imshow(overlay_attention(img, att))
        if titles:
            axes[r, c].set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def plot_stress(rows: Sequence) -> Figure:
    """AUC ± SE against strength, one panel per stress condition, one line per model; the clean
    pairs at strength "clean" on the left of every panel. ``rows``: ``backbone.evaluation.stress.StressRow``."""
    models = list(dict.fromkeys(r.model for r in rows))
    conditions = list(dict.fromkeys(r.condition for r in rows if r.condition != "none"))
    cols = min(4, max(len(conditions), 1))
    fig, axes = _subplots(-(-len(conditions) // cols), cols, figsize=(3.0 * cols, 2.6 * -(-len(conditions) // cols)),
                          sharey=True, squeeze=False)  # fmt: skip
    for ax, condition in zip(axes.flat, conditions):
        strengths = list(dict.fromkeys(r.strength for r in rows if r.condition == condition))  # mildest first
        for colour, model in zip(COLOURS, models):
            clean = [r for r in rows if r.model == model and r.condition == "none"]
            own = {r.strength: r for r in rows if r.model == model and r.condition == condition}
            points = clean + [own[s] for s in strengths if s in own]
            x = [0] * len(clean) + [1 + strengths.index(s) for s in strengths if s in own]
            ax.errorbar(x, [p.auc for p in points], yerr=[p.auc_se for p in points], marker="o", ms=4, capsize=2,
                        color=colour, label=model, lw=1.4)  # fmt: skip
        unit = next(r.unit for r in rows if r.condition == condition)
        ax.set_xticks(range(len(strengths) + 1), ["clean", *(f"{s:g}" for s in strengths)])
        ax.set_title(condition, fontsize=10)
        ax.set_xlabel(unit)
        _style(ax)
    for ax in axes.flat[len(conditions) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("AUC (± SE)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Test pairs under changes of light and quality: AUC against strength", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
