"""Loading user code (``module:function`` factories), only when the user said to trust it."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas_student.errors import NasStudentError


class TrustError(NasStudentError):
    """Code would run that the user has not allowed."""


def require_trust(trust: bool, what: str, source: str) -> None:
    if not trust:
        raise TrustError(f"{what} {source!r} runs Python code; pass --trust-code "
                         "(or trust_code: true in the run file) to allow it")


def refusal(e: Exception) -> str:
    """One line saying why ``torch.load(..., weights_only=True)`` refused a file. Torch's own
    message spans lines, carries terminal escapes and explains how to turn the check off."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:  # the reason follows, on this line or the next
            reason = line.split("WeightsUnpickler error:", 1)[1].strip() or (lines[i + 1] if i + 1 < len(lines) else "")
            if reason:
                return _sentence(reason)
    reasons = [line for line in lines if not line.startswith(_TORCH_ADVICE)]
    return _sentence(reasons[0]) if reasons else type(e).__name__


#: lines of torch's weights_only message that explain how to turn the check off, not why it failed
_TORCH_ADVICE = ("Weights only load failed", "(1)", "(2)", "Re-running", "Please file an issue", "Check the documentation",
                 "This file can still be loaded", "In PyTorch 2.6")


def _sentence(text: str) -> str:
    """The first sentence of ``text`` (at most 200 characters), without its closing period."""
    return text.split(". ")[0].rstrip(".")[:200]


def load_callable(spec: str, *, trust: bool, what: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function``."""
    require_trust(trust, what, spec)
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise NasStudentError(f"{what} {spec!r}: expected 'module:function' or 'file.py:function'")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise NasStudentError(f"{what} {spec!r}: file not found: {path}")
            mod_name = f"nas_student_user_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
            sys.modules[mod_name] = module
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(target)
    except NasStudentError:
        raise
    except Exception as e:  # noqa: BLE001 - user code: report in one line
        raise NasStudentError(f"{what} {spec!r}: importing failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise NasStudentError(f"{what} {spec!r}: {target} has no function {name!r}")
    return fn


def call_user(fn: Callable[..., Any], what: str, spec: str, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except Exception as e:  # noqa: BLE001 - user code: report in one line
        raise NasStudentError(f"{what} {spec!r} raised {type(e).__name__}: {e}") from None
