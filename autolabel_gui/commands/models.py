"""``autolabel-gui models``: the model and segmenter catalogues as tables; also the CLI's choices of them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from autolabel_gui.detection.base import DEFAULT_BACKEND
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.models import all_models, default_model
from autolabel_gui.detection.segmenter_spec import all_segmenters, default_segmenter


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


def segmenter_names() -> list[str]:
    return [s.name for s in all_segmenters()]


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def segmenter_table() -> str:
    """One line per segmenter (F fits boxes with it): name, size, licence, hub id; the default marked."""
    default = default_segmenter().name
    rows = [("segmenter", "title", "size", "licence", "hub id")]
    rows += [(s.name + (" *" if s.name == default else ""), s.title, f"{s.download_mb} MB", s.licence,
              f"{s.hub_id}@{s.revision}") for s in all_segmenters()]
    return "\n".join(_aligned(rows) + ["* default (the cheapest on a CPU whose licence was checked: "
                                        "docs/decisions/0019-fit-box.md).  Use: --segmenter NAME (window); "
                                        "fetch: autolabel-gui weights download --segmenter NAME."])


def table() -> str:
    """One line per model: name, backend, AP figures, size, licence, hub id; the default marked."""
    default = default_model().name
    rows = [("name", "backend", "zero-shot AP (LVIS minival / COCO)", "size", "licence", "hub id")]
    for m in all_models():
        ap = f"{m.ap.get('lvis_minival_zero_shot', '-')} / {m.ap.get('coco_zero_shot', '-')}"
        rows.append((m.name + (" *" if m.name == default else ""), m.backend, ap, f"{m.download_mb} MB",
                     m.licence, f"{m.hub_id}@{m.revision}" if m.hub_id else "(weights download)"))
    return "\n".join(_aligned(rows) + ["* default.  Use: --model NAME (window and label); fetch: autolabel-gui weights "
                              "download --model NAME.  AP sources: autolabel_gui/detection/models.json"])


def run(args: argparse.Namespace) -> int:
    print(table())
    print()
    print(segmenter_table())
    return 0
