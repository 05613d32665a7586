"""Which arithmetic a detector runs, decided without importing torch, so the run id can name it.

``precision`` is what the user asked: ``auto``, ``fast``, ``bf16``, ``int8``, ``fp32`` or ``fp16``.
``plan_path`` turns ``auto`` into a path before any model loads: where no accelerator is expected, the
CPU's own path from its features (``cpu_features``) and what the trained instrument proved
(``path_evidence``): ``bf16`` on native bf16, ``int8`` on VNNI, else ``fast`` (``fast_sampling``);
where one is, ``gpu-auto`` (the legacy ``auto``: fp16 on CUDA, fp32 elsewhere). A planned value
is never planned again, so a Ray worker with other hardware runs the path the driver's run id names.
The detector runs exactly the planned path and the run id carries it (``fingerprint.model_digest``),
so proposals of two paths never share a cache entry; ``--precision fp32`` is the reference path, unchanged.

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
from dataclasses import dataclass
from pathlib import Path

from autolabel_gui.detection.cpu_features import CpuFeatures, this_cpu
from autolabel_gui.detection.path_evidence import Evidence, shipped_evidence

PRECISIONS = ("auto", "fast", "bf16", "int8", "fp32", "fp16")
PRECISION_HELP = ("auto = fp16 on CUDA; on a CPU the fastest path proven on the instrument for it (bf16 where the "
                  "CPU has AMX or AVX-512 BF16, int8 where it has VNNI, else fast); fast = fused deformable "
                  "sampling, exact up to float rounding; bf16 = bf16 arithmetic with fused sampling; int8 = fast "
                  "with int8 linear layers (CPU only); fp32 = the reference path; fp16 = GPU only")

FAST = "fast"
BF16 = "bf16"
INT8 = "int8"
GPU_AUTO = "gpu-auto"
"""``auto`` planned where a GPU is expected (fp16 on CUDA, fp32 elsewhere); its run id is ``auto``'s
as before the fast path existed, so caches made on GPUs stay valid."""
FUSED_SAMPLING = (FAST, BF16, INT8)
"""The paths whose deformable attention samples with ``fast_sampling``."""
FAST_PATH_VERSION = "fast-sampling/v1"
"""Part of the run id of ``fast`` proposals: a change to the fast path's arithmetic bumps it."""
_ID_PARTS = {
    FAST: FAST_PATH_VERSION,
    GPU_AUTO: "auto",
    BF16: f"bf16-autocast+{FAST_PATH_VERSION}",
    INT8: f"int8-dynamic-linear+{FAST_PATH_VERSION}",
}
"""The run id's name of each path; ``fp32`` and ``fp16`` are named as they are. bf16 ran the
reference sampling before it ran the fused one, hence a new name: its old caches are not reused."""


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


@dataclass(frozen=True, slots=True)
class PathPlan:
    """The path a detector runs and why, for the run id and the status bar."""

    path: str
    reason: str = ""

    def text(self) -> str:
        """"bf16: this CPU has AMX", or the path alone when there is no reason to give."""
        return f"{self.path}: {self.reason}" if self.reason else self.path


def _cost(path: str, evidence: Evidence) -> str | None:
    """What the instrument says against ``path``: "" when it has no figures, the AP it loses when
    that is beyond ``AP_TOLERANCE``, its speed when that is no better than the fast path's (the
    ``fast`` entry's ratio; 1.0, fp32's, where the evidence has none), None when ``auto`` may
    plan it: ``auto`` exists to be fast."""
    figures = evidence.figures(path)
    if figures is None:
        return ""
    if not figures.within_tolerance:
        return f"{path} loses {-figures.ap_delta:.1f} AP on the instrument"
    fast = evidence.figures(FAST)
    bar, against = (fast.ratio, f"the fast path's {fast.ratio:.2f}x") if fast is not None else (1.0, "fp32's")
    if figures.ratio <= bar:
        return f"{path} runs at {figures.ratio:.2f}x fp32 on the instrument, not faster than {against}"
    return None


def _cpu_plan(cpu: CpuFeatures, evidence: Evidence) -> PathPlan:
    """``auto`` on a CPU: bf16 where it is native, else int8 where VNNI is, else fast; a path
    only where the instrument shows it within ``AP_TOLERANCE`` of fp32 and faster than the fast
    path (``_cost``)."""
    if not cpu.known:
        return PathPlan(FAST, "this CPU's features are unknown")
    why_not: list[str] = []
    unproven: list[str] = []
    for path, unit, lacking in ((BF16, cpu.bf16_unit, "this CPU has no native bf16"), (INT8, cpu.vnni_unit, "no VNNI")):
        if unit is None:
            why_not.append(lacking)
            continue
        cost = _cost(path, evidence)
        if cost is None:
            return PathPlan(path, "; ".join([f"this CPU has {unit}", *why_not,
                                             *([f"{unproven[0]} not yet proven"] if unproven else [])]))
        if cost:
            why_not.append(cost)
        else:
            unproven.append(path)
    if unproven:
        weak = f" ({evidence.weak})" if evidence.weak and evidence.paths else ""
        why_not.append(f"{' and '.join(unproven)} not yet proven on the instrument{weak}")
    return PathPlan(FAST, "; ".join(why_not))


def plan_path(precision: str, device: str, cpu: CpuFeatures | None = None,
              evidence: Evidence | None = None) -> PathPlan:
    """The path ``precision`` runs on ``device``, and why. ``auto`` becomes ``gpu-auto`` where a
    GPU is expected, else the CPU's path (``_cpu_plan``); any other value, a planned one too, is
    kept as asked, without a reason, so a Ray worker runs what the driver's run id names."""
    if precision != "auto":
        return PathPlan(precision)
    if accelerator_expected(device):
        return PathPlan(GPU_AUTO, "a GPU is expected")
    return _cpu_plan(this_cpu() if cpu is None else cpu, shipped_evidence() if evidence is None else evidence)


def planned(precision: str, device: str) -> str:
    """The path ``precision`` runs on ``device`` (``plan_path`` without the reason)."""
    return plan_path(precision, device).path


def id_part(precision: str, device: str) -> str:
    """What the run id says about the arithmetic: the planned path, versioned where it has versions."""
    path = planned(precision, device)
    return _ID_PARTS.get(path, path)


_TITLES = {FAST: "fast path", "fp32": "fp32 reference path", "fp16": "fp16", BF16: "bf16", INT8: "int8"}


def describe(precision: str, why: PathPlan | None = None) -> str:
    """`` (fast path)`` and the like, for "model ready on cpu (fast path)"; with ``why`` the plan
    that chose ``precision``, `` (bf16: this CPU has AMX)``; empty when unknown."""
    if why is not None and why.path == precision and why.reason:
        return f" ({why.text()})"
    title = _TITLES.get(precision)
    return f" ({title})" if title else ""
