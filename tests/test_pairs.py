import pytest

from backbone.data.errors import DataError
from backbone.data.lists.pairs import Pair, read_pairs, read_tsv_pairs, write_pairs
from backbone.labels import DIFFERENT, SAME

PAIRS = [
    Pair("alice/alice_0001.jpg", "alice/alice_0002.jpg", SAME),
    Pair("alice/alice_0001.jpg", "bob/bob_0001.jpg", DIFFERENT, twins=True),
]


def test_tsv_round_trip_with_and_without_folds(tmp_path, folders):
    path = tmp_path / "p.tsv"
    write_pairs(PAIRS, path)
    assert path.read_text().splitlines()[0] == "path_a\tpath_b\tsame\ttwins"
    assert read_pairs(path, root=folders) == PAIRS
    folded = [Pair(p.path_a, p.path_b, p.same, fold=i, twins=p.twins) for i, p in enumerate(PAIRS)]
    write_pairs(folded, path)
    assert path.read_text().splitlines()[0] == "path_a\tpath_b\tsame\tfold\ttwins"
    assert read_pairs(path) == folded


def test_minimal_header_reads(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("path_b\tpath_a\tsame\nb.jpg\ta.jpg\t1\n")
    assert read_pairs(path) == [Pair("a.jpg", "b.jpg", SAME)]


def test_missing_images_are_all_listed_with_line_numbers(tmp_path, folders):
    path = tmp_path / "p.tsv"
    write_pairs(PAIRS + [Pair("alice/alice_0009.jpg", "zed/zed_0001.jpg", DIFFERENT)], path)
    with pytest.raises(DataError) as info:
        read_pairs(path, root=folders)
    text = str(info.value)
    assert "2 missing images" in text
    assert f"{path}:4: image alice/alice_0009.jpg does not exist" in text
    assert f"{path}:4: image zed/zed_0001.jpg does not exist" in text


@pytest.mark.parametrize(
    "body, message",
    [
        ("a.jpg\tb.jpg\n", "expected 3 tab-separated fields"),
        ("a.jpg\tb.jpg\tyes\n", "same must be 0 or 1"),
        ("a.jpg\tb.jpg\t2\n", "same must be 0 or 1"),
    ],
)
def test_malformed_tsv_lines_are_reported(tmp_path, body, message):
    path = tmp_path / "p.tsv"
    path.write_text("path_a\tpath_b\tsame\nok.jpg\tok2.jpg\t1\n" + body)
    with pytest.raises(DataError, match=f"p.tsv:3: {message}"):
        read_pairs(path)


def test_bad_header_and_missing_file(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("a\tb\tlabel\n")
    with pytest.raises(DataError, match="p.tsv:1: bad header"):
        read_pairs(path)
    with pytest.raises(DataError, match="does not exist"):
        read_pairs(tmp_path / "none.tsv")


def test_lfw_format_by_extension(tmp_path):
    pairs = [Pair("A/A_0001.jpg", "A/A_0002.jpg", SAME), Pair("A/A_0001.jpg", "B/B_0001.jpg", DIFFERENT)]
    write_pairs(pairs, tmp_path / "pairs.txt")
    assert (tmp_path / "pairs.txt").read_text() == "1\nA\t1\t2\nA\t1\tB\t1\n"
    assert read_pairs(tmp_path / "pairs.txt") == pairs


@pytest.mark.parametrize("fold", ["-1", "+2", "1.5", "x", "\u00b2"])
def test_a_fold_that_is_no_whole_number_is_refused_with_its_line(tmp_path, fold):
    """Issue 30, defect H: ``-1`` passed validation (``int`` reads it) and then failed in evaluation with no
    file or line, since -1 also means "no fold" there."""
    path = tmp_path / "pairs.tsv"
    path.write_text(f"path_a\tpath_b\tsame\tfold\na/1.png\tb/1.png\t0\t0\na/1.png\ta/2.png\t1\t{fold}\n")
    with pytest.raises(DataError) as info:
        read_tsv_pairs(path)
    assert info.value.problems[0].line == 3 and "fold must be a whole number of 0 or more" in str(
        info.value.problems[0]
    )
