"""The user's teacher: a factory + weights, a TorchScript file, or a local HF model folder.

Whatever the model returns (a tensor, a tuple, a dict, an object with ``.logits``), the
wrapper returns the logits tensor. Weights load with ``weights_only=True`` (or safetensors);
a checkpoint that would need to run code to load is refused, never executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_student.config import TeacherSpec
from nas_student.errors import NasStudentError
from nas_student.tasks.code import call_user, load_callable, refusal, require_trust


class TeacherError(NasStudentError):
    """The teacher cannot be loaded or run."""


def logits_of(out: Any) -> torch.Tensor:
    """The logits in whatever a model returned."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    if isinstance(out, dict):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    raise TeacherError(f"the teacher returned {type(out).__name__}; expected a tensor of logits, "
                       "a tuple or dict holding one, or an object with .logits")


class LogitsOnly(nn.Module):
    """Wraps a teacher so that it returns only its logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x))


def load_state_dict(path_s: str) -> dict[str, torch.Tensor]:
    path = Path(path_s)
    if not path.is_file():
        raise TeacherError(f"teacher.weights: file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001
            raise TeacherError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"{path}: refused: not loadable with weights_only=True (a checkpoint that "
                           f"needs code to load is never executed): {refusal(e)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TeacherError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    return state


def _from_hf(folder: str) -> nn.Module:
    try:
        import transformers
    except ImportError:
        raise TeacherError("teacher.hf_dir needs the transformers package: "
                           "pip install 'nas-student[hf]'") from None
    if not Path(folder).is_dir():
        raise TeacherError(f"teacher.hf_dir: folder not found: {folder}")
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        arch = (config.architectures or [None])[0]
        cls = getattr(transformers, arch, None) if arch else None
        if cls is None:
            raise TeacherError(f"teacher.hf_dir {folder}: config names no known architecture ({arch!r})")
        return cls.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except TeacherError:
        raise
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"teacher.hf_dir {folder}: cannot load ({type(e).__name__}: {e})") from None


def load_teacher(spec: TeacherSpec, *, trust: bool, device: torch.device) -> nn.Module:
    """The teacher, wrapped to return logits, frozen, in eval mode, on ``device``."""
    if spec.factory:
        fn = load_callable(spec.factory, trust=trust, what="teacher.factory")
        model = call_user(fn, "teacher.factory", spec.factory, **spec.kwargs)
        if not isinstance(model, nn.Module):
            raise TeacherError(f"teacher.factory {spec.factory!r} returned {type(model).__name__}, "
                               "not a torch.nn.Module")
        if spec.weights:
            state = load_state_dict(spec.weights)
            try:
                model.load_state_dict(state)
            except RuntimeError as e:
                msg = " ".join(str(e).split())[:300]
                raise TeacherError(f"{spec.weights}: does not fit the factory's model: {msg}") from None
    elif spec.torchscript:
        require_trust(trust, "teacher.torchscript", spec.torchscript)
        if not Path(spec.torchscript).is_file():
            raise TeacherError(f"teacher.torchscript: file not found: {spec.torchscript}")
        try:
            model = torch.jit.load(spec.torchscript, map_location="cpu")
        except Exception as e:  # noqa: BLE001
            raise TeacherError(f"{spec.torchscript}: not a TorchScript file ({type(e).__name__})") from None
    else:
        model = _from_hf(spec.hf_dir or "")
    wrapped = LogitsOnly(model).to(device).eval()
    for p in wrapped.parameters():
        p.requires_grad_(False)
    return wrapped
