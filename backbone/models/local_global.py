"""The local-global attention network, for telling identical twins apart.

A shared trunk's feature map feeds a *global* branch (pool -> FC: overall face shape, tone,
hair) and a *local* attention branch (attention -> pool -> FC: where moles, scars and small
asymmetries sit). The two embeddings are concatenated and projected into the final embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from backbone.models.attention import ATTENTION, create_attention, upsample_attention
from backbone.models.backbones import Backbone


@dataclass
class LocalGlobalOutput:
    embedding: torch.Tensor  # (B, embedding_dim), fused, not normalised
    global_embedding: torch.Tensor  # (B, branch_dim)
    local_embedding: torch.Tensor  # (B, branch_dim)
    attention: torch.Tensor  # (B, 1, h, w) feature-map positions, or the input's size on request; sums to 1
    mark_logits: torch.Tensor | None = None  # (B, 1, H/4, W/4): the mark-map network's (backbone.models.mark_map)


def _projection(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout))


class LocalGlobalNet(nn.Module):
    """``forward(x)`` gives the fused embedding; ``forward_all`` also the branches and attention."""

    def __init__(self, backbone: Backbone, attention: str = "cbam", embedding_dim: int = 512, branch_dim: int = 256):
        super().__init__()
        self.trunk = backbone.trunk
        channels = backbone.out_channels
        if network := ATTENTION.info(attention).get("network"):
            raise ValueError(f"attention {attention!r} is the local branch of {network}: build_model builds it")
        self.attention_kind, self.branch_dim = attention, branch_dim
        self.global_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), _projection(channels, branch_dim))
        self.attention = create_attention(attention, channels)
        self.local_head = _projection(channels, branch_dim)
        self.fusion = _projection(2 * branch_dim, embedding_dim)

    def forward_all(self, x: torch.Tensor, attention_size: tuple[int, int] | None = None) -> LocalGlobalOutput:
        """All outputs; ``attention_size=x.shape[-2:]`` upsamples the maps to the input resolution."""
        fmap = self.trunk(x)
        g = self.global_head(fmap)
        local, attn = self.attention(fmap)
        loc = self.local_head(local)
        fused = self.fusion(torch.cat([g, loc], 1))
        if attention_size is not None:
            attn = upsample_attention(attn, attention_size)
        return LocalGlobalOutput(fused, g, loc, attn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).embedding
