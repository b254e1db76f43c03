"""Imports inside the harness run one way: no cycle between its packages.

Each package (``harness.lab``, ``harness.components``, ``harness.scenario`` …) and each
top-level module (``harness.localboot``, ``harness.wait`` …) is one node; every import
statement anywhere in its files, lazy ones inside functions included (a lazy import is
still a dependency, and hid the lab <-> tcpdump cycle), is an edge. The graph must be
acyclic, with no exceptions: the last one (lab -> machines, for reaping VMs by their lab
label) went when the label lookup moved into harness/lab/vm_labels.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# edge -> why it is still here (the scenario <-> reports/plan/localboot cycles went when
# the runner moved to harness.builder and the run's results to harness.judge)
def _unit(module: str) -> str | None:
    """The node a module belongs to: ``harness.<package or top-level module>``."""
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) < 2:
        return None
    top = parts[1]
    if (HARNESS / top).is_dir() or (HARNESS / f"{top}.py").is_file():
        return f"harness.{top}"
    return None


def _imports(path: Path) -> Iterator[str]:
    """Every module an import statement in ``path`` names (relative ones resolved)."""
    rel = path.relative_to(HARNESS.parent).with_suffix("").parts
    package = rel if rel[-1] == "__init__" else rel[:-1]
    package = package[:-1] if package[-1] == "__init__" else package
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Package-level import edges between harness nodes (no self-edges)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(HARNESS.rglob("*.py")):
        rel = path.relative_to(HARNESS.parent).with_suffix("")
        source = _unit(".".join(rel.parts))
        assert source is not None
        graph.setdefault(source, set())
        for target in filter(None, map(_unit, _imports(path))):
            if target != source:
                graph[source].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, …, a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_find_cycle_finds_one_and_only_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    assert "harness.lab" in graph["harness.components"]
    assert "harness.lab" in graph["harness.cli"]  # cli.py imports lab.cleanup inside a function
    # the libvirt label lookup lives in harness.lab (vm_labels), below the VM machinery
    assert "harness.machines" not in graph["harness.lab"]


def test_harness_packages_import_one_way() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between harness packages: " + " -> ".join(cycle or [])


def test_lab_and_components_do_not_import_each_other() -> None:
    """The lab is below its components (issue 14: lab.py <-> components/tcpdump.py)."""
    assert "harness.components" not in import_graph()["harness.lab"]
