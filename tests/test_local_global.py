import pytest
import torch

from backbone.losses import BranchWeights, ContrastiveLoss, branch_loss
from backbone.models import LocalGlobalNet, create_backbone
from backbone.models.attention import feature_map_attention


@pytest.mark.parametrize("attention", feature_map_attention())
@pytest.mark.parametrize("size", [64, 112])
def test_outputs_and_attention_at_input_resolution(attention, size):
    torch.manual_seed(0)
    net = LocalGlobalNet(create_backbone("small"), attention, embedding_dim=512, branch_dim=96).eval()
    x = torch.randn(2, 3, size, size)
    out = net.forward_all(x, attention_size=(size, size))
    assert (
        out.embedding.shape == (2, 512)
        and out.global_embedding.shape == (2, 96)
        and out.local_embedding.shape == (2, 96)
    )
    assert out.attention.shape == (2, 1, size, size)
    assert torch.allclose(out.attention.sum((1, 2, 3)), torch.ones(2), atol=1e-5)
    assert net.forward_all(x).attention.shape == (2, 1, size // 16, size // 16)
    assert torch.equal(net(x), out.embedding)


@pytest.mark.parametrize("attention", feature_map_attention())
def test_gradients_reach_both_branches_and_the_attention(attention):
    torch.manual_seed(0)
    net = LocalGlobalNet(create_backbone("small"), attention, embedding_dim=32, branch_dim=16)
    a, b = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)
    same = torch.tensor([1, 0, 1, 0])
    loss = branch_loss(ContrastiveLoss(0.5), [net.forward_all(a), net.forward_all(b)], same)
    loss.backward()
    for part in (net.trunk, net.global_head, net.local_head, net.attention, net.fusion):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads)
        assert sum(g.abs().sum().item() for g in grads) > 0, type(part).__name__


def test_branch_loss_weights_add_up():
    torch.manual_seed(0)
    net = LocalGlobalNet(create_backbone("small"), "spatial", embedding_dim=16, branch_dim=8).eval()
    outs = [net.forward_all(torch.randn(4, 3, 64, 64)) for _ in range(2)]
    same = torch.tensor([1, 0, 1, 0])
    loss = ContrastiveLoss(0.5)
    parts = {
        "fused": loss(outs[0].embedding, outs[1].embedding, same),
        "global_": loss(outs[0].global_embedding, outs[1].global_embedding, same),
        "local": loss(outs[0].local_embedding, outs[1].local_embedding, same),
    }
    from backbone.models import attention_entropy

    entropy = (attention_entropy(outs[0].attention) + attention_entropy(outs[1].attention)) / 2
    expected = 1.0 * parts["fused"] + 0.6 * parts["global_"] + 0.4 * parts["local"] + 0.01 * entropy
    assert torch.allclose(branch_loss(loss, outs, same), expected)
    only_local = branch_loss(
        loss, outs, same, weights=BranchWeights(fused=0, global_branch=0, local_branch=1, attention=0)
    )
    assert torch.allclose(only_local, parts["local"])
