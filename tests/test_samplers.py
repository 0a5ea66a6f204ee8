from collections import Counter

import pytest

from backbone.data.faces.samplers import BatchShard, balanced_sampler


def test_each_batch_has_m_images_of_each_identity():
    labels = [i // 5 for i in range(40)]  # 8 identities x 5 images
    indices = list(balanced_sampler(labels, m=2, batch_size=8))
    assert len(indices) == 40
    for start in range(0, 40, 8):
        counts = Counter(labels[i] for i in indices[start : start + 8])
        assert sorted(counts.values()) == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="multiple of m"):
        balanced_sampler(labels, m=3, batch_size=8)


def test_batch_shards_keep_whole_batches_disjoint_and_equal():
    """Two processes' shards of a balanced sampler: whole batches (still m images of each identity),
    alternating between the processes, no position in both, as many batches each."""
    labels = [i // 6 for i in range(60)]  # 10 identities x 6 images
    sampler = balanced_sampler(labels, m=2, batch_size=8, length=60)
    order = list(sampler)  # the sampler is deterministic only within one iteration: shard that
    shards = [list(BatchShard(order, 8, rank, 2)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(BatchShard(order, 8, 0, 2)) == 24  # 7 batches: 3 rounds of 2
    assert (
        shards[0] == order[0:8] + order[16:24] + order[32:40] and shards[1] == order[8:16] + order[24:32] + order[40:48]
    )
    for shard in shards:
        for b in range(0, len(shard), 8):
            assert all(n == 2 for n in Counter(labels[i] for i in shard[b : b + 8]).values())
    with pytest.raises(ValueError, match="rank 2"):
        BatchShard(order, 8, 2, 2)
