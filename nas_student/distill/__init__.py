"""Distillation: losses, and the one trainer shared by the search proxy and full training."""

from nas_student.distill.losses import kd_loss
from nas_student.distill.trainer import Budget, TrainResult, evaluate, predict, train

__all__ = ["Budget", "TrainResult", "evaluate", "kd_loss", "predict", "train"]
