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


def test_zoom_scales_about_the_centre_and_keeps_the_size():
    from backbone.models.siamese import zoom

    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(2, 3, 1, 1)  # pixel (r, c) = 4r + c
    assert torch.allclose(zoom(x, 1.0), x, atol=1e-5)  # factor 1: the image itself
    # zoomed in twice: output pixel centres (-0.75, -0.25, 0.25, 0.75 in [-1, 1]) sample the input
    # at half of that, pixel coordinates 0.75, 1.25, 1.75, 2.25; bilinear is exact on 4r + c
    coords = torch.tensor([0.75, 1.25, 1.75, 2.25])
    assert zoom(x, 2.0).shape == x.shape
    assert torch.allclose(zoom(x, 2.0)[1, 2], 4 * coords[:, None] + coords[None, :], atol=1e-5)
    flat = torch.full((1, 3, 8, 8), 7.0)
    assert torch.allclose(zoom(flat, 0.8), flat)  # zooming out extends the border: a flat image stays flat


def test_zoom_tta_sums_the_zoomed_and_mirrored_views_at_inference_only():
    from backbone.models import ModelConfig, build_model
    from backbone.models.siamese import zoom

    torch.manual_seed(0)
    model = build_model(ModelConfig(embedding_dim=32, input_size=64, flip_average=True, tta_zoom=0.9)).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        views = [x, zoom(x, 0.9), zoom(x, 1 / 0.9)]
        views += [v.flip(3) for v in views]
        by_hand = F.normalize(sum(model.net(v) for v in views), dim=1)
        assert torch.allclose(model.embed(x), by_hand, atol=1e-5)
        assert len(model.views(x)) == 6
        assert not torch.allclose(model.embed(x), F.normalize(model.net(x) + model.net(x.flip(3)), dim=1), atol=1e-4)
        model.train()
        assert len(model.views(x)) == 1


def test_tta_zoom_must_be_between_0_and_1():
    from backbone.models import ModelConfig
    from backbone.settings import ConfigError

    for bad in (0.0, 1.0, 1.2):
        with pytest.raises(ConfigError, match="tta_zoom"):
            ModelConfig.from_dict({"tta_zoom": bad})
