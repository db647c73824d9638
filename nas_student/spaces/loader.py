"""Read and validate a search-space file once; every error names file, line, key and rule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nas_student.errors import ConfigError, NasStudentError
from nas_student.spaces.rules import Rule, RuleSyntaxError
from nas_student.spaces.mixed import MixedSpace
from nas_student.spaces.schema import LEAF_TYPES, BranchHeader, MixedHeader, RepeatParam, SpaceHeader
from nas_student.spaces.space import Fixed, Param, RandomSuggester, Repeat, Space
from nas_student.validation import MAX_VALUE_CHARS, dotted, validate_model
from nas_student.yamlio import Path_, line_of, load_yaml

N_CHECK_SAMPLES = 64


def parse_space(data: Any, lines: dict[Path_, int], file: str, check: bool = True) -> Space | MixedSpace:
    """Build a :class:`Space` (or a :class:`MixedSpace` when the file has ``families``) from
    parsed YAML; raises ConfigError on the first problem. ``check=False`` skips building sample
    architectures against their family (which imports torch): for listing spaces already known
    to be sound (the built-in ones, which the tests check)."""
    if not isinstance(data, dict):
        raise ConfigError("a space file must be a mapping with keys name, family, params",
                          file=file, line=1)
    if "families" in data:
        return _parse_mixed(data, lines, file, check)
    head: SpaceHeader = validate_model(SpaceHeader, data, file=file, lines=lines)
    return _parse_family(head.name, head.family, data, lines, file, (), head.description, check)


def _parse_mixed(data: dict[str, Any], lines: dict[Path_, int], file: str, check: bool) -> MixedSpace:
    head: MixedHeader = validate_model(MixedHeader, data, file=file, lines=lines)
    branches = {}
    for family, branch in head.families.items():
        prefix = ("families", family)
        validate_model(BranchHeader, branch, file=file, lines=lines, prefix=prefix)
        branches[family] = _parse_family(head.name, family, branch, lines, file, prefix, head.description, check)
    return MixedSpace(name=head.name, branches=branches, description=head.description, source=file)


def _parse_family(name: str, family: str, data: dict[str, Any], lines: dict[Path_, int], file: str,
                  prefix: Path_, description: str, check: bool) -> Space:
    """One family's parameters and rules (a whole one-family file, or one branch of a mixed one)."""
    head: BranchHeader = validate_model(BranchHeader, {k: data[k] for k in ("params", "rules") if k in data},
                                        file=file, lines=lines, prefix=prefix)
    if not head.params:
        raise ConfigError("at least one parameter is needed", file=file,
                          line=line_of(lines, prefix + ("params",)), key=dotted(prefix + ("params",)))
    ctx = _Ctx(file, lines)
    params = {n: ctx.param(v, prefix + ("params", n), top=True) for n, v in head.params.items()}
    top_names = set(params)
    rules = tuple(ctx.rule(t, prefix + ("rules", i), top_names) for i, t in enumerate(head.rules))
    for n, p in params.items():
        if isinstance(p, Repeat):
            allowed = top_names | set(p.params) | {"index"}
            compiled = tuple(ctx.rule(t, prefix + ("params", n, "rules", i), allowed)
                             for i, t in enumerate(data["params"][n].get("rules", [])))
            params[n] = Repeat(p.count, p.params, compiled)
    space = Space(name=name, family=family, params=params, rules=rules, description=description, source=file)
    if check:
        _check_against_family(space, lines, file, prefix)
    return space


class _Ctx:
    def __init__(self, file: str, lines: dict[Path_, int]) -> None:
        self.file, self.lines = file, lines

    def error(self, rule: str, path: Path_, value: Any = ...) -> ConfigError:
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + "..."
        return ConfigError(rule, file=self.file, line=line_of(self.lines, path),
                           key=dotted(path), value=value)

    def param(self, value: Any, path: Path_, *, top: bool) -> Param:
        if isinstance(value, dict):
            kind = value.get("type")
            if not isinstance(kind, str):  # a list or mapping here is not a type name (and unhashable)
                kind = None if kind is None else repr(kind)
            if kind in LEAF_TYPES:
                return validate_model(LEAF_TYPES[kind], value, file=self.file, lines=self.lines,
                                      prefix=path)
            if kind == "repeat" and top:
                r: RepeatParam = validate_model(RepeatParam, value, file=self.file,
                                                lines=self.lines, prefix=path)
                if not r.params:
                    raise self.error("a repeat needs at least one layer parameter", path + ("params",))
                inner = {k: self.param(v, path + ("params", k), top=False) for k, v in r.params.items()}
                return Repeat(r.count, inner)  # type: ignore[arg-type]
            kinds = ["int", "float", "choice"] + (["repeat"] if top else [])
            rule = (f"`type` must be one of {', '.join(kinds)}" if "type" in value
                    else f"a parameter mapping needs `type` ({', '.join(kinds)}); "
                         "write a fixed value as a plain scalar")
            return_path = path + ("type",) if "type" in value else path
            raise self.error(rule, return_path, value.get("type", ...))
        if value is None:
            raise self.error("a value is required (got null)", path)
        if isinstance(value, list):
            if not all(isinstance(v, (bool, int, float, str)) for v in value):
                raise self.error("a fixed list may hold only numbers, strings and booleans", path)
            return Fixed(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("a fixed value must be finite", path, value)
        return Fixed(value)

    def rule(self, text: Any, path: Path_, allowed: set[str]) -> Rule:
        if not isinstance(text, str):
            raise self.error("a rule must be a string expression", path, text)
        try:
            rule = Rule(text)
        except RuleSyntaxError as e:
            raise self.error(f"invalid rule: {e}", path, text) from None
        unknown = sorted(rule.names - allowed)
        if unknown:
            raise self.error(f"rule uses unknown name(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(allowed))}", path, text)
        return rule


def _check_against_family(space: Space, lines: dict[Path_, int], file: str, prefix: Path_) -> None:
    """The family must exist and accept what the space samples; some arch must obey the rules."""
    from nas_student.families import get_family

    try:
        family = get_family(space.family)
    except NasStudentError as e:
        where = prefix or ("family",)
        raise ConfigError(str(e), file=file, line=line_of(lines, where), key=dotted(where)) from None
    if space.size == 0:
        raise ConfigError("no architecture satisfies the rules; the space is empty",
                          file=file, line=line_of(lines, prefix + ("rules",)), key=dotted(prefix + ("rules",)))
    rng = RandomSuggester(0)
    valid = 0
    for _ in range(N_CHECK_SAMPLES):
        arch = space.sample(rng)
        if space.violations(arch):
            continue
        valid += 1
        problem = family.check_arch(arch)
        if problem is not None:
            path, rule = problem
            rule = rule[:1].lower() + rule[1:]
            key_path = prefix + ("params",) + tuple(path)
            if len(path) >= 2 and isinstance(path[1], int):  # stages[1].width -> params.stages.params.width
                key_path = prefix + ("params", path[0], "params") + tuple(path[2:])
            if "(got " in rule:  # the value is a sample of this space's range, not a value the file wrote
                rule = rule.replace("(got ", "(the space samples ", 1)
            raise ConfigError(f"family {space.family!r}: {rule}", file=file,
                              line=line_of(lines, key_path), key=dotted(key_path))
    if valid == 0 and (space.size is None or space.size == math.inf):  # not counted exactly
        raise ConfigError(f"none of {N_CHECK_SAMPLES} sampled architectures satisfies the rules",
                          file=file, line=line_of(lines, prefix + ("rules",)), key=dotted(prefix + ("rules",)))


def load_space_file(path: str | Path, check: bool = True) -> Space | MixedSpace:
    data, lines = load_yaml(path)
    return parse_space(data, lines, str(path), check)
