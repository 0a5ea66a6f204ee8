"""Training: the config, the per-regime objectives, the data they read, and the loop."""

from backbone.training.config import TrainConfig
from backbone.training.trainer import TrainingDiverged, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train"]
