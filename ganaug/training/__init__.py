"""Conditional GAN training: options, the loop, run directories and resumable checkpoints."""

from ganaug.training.config import TrainConfig
from ganaug.training.loop import Trainer, TrainingDiverged, TrainResult
from ganaug.training.run import train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingDiverged", "train"]
