"""Attention over a feature map, for the local branch of the local-global network.

Every module maps a feature map ``(B, C, h, w)`` to ``(local_vector (B, C), attention (B, 1, h, w))``.
The returned attention is a distribution over positions: non-negative, summing to 1 per image,
so maps of different modules compare directly and the entropy regulariser is well defined.

* ``cbam``: CBAM (Woo et al., 2018): channel attention, then spatial attention; the spatially
  re-weighted map is average-pooled.
* ``spatial``: spatial attention alone: a small conv scores every position, softmax over
  positions, attention-weighted pooling.
* ``transformer``: one pre-norm transformer block (multi-head self-attention) over the feature
  map's tokens with a class token; the class token's attention over the tokens is the map.

Each is registered by name in ``ATTENTION``; a new module is one class with
``@ATTENTION.register("name")`` and a constructor taking the feature map's channel count.
``marks`` (``backbone.models.mark_map``) is registered there too, with ``network="MarkMapNet"``:
it is the local branch of a network of its own, which ``build_model`` builds for that name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backbone.registry import Registry

ATTENTION: Registry[type[nn.Module]] = Registry("attention")


def _as_distribution(weights: torch.Tensor) -> torch.Tensor:
    flat = weights.flatten(1)
    return (flat / flat.sum(1, keepdim=True).clamp_min(1e-12)).view_as(weights)


@ATTENTION.register("cbam")
class CBAM(nn.Module):
    """Channel then spatial attention (Woo et al., 2018).

    Args:
        channels: channels ``C`` of the feature map.
        reduction: channel-MLP bottleneck ratio (at least 8 hidden units).
        kernel_size: the spatial attention's convolution.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``fmap`` (B, C, h, w) -> local vector (B, C), attention (B, 1, h, w) summing to 1."""
        channel = torch.sigmoid(self.mlp(fmap.mean((2, 3))) + self.mlp(fmap.amax((2, 3))))
        fmap = fmap * channel[:, :, None, None]
        pooled = torch.cat([fmap.mean(1, keepdim=True), fmap.amax(1, keepdim=True)], 1)
        spatial = torch.sigmoid(self.spatial(pooled))
        return (fmap * spatial).mean((2, 3)), _as_distribution(spatial)


@ATTENTION.register("spatial")
class SpatialAttention(nn.Module):
    """A small conv scores each position; softmax over positions; attention-weighted pooling.

    Args:
        channels: channels ``C`` of the feature map.
        hidden: width of the scoring conv.
    """

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.score = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 3, padding=1)
        )

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``fmap`` (B, C, h, w) -> local vector (B, C), attention (B, 1, h, w) summing to 1."""
        b, _, h, w = fmap.shape
        attn = torch.softmax(self.score(fmap).flatten(1), dim=1).view(b, 1, h, w)
        return (fmap * attn).sum((2, 3)), attn


@ATTENTION.register("transformer")
class TransformerAttention(nn.Module):
    """One pre-norm transformer block over the feature map's tokens plus a class token.

    Args:
        channels: channels ``C`` of the feature map (the token width).
        heads: attention heads (lowered until it divides ``channels``).
        mlp_ratio: hidden width of the MLP, as a multiple of ``channels``.
        dropout: attention dropout.
    """

    def __init__(self, channels: int, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        while channels % heads:
            heads -= 1
        self.cls = nn.Parameter(torch.zeros(1, 1, channels))
        self.position = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)  # size-free positions
        self.norm1 = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))
        nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``fmap`` (B, C, h, w) -> class token (B, C), its attention over positions (B, 1, h, w)."""
        b, c, h, w = fmap.shape
        tokens = (fmap + self.position(fmap)).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(b, -1, -1), tokens], 1)
        y = self.norm1(x)
        out, weights = self.attn(y, y, y, need_weights=True, average_attn_weights=True)
        x = x + out
        x = x + self.mlp(self.norm2(x))
        attn = _as_distribution(weights[:, 0, 1:].reshape(b, 1, h, w))  # class token -> tokens
        return x[:, 0], attn


def feature_map_attention() -> tuple[str, ...]:
    """The registered modules that attend over the last feature map (``LocalGlobalNet`` takes
    them); the others (registered with ``network=...``) come with a network of their own."""
    return tuple(n for n in ATTENTION.names() if not ATTENTION.info(n).get("network"))


def create_attention(kind: str, channels: int) -> nn.Module:
    """The attention module registered as ``kind``, for a feature map of ``channels`` channels."""
    return ATTENTION.create(kind, channels)


def upsample_attention(attn: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling to ``size`` (e.g. the input's), renormalised to sum to 1."""
    return _as_distribution(F.interpolate(attn, size=size, mode="bilinear", align_corners=False).clamp_min(0))


def attention_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the attention distributions, divided by log(positions): 0 (one spot) .. 1 (uniform)."""
    flat = attn.flatten(1)
    entropy = -(flat * flat.clamp_min(1e-12).log()).sum(1)
    return entropy.mean() / torch.log(torch.tensor(float(flat.shape[1]))).clamp_min(1e-12)
