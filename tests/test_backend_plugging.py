"""One way to plug a detector backend: a torch-free spec module, a model module, one catalogue entry.

``detection/catalogue.BACKENDS`` names every backend; its spec says which module builds it, and
that module registers its factory under the same name (``base.register_backend``). No other code
knows a backend by name: the package source is read here, so a backend module the catalogue cannot
reach, or an ``if backend == ...`` anywhere, fails before anyone runs it. What every backend must
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


def _own_modules() -> dict[str, set[str]]:
    """Backend name -> the modules that may name it: its spec's module and the module that builds it."""
    return {name: {_spec_module(spec), spec.module} for name, spec in BACKENDS.items()}


def _registrations(tree: ast.Module) -> list[str]:
    """The names a module registers with ``@register_backend("name")``."""
    return [deco.args[0].value for node in ast.walk(tree) if isinstance(node, ast.ClassDef | ast.FunctionDef)
            for deco in node.decorator_list
            if isinstance(deco, ast.Call) and getattr(deco.func, "id", getattr(deco.func, "attr", None))
            == "register_backend" and deco.args and isinstance(deco.args[0], ast.Constant)]


def test_every_catalogue_backend_is_built_by_the_module_its_spec_names() -> None:
    for name, spec in BACKENDS.items():
        assert spec.name == name
        importlib.import_module(spec.module)
        factory = base.registered_backend(name)
        assert factory is not None, f"{spec.module} registers no backend {name!r}"
        assert factory.__module__ == spec.module


def test_every_registered_backend_is_reachable_through_the_catalogue() -> None:
    """A model module that registers a name the catalogue lacks (or under another spec's module) is dead."""
    registered = {module: _registrations(tree) for module, tree in _modules().items()}
    for module, names in registered.items():
        for name in names:
            assert name in BACKENDS, f"{module} registers {name!r}, which detection/catalogue.py does not name"
            assert BACKENDS[name].module == module, f"{name!r} is registered by {module}, not {BACKENDS[name].module}"
    assert sorted(n for names in registered.values() for n in names) == sorted(BACKENDS)


def test_specs_are_read_without_importing_a_model_package() -> None:
    """The window, ``label`` and the cache key read specs; only building a detector may import torch."""
    trees = _modules()
    for name, spec in BACKENDS.items():
        assert _spec_module(spec) != spec.module, f"{name!r}: the spec must live apart from the model code"
        for node in trees[_spec_module(spec)].body:
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [m for m in imported if m.split(".")[0] in MODEL_PACKAGES], (_spec_module(spec), imported)


def test_no_code_branches_on_a_backend_or_model_type_name() -> None:
    """Backend names and the model types a backend reads from files appear only in that backend's own
    modules (and as the one default, ``base.DEFAULT_BACKEND``); nothing compares ``backend`` with a text."""
    own = _own_modules()
    owners = {name: own[name] for name in BACKENDS}
    owners |= {model_type: own["transformers"] for model_type in MODEL_CLASSES}
    default = (base.__name__, base.DEFAULT_BACKEND)
    found: list[str] = []
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in owners and module not in owners[node.value]
                    and (module, node.value) != default):
                found.append(f"{module}:{node.lineno}: names backend or model type {node.value!r}")
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                on_backend = any(getattr(o, "attr", getattr(o, "id", None)) == "backend" for o in operands)
                if on_backend and any(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in operands):
                    found.append(f"{module}:{node.lineno}: compares a backend with a name")
            if isinstance(node, ast.Match) and getattr(node.subject, "attr", None) == "backend":
                found.append(f"{module}:{node.lineno}: matches on a backend name")
    assert not found, "a backend is plugged by its spec and catalogue entry, never by a branch:\n" + "\n".join(found)
