import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import Pair, write_pairs
from backbone.evaluation.metrics import best_accuracy_threshold
from backbone.evaluation.references import (
    REFERENCES,
    dark_detail,
    local_detail,
    score_reference,
    spot_contrast,
)
from backbone.experiments.analysis import collect_runs, result_row
from backbone.labels import DIFFERENT, SAME


def twin_pairs(root):
    """Every same-person pair and every twin-negative pair of a synthetic set."""
    by = load_index(root).by_identity
    pairs = [Pair(a[i], a[j], SAME) for a in by.values() for i in range(len(a)) for j in range(i + 1, len(a))]
    for a, b in json.loads((root / "pairs.json").read_text()):
        pairs += [Pair(x, y, DIFFERENT, twins=True) for x in by[a] for y in by[b]]
    return pairs


def test_spot_contrast_by_hand():
    lum = np.full((20, 20), 150.0)
    yy, xx = np.mgrid[0:20, 0:20] + 0.5
    lum[np.hypot(xx - 10, yy - 10) <= 2] = 50.0  # a dark spot of radius 2 at (10, 10)
    assert spot_contrast(lum, 10, 10, 2) == pytest.approx(100.0)  # ring 150, disc 50
    assert spot_contrast(lum, 4, 15, 2) == pytest.approx(0.0)  # plain skin: no spot
    assert spot_contrast(lum, 10, 10, 0.3) == pytest.approx(100.0)  # radius at least one pixel
    assert spot_contrast(lum, -50, -50, 2) == 0.0  # off the image


def test_the_oracle_tells_twins_apart_and_the_baseline_sits_below_it(tiny_synth):
    pairs = twin_pairs(tiny_synth)
    labels = np.array([p.same for p in pairs])
    oracle = roc_auc_score(labels, REFERENCES.get("mark-oracle")(tiny_synth, pairs, False).scores)
    baseline = roc_auc_score(labels, REFERENCES.get("local-detail")(tiny_synth, pairs, False).scores)
    assert oracle >= 0.95 and 0.5 < baseline < oracle, (oracle, baseline)


def test_the_oracle_needs_the_recorded_marks(tiny_synth, tmp_path):
    with pytest.raises(FileNotFoundError, match="records its marks.*make data"):
        REFERENCES.get("mark-oracle")(tmp_path, twin_pairs(tiny_synth)[:1], False)


def test_local_detail_finds_a_face_again_after_a_shift_and_a_turn(tmp_path):
    rng = np.random.default_rng(0)
    img = np.full((64, 64), 180.0)
    for _ in range(12):  # dark spots
        y, x = rng.integers(12, 52, 2)
        img[y - 1 : y + 2, x - 1 : x + 2] = 40.0
    moved = np.roll(img, (3, -4), axis=(0, 1))
    other = np.full((64, 64), 180.0)
    for _ in range(12):
        y, x = rng.integers(12, 52, 2)
        other[y - 1 : y + 2, x - 1 : x + 2] = 40.0
    for name, arr in (("a", img), ("b", moved), ("c", other)):
        Image.fromarray(arr.astype(np.uint8)).convert("RGB").save(tmp_path / f"{name}.png")
    scores = local_detail(tmp_path, [Pair("a.png", "a.png", SAME), Pair("a.png", "b.png", SAME),
                                     Pair("a.png", "c.png", DIFFERENT)], progress=False).scores  # fmt: skip
    assert scores[0] == pytest.approx(1.0, abs=1e-6)  # a face against itself
    assert scores[1] == pytest.approx(1.0, abs=0.05)  # shifted by (3, -4): found at that shift
    assert scores[2] < 0.6  # other spots
    assert np.linalg.norm(dark_detail(img)) == pytest.approx(1.0)


def test_score_reference_writes_a_run_the_table_shows_as_a_reference(tiny_synth, tmp_path):
    pairs = twin_pairs(tiny_synth)
    write_pairs(pairs[::2], tmp_path / "val.tsv")
    write_pairs(pairs[1::2], tmp_path / "test.tsv")
    out = tmp_path / "runs" / "oracle"
    metrics = score_reference("mark-oracle", tiny_synth, tmp_path / "val.tsv", tmp_path / "test.tsv", out, False)
    assert {p.name for p in out.iterdir()} == {"reference.json", "metrics.json", "test_scores.tsv"}
    # the threshold is the validation pairs' best, not the test pairs'
    val = pairs[::2]
    val_scores = REFERENCES.get("mark-oracle")(tiny_synth, val, False).scores
    expected = best_accuracy_threshold(val_scores, np.array([p.same for p in val]))
    assert metrics["at_val_threshold"]["threshold"] == pytest.approx(expected)
    assert "at_threshold" not in metrics and metrics["twin_negatives"]["auc"] >= 0.95
    (run,) = collect_runs(tmp_path / "runs")
    row = result_row(run)
    assert row["reference"] and row["training"] == "none (reference)" and row["architecture"].startswith("oracle")
    assert row["f1_at_threshold"] is None and row["accuracy"] is None  # no fixed threshold, and never the test's best
    assert row["accuracy_at_val_threshold"] == metrics["at_val_threshold"]["accuracy"]
    with pytest.raises(
        ValueError, match="unknown reference 'psychic'; choose from \\('mark-oracle', 'local-detail', 'dlib-native'\\)"
    ):
        score_reference("psychic", tiny_synth, tmp_path / "val.tsv", tmp_path / "test.tsv", out, False)
