"""The package's layout stays readable: no import cycle between its modules or between its
sub-packages, no private name imported across modules, no module over 400 lines.

Every import counts, those inside functions too (a lazy import still ties two modules); only
imports under ``if TYPE_CHECKING:`` and a package's ``__init__`` importing its own children
(its public face) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nas_student

ROOT = Path(nas_student.__file__).parent
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("nas_student",) + path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name) for every import of the package in ``module``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base.split(".")[0] != "nas_student":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((_resolve(full) if full in MODULES else _resolve(base), alias.name))
        elif isinstance(node, ast.Import):
            out += [(_resolve(a.name), "") for a in node.names if a.name.split(".")[0] == "nas_student"]
    return [(t, n) for t, n in out if t is not None]


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m, p) if t != m and not t.startswith(m + ".")}
            for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py") else None


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_subpackages():
    pkg_graph: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        for t in targets:
            a, b = _subpackage(m), _subpackage(t)
            if a and b and a != b:
                pkg_graph.setdefault(a, set()).add(b)
    assert _cycles(pkg_graph) == []


def test_no_private_name_imported_across_modules():
    private = [f"{m} imports {name} from {t}" for m, p in MODULES.items() for t, name in _imports(m, p)
               if name.startswith("_") and not name.startswith("__") and t != m]
    assert private == []


def test_no_module_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in MODULES.values() if (n := p.read_text().count("\n")) > MAX_LINES]
    assert long == []


def test_the_check_sees_a_cycle():
    """The cycle finder is not vacuous: a hand-made cycle is found, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert len(MODULES) > 50 and "nas_student.cli.app" in MODULES
