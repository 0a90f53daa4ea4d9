"""Training: Darknet's learning-rate policies and the Trainer (train_network)."""
from .trainer import Trainer

__all__ = ["Trainer"]
