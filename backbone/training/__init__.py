"""Training: the config, the regimes (what a batch is, its data and its loss), the optimisers, and the loop."""

from backbone.training.config import TrainConfig
from backbone.training.trainer import TrainingDiverged, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train"]
