import json

import numpy as np
import pytest

from backbone.data.lists.pairs import read_pairs
from backbone.evaluation.pointing import marks_share, pointing_score, read_masks
from backbone.evaluation.uncertainty import ratio_se

# A 4x4 face: the face is the left three columns, the marks two of its pixels.
FACE = np.array([[1, 1, 1, 0]] * 4, float)
MARKS = np.zeros((4, 4))
MARKS[1, 1] = MARKS[2, 0] = 1


def test_attention_spread_evenly_scores_the_marks_area_share():
    share = marks_share(np.ones((4, 4)), MARKS, FACE)
    assert share == pytest.approx({"mass": 2 / 12, "area": 2 / 12})
    assert pointing_score([share])["score"] == pytest.approx(1.0)


def test_a_hand_made_attention_map():
    attention = np.zeros((4, 4))
    attention[1, 1] = 3  # on a mark
    attention[0, 0] = 1  # on the face, off the marks
    attention[0, 3] = 4  # off the face: not counted
    share = marks_share(attention, MARKS, FACE)
    assert share == pytest.approx({"mass": 3 / 4, "area": 2 / 12})
    # over two faces: mean mass over mean area
    other = marks_share(np.ones((4, 4)), MARKS, FACE)
    score = pointing_score([share, other])
    assert score["mass"] == pytest.approx((3 / 4 + 2 / 12) / 2) and score["area"] == pytest.approx(2 / 12)
    assert score["score"] == pytest.approx(((3 / 4 + 2 / 12) / 2) / (2 / 12)) and score["images"] == 2
    # its standard error: the ratio of means bootstrapped over the faces; one face has none
    assert score["score_se"] == ratio_se([3 / 4, 2 / 12], [2 / 12, 2 / 12]) > 0
    assert pointing_score([share])["score_se"] is None


def test_partial_coverage_weighs_pixels():
    marks = MARKS * 0.5
    share = marks_share(np.ones((4, 4)), marks, FACE)
    assert share == pytest.approx({"mass": 1 / 12, "area": 1 / 12})


def test_a_coarse_map_is_resized_to_the_masks():
    share = marks_share(np.full((2, 2), 7.0), MARKS, FACE)  # constant at any size
    assert share == pytest.approx({"mass": 2 / 12, "area": 2 / 12})
    left = np.array([[1.0, 0.0], [1.0, 0.0]])  # attention on the left half, where the marks are
    assert marks_share(left, MARKS, FACE)["mass"] > 2 / 12


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        marks_share(-np.ones((4, 4)), MARKS, FACE)
    with pytest.raises(ValueError, match="differ in size"):
        marks_share(np.ones((4, 4)), MARKS, FACE[:3])
    with pytest.raises(ValueError, match="no attention"):
        marks_share(np.ones((4, 4)), MARKS, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="no faces"):
        pointing_score([])


def test_masks_are_read_by_path_with_clear_errors(tiny_synth, tmp_path):
    path = "twin000a/twin000a_0001.png"
    masks = read_masks(tiny_synth, [path])[path]
    assert masks.shape == (2, 64, 64) and 0 <= masks.min() and masks.max() <= 1 and masks[0].sum() > 0
    with pytest.raises(KeyError, match="no masks for 1 image"):
        read_masks(tiny_synth, ["nobody/nobody_0001.png"])
    with pytest.raises(FileNotFoundError, match="marks.npz not found"):
        read_masks(tmp_path, [path])


def test_a_local_global_run_on_synthetic_twins_reports_its_pointing_score(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    pairs = read_pairs(tiny_run.parent / "test.tsv")
    images = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
    pointing = metrics["pointing"]
    assert pointing["images"] == len(images)
    assert 0 < pointing["mass"] < 1 and 0 < pointing["area"] < 0.2
    assert pointing["score"] == pytest.approx(pointing["mass"] / pointing["area"])


def test_the_table_shows_the_pointing_score_and_the_attention_figure_says_it(tiny_run, tmp_path):
    from backbone.experiments.analysis import analyze, pointing_caption

    analysis = analyze(tiny_run.parent, tmp_path)
    (row,) = analysis.rows
    pointing = json.loads((tiny_run / "metrics.json").read_text())["pointing"]
    assert row["pointing"] == pointing["score"]
    assert "pointing score" in analysis.markdown and "Pointing score (local-global models" in analysis.markdown
    assert f"| {pointing['score']:.4f} ± {pointing['score_se']:.4f} |" in analysis.markdown
    assert "attention_tiny" in analysis.figures
    caption = pointing_caption(pointing)
    assert caption.startswith(
        f"pointing score {pointing['score']:.2f} ± {pointing['score_se']:.2f} over {pointing['images']} test faces"
    )
    assert pointing_caption({**pointing, "score_se": None}).startswith(f"pointing score {pointing['score']:.2f} over")
