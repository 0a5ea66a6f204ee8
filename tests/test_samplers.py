from collections import Counter

import pytest

from backbone.data.faces.samplers import balanced_sampler


def test_each_batch_has_m_images_of_each_identity():
    labels = [i // 5 for i in range(40)]  # 8 identities x 5 images
    indices = list(balanced_sampler(labels, m=2, batch_size=8))
    assert len(indices) == 40
    for start in range(0, 40, 8):
        counts = Counter(labels[i] for i in indices[start : start + 8])
        assert sorted(counts.values()) == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="multiple of m"):
        balanced_sampler(labels, m=3, batch_size=8)
