"""PyTorch datasets over cached aligned faces: single images with identity labels, pairs, triplets.

They take any ``faces`` callable mapping an image path to a uint8 3xHxW tensor, normally
:class:`~backbone.data.faces.cache.CachedFaces`, so every epoch reads ready crops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from backbone.data.index import IdentityIndex
from backbone.data.lists.pairs import Pair
from backbone.data.lists.triplets import Triplet

Faces = Callable[[str], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class FaceDataset(Dataset):
    """``(image, identity_label)`` for every image of an index; labels follow sorted identities."""

    def __init__(self, index: IdentityIndex, faces: Faces, transform: Transform | None = None):
        self.paths = [r.path for r in index.records]
        self.classes = index.identities
        to_label = {name: i for i, name in enumerate(self.classes)}
        self.labels = [to_label[r.identity] for r in index.records]
        self.faces, self.transform = faces, transform or _identity

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.faces(self.paths[i])), self.labels[i]


class WithMasks(Dataset):
    """A :class:`FaceDataset`'s items with each image's mask appended: ``(image, label, mask
    (H, W) uint8)``; ``labels`` and ``classes`` are the data set's (for samplers). The mask has no
    channel axis: only image batches are 4-D (what the trainer augments and counts)."""

    def __init__(self, dataset: FaceDataset, masks: torch.Tensor):
        if len(masks) != len(dataset):
            raise ValueError(f"{len(masks)} masks for {len(dataset)} images")
        self.dataset, self.masks = dataset, masks
        self.labels, self.classes = dataset.labels, dataset.classes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        return (*self.dataset[i], self.masks[i])


class PairDataset(Dataset):
    """``(image_a, image_b, same)`` with ``same = SAME (1)`` for the same person."""

    def __init__(self, pairs: Sequence[Pair], faces: Faces, transform: Transform | None = None):
        self.pairs, self.faces, self.transform = list(pairs), faces, transform or _identity

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        p = self.pairs[i]
        return self.transform(self.faces(p.path_a)), self.transform(self.faces(p.path_b)), p.same


class TripletDataset(Dataset):
    """``(anchor, positive, negative)`` images."""

    def __init__(self, triplets: Sequence[Triplet], faces: Faces, transform: Transform | None = None):
        self.triplets, self.faces, self.transform = list(triplets), faces, transform or _identity

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.triplets[i]
        return tuple(self.transform(self.faces(p)) for p in (t.anchor, t.positive, t.negative))  # type: ignore[return-value]
