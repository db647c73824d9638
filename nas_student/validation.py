"""Turn pydantic's validation errors into one ConfigError naming file, line, key, rule and value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from nas_student.errors import ConfigError
from nas_student.yamlio import Path_, line_of


def dotted(path: Path_) -> str:
    """``("params", "stages", 0)`` -> ``params.stages[0]``; keys that are not printable
    (newlines, control characters) are quoted so that a message stays on one line."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
            continue
        text = part if isinstance(part, str) and part.isprintable() else repr(part)
        out += f".{text}" if out else text
    return out


MAX_VALUE_CHARS = 120


def config_error_from(
    err: ValidationError, *, file: str | None, lines: dict[Path_, int], prefix: Path_ = (),
    data: Any = ...,
) -> ConfigError:
    """The first error of ``err`` as a ConfigError; the count of the others is appended.

    Given the validated ``data``, parts of the error's location that are no key of it
    (pydantic's union member tags such as ``constrained-int``) are left out of the key."""
    errors = err.errors()
    # an unknown key is usually a misspelt one: name it rather than the key it left missing
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
    if data is not ...:
        loc = _keys_in(data, loc, missing=first["type"] == "missing")
    path = tuple(prefix) + loc
    rule = _rule(first)
    if "[key]" in first["loc"]:
        rule = f"a key: {rule}"
    extra = len(err.errors()) - 1
    if extra:
        rule += f" [and {extra} more error{'s' if extra > 1 else ''}]"
    value = ... if first["type"] in ("missing",) else first.get("input", ...)
    if isinstance(value, (dict, list)):
        value = ...
    elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "..."
    return ConfigError(rule, file=file, line=line_of(lines, path), key=dotted(path) or None,
                       value=value)


def _keys_in(data: Any, loc: tuple, *, missing: bool) -> tuple:
    kept: tuple = ()
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            kept, node = kept + (part,), node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept, node = kept + (part,), node[part]
        elif missing and i == len(loc) - 1:
            kept += (part,)
    return kept


def _rule(e: dict[str, Any]) -> str:
    kind = e["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = " ".join(str(e["msg"]).split()).removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def validate_model(model: type[BaseModel], data: Any, *, file: str | None,
                   lines: dict[Path_, int], prefix: Path_ = ()) -> Any:
    """``model.model_validate(data)`` with errors reported as ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise config_error_from(err, file=file, lines=lines, prefix=prefix, data=data) from None
