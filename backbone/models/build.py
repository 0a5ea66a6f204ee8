"""Model configuration, construction, and checkpoints that rebuild themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from backbone.atomic import atomic_path
from backbone.devices import resolve_device
from backbone.models.attention import ATTENTION
from backbone.models.backbones import create_backbone, default_input_size
from backbone.models.local_global import LocalGlobalNet
from backbone.models.mark_map import MarkMapNet
from backbone.models.siamese import DISTANCES, SiameseNet
from backbone.models.weights import CheckpointError, fit_weights, read_weights
from backbone.paths import project_path
from backbone.settings import AT_LEAST_1, ConfigError, Range, build


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: saved in every checkpoint."""

    backbone: str = "small"
    embedding_dim: int = 128
    pretrained: bool | str = False
    weights: str | None = None  # a state-dict file, e.g. in pretrained/
    attention: str | None = None  # None: global only; "cbam" | "spatial" | "transformer": local-global;
    # "marks": the mark-map network (backbone.models.mark_map), its local branch learnt from mark masks
    branch_dim: int = 256  # local-global: size of each branch's embedding
    distance: str = "cosine"
    pair_head: bool = False
    dropout: float = 0.0
    input_size: int | None = None  # None: the backbone's default (112 small, 160 inception, 224 timm)
    flip_average: bool = False  # evaluation embeds each image and its mirror image, summed (not for twins)
    tta_zoom: float | None = None  # evaluation also embeds each image zoomed to z and 1/z of its size, summed

    RANGES: ClassVar[dict[str, Range]] = {
        "embedding_dim": AT_LEAST_1, "branch_dim": AT_LEAST_1, "dropout": Range(0, 1, high_open=True),
        "input_size": Range(32), "tta_zoom": Range(0, 1, low_open=True, high_open=True),
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.attention is not None:
            ATTENTION.get(self.attention)  # an unknown name lists the registered ones
        DISTANCES.get(self.distance)

    @property
    def image_size(self) -> int:
        return self.input_size or default_input_size(self.backbone)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """A model config from its dict form, every value type-checked (``backbone.settings``)."""
        return build(cls, d, "model.")


def build_model(config: ModelConfig, load_pretrained: bool = True) -> SiameseNet:
    """The SiameseNet a config describes. ``load_pretrained=False`` skips weight downloads/files
    (used when a checkpoint's own weights are loaded next)."""
    pretrained = config.pretrained if load_pretrained else False
    weights = config.weights if load_pretrained else None
    backbone = create_backbone(config.backbone, config.embedding_dim, pretrained, weights, config.dropout)
    dim = config.embedding_dim
    if config.attention is None:
        net = backbone
    elif config.attention == MarkMapNet.kind:
        if config.pair_head:
            raise ValueError("the mark-map network (attention 'marks') has no pair head: compare its embeddings")
        net = MarkMapNet(backbone, config.embedding_dim)
        dim += MarkMapNet.cells(config.image_size)
    else:
        net = LocalGlobalNet(backbone, config.attention, config.embedding_dim, config.branch_dim)
    return SiameseNet(net, dim, config.distance, config.pair_head, config.flip_average, config.tta_zoom)


def save_model(model: SiameseNet, config: ModelConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``{"model_config", "model", **extra}`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"model_config": asdict(config), "model": model.state_dict(), **(extra or {})}, tmp)


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu", device: str | torch.device | None = None
) -> tuple[SiameseNet, ModelConfig, dict]:
    """Rebuild a model from a checkpoint; returns (model in eval mode, config, the whole checkpoint).

    The file is read onto ``map_location``; the model is then moved to ``device`` once (a name
    for ``backbone.devices.resolve_device``: "auto", "cpu", "cuda", "cuda:N"; None: it stays).
    The file is read safely (``backbone.models.weights``: a file holding code is refused) and every
    error names it: not a checkpoint, a config that does not type-check, weights that do not fit."""
    ckpt = read_checkpoint(path, map_location)
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {project_path(path)}: {exc}") from None
    model = build_model(config, load_pretrained=False)
    fit_weights(model, ckpt["model"], project_path(path))
    if device is not None:
        model = model.to(resolve_device(device))
    return model.eval(), config, ckpt


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint's content (read with ``weights_only=True``), checked to be one of ours."""
    ckpt = read_weights(path, "checkpoint", map_location)
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{project_path(path)} is not a backbone checkpoint (no model_config/model entries)")
    return ckpt
