import os
import subprocess
import sys

import pytest
import torch

from backbone.models import create_backbone
from backbone.models.backbones import load_state_dict_file

from conftest import PROJECT, needs_dlib_models


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("small", (64, 96, 112)),
        ("small_grid", (64, 112)),
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


@pytest.mark.parametrize("name", ["small", "resnet18", "inception_resnet_v1", "dlib_resnet"])
@pytest.mark.parametrize("embedding_dim", [128, 64])
def test_trunk_and_head_share_no_parameter(name, embedding_dim):
    """``freeze_trunk_epochs`` freezes the trunk: the head (for dlib_resnet, its 128-d layer) must
    stay free to learn, so no parameter may belong to both."""
    net = create_backbone(name, embedding_dim=embedding_dim)
    trunk, head = ({id(p) for p in part.parameters()} for part in (net.trunk, net.head))
    assert head and not trunk & head
    assert {id(p) for p in net.parameters()} == trunk | head


def test_small_grid_keeps_where_each_feature_is():
    """Its head flattens a 4x4 grid of the feature map: moving a feature to another corner of the
    face changes the embedding, which the global average of ``small`` cannot see."""
    torch.manual_seed(0)
    head = create_backbone("small_grid", embedding_dim=8).eval().head
    fmap = torch.zeros(1, 256, 4, 4)
    moved = fmap.clone()
    fmap[0, :, 0, 0] = moved[0, :, 3, 3] = 1.0
    assert head.linear.in_features == 256 * 16
    assert not torch.allclose(head(fmap), head(moved))
    average = create_backbone("small", embedding_dim=8).eval().head
    assert torch.allclose(average(fmap), average(moved))


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


@needs_dlib_models
def test_dlib_resnet_gives_dlibs_descriptor_through_the_workbooks_transform(tiny_synth):
    import dlib
    import numpy as np

    from backbone.data import load_index, load_rgb
    from backbone.data.faces.transforms import eval_transform
    from backbone.models.build import ModelConfig, build_model
    from backbone.models.dlib_resnet import default_model_path

    index = load_index(tiny_synth)
    chips = [np.array(load_rgb(index.absolute(r.path)).resize((150, 150))) for r in index.records[:3]]
    reference = dlib.face_recognition_model_v1(str(default_model_path()))
    expected = torch.tensor(np.array([reference.compute_face_descriptor(c) for c in chips]), dtype=torch.float32)
    model = build_model(ModelConfig(backbone="dlib_resnet", pretrained=True)).eval()
    x = torch.stack([eval_transform(150)(torch.from_numpy(c).permute(2, 0, 1)) for c in chips])
    with torch.no_grad():
        got = model.embed(x)
    assert (got - torch.nn.functional.normalize(expected, dim=1)).abs().max() < 1e-5
    assert ModelConfig(backbone="dlib_resnet").image_size == 150


@needs_dlib_models
def test_dlib_resnet_options(tmp_path):
    from backbone.models.dlib_resnet import default_model_path

    net = create_backbone("dlib_resnet", embedding_dim=64).eval()  # random weights, a projection to 64
    x = torch.randn(2, 3, 150, 150)
    assert net.features(x).shape == (2, 256, 2, 2) and net(x).shape == (2, 64)
    from_file = create_backbone("dlib_resnet", weights=default_model_path()).eval()
    packaged = create_backbone("dlib_resnet", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(from_file(x), packaged(x))
    from backbone.models.dlib_resnet import load_dlib_resnet

    torch.save(load_dlib_resnet().state_dict(), tmp_path / "dlib.pt")  # a DlibResNet's state dict
    with torch.no_grad():
        assert torch.equal(create_backbone("dlib_resnet", weights=tmp_path / "dlib.pt").eval()(x), packaged(x))
    with pytest.raises(ValueError, match="dlib_resnet: pretrained is true"):
        create_backbone("dlib_resnet", pretrained="vggface2")
    with pytest.raises(ValueError, match=r"takes \(N, 3, 150, 150\)"):
        net(torch.randn(1, 3, 112, 112))
