"""The layers point down only, and the command line stays free of torch until it needs it.

```
gui/, commands/     Qt widgets and argparse commands: wiring
app/                Qt-free use-cases that combine the layers below
detection/ formats/ models behind a backend spec; file formats
core/               values and stores: imports nothing above it
```

Every ``import`` of the package is read from the source (also those inside functions), so a
new upward edge, or two modules that import each other (directly or around a circle), fails
here before anyone imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autolabel_gui"

ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "detection": {"core", "detection"},
    "formats": {"core", "formats"},
    "app": {"core", "detection", "formats", "app"},
    "gui": {"core", "detection", "formats", "app", "gui"},
    "commands": {"core", "detection", "formats", "app", "gui", "commands"},
    "(top)": {"commands", "formats"},
}
"""Which packages a package may import (``(top)``: ``cli.py``, ``__main__.py``; it reads the export
formats' names from ``formats/registry.py`` for ``--help``, and runs the rest through commands)."""

QT_FREE = ("core", "detection", "formats", "app")


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else "(top)"


def imported_layers(path: Path) -> list[tuple[int, str, str]]:
    """(line, layer, module) for every import of ``autolabel_gui.*`` in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "autolabel_gui" and len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
                found.append((node.lineno, parts[1], ".".join(parts[:3])))
                break
    return found


def edges() -> set[tuple[str, str]]:
    return {(layer_of(p), layer) for p in PACKAGE.rglob("*.py") for _, layer, _ in imported_layers(p)}


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        for line, target, module in imported_layers(path):
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {module}")
    return bad


def test_every_package_has_a_rule():
    layers = {layer_of(p) for p in PACKAGE.rglob("*.py")}
    assert layers == set(ALLOWED), "a new package needs its row in ALLOWED (and in docs/modules.md)"


def test_imports_point_down_only():
    assert upward_imports() == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule can fail: a core module that imports formats is caught, naming file and line."""
    fake = tmp_path / "autolabel_gui"
    for layer in ALLOWED:
        if layer != "(top)":
            (fake / layer).mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("def f():\n    from autolabel_gui.formats.voc import read_voc\n")
    (fake / "formats" / "voc.py").write_text("from autolabel_gui.core.boxes import Box\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports() == ["autolabel_gui/core/bad.py:2: core imports autolabel_gui.formats.voc"]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def module_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (every import, also inside functions and under
    ``TYPE_CHECKING``: an import made only for a type still ties the two modules together)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                candidates = [[a.name] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import mod`` imports the module ``pkg.mod``; ``from mod import name``, ``mod``
                candidates = [[f"{node.module}.{a.name}", node.module] for a in node.names]
            else:
                continue
            for options in candidates:
                target = next((m for m in options if m in paths), None)
                if target is not None and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a circle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_no_two_modules_import_each_other():
    assert import_cycles(module_graph()) == []


def test_the_cycle_checker_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def print_graph() -> str:
    """The package graph, one ``a -> b`` a line (``python tests/test_layering.py`` prints it)."""
    return "\n".join(f"{a} -> {b}" for a, b in sorted(edges()) if a != b)


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _modules(layer: str) -> list[str]:
    return [f"autolabel_gui.{layer}.{p.stem}" for p in sorted((PACKAGE / layer).glob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("layer", QT_FREE)
def test_qt_free_layers_never_import_qt(layer):
    modules = _modules(layer)
    loaded = _loaded_after_import(modules)
    assert set(modules) <= loaded, "every module of the layer was imported"
    assert not {"PySide6", "shiboken6"} & {n.split(".")[0] for n in loaded}


def test_the_review_model_loads_no_store_and_no_model():
    loaded = _loaded_after_import(["autolabel_gui.core.review"])
    assert "autolabel_gui.core.review" in loaded
    assert not {"sqlite3", "urllib.request", "http.client", "torch", "lxml", "PySide6"} & loaded


def test_help_and_parsing_never_import_torch_or_qt():
    loaded = {n.split(".")[0] for n in _loaded_after_import(["autolabel_gui.cli", "autolabel_gui.detection.catalogue"])}
    assert not {"torch", "groundingdino", "PySide6"} & loaded


if __name__ == "__main__":
    print(print_graph())
