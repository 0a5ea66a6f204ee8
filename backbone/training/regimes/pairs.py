"""Regimes on labelled pairs ``(image_a, image_b, same)``: contrastive and pair classification."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from backbone.data.faces.datasets import PairDataset
from backbone.losses import ContrastiveLoss, PairBCELoss, attention_regulariser, branch_loss, given
from backbone.models.build import ModelConfig
from backbone.models.siamese import SiameseNet
from backbone.training.regimes.base import REGIMES, Regime, TrainingInputs, TrainingSet


class PairRegime(Regime):
    """Batches of ``(image_a (B, 3, H, W), image_b (B, 3, H, W), same (B,))``, drawn at random
    from the training pairs."""

    @classmethod
    def images_per_batch(cls, cfg) -> int:
        return 2 * cfg.batch_size

    @classmethod
    def training_set(cls, inputs: TrainingInputs) -> TrainingSet:
        pairs = inputs.require_pairs()
        index = inputs.index.only_paths({p for pair in pairs for p in (pair.path_a, pair.path_b)})
        dataset = PairDataset(pairs, inputs.faces(index), inputs.transform)
        return TrainingSet(dataset, inputs.shuffled(dataset))


@REGIMES.register("contrastive")
class Contrastive(PairRegime):
    """The contrastive loss on pairs (``backbone.losses.ContrastiveLoss``; ``loss.margin``)."""

    def __init__(self, model: SiameseNet, cfg, num_classes: int = 0):
        super().__init__(model, cfg, num_classes)
        self.loss = ContrastiveLoss(**given(margin=cfg.margin))

    def forward(self, a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if self.local_global:
            net = self.model.net
            return branch_loss(self.loss, [net.forward_all(a), net.forward_all(b)], same, weights=self.weights)
        return self.loss(self.model.net(a), self.model.net(b), same)


@REGIMES.register("pair-bce")
class PairBCE(PairRegime):
    """Binary cross-entropy of the pair-classification head. With the local-global network the
    head sees the fused embedding and the attention regulariser is added (the head has no
    branch-sized input, so the branch weights do not apply)."""

    def __init__(self, model: SiameseNet, cfg, num_classes: int = 0):
        super().__init__(model, cfg, num_classes)
        if model.pair_head is None:
            raise ValueError("the pair-bce regime needs a model with pair_head=True")
        self.loss = PairBCELoss()

    @classmethod
    def configure_model(cls, model: ModelConfig) -> ModelConfig:
        return replace(model, pair_head=True)

    def forward(self, a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if not self.local_global:
            return self.loss(self.model(a, b).logit, same)
        outs = [self.model.net.forward_all(a), self.model.net.forward_all(b)]
        ea, eb = (nn.functional.normalize(o.embedding, dim=1) for o in outs)
        return self.loss(self.model.pair_head(ea, eb), same) + self.weights.attention * attention_regulariser(outs)
