"""Backbones: an image trunk (images -> feature map) plus an embedding head (-> vector).

``create_backbone`` builds the backbones of our own, registered by name in ``BACKBONES`` (with
their default input size), and lets every other name fall through to timm:

* ``"small"``: :class:`~backbone.models.small.SmallResNet`, fit for CPU training (the default);
  ``"small_grid"``: the same with a head that keeps the face's layout (a 4x4 grid, not one average);
* ``"dlib_resnet"``: dlib's face recognition ResNet (29 convolutions, 150 px chips, 128-d), ported
  to PyTorch (:mod:`backbone.models.dlib_resnet`); ``pretrained=True`` reads the weights dlib
  trained on about 3 million faces from the installed ``face-recognition-models`` package (no
  download), ``weights=FILE`` another copy of that ``.dat`` file (or a state dict);
* ``"inception_resnet_v1"``: facenet-pytorch's InceptionResnetV1, with weights from a state-dict
  file (``weights="pretrained/20180402-114759-vggface2.pt"``); ``pretrained="vggface2"`` or
  ``"casia-webface"`` uses facenet-pytorch's download instead (online only);
* any timm model name (``"resnet18"``, ``"efficientnet_b0"``, ...); ``pretrained=True`` uses
  timm's own download, which needs the internet.

A new backbone is one function ``(embedding_dim, pretrained, weights, dropout) -> Backbone`` with
``@BACKBONES.register("name", input_size=N)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from backbone.models.small import SmallResNet
from backbone.models.weights import fit_weights, read_weights
from backbone.registry import Registry

BACKBONES: Registry = Registry("backbone")
TIMM_INPUT_SIZE = 224  # timm names: their usual ImageNet size
FACENET_PRETRAINED = ("vggface2", "casia-webface")


class EmbeddingHead(nn.Module):
    """Average pool to ``grid`` x ``grid`` cells -> flatten -> dropout -> linear -> batch norm.

    ``grid=1`` is global average pooling (the facenet head); a larger grid keeps where on the
    face each feature is (as the flattened output layer of ArcFace's networks)."""

    def __init__(self, in_channels: int, embedding_dim: int, dropout: float = 0.0, grid: int = 1):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_channels * grid * grid, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(self.dropout(self.pool(fmap).flatten(1))))


class Backbone(nn.Module):
    """``features(x)``: the trunk's feature map; ``forward(x)``: the (un-normalised) embedding."""

    def __init__(self, trunk: nn.Module, out_channels: int, head: nn.Module, name: str = ""):
        super().__init__()
        self.trunk, self.head = trunk, head
        self.out_channels, self.name = out_channels, name

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class _TimmTrunk(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.model.forward_features(x)
        if fmap.ndim != 4:
            raise ValueError(
                f"timm model {type(self.model).__name__} gives {fmap.ndim}-d features; a CNN feature map is needed"
            )
        return fmap


def _timm_backbone(name: str, embedding_dim: int, pretrained: bool, dropout: float) -> Backbone:
    import timm

    if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise ValueError(f"unknown backbone {name!r}: use one of {BACKBONES.names()} or a timm model name")
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=0)
    except Exception as exc:  # timm raises many kinds of errors when it cannot download
        raise RuntimeError(
            f"could not load timm's pretrained weights for {name!r} ({type(exc).__name__}: {exc}). "
            "Downloading needs the internet; offline, use pretrained=False"
        ) from exc
    return Backbone(
        _TimmTrunk(model), model.num_features, EmbeddingHead(model.num_features, embedding_dim, dropout), name
    )


def load_state_dict_file(model: nn.Module, path: str | Path, ignore: tuple[str, ...] = ()) -> None:
    """Load a state dict file (read safely: ``backbone.models.weights``) into ``model``, with
    errors that say what does not fit."""
    hint = "put downloaded weights in pretrained/ (see pretrained/README.md)"
    state = read_weights(path, "weights file", hint=hint)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict):
        state = {k: v for k, v in state.items() if not (isinstance(k, str) and k.startswith(ignore))}
    fit_weights(model, state, path, "weights file")


@BACKBONES.register("inception_resnet_v1", input_size=160)
def inception_resnet_v1(
    embedding_dim: int, pretrained: bool | str, weights: str | Path | None, dropout: float
) -> Backbone:
    """facenet-pytorch's InceptionResnetV1 (512-d, projected to ``embedding_dim`` when it differs)."""
    from facenet_pytorch import InceptionResnetV1

    if pretrained and pretrained not in FACENET_PRETRAINED:
        raise ValueError(f"inception_resnet_v1: pretrained must be one of {FACENET_PRETRAINED} (or pass weights=FILE)")
    if pretrained:
        try:
            net = InceptionResnetV1(pretrained=pretrained, dropout_prob=dropout)
        except Exception as exc:
            raise RuntimeError(
                f"could not download facenet-pytorch's {pretrained} weights ({type(exc).__name__}: {exc}). "
                "Offline, download the .pt file elsewhere, put it in pretrained/ and pass weights=FILE"
            ) from exc
    else:
        net = InceptionResnetV1(dropout_prob=dropout)
        if weights is not None:
            load_state_dict_file(net, weights, ignore=("logits.",))  # the classifier of the training set
    names = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
             "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8"]  # fmt: skip
    trunk = nn.Sequential(*[getattr(net, n) for n in names])
    head = [net.avgpool_1a, nn.Flatten(), net.dropout, net.last_linear, net.last_bn]
    if embedding_dim != 512:  # keep the pretrained 512-d embedding and project it
        head += [nn.Linear(512, embedding_dim, bias=False), nn.BatchNorm1d(embedding_dim)]
    return Backbone(trunk, 1792, nn.Sequential(*head), "inception_resnet_v1")


class _DlibTrunk(nn.Module):
    """dlib's ResNet up to its last residual block (its 128-d layer is the head's), on the workbook's standardised input
    (``(x - 127.5) / 128``, undone here: dlib subtracts its own channel means and divides by 256)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 150, 150) standardised RGB -> (N, 256, 2, 2)."""
        return self.net.features(x * 128.0 + 127.5)


class _DlibHead(nn.Module):
    """dlib's global average pool and 128-d linear layer (its descriptor), then a projection when
    another embedding size is asked for."""

    def __init__(self, fc: nn.Linear, embedding_dim: int, dropout: float):
        super().__init__()
        self.fc = fc
        self.project = nn.Identity() if embedding_dim == 128 else nn.Sequential(
            nn.Dropout(dropout), nn.Linear(128, embedding_dim, bias=False), nn.BatchNorm1d(embedding_dim)
        )  # fmt: skip

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.project(self.fc(fmap.mean(dim=(2, 3))))


@BACKBONES.register("dlib_resnet", input_size=150, pretrained_on="dlib face-recognition-models, ~3M faces")
def dlib_resnet(embedding_dim: int, pretrained: bool | str, weights: str | Path | None, dropout: float) -> Backbone:
    """dlib's face recognition ResNet: its 128-d descriptor as the embedding (projected when
    ``embedding_dim`` differs); weights from the installed package (``pretrained``) or a file."""
    from backbone.models.dlib_resnet import DlibResNet, load_dlib_resnet

    if pretrained not in (False, True, "dlib"):
        raise ValueError(f"dlib_resnet: pretrained is true (dlib's own weights) or false, got {pretrained!r}")
    if weights is not None and str(weights).endswith(".dat"):
        net = load_dlib_resnet(weights)
    elif pretrained:
        net = load_dlib_resnet()
    else:
        net = DlibResNet()
        if weights is not None:
            load_state_dict_file(net, weights)
    head = _DlibHead(net.fc, embedding_dim, dropout)
    net.fc = nn.Identity()  # the head owns dlib's 128-d layer: a frozen trunk leaves it free to learn
    return Backbone(_DlibTrunk(net), 256, head, "dlib_resnet")


@BACKBONES.register("small", input_size=112)
def small(embedding_dim: int, pretrained: bool | str, weights: str | Path | None, dropout: float) -> Backbone:
    """The small residual CNN for CPU training (no pretrained weights)."""
    if pretrained or weights:
        raise ValueError("the 'small' backbone has no pretrained weights")
    trunk = SmallResNet()
    return Backbone(trunk, trunk.out_channels, EmbeddingHead(trunk.out_channels, embedding_dim, dropout), "small")


@BACKBONES.register("small_grid", input_size=64)
def small_grid(embedding_dim: int, pretrained: bool | str, weights: str | Path | None, dropout: float) -> Backbone:
    """The small residual CNN with a head that keeps the face's layout: its feature map (4x4 at
    64 px) pooled to 4x4 cells and flattened before the linear layer, not averaged to one."""
    if pretrained or weights:
        raise ValueError("the 'small_grid' backbone has no pretrained weights")
    trunk = SmallResNet()
    head = EmbeddingHead(trunk.out_channels, embedding_dim, dropout, grid=4)
    return Backbone(trunk, trunk.out_channels, head, "small_grid")


def default_input_size(name: str) -> int:
    """The input side a backbone is built for: its registered size, else timm's usual 224."""
    return BACKBONES.info(name).get("input_size", TIMM_INPUT_SIZE)


def create_backbone(
    name: str = "small",
    embedding_dim: int = 128,
    pretrained: bool | str = False,
    weights: str | Path | None = None,
    dropout: float = 0.0,
) -> Backbone:
    """Build a backbone by name: a registered one, else a timm model (see the module docstring)."""
    if name in BACKBONES:
        return BACKBONES.create(name, embedding_dim, pretrained, weights, dropout)
    if weights is not None:
        backbone = _timm_backbone(name, embedding_dim, False, dropout)
        load_state_dict_file(backbone.trunk.model, weights, ignore=("fc.", "classifier.", "head."))
        return backbone
    return _timm_backbone(name, embedding_dim, bool(pretrained), dropout)
