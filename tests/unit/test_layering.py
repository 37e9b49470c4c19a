"""The layering rules of the architecture: core never imports Qt; one module imports llama_cpp."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CORE = REPO / "desktop" / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_qt():
    for path in CORE.glob("*.py"):
        assert not {"PySide6", "shiboken6"} & imported_modules(path), path.name


def test_only_runtime_imports_llama_cpp():
    importers = sorted(p.name for p in (REPO / "desktop").rglob("*.py") if "llama_cpp" in imported_modules(p))
    assert importers == ["runtime.py"]


def test_importing_all_of_core_loads_no_qt():
    modules = [f"desktop.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ui_does_not_reach_into_core_runtime():
    for path in (REPO / "desktop" / "ui").glob("*.py"):
        source = path.read_text()
        assert "desktop.core.engine.runtime" not in source and "desktop.core.conversations.store import Store" not in source, path.name
