"""Distillation: losses, and the one trainer shared by the search proxy and full training.

Names are loaded when first used (PEP 562), so that the torch-free settings (``recipe``,
``datafree_settings``) can be read, e.g. to validate a run file, without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"kd_loss": "losses", "ProxyRecipe": "recipe", "Recipe": "recipe", "score": "trainer",
          "TrainResult": "trainer", "evaluate": "trainer", "predict": "trainer", "train": "trainer"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nas_student.distill' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nas_student.distill.{_WHERE[name]}"), name)


__all__ = sorted(_WHERE)
