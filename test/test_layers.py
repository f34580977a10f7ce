"""The layer rules of DESIGN.md, checked on the import statements of every module (parsed, not
run): what each layer may import, and no import cycles anywhere in ``auras_ros``. Imports inside
functions and under ``if TYPE_CHECKING:`` count too: a deferred import still ties two modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "auras_ros"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # ``from auras_ros.eval import task`` imports the module auras_ros.eval.task.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: {m for m in _imports(path) if m in MODULES or m.split(".")[0] != "auras_ros"}
           for name, path in MODULES.items()}


def _ours(name: str) -> set[str]:
    return {m for m in IMPORTS[name] if m in MODULES and m != name}


def _layer(module: str) -> str:
    """The subpackage a module lives in (``core``, ``models``, ...), or ``root`` for the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "root"


# layer -> the layers of ours it may import (besides itself and the package root)
ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "transport": {"core", "transport"},
}
NO_RCLPY = ("core", "models", "transport", "eval")


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    wrong = {name: sorted(m for m in _ours(name) if _layer(m) not in ALLOWED[layer])
             for name in MODULES if _layer(name) == layer}
    assert {name: bad for name, bad in wrong.items() if bad} == {}


@pytest.mark.parametrize("layer", NO_RCLPY)
def test_layer_is_free_of_ros(layer):
    ros = {name: sorted(m for m in IMPORTS[name] if m.split(".")[0] in ("rclpy", "auras_ros_interfaces"))
           for name in MODULES if _layer(name) == layer}
    assert {name: found for name, found in ros.items() if found} == {}


def test_no_import_cycles():
    # Tarjan's strongly connected components over the module graph: every component must be one module.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in _ours(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    assert cycles == []


def test_the_checks_see_the_modules_they_judge():
    """A parser that found nothing would pass every rule above."""
    assert {"core", "models", "transport", "eval", "nodes", "sim", "bench"} <= {_layer(m) for m in MODULES}
    assert "auras_ros.core.stages" in _ours("auras_ros.core.spec")
    assert "rclpy" in {m.split(".")[0] for name in MODULES if _layer(name) == "nodes" for m in IMPORTS[name]}
