"""One way to plug a detector backend: a torch-free spec module, a model module, one catalogue entry.

``detection/catalogue.BACKENDS`` names every backend; its spec says which module builds it, and
that module registers its factory under the same name (``base.register_backend``). No other code
branches on a backend's name: the package source is read here, so a backend module the catalogue
cannot reach, or a new ``if backend == ...``, fails before anyone runs it. What every backend must
then do is tests/test_backend_contract.py.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from autolabel_gui.detection import base
from autolabel_gui.detection.base import BackendSpec
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.hf_spec import MODEL_CLASSES

PACKAGE = Path(__file__).resolve().parents[1] / "autolabel_gui"
MODEL_PACKAGES = ("torch", "torchvision", "transformers", "groundingdino", "timm")


def _modules() -> dict[str, ast.Module]:
    """Every module of the package by dotted name, parsed."""
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): ast.parse(path.read_text("utf-8"))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _spec_module(spec: BackendSpec) -> str:
    """The module that defines ``spec`` (where its ``model_id`` is written)."""
    return spec.model_id.__module__


def _registers(tree: ast.Module) -> bool:
    """Whether a module decorates something with ``register_backend(...)``."""
    return any(isinstance(deco, ast.Call) and getattr(deco.func, "id", getattr(deco.func, "attr", None))
               == "register_backend" for node in ast.walk(tree) if isinstance(node, ast.ClassDef | ast.FunctionDef)
               for deco in node.decorator_list)


def test_every_catalogue_backend_is_built_by_the_module_its_spec_names() -> None:
    for name, spec in BACKENDS.items():
        assert spec.name == name
        importlib.import_module(spec.module)
        factory = base.registered_backend(name)
        assert factory is not None, f"{spec.module} registers no backend {name!r}"
        assert factory.__module__ == spec.module


def test_every_registered_backend_is_reachable_through_the_catalogue() -> None:
    """A model module that registers a name the catalogue lacks (or another spec's name) is dead code."""
    registering = sorted(module for module, tree in _modules().items() if _registers(tree))
    for module in registering:
        importlib.import_module(module)
    for name, factory in base._BACKENDS.items():
        assert name in BACKENDS, f"{factory.__module__} registers {name!r}, which detection/catalogue.py does not name"
        assert BACKENDS[name].module == factory.__module__, f"{name!r} is registered by {factory.__module__}"
    assert registering == sorted(spec.module for spec in BACKENDS.values())


def test_specs_are_read_without_importing_a_model_package() -> None:
    """The window, ``label`` and the cache key read specs; only building a detector may import torch."""
    trees = _modules()
    for name, spec in BACKENDS.items():
        assert _spec_module(spec) != spec.module, f"{name!r}: the spec must live apart from the model code"
        for node in trees[_spec_module(spec)].body:
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [m for m in imported if m.split(".")[0] in MODEL_PACKAGES], (_spec_module(spec), imported)


def _names_a_backend(node: ast.expr) -> bool:
    """A backend name or model type as text, or a spec module's ``NAME``."""
    spec_modules = {_spec_module(spec).rsplit(".", 1)[1] for spec in BACKENDS.values()}
    if isinstance(node, ast.Constant):
        return node.value in BACKENDS or node.value in MODEL_CLASSES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_backend(e) for e in node.elts)
    return isinstance(node, ast.Attribute) and node.attr == "NAME" and getattr(node.value, "id", None) in spec_modules


def _is_a_backend(node: ast.expr) -> bool:
    """``x.backend``, ``backend``, ``x["backend"]`` or ``x.get("backend")``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        key = node.args[0]
    elif isinstance(node, ast.Subscript):
        key = node.slice
    else:
        return getattr(node, "attr", None) == "backend" or getattr(node, "id", None) == "backend"
    return isinstance(key, ast.Constant) and key.value == "backend"


def test_no_code_branches_on_a_backend_or_model_type_name() -> None:
    """Nothing compares with (or matches on) a backend's name or a model type, and nothing compares a
    backend with a text: what a backend is or needs comes from its spec."""
    found: set[tuple[str, str]] = set()
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                texts = any(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in operands)
                if any(_names_a_backend(o) for o in operands) or (texts and any(_is_a_backend(o) for o in operands)):
                    found.add((module, ast.unparse(node)))
            elif isinstance(node, ast.Match) and _is_a_backend(node.subject):
                found.add((module, f"match {ast.unparse(node.subject)}"))
    assert found == set(), "a backend is plugged by its spec and catalogue entry, never by a branch"
