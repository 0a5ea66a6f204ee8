"""What the explorer draws, as plain values: faces as PNG bytes (optionally under their attention
map), the ROC with the current threshold's point, and the verdict and metrics as HTML."""

from __future__ import annotations

import html
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from backbone.explorer.review import PairView
from backbone.plots import overlay_attention

FACE_PIXELS = 256  # each face of a pair is shown this many pixels square
GOOD, BAD = "#1a7f37", "#cf222e"


def to_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def display_face(face: np.ndarray, attention: np.ndarray | None = None, pixels: int = FACE_PIXELS) -> np.ndarray:
    """An HxWx3 uint8 face scaled to ``pixels`` square, with the attention map blended over it
    (the map is at the model's input size; the face is brought to that size first)."""
    img = Image.fromarray(face)
    if attention is not None:
        h, w = attention.shape
        img = Image.fromarray(overlay_attention(np.asarray(img.resize((w, h), Image.BICUBIC)), attention))
    return np.asarray(img.resize((pixels, pixels), Image.BICUBIC))


def face_png(face: np.ndarray, attention: np.ndarray | None = None, pixels: int = FACE_PIXELS) -> bytes:
    return to_png(display_face(face, attention, pixels))


class RocPicture:
    """A small ROC (false accept rate against true accept rate), drawn once; :meth:`png` marks a
    threshold's point on it. Moving the threshold then costs a PNG encode, not a matplotlib draw."""

    def __init__(self, fpr: np.ndarray, tpr: np.ndarray, auc: float):
        fig = Figure(figsize=(3.3, 3.0), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(fpr, tpr, color="#0969da", lw=1.8, label=f"AUC {auc:.3f}")
        ax.plot([0, 1], [0, 1], color="#8c959f", lw=0.8, ls="--")
        ax.plot([], [], "o", color=BAD, ms=7, label="threshold")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false accept rate", ylabel="true accept rate")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        canvas.draw()
        self.background = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
        self._to_pixels = ax.transData.transform
        self._height = self.background.height

    def pixel(self, point: tuple[float, float]) -> tuple[float, float]:
        """Image (x, y) of a (FAR, TAR) point; y counts down from the top."""
        x, y = self._to_pixels(np.array([point], dtype=float))[0]
        return float(x), float(self._height - y)

    def png(self, point: tuple[float, float], radius: int = 6) -> bytes:
        image = self.background.copy()
        x, y = self.pixel(point)
        ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), fill=BAD, outline="white")
        return to_png(np.asarray(image))


def verdict_html(view: PairView | None) -> str:
    """Similarity, threshold, verdict, the truth and whether the verdict is right."""
    if view is None:
        return "<div class='bb-empty'><b>No pairs match this filter.</b></div>"
    colour = GOOD if view.correct else BAD
    mark = "right" if view.correct else "WRONG"
    return (
        f"<div style='font-size:15px;line-height:1.5'>"
        f"<div>similarity <b>{view.score:.4f}</b> · threshold {view.threshold:.4f}</div>"
        f"<div>verdict <b style='color:{colour}'>{view.verdict}</b> "
        f"<span style='color:{colour}'>({view.outcome}: {mark})</span></div>"
        f"<div>truth: {html.escape(view.truth)}</div></div>"
    )


def position_html(view: PairView | None, filter_name: str, n_pairs: int) -> str:
    if view is None:
        return f"0 of 0 {html.escape(filter_name)} ({n_pairs} pairs)"
    return (
        f"pair <b>{view.position + 1}</b> of {view.total} {html.escape(filter_name)} "
        f"· line {view.pair.line or view.index + 2} of the score file ({n_pairs} pairs)"
    )


def metrics_html(metrics: dict) -> str:
    """FAR, FRR, accuracy, F1 and the confusion counts at one threshold, as a compact table."""
    rates = "".join(
        f"<td style='padding:2px 14px 2px 0'>{name} <b>{metrics[key]:.4f}</b></td>"
        for name, key in (("FAR", "far"), ("FRR", "frr"), ("accuracy", "accuracy"), ("F1", "f1"))
    )
    counts = "".join(
        f"<td style='padding:2px 14px 2px 0'>{name} <b>{metrics[key]}</b></td>"
        for name, key in (
            ("false accepts", "fp"),
            ("false rejects", "fn"),
            ("true accepts", "tp"),
            ("true rejects", "tn"),
        )
    )
    return f"<table style='font-size:14px;margin-top:8px'><tr>{rates}</tr><tr>{counts}</tr></table>"


def caption_html(path: str) -> str:
    return f"<div style='text-align:center;font-size:12px;max-width:{FACE_PIXELS}px;word-break:break-all'>{html.escape(path)}</div>"


def message_html(text: str, ok: bool) -> str:
    return f"<div style='color:{GOOD if ok else BAD};white-space:pre-wrap;font-size:14px'>{html.escape(text)}</div>"
