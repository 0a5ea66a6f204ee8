import math

import pytest
import torch

from backbone.models.attention import attention_entropy, create_attention, feature_map_attention, upsample_attention


@pytest.mark.parametrize("kind", feature_map_attention())
@pytest.mark.parametrize("hw", [(4, 4), (7, 5)])
def test_attention_is_a_distribution_over_positions(kind, hw):
    torch.manual_seed(0)
    module = create_attention(kind, 32).eval()
    vec, attn = module(torch.randn(3, 32, *hw))
    assert vec.shape == (3, 32) and attn.shape == (3, 1, *hw)
    assert (attn >= 0).all() and torch.allclose(attn.sum((1, 2, 3)), torch.ones(3), atol=1e-5)


def test_upsampling_keeps_a_distribution_at_the_input_size():
    attn = torch.softmax(torch.randn(2, 16), 1).view(2, 1, 4, 4)
    up = upsample_attention(attn, (112, 96))
    assert up.shape == (2, 1, 112, 96) and torch.allclose(up.sum((1, 2, 3)), torch.ones(2), atol=1e-5)


def test_entropy_is_zero_for_one_spot_and_one_for_uniform():
    spot = torch.zeros(1, 1, 4, 4)
    spot[0, 0, 1, 2] = 1
    assert attention_entropy(spot).item() == pytest.approx(0.0, abs=1e-6)
    assert attention_entropy(torch.full((2, 1, 4, 4), 1 / 16)).item() == pytest.approx(1.0)
    half = torch.zeros(1, 1, 2, 2)
    half[0, 0, 0] = 0.5  # two spots of 0.5: entropy log 2 of log 4
    assert attention_entropy(half).item() == pytest.approx(math.log(2) / math.log(4))


def test_unknown_attention():
    with pytest.raises(ValueError, match="unknown attention"):
        create_attention("eyes", 8)
