import torch

from backbone.data.faces.transforms import BatchAugment, eval_transform, to_uint8_image, train_transform


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


def test_batch_augmentation_switched_off_is_the_standardisation_and_flips_exactly():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    still = BatchAugment(hflip=0, degrees=0, translate=0, scale=(1, 1), jitter=0)
    assert torch.allclose(still(x), eval_transform()(x), atol=1e-5)
    flipped = BatchAugment(hflip=1, degrees=0, translate=0, scale=(1, 1), jitter=0)
    assert torch.allclose(flipped(x), eval_transform()(x.flip(-1)), atol=1e-5)


def test_batch_augmentation_draws_per_image_and_repeats_with_the_seed():
    x = torch.randint(0, 256, (1, 3, 24, 24), dtype=torch.uint8).expand(6, 3, 24, 24)
    torch.manual_seed(0)
    a = BatchAugment()(x)
    torch.manual_seed(0)
    b = BatchAugment()(x)
    assert torch.equal(a, b) and a.shape == (6, 3, 24, 24) and a.dtype == torch.float32
    assert a.abs().max() <= 1.0 and not torch.equal(a[0], a[1])  # each image its own draw
    mean_shift = (a.mean(dim=(1, 2, 3)) - eval_transform()(x[0]).mean()).abs()
    assert mean_shift.max() < 0.5  # mild: no image washed out


def test_augment_strength_scales_the_default_ranges():
    """Strength 1 is both augmentations' own defaults; 0 switches them off; 2 doubles each range."""
    import inspect

    import pytest

    from backbone.data.faces.transforms import augment_ranges

    for fn in (train_transform, BatchAugment.__init__):
        defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items() if k in augment_ranges()}
        assert defaults == augment_ranges(1.0)
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    assert torch.allclose(BatchAugment(hflip=0, **augment_ranges(0))(x), eval_transform()(x), atol=1e-5)
    assert augment_ranges(2) == {"degrees": 16.0, "translate": 0.08, "scale": (0.9, 1.1), "jitter": 0.4}
    with pytest.raises(ValueError, match="strength"):
        augment_ranges(-1)
