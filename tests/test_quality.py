"""The face quality check: its measures by hand, and synthetic dark, tiny and blurred faces flagged
in verify's and identify's answers (the service's: tests/test_deploy_service.py)."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from backbone.data.faces.quality import (
    MIN_BRIGHTNESS,
    MIN_FACE_PX,
    MIN_SHARPNESS,
    FaceQuality,
    face_quality,
    relative_sharpness,
)
from backbone.evaluation.identification import Identification
from backbone.evaluation.verification import FoundFace, Verdict
from backbone.labels import DIFFERENT, SAME
from backbone.ranking import Match


def synthetic_face(tiny_synth) -> np.ndarray:
    return np.asarray(Image.open(tiny_synth / "solo000" / "solo000_0001.png").convert("RGB"))


def test_the_measures_by_hand():
    flat = np.full((10, 10), 50.0, np.float32)
    assert relative_sharpness(flat) == 0.0  # no detail at all
    checker = np.indices((10, 10)).sum(0) % 2 * 100.0
    # every inner Laplacian is -400 or +400 (a pixel against its four opposite neighbours), the pixels spread 2,500
    assert relative_sharpness(checker) == pytest.approx(400**2 / 2500)
    assert relative_sharpness(checker * 0.1) == pytest.approx(relative_sharpness(checker))  # the light scaled: the same
    crop = np.zeros((8, 8, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 100, 50, 200
    q = face_quality(crop, [10, 10, 45, 60])
    assert q.face_px == 35 and q.brightness == pytest.approx(0.299 * 100 + 0.587 * 50 + 0.114 * 200, abs=1e-3)
    assert FaceQuality(None, 120.0, 0.02).ok and FaceQuality(None, 120.0, 0.02).text().endswith("good enough")


def test_synthetic_dark_tiny_and_blurred_faces_are_flagged(tiny_synth):
    face = synthetic_face(tiny_synth)
    good = face_quality(face, [0, 0, 64, 64])
    assert good.ok, good.text()
    dark = face_quality((face * 0.15).round().astype(np.uint8))
    tiny = face_quality(face, [10, 10, 10 + MIN_FACE_PX - 8, 50])
    blurred = face_quality(np.asarray(Image.fromarray(face).filter(ImageFilter.GaussianBlur(3))))
    assert [p.split(":")[0] for p in dark.problems] == ["too dark"] and dark.brightness < MIN_BRIGHTNESS
    assert [p.split(":")[0] for p in tiny.problems] == ["too small"] and "32 px wide" in tiny.problems[0]
    assert [p.split(":")[0] for p in blurred.problems] == ["too blurred"] and blurred.sharpness < MIN_SHARPNESS


def test_verify_and_identify_say_a_verdict_on_a_poor_face_is_not_to_be_trusted(tiny_synth):
    face = synthetic_face(tiny_synth)
    dark = (face * 0.15).round().astype(np.uint8)
    good, poor = FoundFace("a.png", face, [0, 0, 64, 64], 0.99), FoundFace("b.png", dark, [0, 0, 64, 64], 0.99)
    verdict = Verdict(0.95, 0.9, SAME, "model m", (good, poor))
    lines = verdict.text().splitlines()
    assert not verdict.trusted and lines[0].endswith("SAME person")
    assert lines[1].startswith("CAUTION, b.png: too dark: mean brightness") and "not to be trusted" in lines[1]
    assert Verdict(0.95, 0.9, SAME, "model m", (good, good)).trusted
    assert "CAUTION" not in Verdict(0.95, 0.9, SAME, "model m", (good, good)).text()
    found = Identification(poor, [Match("ann", 0.5, "ann/1.png", DIFFERENT)], 0.9, "model m", "gallery", 1, 1, 1)
    assert found.text().splitlines()[1].startswith("CAUTION, b.png: too dark")
