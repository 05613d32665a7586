"""The CPU a benchmark's figures came from, printed beside them (figures without it mean little)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The first ``model name`` of ``/proc/cpuinfo``; elsewhere what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
