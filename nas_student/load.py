"""Rebuild an exported student from its spec: ``nas_student.load_student(spec)``.

A spec is ``{"arch": {...}, "io": {"input_shape": [...], "num_outputs": N}}`` (the ``arch.json``
of an export bundle), given as a dict or as a path to that JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_student.errors import NasStudentError

if TYPE_CHECKING:  # torch is imported on use: `import nas_student` stays light
    from torch import nn


def load_student(spec: Mapping[str, Any] | str | Path, weights: str | Path | None = None) -> "nn.Module":
    """The ``nn.Module`` the spec describes (fresh initialisation, training mode). With
    ``weights`` (a state_dict file, e.g. a bundle's ``weights.pt``), the weights are loaded and
    the module is put in eval mode."""
    import torch

    from nas_student.families import ModelIO
    from nas_student.families import build as build_arch

    if isinstance(spec, (str, Path)):
        try:
            spec = json.loads(Path(spec).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise NasStudentError(f"{spec}: cannot read the spec: {e}") from None
    if not isinstance(spec, Mapping) or "arch" not in spec or "io" not in spec:
        raise NasStudentError("a spec is a mapping with 'arch' and 'io' keys")
    io = spec["io"]
    try:
        model_io = ModelIO.from_dict({**io, "input_shape": [int(d) for d in io["input_shape"]],
                                      "num_outputs": int(io["num_outputs"])})
    except (KeyError, TypeError, ValueError):
        raise NasStudentError("spec io must be {'input_shape': [ints], 'num_outputs': int}") from None
    model = build_arch(dict(spec["arch"]), model_io)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
    return model


__all__ = ["load_student"]
