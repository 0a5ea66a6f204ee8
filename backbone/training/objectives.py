"""What one training batch means in each regime: modules whose ``forward(*batch)`` is the loss.

Wrapping model and loss in one module lets the device engine (Lightning Fabric) see a single
forward, so multi-GPU gradient synchronisation and mixed precision cover everything.
For the local-global network the loss is :func:`backbone.losses.branch_loss` over its fused,
global and local embeddings plus the attention regulariser.
"""

from __future__ import annotations

import torch
from torch import nn

from backbone.losses import (
    ArcFaceLoss,
    BranchWeights,
    ContrastiveLoss,
    PairBCELoss,
    TripletLoss,
    attention_regulariser,
    branch_loss,
)
from backbone.models.local_global import LocalGlobalNet
from backbone.models.siamese import SiameseNet
from backbone.training.config import LossConfig


def branch_weights(cfg: LossConfig) -> BranchWeights:
    return BranchWeights(cfg.weight_fused, cfg.weight_global, cfg.weight_local, cfg.weight_attention)


class Objective(nn.Module):
    """Base: holds the model; ``local_global`` says whether branch losses apply."""

    def __init__(self, model: SiameseNet, cfg: LossConfig):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.local_global = isinstance(model.net, LocalGlobalNet)
        self.weights = branch_weights(cfg)


class ContrastiveObjective(Objective):
    """Batches of ``(image_a, image_b, same)``."""

    def __init__(self, model: SiameseNet, cfg: LossConfig):
        super().__init__(model, cfg)
        self.loss = ContrastiveLoss(cfg.margin if cfg.margin is not None else 1.0)

    def forward(self, a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if self.local_global:
            return branch_loss(self.loss, [self.model.net.forward_all(a), self.model.net.forward_all(b)], same, weights=self.weights)
        return self.loss(self.model.net(a), self.model.net(b), same)


class PairBCEObjective(Objective):
    """Batches of ``(image_a, image_b, same)`` through the pair-classification head.

    With the local-global network the head sees the fused embedding; the attention regulariser
    is added, the branch weights are not used (the head has no branch-sized input)."""

    def __init__(self, model: SiameseNet, cfg: LossConfig):
        super().__init__(model, cfg)
        if model.pair_head is None:
            raise ValueError("the pair-bce regime needs a model with pair_head=True")
        self.loss = PairBCELoss()

    def forward(self, a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if not self.local_global:
            return self.loss(self.model(a, b).logit, same)
        outs = [self.model.net.forward_all(a), self.model.net.forward_all(b)]
        ea, eb = (nn.functional.normalize(o.embedding, dim=1) for o in outs)
        return self.loss(self.model.pair_head(ea, eb), same) + self.weights.attention * attention_regulariser(outs)


class TripletObjective(Objective):
    """Mined batches ``(images, identity_labels)``, or explicit ``(anchor, positive, negative)``."""

    def __init__(self, model: SiameseNet, cfg: LossConfig):
        super().__init__(model, cfg)
        self.loss = TripletLoss(cfg.margin if cfg.margin is not None else 0.2, cfg.mining)

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        net = self.model.net
        if len(batch) == 2:  # mined
            x, labels = batch
            if self.local_global:
                return branch_loss(self.loss, [net.forward_all(x)], labels, weights=self.weights)
            return self.loss(net(x), labels)
        if self.local_global:
            return branch_loss(self.loss.forward_triplets, [net.forward_all(x) for x in batch], weights=self.weights)
        return self.loss.forward_triplets(*(net(x) for x in batch))


class ArcFaceObjective(Objective):
    """Batches of ``(images, identity_labels)``; class centres per embedding space."""

    def __init__(self, model: SiameseNet, cfg: LossConfig, num_classes: int):
        super().__init__(model, cfg)

        def head(dim: int) -> ArcFaceLoss:
            return ArcFaceLoss(num_classes, dim, margin=cfg.arcface_margin, scale=cfg.arcface_scale)

        self.heads = nn.ModuleDict({"embedding": head(model.embedding_dim)})
        if self.local_global:
            branch = model.net.branch_dim
            self.heads.update({"global_embedding": head(branch), "local_embedding": head(branch)})

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.local_global:
            return branch_loss(dict(self.heads), [self.model.net.forward_all(x)], labels, weights=self.weights)
        return self.heads["embedding"](self.model.net(x), labels)


def create_objective(model: SiameseNet, cfg: LossConfig, num_classes: int = 0) -> Objective:
    if cfg.regime == "contrastive":
        return ContrastiveObjective(model, cfg)
    if cfg.regime == "pair-bce":
        return PairBCEObjective(model, cfg)
    if cfg.regime == "triplet":
        return TripletObjective(model, cfg)
    if cfg.regime == "arcface":
        return ArcFaceObjective(model, cfg, num_classes)
    raise ValueError(f"unknown regime {cfg.regime!r}")
