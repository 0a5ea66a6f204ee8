import pytest
import torch
import torch.nn.functional as F

from backbone.models import PairHead, SiameseNet, create_backbone, pair_distance, pair_score


def test_distances_by_hand():
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert torch.allclose(pair_distance(a[:1], b[:1], "cosine"), torch.tensor([1.0]))
    assert torch.allclose(pair_distance(a, b, "euclidean"), torch.tensor([2**0.5, 5.0]))
    assert torch.allclose(pair_distance(a, b, "sqeuclidean"), torch.tensor([2.0, 25.0]))
    assert torch.allclose(pair_distance(a, b, "l1"), torch.tensor([2.0, 7.0]))
    assert torch.allclose(pair_score(a, b, "euclidean"), -pair_distance(a, b, "euclidean"))
    with pytest.raises(ValueError, match="unknown distance"):
        pair_distance(a, b, "hamming")


def test_shared_weights_normalised_embeddings_and_higher_score_for_identical_images():
    torch.manual_seed(0)
    net = SiameseNet(create_backbone("small", embedding_dim=32), 32).eval()
    x, y = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    out = net(x, x)
    assert torch.equal(out.emb_a, out.emb_b)  # one network, shared weights
    assert torch.allclose(out.emb_a.norm(dim=1), torch.ones(2))
    assert torch.allclose(out.score, torch.ones(2), atol=1e-5)
    assert (net(x, y).score < 1).all() and out.logit is None


def test_pair_head_is_symmetric_and_gives_probabilities():
    torch.manual_seed(0)
    head = PairHead(8).eval()
    a, b = F.normalize(torch.randn(5, 8)), F.normalize(torch.randn(5, 8))
    assert torch.allclose(head(a, b), head(b, a))
    net = SiameseNet(create_backbone("small", embedding_dim=8), 8, pair_head=True).eval()
    out = net(torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64))
    assert out.logit.shape == (3,) and torch.allclose(out.score, torch.sigmoid(out.logit))
    assert torch.allclose(net.score(out.emb_a, out.emb_b), out.score)


def test_flip_averaging_sums_image_and_mirror_at_inference_only():
    from backbone.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(embedding_dim=32, input_size=64, flip_average=True)).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        by_hand = F.normalize(model.net(x) + model.net(x.flip(3)), dim=1)
        assert torch.allclose(model.embed(x), by_hand, atol=1e-6)
        assert torch.allclose(model.embed(x.flip(3)), model.embed(x), atol=1e-5)  # a mirror image is the same face
        assert not torch.allclose(F.normalize(model.net(x), dim=1), by_hand, atol=1e-3)
        model.train()  # training embeds the image alone (batch norm in training mode on both sides)
        assert torch.allclose(model.embed(x), F.normalize(model.net(x), dim=1), atol=1e-6)
    assert build_model(ModelConfig(embedding_dim=32, input_size=64)).flip_average is False
