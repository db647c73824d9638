"""Rules between parameters: small, safe expressions such as ``width % groups == 0``.

Parsed with :mod:`ast` and evaluated by walking a whitelist of node types: no attribute
access, no subscripts, no calls but ``min``, ``max``, ``abs``. Nothing is ever ``eval``'d.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b}
_FUNCS = {"min": min, "max": max, "abs": abs}
MAX_RULE_CHARS = 1000
MAX_RULE_DEPTH = 50
#: Results larger than this (bits of an integer, items of a repeated string or list) are refused.
MAX_INT_BITS = 4096
MAX_SEQUENCE = 10_000


class RuleSyntaxError(ValueError):
    """The rule is not a valid expression of the rule language."""


class Rule:
    """A compiled rule; :meth:`holds` evaluates it against a mapping of names to values."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_RULE_CHARS:
            raise RuleSyntaxError(f"a rule may have at most {MAX_RULE_CHARS} characters, "
                                  f"this one has {len(text)}")
        try:
            self._tree = ast.parse(text, mode="eval").body
        except SyntaxError as e:
            raise RuleSyntaxError(f"not a valid expression: {' '.join(str(e.msg).split())}") from None
        except (RecursionError, MemoryError):
            raise RuleSyntaxError("the expression is nested too deeply") from None
        self.names: set[str] = set()
        self._check(self._tree)

    def _check(self, node: ast.AST, depth: int = 0) -> None:
        if depth > MAX_RULE_DEPTH:
            raise RuleSyntaxError(f"the expression is nested deeper than {MAX_RULE_DEPTH} levels")
        depth += 1
        if isinstance(node, ast.Name):
            if node.id in _FUNCS:
                raise RuleSyntaxError(f"{node.id!r} is a function: call it, e.g. {node.id}(a, b)")
            if node.id not in ("True", "False"):
                self.names.add(node.id)
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS) or node.keywords:
                raise RuleSyntaxError(f"only the functions {sorted(_FUNCS)} may be called")
            for arg in node.args:
                self._check(arg, depth)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            self._check(node.left, depth)
            self._check(node.right, depth)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand, depth)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v, depth)
        elif isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            self._check(node.left, depth)
            for c in node.comparators:
                self._check(c, depth)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                self._check(e, depth)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            pass
        else:
            raise RuleSyntaxError(f"{type(node).__name__} is not allowed in a rule")

    def holds(self, scope: Mapping[str, Any]) -> bool:
        try:
            return bool(_eval(self._tree, scope))
        except (ZeroDivisionError, TypeError, OverflowError, ValueError):
            return False

    def __repr__(self) -> str:
        return f"Rule({self.text!r})"


def _bits(x: Any) -> int:
    return x.bit_length() if isinstance(x, int) else 0


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse results that would take much time or memory (``9**9**9``, ``'a' * 10**12``)."""
    if isinstance(op, ast.Pow):
        if abs(right) > 64 or _bits(left) * max(int(abs(right)), 1) > MAX_INT_BITS:
            raise OverflowError("result too large")
    elif isinstance(op, ast.Mult):
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
                raise OverflowError("result too large")
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            raise OverflowError("result too large")


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        return scope[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, scope), _eval(node.right, scope)
        _check_size(node.op, left, right)
        return _BIN[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, scope)
        return not v if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, scope) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, scope)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, ast.Call):
        return _FUNCS[node.func.id](*(_eval(a, scope) for a in node.args))  # type: ignore[attr-defined]
    raise RuleSyntaxError(f"{type(node).__name__} is not allowed in a rule")
