"""Safe YAML reading for user files, keeping the line of every key for error messages.

Only ``yaml.SafeLoader`` is used. On top of it: duplicate keys, aliases (the "billion laughs"
bomb) and tags are refused, and ``1e-3`` reads as a float (YAML 1.1 would read a string).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from nas_student.errors import ConfigError

Path_ = tuple[str | int, ...]
MAX_BYTES = 1_000_000
#: Deeper nesting is refused before composing (PyYAML's composer recurses once per level).
MAX_DEPTH = 64
_PYTHON_TAG = "tag:yaml.org,2002:python"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose float resolver also accepts ``1e-3`` and ``5E+2``, and whose integers
    longer than Python converts (4,300 digits) are an error at their line, not a traceback."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            digits = sum(c.isdigit() for c in str(node.value))
            raise ConfigError(f"an integer of {digits:,} digits is too long to be read; numbers here need far fewer",
                              file=self.name, line=_line(node)) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _line(node_or_mark: Any) -> int:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return mark.line + 1


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> None:
    """Record the line of every key path; refuse duplicate keys and explicit tags."""
    lines[path] = _line(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("a key must be a plain scalar (a name or a number), "
                                  f"not a {'list' if isinstance(key_node, yaml.SequenceNode) else 'mapping'}",
                                  file=file, line=_line(key_node), key=_dotted(path) or None)
            key = key_node.value
            dotted = _dotted(path + (key,))
            if key in seen:
                raise ConfigError(
                    f"duplicate key (first defined on line {seen[key]})",
                    file=file, line=_line(key_node), key=dotted,
                )
            seen[key] = _line(key_node)
            _walk(value_node, path + (key,), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines, file)


def _dotted(path: Path_) -> str:
    return ".".join(p if isinstance(p, str) and p.isprintable() else repr(p) if isinstance(p, str)
                    else str(p) for p in path)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_yaml(path: str | Path) -> tuple[Any, dict[Path_, int]]:
    """Read a user YAML file: its data and a map from key path to line number."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", file=name) from None
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror}", file=name) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"file larger than {MAX_BYTES} bytes (the limit falls on this line)",
                          file=name, line=raw[:MAX_BYTES].count(b"\n") + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", file=name,
                          line=raw[:e.start].count(b"\n") + 1) from None
    return loads_yaml(text, name)


def loads_yaml(text: str, name: str = "<string>") -> tuple[Any, dict[Path_, int]]:
    """Like :func:`load_yaml`, for text already in memory."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise ConfigError(
                    "YAML aliases (*name) are not allowed; write the value out",
                    file=name, line=_line(event),
                )
            tag = getattr(event, "tag", None)
            if isinstance(tag, str) and tag.startswith(_PYTHON_TAG):
                # explicit tags only (implicit ones are never python/...), on scalars too
                raise ConfigError(f"tag {tag!r} is not allowed (files are data, not code)",
                                  file=name, line=_line(event))
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=name,
                                      line=_line(event))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        node = yaml.compose(text, Loader=_Loader)
        lines: dict[Path_, int] = {}
        if node is not None:
            _walk(node, (), lines, name)
        loader = _Loader(text)  # a SafeLoader: constructs plain data only
        loader.name = name
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except ConfigError:
        raise
    except yaml.reader.ReaderError as e:
        where = text[:e.position].count("\n") + 1 if isinstance(e.position, int) else None
        char = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        raise ConfigError(f"invalid character {char} ({_one_line(e.reason)})", file=name,
                          line=where) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = _one_line(e.problem or e.context or "invalid YAML")
        if e.problem and e.context:
            problem = f"{problem} ({_one_line(e.context)})"
        raise ConfigError(f"YAML syntax error: {problem}", file=name,
                          line=_line(mark) if mark else None) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {_one_line(e)}", file=name) from None
    except RecursionError:  # a safety net: MAX_DEPTH should make this unreachable
        raise ConfigError("nested too deeply", file=name) from None
    return data, lines


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path`` or of its nearest parent that has one."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
