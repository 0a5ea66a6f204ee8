import pytest

from backbone.data.errors import DataError
from backbone.data.lists.triplets import Triplet, read_triplets, write_triplets


def test_round_trip_and_missing_images(tmp_path, folders):
    triplets = [Triplet("alice/alice_0001.jpg", "alice/alice_0002.jpg", "bob/bob_0001.jpg", twins=True)]
    path = tmp_path / "t.tsv"
    write_triplets(triplets, path)
    assert read_triplets(path, root=folders) == triplets
    write_triplets(triplets + [Triplet("alice/alice_0001.jpg", "alice/alice_0009.jpg", "bob/bob_0001.jpg")], path)
    with pytest.raises(DataError, match=r"t.tsv:3: image alice/alice_0009.jpg does not exist"):
        read_triplets(path, root=folders)


def test_malformed_lines(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("anchor\tpositive\tnegative\ttwins\na\tb\tc\t1\na\tb\n")
    with pytest.raises(DataError, match=r"t.tsv:3: expected 'anchor positive negative"):
        read_triplets(path)
    path.write_text("a\tb\tc\n")
    with pytest.raises(DataError, match=r"t.tsv:1: expected the header"):
        read_triplets(path)
