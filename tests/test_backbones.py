import os
import subprocess
import sys

import pytest
import torch

from backbone.models import create_backbone
from backbone.models.backbones import load_state_dict_file

from conftest import PROJECT


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("small", (64, 96, 112)),
        ("resnet18", (64, 112)),
        ("efficientnet_b0", (64,)),
        ("inception_resnet_v1", (112, 160)),
    ],
)
def test_shapes_for_every_backbone_and_several_sizes(name, sizes):
    torch.manual_seed(0)
    net = create_backbone(name, embedding_dim=64).eval()
    for size in sizes:
        x = torch.randn(2, 3, size, size)
        fmap = net.features(x)
        assert fmap.ndim == 4 and fmap.shape[:2] == (2, net.out_channels)
        assert net(x).shape == (2, 64)


def test_unknown_names_and_impossible_options():
    with pytest.raises(ValueError, match="unknown backbone 'resnet_nine'"):
        create_backbone("resnet_nine")
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_backbone("small", pretrained=True)
    with pytest.raises(ValueError, match="vggface2"):
        create_backbone("inception_resnet_v1", pretrained="imagenet")


def test_inception_loads_a_state_dict_from_pretrained(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(1)
    source = InceptionResnetV1(classify=True, num_classes=10).eval()  # like facenet's files: with logits
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    torch.save(source.state_dict(), pretrained / "facenet.pt")
    net = create_backbone("inception_resnet_v1", embedding_dim=512, weights=pretrained / "facenet.pt").eval()
    x = torch.randn(2, 3, 160, 160)
    source.classify = False
    assert torch.allclose(torch.nn.functional.normalize(net(x)), source(x), atol=1e-5)


def test_inception_weight_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist: .*pretrained/"):
        create_backbone("inception_resnet_v1", weights=tmp_path / "missing.pt")
    torch.save(create_backbone("small").state_dict(), tmp_path / "small.pt")
    with pytest.raises(ValueError, match="does not fit InceptionResnetV1: .* missing .* unexpected"):
        create_backbone("inception_resnet_v1", weights=tmp_path / "small.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read weights file"):
        create_backbone("inception_resnet_v1", weights=tmp_path / "junk.pt")


def test_shape_mismatch_is_named(tmp_path):
    net = create_backbone("small")
    state = net.state_dict()
    state["head.linear.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="1 of the wrong shape .*head.linear.weight"):
        load_state_dict_file(net, tmp_path / "w.pt")


def test_timm_pretrained_offline_fails_with_a_clear_message():
    code = "from backbone.models import create_backbone\ncreate_backbone('resnet18', pretrained=True)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # fail at once instead of retrying the network
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT, timeout=120
    )
    assert out.returncode != 0
    assert "could not load timm's pretrained weights for 'resnet18'" in out.stderr and "pretrained=False" in out.stderr
