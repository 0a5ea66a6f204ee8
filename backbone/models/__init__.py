"""Models: backbones, the local-global attention network, the Siamese wrapper, checkpoints."""

from backbone.models.attention import ATTENTION, attention_entropy
from backbone.models.backbones import Backbone, create_backbone
from backbone.models.build import ModelConfig, build_model, load_model, save_model
from backbone.models.local_global import LocalGlobalNet, LocalGlobalOutput
from backbone.models.siamese import DISTANCES, PairHead, SiameseNet, pair_distance, pair_score

__all__ = [
    "ATTENTION",
    "DISTANCES",
    "Backbone",
    "LocalGlobalNet",
    "LocalGlobalOutput",
    "ModelConfig",
    "PairHead",
    "SiameseNet",
    "attention_entropy",
    "build_model",
    "create_backbone",
    "load_model",
    "pair_distance",
    "pair_score",
    "save_model",
]
