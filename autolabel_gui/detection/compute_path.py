"""Which arithmetic a detector runs, decided without importing torch, so the run id can name it.

``precision`` is what the user asked: ``auto``, ``fast``, ``fp32``, ``fp16`` or ``bf16``.
``planned`` turns ``auto`` into a path before any model loads: ``fast`` (the CPU fast path,
``fast_sampling``) where no accelerator is expected, else ``gpu-auto`` (the legacy ``auto``: fp16
on CUDA, fp32 elsewhere). A planned value is never planned again, so a Ray worker with other
hardware runs the path the driver's run id names. The detector runs exactly the planned path and
the run id carries it (``fingerprint.model_digest``), so proposals of the fast and the reference
path never share a cache entry; ``--precision fp32`` is the reference path, unchanged.

The accelerator check reads files only (importing torch costs seconds on the window's thread):
a CUDA or ROCm build of torch and its driver (NVIDIA, WSL2's ``/dev/dxg``, AMD's ``/dev/kfd``),
or an Apple-silicon Mac. When it guesses wrong, the ids still match what ran: ``fast`` runs the
same on any device, and ``gpu-auto`` on a CPU is fp32.
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
GPU_AUTO = "gpu-auto"
"""``auto`` planned where a GPU is expected (fp16 on CUDA, fp32 elsewhere); its run id is ``auto``'s
as before the fast path existed, so caches made on GPUs stay valid."""
FAST_PATH_VERSION = "fast-sampling/v1"
"""Part of the run id of ``fast`` proposals: a change to the fast path's arithmetic bumps it."""


@functools.cache
def _torch_gpu_builds() -> frozenset[str]:
    """``cuda`` and/or ``hip``: the GPU platforms the installed torch was built for."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text(encoding="utf-8", errors="replace")[:10_000]
    except OSError:
        return frozenset()
    return frozenset(name for name in ("cuda", "hip")
                     if re.search(rf"^{name}\b[^=]*=\s*['\"]\d", text, re.MULTILINE))


def _gpu_driver(builds: frozenset[str]) -> bool:
    if "cuda" in builds:
        if sys.platform == "win32":
            return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
        if Path("/proc/driver/nvidia/version").exists() or Path("/dev/dxg").exists():  # Linux, WSL2
            return True
    return "hip" in builds and Path("/dev/kfd").exists()


def accelerator_expected(device: str) -> bool:
    """Whether ``device`` will most likely be a GPU (``auto`` is checked from files, not torch)."""
    if device == "cpu":
        return False
    if device != "auto":
        return True
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return _gpu_driver(_torch_gpu_builds())


def planned(precision: str, device: str) -> str:
    """The path ``precision`` runs on ``device``: ``auto`` becomes ``fast`` where no GPU is
    expected, else ``gpu-auto``; any other value (a planned one too) is kept."""
    if precision == "auto":
        return GPU_AUTO if accelerator_expected(device) else FAST
    return precision


def id_part(precision: str, device: str) -> str:
    """What the run id says about the arithmetic: the planned path, versioned when it is ``fast``."""
    path = planned(precision, device)
    return {FAST: FAST_PATH_VERSION, GPU_AUTO: "auto"}.get(path, path)


_TITLES = {FAST: "fast path", "fp32": "fp32 reference path", "fp16": "fp16", "bf16": "bf16"}


def describe(precision: str) -> str:
    """`` (fast path)`` and the like, for "model ready on cpu (fast path)"; empty when unknown."""
    title = _TITLES.get(precision)
    return f" ({title})" if title else ""
