"""The triplet regime: online mining over identity-balanced batches, or an explicit triplet file."""

from __future__ import annotations

import numpy as np
import torch

from backbone.data.faces.datasets import TripletDataset, WithMasks
from backbone.data.faces.samplers import FamilySampler, balanced_sampler
from backbone.data.lists.triplets import read_triplets
from backbone.data.synth import stored_masks
from backbone.losses import TripletLoss, branch_loss, given
from backbone.models.siamese import SiameseNet
from backbone.training.regimes.base import REGIMES, Regime, TrainingInputs, TrainingSet


@REGIMES.register("triplet")
class Triplet(Regime):
    """Mined batches ``(images (B, 3, H, W), identity labels (B,))`` of ``loss.m_per_class``
    images per identity (``loss.mining``: batch-hard, semi-hard or batch-all; with
    ``loss.family_batches``, twin siblings always share a batch; with ``loss.branch.marks``, each
    image's mark mask ``(B, H, W)`` too), or, with
    ``data.train_triplets``, explicit ``(anchor, positive, negative)`` batches."""

    def __init__(self, model: SiameseNet, cfg, num_classes: int = 0):
        super().__init__(model, cfg, num_classes)
        self.loss = TripletLoss(**given(margin=cfg.margin), mining=cfg.mining)

    @classmethod
    def images_per_batch(cls, cfg) -> int:
        return 3 * cfg.batch_size if cfg.data.train_triplets else cfg.batch_size

    @classmethod
    def training_set(cls, inputs: TrainingInputs) -> TrainingSet:
        d = inputs.cfg.data
        if d.train_triplets:
            triplets = read_triplets(d.train_triplets, root=inputs.index.root)
            index = inputs.index.only_paths({p for t in triplets for p in (t.anchor, t.positive, t.negative)})
            dataset = TripletDataset(triplets, inputs.faces(index), inputs.transform)
            return TrainingSet(dataset, inputs.shuffled(dataset))
        dataset = inputs.identities(min_images=2)  # mining needs a positive for every anchor
        cfg, length = inputs.cfg, inputs.length(dataset)
        if cfg.loss.branch.marks:  # the mark-map network learns its map from the images' mark masks
            masks = stored_masks(inputs.index.root, dataset.paths, channels=0)
            dataset = WithMasks(dataset, torch.from_numpy(np.stack([masks[p] for p in dataset.paths])))
        if cfg.loss.family_batches:
            group_of = inputs.index.group_of
            families = [f"group {group_of[name]}" if group_of.get(name) else name for name in dataset.classes]
            sampler = FamilySampler(dataset.labels, families, cfg.loss.m_per_class, cfg.batch_size, length,
                                    inputs.generator)  # fmt: skip
        else:
            sampler = balanced_sampler(dataset.labels, cfg.loss.m_per_class, cfg.batch_size, length=length)
        return TrainingSet(dataset, sampler, len(dataset.classes))

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        net = self.model.net
        if len(batch) == 2 or self.cfg.branch.marks:  # mined (with the images' mark masks)
            x, labels, *masks = batch
            if self.local_global:
                return branch_loss(self.loss, [net.forward_all(x)], labels, weights=self.weights, masks=masks or None)
            return self.loss(net(x), labels)
        if self.local_global:
            return branch_loss(self.loss.forward_triplets, [net.forward_all(x) for x in batch], weights=self.weights)
        return self.loss.forward_triplets(*(net(x) for x in batch))
