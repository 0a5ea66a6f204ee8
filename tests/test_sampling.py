import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.folders import read_identity_folders
from backbone.data.layouts.ndtwin import read_twin_folders
from backbone.data.lists.pairs import write_pairs
from backbone.data.lists.sampling import generate_pairs, generate_triplets
from backbone.data.lists.triplets import write_triplets
from backbone.labels import DIFFERENT, SAME


@pytest.fixture(scope="module")
def index(tiny_synth):
    return read_twin_folders(tiny_synth)


def test_same_seed_gives_a_byte_identical_file(index, tmp_path):
    for name in ("a", "b"):
        write_pairs(generate_pairs(index, 60, seed=5), tmp_path / f"{name}.tsv")
        write_triplets(generate_triplets(index, 40, seed=5), tmp_path / f"{name}_t.tsv")
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (tmp_path / "a_t.tsv").read_bytes() == (tmp_path / "b_t.tsv").read_bytes()
    assert generate_pairs(index, 60, seed=6) != generate_pairs(index, 60, seed=5)


@pytest.mark.parametrize("twin_share", [0.0, 0.7, 1.0])
def test_balanced_labels_exact_twin_share_and_correct_twin_flags(index, twin_share):
    pairs = generate_pairs(index, 80, seed=1, twin_share=twin_share)
    same = [p for p in pairs if p.same == SAME]
    different = [p for p in pairs if p.same == DIFFERENT]
    assert len(same) == len(different) == 40
    assert sum(p.twins for p in different) == round(40 * twin_share)
    who = index.identity_of
    for p in same:
        assert who[p.path_a] == who[p.path_b] and p.path_a != p.path_b
    for p in different:
        a, b = who[p.path_a], who[p.path_b]
        assert a != b
        assert p.twins == (b in index.siblings(a))
    assert len({frozenset((p.path_a, p.path_b)) for p in pairs}) == len(pairs)


def test_without_groups_there_are_no_twin_negatives(folders):
    pairs = generate_pairs(read_identity_folders(folders), 4, seed=0, twin_share=0.7)
    assert sum(p.same == SAME for p in pairs) == 2 and not any(p.twins for p in pairs)


def test_folds_are_identity_disjoint_and_balanced(index):
    pairs = generate_pairs(index, 40, seed=2, folds=2)
    people = {}
    for p in pairs:
        people.setdefault(p.fold, set()).update({index.identity_of[p.path_a], index.identity_of[p.path_b]})
    assert sorted(people) == [0, 1] and not people[0] & people[1]
    for fold in (0, 1):
        labels = [p.same for p in pairs if p.fold == fold]
        assert labels == [SAME] * 10 + [DIFFERENT] * 10  # LFW order: matched first


def test_impossible_requests_fail_clearly(index, folders):
    with pytest.raises(ValueError, match="multiple of 2"):
        generate_pairs(index, 7)
    with pytest.raises(DataError, match="distinct matched pairs"):
        generate_pairs(read_identity_folders(folders), 40)
    with pytest.raises(ValueError, match="twin_share"):
        generate_pairs(index, 10, twin_share=1.5)


def test_triplets(index):
    triplets = generate_triplets(index, 50, seed=3, twin_share=0.6)
    who = index.identity_of
    assert sum(t.twins for t in triplets) == 30
    for t in triplets:
        assert who[t.anchor] == who[t.positive] != who[t.negative] and t.anchor != t.positive
        assert t.twins == (who[t.negative] in index.siblings(who[t.anchor]))
    assert len(set(triplets)) == 50


def test_pair_capacity(folders, index):
    from backbone.data.lists.sampling import pair_capacity

    assert pair_capacity(read_identity_folders(folders)) == {"same": 3 + 1 + 0, "twin": 0}
    assert pair_capacity(index) == {"same": 12 * 6, "twin": 4 * 4 * 4}


def test_all_pairs_holds_every_matched_pair_and_as_many_mismatched(tmp_path):
    """A small folder set built here (3, 2 and 1 images): the matched pairs are exactly the 3 + 1
    pairs within an identity, the 4 mismatched pairs join two identities, none twice; the same seed
    gives the same list, another seed another one."""
    from backbone.data.lists.sampling import all_pairs

    from conftest import write_image

    for name, n in (("ann", 3), ("bob", 2), ("cid", 1)):
        for k in range(n):
            write_image(tmp_path / "set" / name / f"{k}.png", seed=k)
    index = read_identity_folders(tmp_path / "set")
    pairs = all_pairs(index, seed=0)
    same = [(p.path_a, p.path_b) for p in pairs if p.same == SAME]
    assert same == [("ann/0.png", "ann/1.png"), ("ann/0.png", "ann/2.png"), ("ann/1.png", "ann/2.png"),
                    ("bob/0.png", "bob/1.png")]  # fmt: skip
    different = [p for p in pairs if p.same == DIFFERENT]
    assert len(different) == 4 and len({frozenset((p.path_a, p.path_b)) for p in different}) == 4
    assert all(index.identity_of[p.path_a] != index.identity_of[p.path_b] for p in different)
    assert all_pairs(index, seed=0) == pairs and all_pairs(index, seed=1) != pairs
    with pytest.raises(DataError, match="no identity has two images"):
        all_pairs(index.subset(["cid"]))
    with pytest.raises(DataError, match="one identity only"):
        all_pairs(index.subset(["ann"]))


def test_all_pairs_marks_twin_siblings(index):
    from backbone.data.lists.sampling import all_pairs

    pairs = all_pairs(index, seed=0)
    twins = [p for p in pairs if p.twins]
    assert twins and all(p.same == DIFFERENT for p in twins)
    for p in pairs:
        a, b = index.identity_of[p.path_a], index.identity_of[p.path_b]
        assert p.twins == (a != b and index.group_of[a] is not None and index.group_of[a] == index.group_of[b])
