import pytest

from backbone.data.index import IdentityIndex, ImageRecord


def make_index():
    return IdentityIndex.from_records(
        "/data",
        [
            ImageRecord("b/2.jpg", "b", "g1"),
            ImageRecord("a/1.jpg", "a", "g1"),
            ImageRecord("b/1.jpg", "b", "g1"),
            ImageRecord("c/1.jpg", "c"),
        ],
    )


def test_records_are_sorted_and_grouped():
    index = make_index()
    assert [r.path for r in index.records] == ["a/1.jpg", "b/1.jpg", "b/2.jpg", "c/1.jpg"]
    assert index.by_identity == {"a": ["a/1.jpg"], "b": ["b/1.jpg", "b/2.jpg"], "c": ["c/1.jpg"]}
    assert index.groups == {"g1": ["a", "b"]}
    assert index.siblings("a") == ["b"] and index.siblings("c") == []
    assert index.identity_of["b/2.jpg"] == "b"
    assert str(index.absolute("a/1.jpg")) == "/data/a/1.jpg"


def test_subset_keeps_only_named_identities_and_rejects_unknown():
    index = make_index()
    sub = index.subset(["b", "c"])
    assert sub.identities == ["b", "c"] and len(sub) == 3
    with pytest.raises(KeyError, match="zed"):
        index.subset(["zed"])


def test_one_image_cannot_belong_to_two_identities():
    with pytest.raises(ValueError, match="two identities"):
        IdentityIndex.from_records("/d", [ImageRecord("x.jpg", "a"), ImageRecord("x.jpg", "b")])


def test_only_paths():
    index = make_index()
    assert [r.path for r in index.only_paths(["c/1.jpg", "a/1.jpg"]).records] == ["a/1.jpg", "c/1.jpg"]
    with pytest.raises(KeyError, match="1 images not in the index"):
        index.only_paths(["a/1.jpg", "zz.jpg"])
