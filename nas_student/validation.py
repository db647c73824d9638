"""Turn pydantic's validation errors into one ConfigError naming file, line, key, rule and value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from nas_student.errors import ConfigError
from nas_student.yamlio import Path_, line_of


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def config_error_from(
    err: ValidationError, *, file: str | None, lines: dict[Path_, int], prefix: Path_ = ()
) -> ConfigError:
    """The first error of ``err`` as a ConfigError; the count of the others is appended."""
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
    path = tuple(prefix) + loc
    rule = _rule(first)
    extra = len(err.errors()) - 1
    if extra:
        rule += f" [and {extra} more error{'s' if extra > 1 else ''}]"
    value = ... if first["type"] in ("missing",) else first.get("input", ...)
    if isinstance(value, (dict, list)):
        value = ...
    return ConfigError(rule, file=file, line=line_of(lines, path), key=dotted(path) or None,
                       value=value)


def _rule(e: dict[str, Any]) -> str:
    kind = e["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = e["msg"]
    return msg[0].lower() + msg[1:]


def validate_model(model: type[BaseModel], data: Any, *, file: str | None,
                   lines: dict[Path_, int], prefix: Path_ = ()) -> Any:
    """``model.model_validate(data)`` with errors reported as ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise config_error_from(err, file=file, lines=lines, prefix=prefix) from None
