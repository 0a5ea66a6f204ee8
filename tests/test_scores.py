"""Score files: pairs plus a score column, written atomically, read back exactly or not at all."""

import numpy as np
import pytest

from backbone.data.errors import DataError
from backbone.data.lists.pairs import Pair
from backbone.evaluation.scores import ScoredPairs, read_scores, write_scores
from backbone.labels import DIFFERENT, SAME

PAIRS = [
    Pair("a/1.png", "a/2.png", SAME),
    Pair("a/1.png", "b/1.png", DIFFERENT, twins=True),
    Pair("a/2.png", "c/1.png", DIFFERENT),
]


def test_round_trip_keeps_pairs_labels_twins_and_scores(tmp_path):
    write_scores(tmp_path / "s.tsv", PAIRS, [0.9, 0.75, -0.123456789])
    scored = read_scores(tmp_path / "s.tsv")
    assert [(p.path_a, p.path_b, p.same, p.twins) for p in scored.pairs] == [
        (p.path_a, p.path_b, p.same, p.twins) for p in PAIRS
    ]
    np.testing.assert_allclose(scored.scores, [0.9, 0.75, -0.123457])
    assert scored.labels.tolist() == [SAME, DIFFERENT, DIFFERENT] and scored.same_mask.tolist() == [True, False, False]
    assert scored.twins.tolist() == [False, True, False]
    assert (tmp_path / "s.tsv").read_text().splitlines()[0] == "path_a\tpath_b\tsame\ttwins\tscore"


def test_folds_survive(tmp_path):
    write_scores(tmp_path / "s.tsv", [Pair("a", "b", SAME, fold=3), Pair("a", "c", DIFFERENT, fold=0)], [0.5, 0.1])
    assert [p.fold for p in read_scores(tmp_path / "s.tsv").pairs] == [3, 0]


def test_bad_scores_are_reported_by_line(tmp_path):
    text = "path_a\tpath_b\tsame\ttwins\tscore\na\tb\t1\t0\t0.5\na\tc\t0\t0\tnan\na\td\t0\t0\thigh\n"
    (tmp_path / "s.tsv").write_text(text)
    with pytest.raises(DataError) as err:
        read_scores(tmp_path / "s.tsv")
    assert "s.tsv:3: score must be a finite number, got 'nan'" in str(err.value)
    assert "s.tsv:4: score must be a finite number, got 'high'" in str(err.value)


def test_a_pair_file_without_scores_is_refused_by_name(tmp_path):
    (tmp_path / "p.tsv").write_text("path_a\tpath_b\tsame\na\tb\t1\n")
    with pytest.raises(DataError, match=r"p.tsv:1: bad header .*missing \['score'\]"):
        read_scores(tmp_path / "p.tsv")


def test_a_malformed_pair_line_is_reported_not_dropped(tmp_path):
    (tmp_path / "s.tsv").write_text("path_a\tpath_b\tsame\tscore\na\tb\t2\t0.1\na\tb\t1\n")
    with pytest.raises(DataError) as err:
        read_scores(tmp_path / "s.tsv")
    assert "s.tsv:2" in str(err.value) and "s.tsv:3" in str(err.value)


def test_mismatched_lengths_are_errors(tmp_path):
    with pytest.raises(ValueError, match="3 pairs but 2 scores"):
        write_scores(tmp_path / "s.tsv", PAIRS, [0.1, 0.2])
    with pytest.raises(ValueError, match="3 pairs"):
        ScoredPairs(PAIRS, np.zeros(2))
