"""The pair explorer in JupyterLab: a thin ipywidgets layer over :class:`PairReview` and
:class:`ExplorerSource`. Each control calls one review method, then the view is redrawn.

Widgets carry ``bb-*`` CSS classes so a browser test can find them.
"""

from __future__ import annotations

import html
import math
from functools import lru_cache

import ipywidgets as w

from backbone.data.errors import DataError
from backbone.explorer.render import (
    FACE_PIXELS,
    RocPicture,
    caption_html,
    face_png,
    message_html,
    metrics_html,
    position_html,
    verdict_html,
)
from backbone.explorer.review import FILTERS, ORDERS
from backbone.explorer.sources import ExplorerSource, ImageInput


def _tagged(widget: w.Widget, name: str) -> w.Widget:
    widget.add_class(f"bb-{name}")
    return widget


def _face_image(name: str) -> w.Image:
    return _tagged(w.Image(format="png", width=FACE_PIXELS, height=FACE_PIXELS), name)


def _show(image: w.Image, png: bytes) -> None:
    """Set an image, hiding it while it is empty (no broken-image box)."""
    image.value = png
    image.layout.display = None if png else "none"


class PairExplorer:
    """Browse scored pairs, move the threshold, overlay attention, verify two new images."""

    def __init__(self, source: ExplorerSource):
        self.source = source
        self.review = source.review
        low, high = self.review.score_range()
        low, high = (
            math.floor(min(low, self.review.threshold) * 100) / 100,
            math.ceil(max(high, self.review.threshold) * 100) / 100,
        )
        self.title = w.HTML(f"<h3 style='margin:4px 0'>{html.escape(source.title)}</h3>")
        self.counts = _tagged(w.HTML(), "counts")
        self.filter = _tagged(w.Dropdown(options=FILTERS, value=self.review.filter, description="show"), "filter")
        self.order = _tagged(w.Dropdown(options=ORDERS, value=self.review.order, description="order"), "order")
        self.previous = _tagged(w.Button(description="previous", icon="arrow-left"), "previous")
        self.next = _tagged(w.Button(description="next", icon="arrow-right"), "next")
        self.jump = _tagged(
            w.BoundedIntText(value=1, min=1, max=1, description="go to", layout=w.Layout(width="160px")), "jump"
        )
        self.position = _tagged(w.HTML(), "position")
        self.threshold = _tagged(
            w.FloatSlider(value=self.review.threshold, min=low, max=high, step=0.0001, readout_format=".4f",
                          description="threshold", continuous_update=True, layout=w.Layout(width="520px")),
            "threshold",
        )  # fmt: skip
        self.attention = _tagged(
            w.Checkbox(value=False, description="attention overlay", disabled=not source.has_attention, indent=False),
            "attention",
        )
        if not source.has_attention:
            self.attention.description = "attention overlay (needs a local-global checkpoint)"
        self.face_a, self.face_b = _face_image("face-a"), _face_image("face-b")
        self.caption_a, self.caption_b = _tagged(w.HTML(), "caption-a"), _tagged(w.HTML(), "caption-b")
        self.verdict = _tagged(w.HTML(), "verdict")
        self.metrics = _tagged(w.HTML(), "metrics")
        self.roc = _tagged(w.Image(format="png"), "roc")
        self._roc = RocPicture(*self.review.roc)
        self.verify_panel = VerifyPanel(source)
        self._pair_pngs = lru_cache(maxsize=64)(self._render_pair)

        self.filter.observe(lambda c: self._act(self.review.set_filter, c["new"]), names="value")
        self.order.observe(lambda c: self._act(self.review.set_order, c["new"]), names="value")
        self.threshold.observe(lambda c: self._act(self.review.set_threshold, c["new"], threshold=True), names="value")
        self.jump.observe(lambda c: self._jump(c["new"]), names="value")
        self.previous.on_click(lambda _: self._act(self.review.previous))
        self.next.on_click(lambda _: self._act(self.review.next))
        self.attention.observe(lambda _: self._draw_pair(), names="value")

        controls = w.HBox([self.filter, self.order, self.previous, self.next, self.jump])
        spaced = w.Layout(margin="0 12px 0 0")
        faces = w.HBox(
            [w.VBox([self.face_a, self.caption_a], layout=spaced), w.VBox([self.face_b, self.caption_b], layout=spaced)]
        )
        faces = w.VBox([faces, self.metrics])
        side = w.VBox([self.verdict, self.roc], layout=w.Layout(margin="0 0 0 18px"))
        self.widget = _tagged(
            w.VBox([self.title, self.counts, controls, self.position, w.HBox([self.threshold, self.attention]), w.HBox([faces, side]),
                    w.HTML("<h4 style='margin:14px 0 4px'>Verify two images</h4>"), self.verify_panel.widget]),
            "explorer",
        )  # fmt: skip
        self._draw_threshold()
        self._draw_pair()

    def _act(self, action, *args, threshold: bool = False) -> None:
        action(*args)
        if threshold:
            self._draw_threshold()
        self._draw_pair()

    def _jump(self, number: int) -> None:
        """Go to the 1-based pair ``number``; the box echoing the current position is not a jump."""
        if number - 1 != self.review.position:
            self._act(self.review.jump, number - 1)

    def _draw_threshold(self) -> None:
        self.roc.value = self._roc.png(self.review.roc_point())
        self.metrics.value = metrics_html(self.review.metrics())
        self.counts.value = " · ".join(f"{name} <b>{n}</b>" for name, n in self.review.counts().items())

    def _draw_pair(self) -> None:
        view = self.review.current
        self.verdict.value = verdict_html(view)
        self.position.value = position_html(view, self.review.filter, len(self.review.scores))
        total = view.total if view else 0
        self.previous.disabled = view is None or view.position == 0
        self.next.disabled = view is None or view.position >= total - 1
        with self.jump.hold_trait_notifications():
            self.jump.max = max(total, 1)
            self.jump.value = view.position + 1 if view else 1
        if view is None:
            _show(self.face_a, b"")
            _show(self.face_b, b"")
            self.caption_a.value = self.caption_b.value = ""
            return
        overlay = self.attention.value and self.source.has_attention
        png_a, png_b = self._pair_pngs(view.pair.path_a, view.pair.path_b, overlay)
        _show(self.face_a, png_a)
        _show(self.face_b, png_b)
        self.caption_a.value, self.caption_b.value = caption_html(view.pair.path_a), caption_html(view.pair.path_b)

    def _render_pair(self, path_a: str, path_b: str, overlay: bool) -> tuple[bytes, bytes]:
        """Both faces of a pair as PNGs, under their attention maps when ``overlay``."""
        faces = [self.source.faces(path_a), self.source.faces(path_b)]
        maps = self.source.attention(faces) if overlay else [None, None]
        return tuple(face_png(f, m) for f, m in zip(faces, maps))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class VerifyPanel:
    """Two images, uploaded or named by path, verified with the explorer's model at its threshold
    (without one: the default pretrained model at its own threshold, which the result names)."""

    def __init__(self, source: ExplorerSource):
        self.source = source
        hint = "or a path (absolute, or under the data root)"
        self.upload_a = _tagged(w.FileUpload(accept="image/*", multiple=False, description="image A"), "upload-a")
        self.upload_b = _tagged(w.FileUpload(accept="image/*", multiple=False, description="image B"), "upload-b")
        self.path_a = _tagged(w.Text(placeholder=hint, layout=w.Layout(width="360px")), "path-a")
        self.path_b = _tagged(w.Text(placeholder=hint, layout=w.Layout(width="360px")), "path-b")
        self.button = _tagged(
            w.Button(description="verify", icon="check", button_style="primary"),
            "verify",
        )
        self.face_a, self.face_b = _face_image("verify-face-a"), _face_image("verify-face-b")
        _show(self.face_a, b"")
        _show(self.face_b, b"")
        self.result = _tagged(w.HTML(), "verify-result")
        if source.model is None:
            self.result.value = message_html("no model of this source's own: the pretrained model verifies", ok=True)
        self.button.on_click(lambda _: self.run())
        self.widget = w.VBox([
            w.HBox([self.upload_a, self.path_a]), w.HBox([self.upload_b, self.path_b]), self.button,
            w.HBox([self.face_a, self.face_b, self.result]),
        ])  # fmt: skip

    @staticmethod
    def _input(upload: w.FileUpload, path: w.Text, side: str) -> ImageInput:
        if upload.value:
            item = upload.value[0]
            return item["name"], bytes(item["content"])
        if path.value.strip():
            return path.value.strip()
        raise ValueError(f"choose image {side}: upload a file or type a path")

    def run(self) -> None:
        """Verify the chosen images; any problem becomes a message naming the file."""
        _show(self.face_a, b"")
        _show(self.face_b, b"")
        try:
            result = self.source.verify(
                self._input(self.upload_a, self.path_a, "A"), self._input(self.upload_b, self.path_b, "B")
            )
        except (DataError, ValueError) as exc:
            self.result.value = message_html(str(exc), ok=False)
            return
        _show(self.face_a, face_png(result.faces[0]))
        _show(self.face_b, face_png(result.faces[1]))
        self.result.value = message_html(result.verdict.text(), ok=True)
