"""Train a model on exported feedback with TRL (``pip install 'tuneback[train]'``)."""

from tuneback.training.options import METHODS, Method, TrainingOptions, TrainingSummary
from tuneback.training.pipeline import train_model

__all__ = ["METHODS", "Method", "TrainingOptions", "TrainingSummary", "train_model"]
