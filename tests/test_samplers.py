from collections import Counter

import pytest
import torch

from backbone.data.faces.samplers import BatchShard, FamilySampler, balanced_sampler


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


def test_family_batches_keep_twin_siblings_together_with_m_images_each():
    """Families (twin pairs, singletons) are never split across batches; each identity has m images
    of its own in its batch; the order is the generator's (same seed, same batches); an epoch is
    whole batches."""
    names = ["twin0a", "twin0b", "twin1a", "twin1b", "twin2a", "twin2b", "solo0", "solo1"]
    families = ["t0", "t0", "t1", "t1", "t2", "t2", "solo0", "solo1"]
    labels = [k for k in range(len(names)) for _ in range(3)]  # 3 images each
    sampler = FamilySampler(labels, families, m=2, batch_size=8, length=50, generator=torch.Generator().manual_seed(0))
    order = list(sampler)
    assert len(order) == len(sampler) == 48  # 50 rounded down to whole batches of 8
    for start in range(0, 48, 8):
        counts = Counter(labels[i] for i in order[start : start + 8])
        present = {families[label] for label in counts}
        assert all(counts[k] >= 2 for k, f in enumerate(families) if f in present)  # every member of a present family
        assert all(n % 2 == 0 for n in counts.values())  # m images a member (2m when a batch was topped up)
    again = list(FamilySampler(labels, families, 2, 8, 50, generator=torch.Generator().manual_seed(0)))
    assert again == order
    assert list(FamilySampler(labels, families, 2, 8, 50, generator=torch.Generator().manual_seed(1))) != order
    with pytest.raises(ValueError, match="multiple of m"):
        FamilySampler(labels, families, m=3, batch_size=8)
    with pytest.raises(ValueError, match="a family of 3 identities does not fit a batch of 2"):
        FamilySampler(labels, ["f", "f", "f", "g", "h", "i", "j", "k"], m=2, batch_size=4)


def test_family_batches_draw_distinct_images_when_an_identity_has_enough():
    labels = [0] * 5 + [1] * 5 + [2] * 1
    order = list(FamilySampler(labels, ["a", "a", "b"], m=3, batch_size=9, length=27,
                               generator=torch.Generator().manual_seed(0)))  # fmt: skip
    for start in range(0, 27, 9):
        batch = order[start : start + 9]
        for label in (0, 1):
            mine = [i for i in batch if labels[i] == label]
            assert len(mine) == len(set(mine)) == 3  # the twins fill two of the three slots of every batch
    assert order.count(10) == 9  # the one-image identity repeats its image m times a batch
