import pytest

import backbone
from backbone.data.lists.pairs import Pair
from backbone.labels import DIFFERENT, SAME


def test_same_means_one_everywhere():
    assert SAME == 1 and DIFFERENT == 0
    assert backbone.SAME is SAME


def test_pair_rejects_labels_outside_the_convention():
    with pytest.raises(ValueError, match="SAME=1"):
        Pair("a.jpg", "b.jpg", same=2)
    with pytest.raises(ValueError, match="twins pair"):
        Pair("a.jpg", "b.jpg", same=SAME, twins=True)
