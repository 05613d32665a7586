"""Shared test set-up: offscreen Qt, no network, and every fixture module in tests/fixtures/."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# The user's own settings (model files they chose: app/trust.py) go to a throw-away folder.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="autolabel-test-config-")
# The cores are shared among xdist workers, not each worker's: two workers on two cores, each with a
# torch thread per core, spin-wait on each other (measured beside other work: a tiny-model forward
# 10 to 30 times slower than with one thread each). Set before anything imports torch; commands the
# tests run in child processes inherit it. An OMP_NUM_THREADS of the caller's own wins.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // _WORKERS)))

_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(_ROOT.parent))

# Fixture modules import each other; registering the package first keeps assert rewriting on.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (_ROOT / "fixtures").glob("*.py") if p.stem != "__init__"
)
