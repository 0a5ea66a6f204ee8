import torch

from backbone.data.faces.transforms import eval_transform, to_uint8_image, train_transform


def test_eval_transform_is_facenet_standardisation():
    x = torch.tensor([0, 127, 255], dtype=torch.uint8).view(3, 1, 1).expand(3, 4, 4).contiguous()
    y = eval_transform()(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y[:, 0, 0], torch.tensor([-127.5 / 128, -0.5 / 128, 127.5 / 128]))
    assert torch.equal(to_uint8_image(y), x)
    assert eval_transform(size=2)(x).shape == (3, 2, 2)


def test_train_transform_augments_but_keeps_shape_and_scale():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    outs = [train_transform(size=24)(x) for _ in range(4)]
    assert all(o.shape == (3, 24, 24) and o.dtype == torch.float32 and o.abs().max() <= 1.0 for o in outs)
    assert not torch.equal(outs[0], outs[1])


def test_hflip_can_be_switched_off_for_twins():
    names = [type(t).__name__ for t in train_transform(hflip=0).transforms]
    assert "RandomHorizontalFlip" not in names
    assert "RandomHorizontalFlip" in [type(t).__name__ for t in train_transform().transforms]
