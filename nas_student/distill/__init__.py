"""Distillation: losses, and the one trainer shared by the search proxy and full training."""

from nas_student.distill.losses import kd_loss
from nas_student.distill.recipe import ProxyRecipe, Recipe
from nas_student.distill.trainer import Budget, TrainResult, evaluate, predict, train

__all__ = ["Budget", "ProxyRecipe", "Recipe", "TrainResult", "evaluate", "kd_loss", "predict", "train"]
