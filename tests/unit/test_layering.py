"""The layering rules of the architecture, over every package of desktop/, recursively.

- Arrows point down only: inside each package that has subpackages, a child may import only
  children of a lower rank (RANKS below), or itself. Every child must have a rank, so a new
  package gets its place in the table when it is made.
- No import cycle at any level: between modules, and between the children of each package.
  Imports inside functions and under ``TYPE_CHECKING`` count: they hide a cycle, they do not remove it.
- ``desktop/core`` never imports Qt; only ``desktop/core/engine`` imports ``llama_cpp``; only the Hub
  client imports ``huggingface_hub``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

DESKTOP = REPO / "desktop"

# Per package: child name -> rank. A child imports only children of a strictly lower rank.
RANKS: dict[str, dict[str, int]] = {
    "desktop": {"core": 0, "services": 1, "cli": 1, "ui": 2, "app": 3, "__main__": 4},
    "desktop.core": {"text": 0, "system": 1, "models": 2, "conversations": 2, "tools": 2, "engine": 3, "hub": 3,
                     "downloads": 4, "library": 4, "remote": 4, "server": 5},
    "desktop.ui": {"theme": 0, "notices": 0, "file_dialogs": 0, "status_line": 0, "chat": 1, "models": 1, "settings": 1, "sidebar": 1,
                   "main_window": 2},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in DESKTOP.rglob("*.py")}
PACKAGES: set[str] = {module_name(p) for p in DESKTOP.rglob("__init__.py")}


def raw_imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every import statement in the file, wherever it stands."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base, [a.name for a in node.names]


def desktop_imports(path: Path) -> set[str]:
    """The desktop modules a file imports (``from pkg import module`` resolves to the module)."""
    found: set[str] = set()
    for module, names in raw_imports(path):
        if not module.startswith("desktop"):
            continue
        submodules = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
        found |= submodules or {module}
    return found - {module_name(path)}


def top_level_imports(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in raw_imports(path)}


GRAPH: dict[str, set[str]] = {name: desktop_imports(path) for name, path in MODULES.items()}


def child_of(package: str, module: str) -> str | None:
    """The child of ``package`` that holds ``module`` (None when it is not inside)."""
    if not module.startswith(package + "."):
        return None
    return module[len(package) + 1:].split(".")[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def children_graph(package: str) -> dict[str, set[str]]:
    """Which children of ``package`` import which other children."""
    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        source = child_of(package, module)
        if source is None:
            continue
        graph.setdefault(source, set())
        for target in targets:
            child = child_of(package, target)
            if child is not None and child != source:
                graph[source].add(child)
    return graph


def test_the_tree_is_what_the_table_describes():
    assert len(MODULES) > 60 and "desktop.core.engine.runtime" in MODULES
    for package, table in RANKS.items():
        children = {child_of(package, m) for m in MODULES if child_of(package, m)}
        assert children == set(table), f"{package}: children and rank table differ"


def test_no_module_import_cycle():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_cycle_between_the_children_of(package: str):
    assert cycles(children_graph(package)) == []


@pytest.mark.parametrize("package", sorted(RANKS))
def test_arrows_point_down_inside(package: str):
    ranks = RANKS[package]
    upward = [f"{source} -> {target}" for source, targets in children_graph(package).items()
              for target in targets if ranks[target] >= ranks[source]]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_arrow():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert child_of("desktop.core", "desktop.core.engine.runtime") == "engine"
    assert "desktop.core.models.gguf" in GRAPH["desktop.core.engine.runtime"]
    assert "desktop.core.system.paths" in GRAPH["desktop.core.library.model_library"]


def test_core_never_imports_qt():
    offenders = [name for name, path in MODULES.items()
                 if name.startswith("desktop.core") and {"PySide6", "shiboken6"} & top_level_imports(path)]
    assert offenders == []


def test_only_the_engine_imports_llama_cpp():
    importers = sorted(name for name, path in MODULES.items() if "llama_cpp" in top_level_imports(path))
    assert importers and all(name.startswith("desktop.core.engine.") for name in importers), importers


def test_only_the_hub_client_imports_huggingface_hub():
    importers = sorted(name for name, path in MODULES.items() if "huggingface_hub" in top_level_imports(path))
    assert importers == ["desktop.core.hub.client"]


def test_only_the_mcp_host_imports_the_mcp_sdk():
    importers = sorted(name for name, path in MODULES.items() if "mcp" in top_level_imports(path))
    assert importers == ["desktop.core.tools.mcp_host"]


def test_importing_all_of_core_loads_no_qt():
    modules = sorted(name for name in MODULES if name.startswith("desktop.core."))
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ui_does_not_reach_into_the_engine_or_the_store():
    for name in MODULES:
        if name.startswith("desktop.ui"):
            reached = {m for m in GRAPH[name] if m.startswith(("desktop.core.engine", "desktop.core.conversations.store"))}
            assert not reached, f"{name} imports {reached}"
