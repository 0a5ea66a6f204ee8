"""PyTorch datasets over cached aligned faces: single images with identity labels, pairs, triplets.

They take any ``faces`` callable mapping an image path to a uint8 3xHxW tensor, normally
:class:`~backbone.data.faces.cache.CachedFaces`, so every epoch reads ready crops. Without a
per-image transform, each also describes itself as tensors (``columns()``), which
:class:`~backbone.data.faces.batches.TensorBatches` gathers whole batches from on the training device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from backbone.data.faces.batches import Column, stacked
from backbone.data.index import IdentityIndex
from backbone.data.lists.pairs import Pair
from backbone.data.lists.triplets import Triplet

Faces = Callable[[str], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _images(faces: Faces, paths: Sequence[str], rows_of: Sequence[Sequence[str]] = ()) -> tuple[torch.Tensor, list]:
    """The crops of the unique ``paths`` as one uint8 tensor ``(N, 3, H, W)``, and for each list
    of ``rows_of`` the row of each of its paths in it."""
    unique = list(dict.fromkeys(paths))
    store = faces.stack(unique) if hasattr(faces, "stack") else torch.stack([faces(p) for p in unique])
    row = {p: i for i, p in enumerate(unique)}
    return store, [torch.tensor([row[p] for p in ps]) for ps in rows_of]


def _untransformed(dataset) -> None:
    if dataset.transform is not _identity:
        raise ValueError(f"{type(dataset).__name__} applies a per-image transform: it has no tensor columns")


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

    def columns(self) -> list[Column]:
        """Images ``(N, 3, H, W)`` uint8 and labels ``(N,)`` (untransformed data sets only)."""
        _untransformed(self)
        images, _ = _images(self.faces, self.paths)
        return [Column(images), Column(stacked(self.labels))]


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

    def columns(self) -> list[Column]:
        return [*self.dataset.columns(), Column(self.masks)]


class PairDataset(Dataset):
    """``(image_a, image_b, same)`` with ``same = SAME (1)`` for the same person."""

    def __init__(self, pairs: Sequence[Pair], faces: Faces, transform: Transform | None = None):
        self.pairs, self.faces, self.transform = list(pairs), faces, transform or _identity

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        p = self.pairs[i]
        return self.transform(self.faces(p.path_a)), self.transform(self.faces(p.path_b)), p.same

    def columns(self) -> list[Column]:
        """Both images of every pair (each image stored once) and ``same`` ``(N,)``."""
        _untransformed(self)
        a, b = [p.path_a for p in self.pairs], [p.path_b for p in self.pairs]
        images, (rows_a, rows_b) = _images(self.faces, a + b, (a, b))
        return [Column(images, rows_a), Column(images, rows_b), Column(stacked([p.same for p in self.pairs]))]


class TripletDataset(Dataset):
    """``(anchor, positive, negative)`` images."""

    def __init__(self, triplets: Sequence[Triplet], faces: Faces, transform: Transform | None = None):
        self.triplets, self.faces, self.transform = list(triplets), faces, transform or _identity

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.triplets[i]
        return tuple(self.transform(self.faces(p)) for p in (t.anchor, t.positive, t.negative))  # type: ignore[return-value]

    def columns(self) -> list[Column]:
        """Anchor, positive and negative images (each image stored once)."""
        _untransformed(self)
        roles = [[getattr(t, role) for t in self.triplets] for role in ("anchor", "positive", "negative")]
        images, rows = _images(self.faces, [p for paths in roles for p in paths], roles)
        return [Column(images, r) for r in rows]
