"""The domain layers stay free of Qt, and the command line stays free of torch until it needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autolabel_gui"


def _modules(layer: str) -> list[str]:
    return [f"autolabel_gui.{layer}.{p.stem}" for p in sorted((PACKAGE / layer).glob("*.py")) if p.stem != "__init__"]


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_detection_and_formats_never_import_qt():
    modules = _modules("core") + _modules("detection") + _modules("formats")
    assert len(modules) > 20
    loaded = _loaded_after_import(modules)
    assert "autolabel_gui" in loaded
    assert not {"PySide6", "shiboken6"} & loaded


def test_help_and_parsing_never_import_torch_or_qt():
    loaded = _loaded_after_import(["autolabel_gui.cli"])
    assert not {"torch", "groundingdino", "PySide6"} & loaded
