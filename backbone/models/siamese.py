"""The Siamese wrapper: one shared embedding network, L2-normalised embeddings, a distance, and an
optional pair-classification head (|e1 - e2| and e1 * e2 -> MLP -> logit).

Scores follow one rule everywhere: **higher means more alike** (cosine similarity, or minus a
distance), so a pair is predicted ``SAME`` when its score is at or above the threshold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from backbone.registry import Registry


class Distance(ABC):
    """A distance between embeddings, row by row; its ``score`` is higher = more alike (minus
    the distance unless a distance defines a similarity)."""

    @abstractmethod
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a``, ``b`` (B, D) -> (B,)."""

    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a``, ``b`` (B, D) -> (B,), higher = more alike."""
        return -self.distance(a, b)


DISTANCES: Registry[type[Distance]] = Registry("distance")


@DISTANCES.register("cosine")
class Cosine(Distance):
    """``1 - cos``; the score is the cosine similarity itself (the 0.6 threshold convention)."""

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.cosine_similarity(a, b, dim=1)

    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(a, b, dim=1)


@DISTANCES.register("euclidean")
class Euclidean(Distance):
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).norm(dim=1)


@DISTANCES.register("sqeuclidean")
class SquaredEuclidean(Distance):
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2).sum(1)


@DISTANCES.register("l1")
class L1(Distance):
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().sum(1)


def pair_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Row-wise distance between two batches of embeddings (cosine distance is 1 - cos)."""
    return DISTANCES.create(kind).distance(a, b)


def pair_score(a: torch.Tensor, b: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Similarity score, higher = more alike: cosine similarity, or minus the distance."""
    return DISTANCES.create(kind).score(a, b)


class PairHead(nn.Module):
    """Symmetric pair classifier: [|e1 - e2|, e1 * e2] -> MLP -> one logit (SAME when > 0)."""

    def __init__(self, embedding_dim: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * embedding_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([(a - b).abs(), a * b], 1)).squeeze(1)


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` (B, C, H, W) scaled by ``factor`` about its centre at the same size (bilinear; above
    1 zooms in, below 1 zooms out, the border pixels extending the image)."""
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor
    grid = F.affine_grid(theta, [b, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class SiameseOutput:
    emb_a: torch.Tensor
    emb_b: torch.Tensor
    score: torch.Tensor  # higher = more alike
    logit: torch.Tensor | None = None  # pair-head logit, when the model has a head


class SiameseNet(nn.Module):
    """Shared-weight verification model around any embedding network (``net(x) -> (B, D)``)."""

    def __init__(
        self,
        net: nn.Module,
        embedding_dim: int,
        distance: str = "cosine",
        pair_head: bool = False,
        flip_average: bool = False,
        tta_zoom: float | None = None,
    ):
        super().__init__()
        DISTANCES.get(distance)  # an unknown name lists the registered ones
        self.net, self.distance = net, distance
        self.embedding_dim = embedding_dim
        self.pair_head = PairHead(embedding_dim) if pair_head else None
        self.flip_average = flip_average
        self.tta_zoom = tta_zoom

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The views of ``x`` (B, 3, H, W) that evaluation embeds: the image; with ``tta_zoom`` z,
        the image zoomed out to z and in to 1/z of its size about its centre (edge pixels extend
        it); with ``flip_average``, each of those mirrored too. Training sees the image alone."""
        views = [x]
        if self.training:
            return views
        if self.tta_zoom:
            views += [zoom(x, self.tta_zoom), zoom(x, 1.0 / self.tta_zoom)]
        if self.flip_average:
            views += [v.flip(-1) for v in views]
        return views

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W) -> L2-normalised embeddings (B, D): the network's outputs for each
        of :meth:`views` summed, then normalised (test-time augmentation in eval mode only)."""
        views = self.views(x)
        out = self.net(views[0])
        for v in views[1:]:
            out = out + self.net(v)
        return F.normalize(out, dim=1)

    def score(self, emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
        """Pair scores from embeddings (the head's probability when there is one), higher = more alike."""
        if self.pair_head is not None:
            return torch.sigmoid(self.pair_head(emb_a, emb_b))
        return pair_score(emb_a, emb_b, self.distance)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> SiameseOutput:
        ea, eb = self.embed(a), self.embed(b)
        logit = self.pair_head(ea, eb) if self.pair_head is not None else None
        score = torch.sigmoid(logit) if logit is not None else pair_score(ea, eb, self.distance)
        return SiameseOutput(ea, eb, score, logit)
