"""Losses for the four training regimes, on pytorch-metric-learning (PML) where it fits.

Pair inputs use the project's one label convention: ``same == SAME (1)`` for the same person.
PML's margins and reducers are set explicitly (their defaults changed across versions).
Embeddings are L2-normalised inside every metric loss.

* :class:`ContrastiveLoss` on pairs: ``mean_same(d) + mean_different(max(0, margin - d))``,
  ``d`` the euclidean distance of normalised embeddings.
* :class:`TripletLoss` with online mining over a labelled batch (batch-hard, semi-hard or
  batch-all), or on explicit triplets: ``max(0, d(a, p) - d(a, n) + margin)``.
* :class:`PairBCELoss` for the pair-classification head.
* :class:`ArcFaceLoss`: identity classification with an additive angular margin.
* :class:`CosFaceLoss`: identity classification with an additive cosine margin.
* :class:`DistillationLoss`: a student's embeddings against a teacher's (cosine, or relational).
* :func:`branch_loss` combines a loss over the local-global network's fused, global and local
  embeddings with the attention-entropy regulariser, and for the mark-map network with
  :func:`mark_loss` (its mark map against the images' mark masks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.reducers import AvgNonZeroReducer, MeanReducer
from torch import nn

from backbone.labels import DIFFERENT, SAME
from backbone.models.attention import attention_entropy
from backbone.models.local_global import LocalGlobalOutput
from backbone.settings import AT_LEAST_0, Range

MINING = ("batch-hard", "semi-hard", "batch-all")


def given(**settings: object) -> dict[str, object]:
    """The settings that are set: a config's ``None`` leaves the loss its own default (each loss
    states its defaults once, in its constructor)."""
    return {k: v for k, v in settings.items() if v is not None}


def _distance() -> LpDistance:
    return LpDistance(normalize_embeddings=True, p=2, power=1)


def _pair_indices(same: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """PML's (a1, p, a2, n) for pairs stacked as [emb_a; emb_b]: row i pairs with row i + B."""
    same = same.flatten().long()
    bad = ~((same == SAME) | (same == DIFFERENT))
    if bad.any():
        raise ValueError(f"pair labels must be SAME={SAME} or DIFFERENT={DIFFERENT}, got {same[bad][:5].tolist()}")
    idx = torch.arange(len(same), device=same.device)
    pos, neg = idx[same == SAME], idx[same == DIFFERENT]
    return pos, pos + len(same), neg, neg + len(same)


class ContrastiveLoss(nn.Module):
    """Contrastive loss on pairs: pulls SAME pairs together, pushes others beyond ``margin``."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin
        self.loss = pml_losses.ContrastiveLoss(
            pos_margin=0.0, neg_margin=margin, distance=_distance(), reducer=MeanReducer()
        )

    def forward(self, emb_a: torch.Tensor, emb_b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        return self.loss(torch.cat([emb_a, emb_b]), indices_tuple=_pair_indices(same))


class TripletLoss(nn.Module):
    """Triplet margin loss with online mining (``forward``) or on given triplets (``forward_triplets``).

    ``batch-hard``: for each anchor the farthest positive and nearest negative (mean over anchors);
    ``semi-hard``: negatives farther than the positive but within the margin (mean);
    ``batch-all``: every valid triplet, averaged over those with a non-zero loss.
    Mining needs several images per identity in a batch: use :func:`balanced_sampler`.
    """

    def __init__(self, margin: float = 0.2, mining: str = "batch-hard"):
        super().__init__()
        if mining not in MINING:
            raise ValueError(f"unknown mining {mining!r}; choose from {MINING}")
        self.margin, self.mining = margin, mining
        reducer = AvgNonZeroReducer() if mining == "batch-all" else MeanReducer()
        self.loss = pml_losses.TripletMarginLoss(
            margin=margin,
            swap=False,
            smooth_loss=False,
            triplets_per_anchor="all",
            distance=_distance(),
            reducer=reducer,
        )
        self.miner = {
            "batch-hard": pml_miners.BatchHardMiner(distance=_distance()),
            "semi-hard": pml_miners.TripletMarginMiner(
                margin=margin, type_of_triplets="semihard", distance=_distance()
            ),
            "batch-all": None,
        }[mining]

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        triplets = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, indices_tuple=triplets)

    def forward_triplets(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        b = len(anchor)
        idx = torch.arange(b, device=anchor.device)
        return self.loss(torch.cat([anchor, positive, negative]), indices_tuple=(idx, idx + b, idx + 2 * b))


class PairBCELoss(nn.Module):
    """Binary cross-entropy of the pair head's logit against ``same`` (1 = same person)."""

    def forward(self, logit: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logit, same.to(logit.dtype))


class ArcFaceLoss(nn.Module):
    """ArcFace (Deng et al., 2019): softmax over identities with an additive angular margin.

    ``margin`` is in radians (PML takes degrees); ``scale`` is the logit scale ``s``. The class
    centres are parameters of this module: give them to the optimiser too.
    """

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.5, scale: float = 30.0):
        super().__init__()
        self.margin, self.scale = margin, scale
        self.loss = pml_losses.ArcFaceLoss(num_classes, embedding_dim, margin=math.degrees(margin), scale=scale)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels)


class CosFaceLoss(nn.Module):
    """CosFace (Wang et al., 2018): softmax over identities, ``scale * (cos θ_y - margin)`` for the
    true class. The class centres are parameters of this module: give them to the optimiser too.
    """

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 30.0):
        super().__init__()
        self.margin, self.scale = margin, scale
        self.loss = pml_losses.CosFaceLoss(num_classes, embedding_dim, margin=margin, scale=scale)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels)


MARGIN_LOSSES: dict[str, type[nn.Module]] = {"arcface": ArcFaceLoss, "cosface": CosFaceLoss}
DISTILLATION = ("cosine", "relational")


class DistillationLoss(nn.Module):
    """How far a student's embeddings ``(B, D_s)`` are from a teacher's ``(B, D_t)`` of the same images.

    ``cosine``: ``mean(1 - cos(student_i, teacher_i))`` (needs ``D_s == D_t``);
    ``relational``: the mean squared difference of the two batches' cosine-similarity matrices
    (off the diagonal): the student reproduces how alike the teacher finds every two faces, in
    any embedding size (similarity-preserving distillation, Tung & Mori, 2019).
    """

    def __init__(self, kind: str = "cosine"):
        super().__init__()
        if kind not in DISTILLATION:
            raise ValueError(f"unknown distillation loss {kind!r}; choose from {DISTILLATION}")
        self.kind = kind

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        s, t = F.normalize(student, dim=1), F.normalize(teacher.to(student.dtype), dim=1)
        if self.kind == "cosine":
            if s.shape != t.shape:
                raise ValueError(f"cosine distillation needs the teacher's embedding size: student {tuple(s.shape)}, "
                                 f"teacher {tuple(t.shape)} (set model.embedding_dim, or use relational)")  # fmt: skip
            return (1 - (s * t).sum(dim=1)).mean()
        off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
        return ((s @ s.T - t @ t.T)[off] ** 2).mean()


@dataclass
class BranchWeights:
    """How the local-global network's losses add up (defaults from twin-verification work); the
    training config holds one as ``loss.branch``."""

    fused: float = 1.0
    global_branch: float = 0.6
    local_branch: float = 0.4
    attention: float = 0.01  # entropy regulariser: favours focused attention maps
    marks: float = 0.0  # the mark-map network: mark_loss against the training images' mark masks

    RANGES: ClassVar[dict[str, Range]] = dict.fromkeys(
        ("fused", "global_branch", "local_branch", "attention", "marks"), AT_LEAST_0
    )


MARK_POS_WEIGHT = 20.0  # marks cover a few cells in a hundred: a missed mark costs 20 false alarms


def mark_loss(logits: torch.Tensor, masks: torch.Tensor, pos_weight: float = MARK_POS_WEIGHT) -> torch.Tensor:
    """Binary cross-entropy of the mark map against the masks, per cell.

    Args:
        logits: ``(B, 1, h, w)`` the mark-map network's mark logits.
        masks: ``(B, H, W)`` the images' mark coverage, ``uint8`` as ``marks.npz`` stores it (255:
            covered); a cell's target is 1 where one of its pixels is more than half covered.
        pos_weight: the weight of a mark cell against a cell without one.
    """
    covered = (masks > 127).float().unsqueeze(1)
    target = F.adaptive_max_pool2d(covered, logits.shape[-2:])
    weight = torch.tensor(pos_weight, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=weight)


def attention_regulariser(outputs: Sequence[LocalGlobalOutput]) -> torch.Tensor:
    """Mean normalised entropy of the outputs' attention maps (0: one spot, 1: uniform)."""
    return torch.stack([attention_entropy(o.attention) for o in outputs]).mean()


def branch_loss(
    loss_fn: Callable[..., torch.Tensor] | Mapping[str, Callable[..., torch.Tensor]],
    outputs: Sequence[LocalGlobalOutput],
    *targets: torch.Tensor,
    weights: BranchWeights | None = None,
    masks: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """``fused * L(fused) + global_branch * L(global) + local_branch * L(local) + attention * entropy``,
    ``+ marks * mark_loss`` of each output's mark logits against its ``masks`` (mark-map network).

    ``loss_fn(*embeddings, *targets)`` takes one embedding batch per output (two for pairs, one
    for a mined batch), e.g. ``branch_loss(contrastive, [out_a, out_b], same)``. A mapping from
    ``"embedding"``, ``"global_embedding"``, ``"local_embedding"`` to losses gives each its own
    (ArcFace needs class centres per embedding space).
    """
    w = weights or BranchWeights()
    total = torch.zeros((), device=outputs[0].embedding.device)
    for attr, weight in (
        ("embedding", w.fused),
        ("global_embedding", w.global_branch),
        ("local_embedding", w.local_branch),
    ):
        if weight:
            fn = loss_fn[attr] if isinstance(loss_fn, Mapping) else loss_fn
            total = total + weight * fn(*[getattr(o, attr) for o in outputs], *targets)
    if w.attention:
        total = total + w.attention * attention_regulariser(outputs)
    if w.marks:
        if masks is None or any(o.mark_logits is None for o in outputs):
            raise ValueError("loss.branch.marks needs the mark-map network (model.attention: marks) and mark masks")
        total = total + w.marks * torch.stack([mark_loss(o.mark_logits, m) for o, m in zip(outputs, masks)]).mean()
    return total
