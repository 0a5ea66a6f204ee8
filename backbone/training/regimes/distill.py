"""The distillation regime: a student learns to reproduce a teacher's embeddings."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from backbone.data.errors import DataError
from backbone.data.faces.batches import Column
from backbone.data.faces.datasets import FaceDataset
from backbone.losses import CosFaceLoss, DistillationLoss, given
from backbone.models.siamese import SiameseNet
from backbone.training.regimes.base import REGIMES, Regime, TrainingInputs, TrainingSet


class WithTargets(Dataset):
    """``(image, identity label, target (D,))``: a face data set with one target vector per image."""

    def __init__(self, faces: FaceDataset, targets: torch.Tensor):
        if len(targets) != len(faces):
            raise ValueError(f"{len(targets)} targets for {len(faces)} images")
        self.faces, self.targets = faces, targets

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image, label = self.faces[i]
        return image, label, self.targets[i]

    def columns(self) -> list[Column]:
        return [*self.faces.columns(), Column(self.targets)]


@REGIMES.register("distill")
class Distill(Regime):
    """Batches ``(images (B, 3, H, W), identity labels (B,), teacher embeddings (B, D_t))`` drawn at
    random from every image of the training identities.

    The teacher is a checkpoint (``loss.teacher``, e.g. the dlib-as-is run's ``best.ckpt``); its
    embeddings of the training images, on faces aligned as its own run aligned them, are computed
    once and cached like any evaluation of it (``checkpoint_embeddings``). The loss is
    ``loss.distillation`` (``DistillationLoss``: cosine or relational) plus, with
    ``loss.identity_weight``, that weight times CosFace on the identities (``loss.margin``,
    ``loss.scale``). The student is a global-only model.
    """

    def __init__(self, model: SiameseNet, cfg, num_classes: int = 0):
        super().__init__(model, cfg, num_classes)
        if self.local_global:
            raise ValueError("the distill regime trains a global-only student (model.attention: null)")
        self.loss = DistillationLoss(cfg.distillation)
        self.identity_weight = cfg.identity_weight
        self.identity = (
            CosFaceLoss(num_classes, model.embedding_dim, **given(margin=cfg.margin, scale=cfg.scale))
            if cfg.identity_weight
            else None
        )

    @classmethod
    def images_per_batch(cls, cfg) -> int:
        return cfg.batch_size

    @classmethod
    def training_set(cls, inputs: TrainingInputs) -> TrainingSet:
        from backbone.evaluation.checkpoints import checkpoint_embeddings  # evaluation imports training

        cfg = inputs.cfg
        if not cfg.loss.teacher:
            raise DataError("the distill regime needs loss.teacher: a checkpoint whose embeddings the student learns")
        dataset = inputs.identities()
        targets = checkpoint_embeddings(
            cfg.loss.teacher, inputs.index, dataset.paths, cfg.data.cache, cfg.data.policy, inputs.progress
        )
        return TrainingSet(WithTargets(dataset, targets), inputs.shuffled(dataset), len(dataset.classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        embeddings = self.model.net(x)
        loss = self.loss(embeddings, targets)
        if self.identity is not None:
            loss = loss + self.identity_weight * self.identity(embeddings, labels)
        return loss
