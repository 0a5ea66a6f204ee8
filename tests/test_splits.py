import pytest

from backbone.data.errors import DataError
from backbone.data.layouts.ndtwin import read_twin_folders
from backbone.data.lists.splits import split_identities


def test_splits_are_disjoint_deterministic_and_keep_twins_together(tiny_synth):
    index = read_twin_folders(tiny_synth)
    fractions = {"train": 0.5, "val": 0.25, "test": 0.25}
    parts = split_identities(index, fractions, seed=3)
    ids = {k: set(v.identities) for k, v in parts.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert set().union(*ids.values()) == set(index.identities)
    for part in parts.values():
        for identity in part.identities:
            assert set(index.siblings(identity)) <= set(part.identities)
    again = split_identities(index, fractions, seed=3)
    assert {k: v.identities for k, v in again.items()} == {k: v.identities for k, v in parts.items()}
    other = split_identities(index, fractions, seed=4)
    assert {k: v.identities for k, v in other.items()} != {k: v.identities for k, v in parts.items()}


def test_bad_fractions(tiny_synth):
    index = read_twin_folders(tiny_synth)
    with pytest.raises(ValueError, match="sum to 1"):
        split_identities(index, {"train": 0.5, "test": 0.2})
    with pytest.raises(DataError, match="gets no identities"):
        split_identities(index, {"train": 0.99, "test": 0.01})
