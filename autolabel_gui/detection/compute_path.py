"""Which arithmetic a detector runs, decided without importing torch, so the run id can name it.

``precision`` is what the user asked: ``auto``, ``fast``, ``fp32``, ``fp16`` or ``bf16``.
``planned`` turns ``auto`` into a path before any model loads: ``fast`` (the CPU fast path,
``fast_sampling``) where no accelerator is expected, else the legacy ``auto`` (fp16 on CUDA,
fp32 elsewhere). The detector runs exactly the planned path and the run id carries it
(``fingerprint.model_digest``), so proposals of the fast and the reference path never share a
cache entry; ``--precision fp32`` is the reference path, unchanged.

The accelerator check reads files only (importing torch costs seconds on the window's thread):
a CUDA build of torch and an NVIDIA driver, or an Apple-silicon Mac. When it guesses wrong, the
ids still match what ran: ``fast`` runs the same on any device, and ``auto`` on a CPU is fp32.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

PRECISIONS = ("auto", "fast", "fp32", "fp16", "bf16")
PRECISION_HELP = ("auto = fp16 on CUDA, the fast path (fast) on a CPU; fast = fused deformable sampling, "
                  "exact up to float rounding; fp32 = the reference path; bf16 is opt-in (CPUs with native bf16)")

FAST = "fast"
FAST_PATH_VERSION = "fast-sampling/v1"
"""Part of the run id of ``fast`` proposals: a change to the fast path's arithmetic bumps it."""


@functools.cache
def _torch_has_cuda() -> bool:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text(encoding="utf-8", errors="replace")[:10_000]
    except OSError:
        return False
    return re.search(r"^cuda\b[^=]*=\s*['\"]\d", text, re.MULTILINE) is not None


def _nvidia_driver() -> bool:
    if sys.platform == "win32":
        return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
    return Path("/proc/driver/nvidia/version").exists()


def accelerator_expected(device: str) -> bool:
    """Whether ``device`` will most likely be a GPU (``auto`` is checked from files, not torch)."""
    if device == "cpu":
        return False
    if device != "auto":
        return True
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return _torch_has_cuda() and _nvidia_driver()


def planned(precision: str, device: str) -> str:
    """The path ``precision`` runs on ``device``: ``auto`` becomes ``fast`` where no GPU is expected."""
    if precision == "auto" and not accelerator_expected(device):
        return FAST
    return precision


def id_part(precision: str, device: str) -> str:
    """What the run id says about the arithmetic: the planned path, versioned when it is ``fast``."""
    path = planned(precision, device)
    return FAST_PATH_VERSION if path == FAST else path
