"""dlib's own pipeline as a reference: descriptors, fallbacks counted, the store reused."""

import numpy as np
import pytest
from PIL import Image

from backbone.data.faces.align import FaceCounts
from backbone.data.lists.pairs import Pair, read_pairs
from backbone.evaluation.dlib_native import DETECTOR, DlibNative
from backbone.labels import DIFFERENT, SAME

pytest.importorskip("dlib")


def test_a_faceless_image_falls_back_and_is_counted_and_the_store_is_reused(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(90, 110, (120, 100, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    native = DlibNative(store=tmp_path / "store.pt")
    vectors, counts = native.descriptors(tmp_path, ["a.png", "b.png", "a.png"], progress=False)
    assert vectors.shape == (3, 128) and np.array_equal(vectors[0], vectors[2])
    assert counts == FaceCounts(images=2, detected=0, fallback=2, detector=DETECTOR, policy="fallback")
    assert "0 faces detected (dlib-hog), 2 fell back to a centre crop (policy fallback)" in counts.text()
    again = DlibNative(store=tmp_path / "store.pt")  # a new run reads the store and embeds nothing
    monkeypatch.setattr(again, "descriptor", lambda pixels: pytest.fail("embedded again"))
    scores, _ = again.score(tmp_path, [Pair("a.png", "b.png", DIFFERENT), Pair("a.png", "a.png", SAME)], progress=False)
    assert scores[1] == 0.0 and scores[0] == pytest.approx(-np.linalg.norm(vectors[0] - vectors[1]))


def test_on_lfw_dlibs_pipeline_finds_the_faces_and_tells_people_apart(lfw_root, tmp_path):
    pairs = read_pairs(lfw_root / "pairsDevTest.txt", root=lfw_root / "lfw-deepfunneled")
    chosen = [p for p in pairs if p.same][:4] + [p for p in pairs if not p.same][:4]
    scores, counts = DlibNative(store=tmp_path / "store.pt").score(
        lfw_root / "lfw-deepfunneled", chosen, progress=False
    )
    assert counts.detected >= counts.images - 1  # HOG finds (nearly) every LFW face
    assert scores[:4].min() > -0.6 > scores[4:].max()  # dlib's own rule: the same person below distance 0.6
