"""What the trained instrument measured for each reduced-precision path, as data the planner reads.

``auto`` may plan bf16 or int8 only where they were shown to keep AP within ``AP_TOLERANCE``
points of fp32 (``benchmarks/bench_cpu.py --record`` writes the file on the trained instrument):
a faster path that quietly loses boxes is not a default. The file ships with the package; a
path it does not name, or names with figures that are not numbers, is "not proven".

Shape: ``{"paths": {"bf16": {"ap_delta": float, "ap50_delta": float, "ratio": float}, ...},
"reference": {"ap": float, "ap50": float}, "machine": str, "cpu_flags": [...], "date": str,
"torch": str, "command": str}``, where ``reference`` is fp32's own AP and AP50 (points): the
figures count only where it reaches ``MIN_REFERENCE_AP50``; and where
``ap_delta`` is the path's AP minus fp32's, in AP points (0..100), and ``ratio`` its speed-up
against fp32 (fp32's seconds per image over the path's). A ``"fast"`` entry gives the default
fast path's figures: ``auto`` plans bf16 or int8 only at a ratio above it (above 1.0, fp32's,
where there is none), never a path the instrument measured slower than the one it replaces.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

EVIDENCE_FILE = Path(__file__).with_name("precision_evidence.json")
AP_TOLERANCE = 1.0
"""AP points a path may lose against fp32 on the instrument and still be planned by ``auto``."""
MIN_REFERENCE_AP50 = 50.0
"""The fp32 AP50 (points) the instrument must reach for its figures to count: an instrument that
detects little proves nothing (every path is "within one point" of a model that finds nothing)."""
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PathFigures:
    """One path's measured cost: AP and AP50 against fp32 (points), and speed against fp32."""

    ap_delta: float
    ap50_delta: float
    ratio: float

    @property
    def within_tolerance(self) -> bool:
        return self.ap_delta >= -AP_TOLERANCE


@dataclass(frozen=True, slots=True)
class Evidence:
    """The measured figures per path, and where they were measured."""

    paths: dict[str, PathFigures] = field(default_factory=dict)
    machine: str = ""
    reference_ap50: float | None = None
    """fp32's AP50 on the instrument, in points (None: not recorded)."""

    @property
    def weak(self) -> str | None:
        """Why these figures prove nothing (the instrument is not trained well enough), or None."""
        if self.reference_ap50 is None:
            return "the instrument's own accuracy is not recorded"
        if self.reference_ap50 < MIN_REFERENCE_AP50:
            return (f"the instrument reaches AP50 {self.reference_ap50:.1f} only, below the "
                    f"{MIN_REFERENCE_AP50:.0f} its figures need")
        return None

    def figures(self, path: str) -> PathFigures | None:
        """The path's figures, or None when it has none or the instrument is too weak to tell."""
        return None if self.weak else self.paths.get(path)


def _figures(entry: object) -> PathFigures | None:
    if not isinstance(entry, dict):
        return None
    try:
        values = [float(entry[key]) for key in ("ap_delta", "ap50_delta", "ratio")]
    except (KeyError, TypeError, ValueError):
        return None
    return PathFigures(*values) if all(math.isfinite(v) for v in values) else None


def parse_evidence(text: str) -> Evidence:
    """The evidence in ``text``; anything unreadable in it counts as not proven."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return Evidence()
    if not isinstance(data, dict) or not isinstance(data.get("paths"), dict):
        return Evidence()
    paths = {name: figures for name, entry in data["paths"].items()
             if isinstance(name, str) and (figures := _figures(entry)) is not None}
    return Evidence(paths, str(data.get("machine", "")), _reference_ap50(data.get("reference")))


def _reference_ap50(entry: object) -> float | None:
    if not isinstance(entry, dict):
        return None
    try:
        value = float(entry["ap50"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@functools.cache
def shipped_evidence(path: Path = EVIDENCE_FILE) -> Evidence:
    """The evidence file that ships with the package, read once."""
    try:
        with open(path, "rb") as f:
            return parse_evidence(f.read(_MAX_BYTES).decode("utf-8", errors="replace"))
    except OSError:
        return Evidence()
