"""What this CPU's arithmetic units can do, read without importing torch (the planner runs on the
window's thread, and importing torch there costs seconds).

The planner (``compute_path.plan``) needs three facts: native bf16 (AMX's ``amx_bf16``, or
AVX-512's ``avx512_bf16``), int8 dot products (``avx512_vnni`` or ``avx_vnni``), and whether the
flags are known at all. On Linux they come from the first ``flags`` line of ``/proc/cpuinfo``
(``Features`` on ARM), read with a bound: the file grows with the number of cores, and only the
first processor's line is needed. Elsewhere they are unknown (a subprocess to ``sysctl`` on every
start is not worth one fact), and an unknown CPU gets the path that is fast everywhere.
Parsing takes the text, so tests fake any CPU.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
READ_LIMIT = 256 * 1024
"""Bytes of ``/proc/cpuinfo`` read: the first processor's block is about 1.5 KB."""

_BF16_UNITS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"))
"""Flags of native bf16 matrix arithmetic, best first, with the name the status bar says."""
_VNNI_UNITS = (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))


@dataclass(frozen=True, slots=True)
class CpuFeatures:
    """The flags of one CPU; ``known`` is False where they could not be read."""

    flags: frozenset[str] = frozenset()
    known: bool = False
    arch: str = ""

    @property
    def bf16_unit(self) -> str | None:
        """"AMX" or "AVX-512 BF16": the unit that runs bf16 natively, None without one."""
        return next((name for flag, name in _BF16_UNITS if flag in self.flags), None)

    @property
    def vnni_unit(self) -> str | None:
        """"AVX-512 VNNI" or "AVX-VNNI": the unit for int8 dot products, None without one."""
        return next((name for flag, name in _VNNI_UNITS if flag in self.flags), None)


def parse_cpuinfo(text: str, arch: str = "") -> CpuFeatures:
    """The flags of the first processor in ``/proc/cpuinfo`` text (x86 ``flags``, ARM ``Features``)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return CpuFeatures(frozenset(value.lower().split()), True, arch)
    return CpuFeatures(arch=arch)


def read_cpu_features(path: Path = CPUINFO, arch: str | None = None) -> CpuFeatures:
    """This CPU's features from ``path`` (at most ``READ_LIMIT`` bytes); unknown if it cannot be read."""
    arch = platform.machine().lower() if arch is None else arch
    try:
        with open(path, "rb") as f:
            text = f.read(READ_LIMIT).decode("ascii", errors="replace")
    except OSError:
        return CpuFeatures(arch=arch)
    return parse_cpuinfo(text, arch)


@functools.cache
def this_cpu() -> CpuFeatures:
    """The features of the CPU this process runs on, read once."""
    return read_cpu_features()
