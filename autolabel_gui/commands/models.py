"""``autolabel-gui models``: the model catalogue as a table; also the CLI's backend and model choices."""

from __future__ import annotations

import argparse

from autolabel_gui.detection.base import DEFAULT_BACKEND
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.models import all_models, default_model


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def servable_backends() -> list[str]:
    """The backends ``serve`` can hold (a proposal server's client is not one)."""
    return sorted(name for name, spec in BACKENDS.items() if spec.servable)


def backend_help() -> str:
    titles = "; ".join(f"{name}: {spec.title}" for name, spec in sorted(BACKENDS.items()))
    return f"{titles} (default {DEFAULT_BACKEND})"


def model_names() -> list[str]:
    return [m.name for m in all_models()]


def table() -> str:
    """One line per model: name, backend, AP figures, size, licence, hub id; the default marked."""
    default = default_model().name
    rows = [("name", "backend", "zero-shot AP (LVIS minival / COCO)", "size", "licence", "hub id")]
    for m in all_models():
        ap = f"{m.ap.get('lvis_minival_zero_shot', '-')} / {m.ap.get('coco_zero_shot', '-')}"
        rows.append((m.name + (" *" if m.name == default else ""), m.backend, ap, f"{m.download_mb} MB",
                     m.licence, f"{m.hub_id}@{m.revision}" if m.hub_id else "(weights download)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + ["* default.  Use: --model NAME (window and label); fetch: autolabel-gui weights "
                              "download --model NAME.  AP sources: autolabel_gui/detection/models.json"])


def run(args: argparse.Namespace) -> int:
    print(table())
    return 0
