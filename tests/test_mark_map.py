"""The mark-map network: shapes, the fused cosine, the attention, the mark loss by hand, the checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from backbone.losses import BranchWeights, TripletLoss, branch_loss, mark_loss
from backbone.models import LocalGlobalNet, create_backbone
from backbone.models.backbones import Backbone
from backbone.models.build import ModelConfig, build_model
from backbone.models.mark_map import MarkMapNet, gaussian_kernel
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig


def test_the_blur_is_a_normalised_symmetric_gaussian():
    g = gaussian_kernel(1.0)
    assert len(g) == 7 and torch.isclose(g.sum(), torch.tensor(1.0)) and torch.equal(g, g.flip(0))
    assert g[3] / g[4] == pytest.approx(math.exp(0.5))  # exp(-x^2 / 2) between x = 0 and x = 1


@pytest.mark.parametrize("size", [64, 112])
def test_outputs_and_the_fused_cosine_weights_the_branches(size):
    """The fused embedding is unit length, and the cosine of two fused embeddings is
    (1 - s) * global cosine + s * map cosine, s the map's share (0.5)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="small_grid", input_size=size, embedding_dim=32, attention="marks")).eval()
    net, cells = model.net, (size // 4) ** 2
    a, b = (net.forward_all(torch.randn(3, 3, size, size)) for _ in range(2))
    assert a.embedding.shape == (3, 32 + cells) and model.embedding_dim == 32 + cells
    assert a.global_embedding.shape == (3, 32) and a.local_embedding.shape == (3, cells)
    assert a.mark_logits.shape == a.attention.shape == (3, 1, size // 4, size // 4)
    assert torch.allclose(a.embedding.norm(dim=1), torch.ones(3), atol=1e-5)
    cos = F.cosine_similarity
    expected = 0.5 * cos(a.global_embedding, b.global_embedding) + 0.5 * cos(a.local_embedding, b.local_embedding)
    assert torch.allclose(cos(a.embedding, b.embedding), expected, atol=1e-5)
    p = torch.sigmoid(a.mark_logits)
    assert torch.allclose(a.attention, p / p.sum((1, 2, 3), keepdim=True), atol=1e-6)  # the mark map, as a distribution
    assert net.forward_all(torch.randn(1, 3, size, size), attention_size=(size, size)).attention.shape[-1] == size


def test_the_local_embedding_is_the_blurred_mark_map():
    torch.manual_seed(0)
    net = MarkMapNet(create_backbone("small", embedding_dim=16), embedding_dim=16).eval()
    out = net.forward_all(torch.randn(1, 3, 64, 64))
    p = torch.sigmoid(out.mark_logits)[0, 0]
    g = gaussian_kernel(1.0)
    k = torch.outer(g, g)  # the separable blur is this 2-D kernel
    by_hand = F.conv2d(p[None, None], k[None, None], padding=3)[0, 0]
    assert torch.allclose(out.local_embedding.view(16, 16), by_hand, atol=1e-5)


def test_mark_loss_by_hand():
    """Two cells of 2 x 2 pixels; a cell is a mark where one of its pixels is more than half covered."""
    logits = torch.tensor([[[[0.0, 2.0]]]])  # (1, 1, 1, 2)
    masks = torch.tensor([[[0, 0, 0, 200], [0, 0, 0, 0]]], dtype=torch.uint8)  # (1, 2, 4): the right cell has a mark
    pos = 20.0
    left = -math.log(1 - 0.5)  # no mark, p = sigmoid(0)
    right = -pos * math.log(1 / (1 + math.exp(-2.0)))  # a mark, weighted
    assert mark_loss(logits, masks, pos_weight=pos).item() == pytest.approx((left + right) / 2, rel=1e-6)
    faint = torch.tensor([[[0, 0, 0, 120], [0, 0, 0, 0]]], dtype=torch.uint8)  # less than half covered: no mark
    assert mark_loss(logits, faint, pos_weight=pos).item() == pytest.approx(
        (left - math.log(1 - 1 / (1 + math.exp(-2.0)))) / 2
    )


def test_branch_loss_adds_the_weighted_mark_loss_and_needs_masks():
    torch.manual_seed(0)
    net = MarkMapNet(create_backbone("small", embedding_dim=16), embedding_dim=16)
    x, labels = torch.randn(8, 3, 64, 64), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    masks = (torch.rand(8, 64, 64) > 0.99).to(torch.uint8) * 255
    out = net.forward_all(x)
    triplet = TripletLoss()
    without = branch_loss(triplet, [out], labels, weights=BranchWeights(marks=0.0))
    with_marks = branch_loss(triplet, [out], labels, weights=BranchWeights(marks=2.0), masks=[masks])
    assert with_marks.item() == pytest.approx(without.item() + 2.0 * mark_loss(out.mark_logits, masks).item(), rel=1e-5)
    with pytest.raises(ValueError, match="needs the mark-map network"):
        branch_loss(triplet, [out], labels, weights=BranchWeights(marks=1.0))


def test_the_mark_map_network_says_what_it_cannot_be_built_from():
    with pytest.raises(ValueError, match="no pair head"):
        build_model(ModelConfig(attention="marks", pair_head=True))
    plain = Backbone(nn.Conv2d(3, 8, 3), 8, nn.Flatten(), "toy")
    with pytest.raises(ValueError, match="trunk with stem and stages"):
        MarkMapNet(plain, embedding_dim=8)
    with pytest.raises(ValueError, match="local branch of MarkMapNet"):
        LocalGlobalNet(create_backbone("small"), "marks")


def test_mark_supervision_lists_every_setting_it_needs():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"loss": {"regime": "cosface", "branch": {"marks": 1.0}}})
    message = str(info.value)
    assert "model.attention: marks" in message and "triplet with online mining" in message
    assert "data.augment: false" in message
    TrainConfig.from_dict({"model": {"attention": "marks"}, "data": {"augment": False},
                           "loss": {"regime": "triplet", "branch": {"marks": 1.0}}})  # fmt: skip


@pytest.mark.parametrize("regime", ["cosface", "arcface", "pair-bce"])
def test_the_mark_map_network_names_the_regimes_it_trains_with(regime):
    with pytest.raises(ConfigError, match=f"trains with loss.regime triplet or contrastive, not {regime}"):
        TrainConfig.from_dict({"model": {"attention": "marks"}, "loss": {"regime": regime}})
