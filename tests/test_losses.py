"""Every loss against a hand computation on a tiny batch, and the label convention."""

import math

import pytest
import torch
import torch.nn.functional as F

from backbone.labels import DIFFERENT, SAME
from backbone.losses import ArcFaceLoss, ContrastiveLoss, CosFaceLoss, DistillationLoss, PairBCELoss, TripletLoss

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
E3 = torch.tensor([0.6, 0.8])


def test_contrastive_by_hand():
    a = torch.stack([E1, E2, E1])
    b = torch.stack([E1, E1, E3])
    same = torch.tensor([SAME, DIFFERENT, DIFFERENT])
    # d = 0, sqrt(2), |(0.4, -0.8)|; loss = mean_same(d) + mean_different(max(0, 1 - d))
    d3 = math.hypot(0.4, 0.8)
    expected = 0.0 + (max(0, 1 - math.sqrt(2)) + (1 - d3)) / 2
    assert ContrastiveLoss(margin=1.0)(a, b, same).item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_follows_same_equals_one():
    """Same pairs closer or different pairs farther: the loss falls. The opposite: it rises."""
    loss = ContrastiveLoss(margin=1.0)
    anchor = torch.stack([E1, E1])
    near, far = torch.stack([E3, E3]), torch.stack([E2, E2])
    same, different = torch.tensor([SAME, SAME]), torch.tensor([DIFFERENT, DIFFERENT])
    assert loss(anchor, near, same) < loss(anchor, far, same)  # same pairs: closer is better
    assert loss(anchor, far, different) < loss(anchor, near, different)  # different pairs: farther is better
    with pytest.raises(ValueError, match="SAME=1 or DIFFERENT=0"):
        loss(anchor, near, torch.tensor([1, 2]))


def _d(x, y):
    return (F.normalize(x, dim=0) - F.normalize(y, dim=0)).norm().item()


def test_triplet_on_explicit_triplets_by_hand():
    a, p, n = torch.stack([E1, E1]), torch.stack([E3, E1]), torch.stack([E2, E3])
    expected = (max(0, _d(E1, E3) - _d(E1, E2) + 0.2) + max(0, 0 - _d(E1, E3) + 0.2)) / 2
    assert TripletLoss(0.2, "batch-hard").forward_triplets(a, p, n).item() == pytest.approx(expected, abs=1e-6)


BATCH = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
LABELS = torch.tensor([0, 0, 1, 1])


def _all_triplets(margin):
    out = []
    for i in range(4):
        for j in range(4):
            for k in range(4):
                if i != j and LABELS[i] == LABELS[j] and LABELS[k] != LABELS[i]:
                    out.append((i, j, k, _d(BATCH[i], BATCH[j]) - _d(BATCH[i], BATCH[k]) + margin))
    return out


def test_batch_hard_by_hand():
    m = 0.2
    per_anchor = []
    for i in range(4):
        hardest_pos = max(_d(BATCH[i], BATCH[j]) for j in range(4) if j != i and LABELS[j] == LABELS[i])
        hardest_neg = min(_d(BATCH[i], BATCH[k]) for k in range(4) if LABELS[k] != LABELS[i])
        per_anchor.append(max(0.0, hardest_pos - hardest_neg + m))
    expected = sum(per_anchor) / 4
    assert TripletLoss(m, "batch-hard")(BATCH, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_batch_all_by_hand():
    m = 0.5
    values = [max(0.0, v) for *_, v in _all_triplets(m)]
    nonzero = [v for v in values if v > 0]
    assert TripletLoss(m, "batch-all")(BATCH, LABELS).item() == pytest.approx(sum(nonzero) / len(nonzero), abs=1e-5)


def test_semi_hard_by_hand():
    m = 0.5
    # semi-hard: d(a, p) < d(a, n) < d(a, p) + margin, i.e. 0 < loss < margin
    chosen = [v for *_, v in _all_triplets(m) if 0 < v < m]
    assert chosen, "the hand-made batch must contain semi-hard triplets"
    assert TripletLoss(m, "semi-hard")(BATCH, LABELS).item() == pytest.approx(sum(chosen) / len(chosen), abs=1e-5)


def test_bce_by_hand():
    logit = torch.tensor([2.0, -1.0])
    same = torch.tensor([SAME, DIFFERENT])
    expected = -(math.log(1 / (1 + math.exp(-2.0))) + math.log(1 - 1 / (1 + math.exp(1.0)))) / 2
    assert PairBCELoss()(logit, same).item() == pytest.approx(expected, abs=1e-6)


def test_arcface_by_hand():
    torch.manual_seed(0)
    loss = ArcFaceLoss(num_classes=3, embedding_dim=2, margin=0.5, scale=8.0)
    emb = torch.tensor([[1.0, 0.2], [-0.3, 1.0]])
    labels = torch.tensor([0, 2])
    w = F.normalize(loss.loss.W.detach(), dim=0)  # (embedding_dim, classes)
    cos = F.normalize(emb, dim=1) @ w
    expected = 0.0
    for i, y in enumerate(labels.tolist()):
        logits = cos[i].clone()
        theta = math.acos(logits[y].clamp(-1, 1).item())
        logits[y] = math.cos(theta + 0.5)
        expected += F.cross_entropy(8.0 * logits[None], torch.tensor([y])).item()
    assert loss(emb, labels).item() == pytest.approx(expected / 2, rel=1e-4)
    assert loss.margin == 0.5 and abs(loss.loss.margin - 0.5) < 1e-9  # PML stores radians internally


def test_cosface_by_hand():
    torch.manual_seed(0)
    loss = CosFaceLoss(num_classes=3, embedding_dim=2, margin=0.35, scale=8.0)
    emb = torch.tensor([[1.0, 0.2], [-0.3, 1.0]])
    labels = torch.tensor([0, 2])
    cos = F.normalize(emb, dim=1) @ F.normalize(loss.loss.W.detach(), dim=0)
    expected = 0.0
    for i, y in enumerate(labels.tolist()):
        logits = cos[i].clone()
        logits[y] -= 0.35
        expected += F.cross_entropy(8.0 * logits[None], torch.tensor([y])).item()
    assert loss(emb, labels).item() == pytest.approx(expected / 2, rel=1e-4)


def test_distillation_losses_by_hand():
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    teacher = torch.tensor([[4.0, 3.0], [1.0, 0.0], [0.0, -1.0]])
    # cosines 24/25, 1, -1 -> mean of 1 - cos = (1/25 + 0 + 2) / 3
    assert DistillationLoss("cosine")(student, teacher).item() == pytest.approx((1 / 25 + 2) / 3)
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    gs, gt = s @ s.T, t @ t.T
    off = [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    expected = sum((gs[i, j] - gt[i, j]).item() ** 2 for i, j in off) / 6
    assert DistillationLoss("relational")(student, teacher).item() == pytest.approx(expected)
    wider = torch.randn(3, 5)
    assert DistillationLoss("relational")(wider, teacher).item() >= 0  # any student size
    with pytest.raises(ValueError, match="embedding size"):
        DistillationLoss("cosine")(wider, teacher)
    assert DistillationLoss("relational")(teacher * 7, teacher).item() == pytest.approx(0, abs=1e-7)
    with pytest.raises(ValueError, match="unknown distillation"):
        DistillationLoss("kl")


def test_unknown_mining():
    with pytest.raises(ValueError, match="unknown mining"):
        TripletLoss(mining="easy")
