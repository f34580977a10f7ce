"""The layer rules of DESIGN.md, checked on the import statements of every module (parsed, not
run): what each folder may import, which folders stay free of ROS, and no import cycles anywhere in
``auras_ros``. Imports inside functions and under ``if TYPE_CHECKING:`` count too: a deferred import
still ties two modules. A self-test plants forbidden imports and expects every rule to catch them.

The house, bottom up: ``core`` (the method); ``models`` and ``transport`` on it; ``eval`` (tasks,
scoring, bags, the ROS-free world) on those; ``nodes`` (the ROS adapters); ``sim`` (the simulator's
and evaluator's nodes) on eval and nodes; ``bench`` and the package's top-level entry points on all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "auras_ros"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved); ``module``: its name when
    it does not live in the package (the self-test's planted file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
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
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _ours(name: str, imports: dict[str, set[str]] = IMPORTS) -> set[str]:
    return {m for m in imports[name] if m in MODULES and m != name}


def is_ros(module: str) -> bool:
    """rclpy, launch and launch_ros, any ``*_msgs`` package, and our own interfaces (``auras_ros.msg``)."""
    top = module.split(".")[0]
    return (top == "rclpy" or top.startswith("launch") or top.endswith("_msgs")
            or module == "auras_ros.msg" or module.startswith("auras_ros.msg."))


def _layer(module: str) -> str:
    """The subpackage a module lives in (``core``, ``models``, ...), or ``root`` for the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "root"


# folder -> the folders of ours it may import; every folder has a rule
ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "transport": {"core", "transport"},
    "eval": {"core", "models", "transport", "eval"},
    "nodes": {"core", "models", "transport", "nodes"},
    "sim": {"core", "models", "transport", "eval", "nodes", "sim"},
    "bench": {"core", "models", "transport", "eval", "nodes", "bench", "root"},
    "root": {"core", "models", "transport", "eval", "nodes", "sim", "bench", "root"},
}
ROS_FREE = ("core", "models", "transport", "eval")


def layer_violations(layer: str, imports: dict[str, set[str]] = IMPORTS) -> dict[str, list[str]]:
    wrong = {name: sorted(m for m in _ours(name, imports) if _layer(m) not in ALLOWED[layer])
             for name in imports if _layer(name) == layer}
    return {name: bad for name, bad in wrong.items() if bad}


def ros_imports(layer: str, imports: dict[str, set[str]] = IMPORTS) -> dict[str, list[str]]:
    found = {name: sorted(m for m in imports[name] if is_ros(m)) for name in imports if _layer(name) == layer}
    return {name: ros for name, ros in found.items() if ros}


def test_every_folder_has_a_rule():
    assert {_layer(m) for m in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    assert layer_violations(layer) == {}


@pytest.mark.parametrize("layer", ROS_FREE)
def test_layer_is_free_of_ros(layer):
    assert ros_imports(layer) == {}


def test_the_rules_catch_a_planted_forbidden_import(tmp_path):
    """A copy of core/errors.py that imports our interfaces, a message package and a node must fail
    both rules (the old check passed exactly this)."""
    planted = tmp_path / "errors.py"
    planted.write_text(MODULES["auras_ros.core.errors"].read_text()
                       + "\nfrom auras_ros.msg import Percept\nimport std_msgs.msg\nfrom ..nodes import qos\n")
    imports = dict(IMPORTS, **{"auras_ros.core.errors": _imports(planted, "auras_ros.core.errors")})
    assert ros_imports("core", imports) == {"auras_ros.core.errors": ["auras_ros.msg", "auras_ros.msg.Percept",
                                                                     "std_msgs.msg"]}
    assert layer_violations("core", imports) == {"auras_ros.core.errors": ["auras_ros.nodes", "auras_ros.nodes.qos"]}
    assert all(is_ros(m) for m in ("rclpy.node", "launch_ros.actions", "launch", "sensor_msgs.msg"))
    assert not any(is_ros(m) for m in ("rosbags.rosbag2", "numpy", "auras_ros.core.errors"))


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
    assert ros_imports("nodes") and "auras_ros.msg" in IMPORTS["auras_ros.nodes.perception_node"]
