"""The mark-map network: a local-global network whose local branch is a map of the face's marks.

Identical twins share everything global (face shape, tone, hair); what tells them apart is where
their moles, scars and freckles sit. This network keeps the backbone's own embedding as its
global branch, and adds a small head on the trunk's stride-4 features that scores every cell of
a ``H/4 x W/4`` grid for "a mark is here". Its local embedding is that probability map, blurred
(marks move a little with pose) and flattened: two photos of one person light up the same cells;
twins, different ones. The fused embedding joins the two, each L2-normalised, so that the cosine
similarity of two faces is ``(1 - local_share) * global cosine + local_share * map cosine``.

The head learns from the training images' mark masks (``loss.branch.marks``, see
``backbone.losses.mark_loss``; the synthetic generator records them in ``marks.npz``), the global
embedding from the regime's loss. The attention map (for figures and the pointing score) is the
mark probability map, as a distribution over cells.

The trunk must have ``stem`` and ``stages`` (``backbone.models.small.SmallResNet``: the ``small``
and ``small_grid`` backbones); the map is read after its first stage.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backbone.models.attention import ATTENTION, _as_distribution, upsample_attention
from backbone.models.backbones import Backbone
from backbone.models.local_global import LocalGlobalNet, LocalGlobalOutput


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``sigma`` cells, 3 sigma each side: ``(2r + 1,)``."""
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


@ATTENTION.register("marks", network="MarkMapNet")
class MarkHead(nn.Module):
    """The mark-map network's local branch (:class:`MarkMapNet` builds it; unlike the other
    attention modules it reads the trunk's stride-4 features, not its last map).

    Args:
        channels: channels ``C`` of the stride-4 feature map.
        hidden: channels of the 3x3 convolution before the 1x1 that gives one logit per cell.
    """

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.score = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(hidden, 1, 1))  # fmt: skip

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """``fmap`` (B, C, h, w) -> mark logits (B, 1, h, w)."""
        return self.score(fmap)


class MarkMapNet(LocalGlobalNet):
    """``forward(x)`` gives the fused embedding; ``forward_all`` also the branches, the attention
    (the mark probabilities as a distribution) and the mark logits.

    Args:
        backbone: a backbone whose trunk has ``stem`` and ``stages`` (``small``, ``small_grid``);
            its head gives the global embedding.
        embedding_dim: size of the backbone's embedding (the global branch).
        sigma: the blur of the mark map, in cells (4 px each).
        local_share: the map's share of the fused embedding's cosine similarity.
    """

    kind = "marks"

    def __init__(self, backbone: Backbone, embedding_dim: int, sigma: float = 1.0, local_share: float = 0.5):
        nn.Module.__init__(self)  # the branches differ from LocalGlobalNet's: none of its layers
        trunk = backbone.trunk
        if not (hasattr(trunk, "stem") and hasattr(trunk, "stages")):
            raise ValueError(f"the mark-map network needs a trunk with stem and stages (small, small_grid), not "
                             f"{backbone.name or type(trunk).__name__}")  # fmt: skip
        if not 0.0 < local_share < 1.0:
            raise ValueError(f"local_share must be within (0, 1), got {local_share}")
        self.trunk, self.head = trunk, backbone.head
        self.attention_kind, self.branch_dim = self.kind, embedding_dim
        first = trunk.stages[0][-1]  # the first stage's last block: its channels are the map's
        self.marks = MarkHead(first.conv2.out_channels)
        self.register_buffer("blur", gaussian_kernel(sigma), persistent=False)
        self.weights = (1.0 - local_share) ** 0.5, local_share**0.5

    @staticmethod
    def cells(image_size: int) -> int:
        """Cells of the mark map of a square ``image_size`` input (two stride-2 layers)."""
        side = math.ceil(math.ceil(image_size / 2) / 2)
        return side * side

    def _blurred(self, p: torch.Tensor) -> torch.Tensor:
        r = (len(self.blur) - 1) // 2
        p = F.conv2d(p, self.blur.view(1, 1, 1, -1), padding=(0, r))
        return F.conv2d(p, self.blur.view(1, 1, -1, 1), padding=(r, 0))

    def forward_all(self, x: torch.Tensor, attention_size: tuple[int, int] | None = None) -> LocalGlobalOutput:
        """``x`` (B, 3, H, W) -> embedding (B, embedding_dim + H/4 * W/4), global (B, embedding_dim),
        local (B, H/4 * W/4), attention (B, 1, H/4, W/4) or ``attention_size``, mark logits (B, 1, H/4, W/4)."""
        early = self.trunk.stages[0](self.trunk.stem(x))
        g = self.head(self.trunk.stages[1:](early))
        logits = self.marks(early)
        p = torch.sigmoid(logits)
        local = self._blurred(p).flatten(1)
        wg, wl = self.weights
        fused = torch.cat([wg * F.normalize(g, dim=1), wl * F.normalize(local, dim=1)], 1)
        attn = _as_distribution(p)
        if attention_size is not None:
            attn = upsample_attention(attn, attention_size)
        return LocalGlobalOutput(fused, g, local, attn, logits)
