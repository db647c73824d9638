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


class RuleSyntaxError(ValueError):
    """The rule is not a valid expression of the rule language."""


class Rule:
    """A compiled rule; :meth:`holds` evaluates it against a mapping of names to values."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = ast.parse(text, mode="eval").body
        except SyntaxError as e:
            raise RuleSyntaxError(f"not a valid expression: {e.msg}") from None
        self.names: set[str] = set()
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id not in _FUNCS and node.id not in ("True", "False"):
                self.names.add(node.id)
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS) or node.keywords:
                raise RuleSyntaxError(f"only the functions {sorted(_FUNCS)} may be called")
            for arg in node.args:
                self._check(arg)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                self._check(e)
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


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        return scope[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, scope), _eval(node.right, scope)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise OverflowError("exponent too large")
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
