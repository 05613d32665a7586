"""``make test-long`` really scales up, and runs exactly the tests that scale.

The reliability tests read their size through ``tests.fixtures.hostile.scaled``: small in
``make test``, full with ``AUTOLABEL_LONG=1``. ``make test-long`` selects them by the
``scalable`` marker, so a test that scales but is not marked would never run at full scale, and
a target that forgot the variable would run them small a second time.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALE_READERS = {"scaled", "long_run"}


def _marks(fn: ast.FunctionDef) -> set[str]:
    return {d.attr for d in fn.decorator_list if isinstance(d, ast.Attribute)}


def _reads_scale(fn: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in SCALE_READERS
               for n in ast.walk(fn))


def _tests() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(f"{path.name}::{n.name}", n) for n in tree.body
                  if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return found


def test_the_tests_that_scale_are_exactly_the_scalable_ones():
    tests = _tests()
    reading = {name for name, fn in tests if _reads_scale(fn)}
    marked = {name for name, fn in tests if "scalable" in _marks(fn)}
    assert reading, "the kill and long-session tests read their size through scaled()"
    assert reading == marked


def test_make_test_long_sets_the_scale_and_selects_the_scalable_tests():
    dry = subprocess.run(["make", "-n", "test-long"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if dry.returncode != 0:
        pytest.skip(f"make cannot read the Makefile here: {dry.stderr.strip()[:200]}")
    [line] = [ln for ln in dry.stdout.splitlines() if "pytest" in ln]
    assert "AUTOLABEL_LONG=1" in line.split("pytest")[0]
    assert "-m scalable" in line
