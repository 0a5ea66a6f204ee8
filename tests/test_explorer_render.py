"""What the explorer draws: face PNGs at display size, attention blended in, ROC, verdict HTML."""

import io

import numpy as np
from PIL import Image

from backbone.data.lists.pairs import Pair
from backbone.evaluation.metrics import confusion_at
from backbone.explorer.render import (
    BAD,
    FACE_PIXELS,
    GOOD,
    RocPicture,
    display_face,
    face_png,
    metrics_html,
    position_html,
    verdict_html,
)
from backbone.explorer.review import PairView
from backbone.labels import DIFFERENT, SAME


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_faces_are_scaled_to_the_display_size():
    face = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    shown = decode(face_png(face))
    assert shown.shape == (FACE_PIXELS, FACE_PIXELS, 3)
    assert abs(shown.mean() - face.mean()) < 3  # the same picture, bigger


def test_attention_overlay_is_brightest_where_the_map_is():
    face = np.full((64, 64, 3), 100, np.uint8)
    att = np.zeros((32, 32))
    att[:8, :8] = 1.0  # attention in the top-left corner only
    plain, overlaid = display_face(face), display_face(face, att)
    assert not np.array_equal(plain, overlaid)
    corner, rest = (
        overlaid[: FACE_PIXELS // 8, : FACE_PIXELS // 8].mean(),
        overlaid[FACE_PIXELS // 2 :, FACE_PIXELS // 2 :].mean(),
    )
    assert corner > rest + 40


def test_the_roc_point_is_drawn_where_the_rates_put_it():
    roc = RocPicture(np.array([0, 0.2, 1]), np.array([0, 0.7, 1]), 0.75)
    (x0, y0), (x1, y1) = roc.pixel((0, 0)), roc.pixel((1, 1))
    assert x1 > x0 + 150 and y0 > y1 + 150  # right and up, in image rows counted from the top
    for point in ((0.2, 0.7), (0.9, 0.95)):
        image = decode(roc.png(point))
        x, y = (round(v) for v in roc.pixel(point))
        assert tuple(image[y, x, :3]) == (0xCF, 0x22, 0x2E)  # the marker's red, at the point
    assert not np.array_equal(decode(roc.png((0.2, 0.7))), decode(roc.png((0.9, 0.95))))


def test_verdict_names_the_score_threshold_outcome_and_truth():
    wrong = PairView(0, 3, 5, Pair("a/1.png", "b/1.png", DIFFERENT, twins=True), 0.71234, 0.6)
    text = verdict_html(wrong)
    assert "0.7123" in text and "0.6000" in text and "SAME" in text and "false accept" in text and "WRONG" in text
    assert BAD in text and "twins" in text
    right = PairView(0, 3, 5, Pair("a/1.png", "a/2.png", SAME), 0.9, 0.6)
    assert GOOD in verdict_html(right) and "true accept: right" in verdict_html(right)
    assert "No pairs" in verdict_html(None)
    assert "pair <b>1</b> of 3 false accepts" in position_html(wrong, "false accepts", 40)


def test_metrics_table_shows_rates_and_counts():
    m = confusion_at(np.array([0.9, 0.2, 0.7, 0.1]), np.array([SAME, SAME, DIFFERENT, DIFFERENT]), 0.5)
    text = metrics_html(m)
    for piece in ("FAR", "0.5000", "FRR", "accuracy", "F1", "false accepts", "<b>1</b>"):
        assert piece in text
