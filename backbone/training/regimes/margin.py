"""The margin-softmax regimes: identity classification with an angular (ArcFace) or cosine
(CosFace) margin."""

from __future__ import annotations

import torch
from torch import nn

from backbone.losses import MARGIN_LOSSES, branch_loss, given
from backbone.models.siamese import SiameseNet
from backbone.training.regimes.base import REGIMES, Regime, TrainingInputs, TrainingSet


class MarginSoftmax(Regime):
    """Batches ``(images (B, 3, H, W), identity labels (B,))`` drawn at random from every image of
    the training identities. Class centres live here, one set per embedding space; ``loss.margin``
    and ``loss.scale`` set the loss (``None``: its own default, see ``backbone.losses``)."""

    name = ""  # the key of MARGIN_LOSSES, set by each registered subclass

    def __init__(self, model: SiameseNet, cfg, num_classes: int = 0):
        super().__init__(model, cfg, num_classes)
        loss = MARGIN_LOSSES[self.name]

        def head(dim: int) -> nn.Module:
            return loss(num_classes, dim, **given(margin=cfg.margin, scale=cfg.scale))

        self.heads = nn.ModuleDict({"embedding": head(model.embedding_dim)})
        if self.local_global:
            branch = model.net.branch_dim
            self.heads.update({"global_embedding": head(branch), "local_embedding": head(branch)})

    @classmethod
    def images_per_batch(cls, cfg) -> int:
        return cfg.batch_size

    @classmethod
    def training_set(cls, inputs: TrainingInputs) -> TrainingSet:
        dataset = inputs.identities()
        return TrainingSet(dataset, inputs.shuffled(dataset), len(dataset.classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.local_global:
            return branch_loss(dict(self.heads), [self.model.net.forward_all(x)], labels, weights=self.weights)
        return self.heads["embedding"](self.model.net(x), labels)


@REGIMES.register("arcface")
class ArcFace(MarginSoftmax):
    """ArcFace: ``loss.margin`` in radians (default 0.5), ``loss.scale`` (default 30)."""

    name = "arcface"


@REGIMES.register("cosface")
class CosFace(MarginSoftmax):
    """CosFace: ``loss.margin`` subtracted from the true class's cosine (default 0.35), ``loss.scale`` (default 30)."""

    name = "cosface"
