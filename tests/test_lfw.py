import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.lfw import (
    format_lfw_pairs,
    lfw_image_path,
    parse_lfw_image_path,
    read_lfw_index,
    read_lfw_pairs,
    read_lfw_people,
)
from backbone.data.lists.pairs import Pair, read_pairs
from backbone.labels import DIFFERENT, SAME

VIEW1 = "2\nAnn\t1\t2\nBob\t1\t3\nAnn\t1\tBob\t2\nBob\t3\tCid\t1\n"
VIEW2 = "2 1\nAnn 1 2\nAnn 1 Bob 2\nCid 1 2\nCid 2 Dan 1\n"


def test_image_names_round_trip():
    assert lfw_image_path("George_W_Bush", 10) == "George_W_Bush/George_W_Bush_0010.jpg"
    assert parse_lfw_image_path("A_B/A_B_0123.png") == ("A_B", 123)
    with pytest.raises(ValueError):
        parse_lfw_image_path("A/B_0001.jpg")


def test_view1_pairs(tmp_path):
    path = tmp_path / "pairsDevTest.txt"
    path.write_text(VIEW1)
    pairs = read_lfw_pairs(path)
    assert [p.same for p in pairs] == [SAME, SAME, DIFFERENT, DIFFERENT]
    assert pairs[0] == Pair("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", SAME)
    assert pairs[3] == Pair("Bob/Bob_0003.jpg", "Cid/Cid_0001.jpg", DIFFERENT)
    assert [p.line for p in pairs] == [2, 3, 4, 5]
    assert all(p.fold is None for p in pairs)
    assert format_lfw_pairs(pairs) == VIEW1


def test_view2_pairs_keep_their_fold(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(VIEW2)
    pairs = read_lfw_pairs(path, ext=".png")
    assert [(p.fold, p.same) for p in pairs] == [(0, SAME), (0, DIFFERENT), (1, SAME), (1, DIFFERENT)]
    assert pairs[2].path_a == "Cid/Cid_0001.png"
    assert format_lfw_pairs(pairs) == VIEW2.replace(" ", "\t")


@pytest.mark.parametrize(
    "text, message",
    [
        ("2\nAnn\t1\t2\nBob\t1\t3\nAnn\t1\tBob\nBob\t3\tCid\t1\n", r"pairs.txt:4: expected a mismatched"),
        ("2\nAnn\t1\t2\nAnn\t1\tBob\t2\nAnn\t1\tBob\t2\nBob\t3\tCid\t1\n", r"pairs.txt:3: expected a matched"),
        ("2\nAnn\t1\tx\nBob\t1\t3\nAnn\t1\tBob\t2\nBob\t3\tCid\t1\n", r"pairs.txt:2: expected a matched"),
        ("2\nAnn\t1\t0\nBob\t1\t3\nAnn\t1\tBob\t2\nBob\t3\tCid\t1\n", r"pairs.txt:2: expected a matched"),
        ("3\nAnn\t1\t2\nBob\t1\t3\nAnn\t1\tBob\t2\nBob\t3\tCid\t1\n", r"promises 6 pair lines, the file has 4"),
        ("two\nAnn\t1\t2\n", r"pairs.txt:1: expected a header"),
    ],
)
def test_malformed_pair_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_lfw_pairs(path)


def test_writer_refuses_what_the_format_cannot_hold():
    with pytest.raises(ValueError, match="same number of matched and mismatched"):
        format_lfw_pairs([Pair("A/A_0001.jpg", "A/A_0002.jpg", SAME)])
    with pytest.raises(ValueError, match="not named like LFW"):
        format_lfw_pairs([Pair("a.jpg", "b.jpg", SAME), Pair("a.jpg", "c.jpg", DIFFERENT)])


def test_people_files_one_set_and_ten(tmp_path):
    dev = tmp_path / "peopleDevTest.txt"
    dev.write_text("2\nAnn\t3\nBob\t1\n")
    assert read_lfw_people(dev) == [{"Ann": 3, "Bob": 1}]
    view2 = tmp_path / "people.txt"
    view2.write_text("2\n1\nAnn\t3\n2\nBob\t1\nCid\t4\n")
    assert read_lfw_people(view2) == [{"Ann": 3}, {"Bob": 1, "Cid": 4}]
    view2.write_text("2\n1\nAnn\t3\n3\nBob\t1\nCid\t4\n")
    with pytest.raises(DataError, match="promises 3 people, found 2"):
        read_lfw_people(view2)
    view2.write_text("2\n1\nAnn\tthree\n1\nBob\t1\n")
    with pytest.raises(DataError, match=r"people.txt:3: expected 'name image_count'"):
        read_lfw_people(view2)


def test_real_lfw_view1(lfw_root):
    index = read_lfw_index(lfw_root)
    assert len(index) == 13233 and len(index.by_identity) == 5749
    train = read_pairs(lfw_root / "pairsDevTrain.txt", root=index.root)
    test = read_pairs(lfw_root / "pairsDevTest.txt", root=index.root)
    assert (len(train), len(test)) == (2200, 1000)
    assert sum(p.same == SAME for p in train) == 1100 and sum(p.same == SAME for p in test) == 500
    for p in train + test:  # the label agrees with the people in the pair
        assert (index.identity_of[p.path_a] == index.identity_of[p.path_b]) == (p.same == SAME)


def test_real_lfw_people_sets_are_identity_disjoint(lfw_root):
    sets = read_lfw_people(lfw_root / "people.txt")
    assert len(sets) == 10
    names = [n for s in sets for n in s]
    assert len(names) == len(set(names)) == 5749
    index = read_lfw_index(lfw_root)
    assert all(len(index.by_identity[n]) == c for s in sets for n, c in s.items())
    (dev_train,), (dev_test,) = (
        read_lfw_people(lfw_root / "peopleDevTrain.txt"),
        read_lfw_people(lfw_root / "peopleDevTest.txt"),
    )
    assert (len(dev_train), len(dev_test)) == (4038, 1711) and not set(dev_train) & set(dev_test)
