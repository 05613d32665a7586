"""Identities of model files that change proposals, without hashing 700 MB checkpoints."""

from __future__ import annotations

from pathlib import Path

SCORING_VERSION = "class-span-max/nms0.5/v1"
"""How raw model outputs become proposals (ADR 0004); changing it invalidates every cache."""


def file_identity(path: str | Path | None) -> list | None:
    """Name, size and mtime of a file, or of each file directly inside a folder."""
    if not path:
        return None
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            stamps = sorted((c.name, c.stat().st_size, c.stat().st_mtime_ns) for c in p.iterdir() if c.is_file())
            return [p.name, stamps]
        st = p.stat()
    except OSError:
        return [str(path), "missing"]
    return [p.name, st.st_size, st.st_mtime_ns]
