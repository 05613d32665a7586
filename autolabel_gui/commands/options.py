"""Argument types for the model options: the rules of ``app.project`` (the one place that says
what a valid threshold, batch size or device is), applied while the command line is parsed;
and which options only change one run (``PER_RUN``; the remembered ones are ``app.setting_names``).

``app.project`` is imported only when an option is checked, so ``--help`` stays light.
"""

from __future__ import annotations

import argparse
import math

from autolabel_gui.app.setting_names import REMEMBERED
from autolabel_gui.detection.compute_path import PRECISION_HELP, PRECISIONS

__all__ = ["PER_RUN", "PRECISIONS", "PRECISION_HELP", "PREVIEW_HELP", "REMEMBERED", "batch_size", "device",
           "gpus_per_worker", "ray_address", "remembered_given", "threshold", "workers"]

PREVIEW_HELP = ("LESS ACCURATE preview size: the model sees images at 400 px (shorter side) instead of 800, "
                "faster on a CPU; its proposals are kept apart from full-size ones (remembered for the "
                "folder; --no-preview goes back)")


def _checked(problem_of: str, convert):
    """An argparse type that converts, then asks ``app.project`` (the one rule for saved settings)."""

    def check(text: str):
        from autolabel_gui.app import project

        try:
            value = convert(text)
        except ValueError:
            kind = {"float": "number", "int": "whole number"}.get(convert.__name__, convert.__name__)
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        problem = getattr(project, problem_of)(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    check.__name__ = problem_of.removesuffix("_problem")
    return check


threshold = _checked("threshold_problem", float)
batch_size = _checked("batch_size_problem", int)
_device_name = _checked("device_problem", str)


def device(text: str) -> str:
    """``--device``: a device name that exists on this machine, checked before any command saves
    it with the folder (``cuda:99`` once made every later command fail). ``auto`` and ``cpu``
    are always there, and are checked without importing torch."""
    name = _device_name(text)
    if name in ("auto", "cpu"):
        return name
    from autolabel_gui.detection import runtime
    from autolabel_gui.detection.base import DetectorUnavailable

    try:
        runtime.resolve_device(name)
    except DetectorUnavailable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def ray_address(text: str) -> str:
    """``--ray``: auto, local or a HOST:PORT that can be one (``app.ray_address``)."""
    from autolabel_gui.app.ray_address import endpoint

    try:
        endpoint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def workers(text: str) -> int:
    """``--workers``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def gpus_per_worker(text: str) -> float:
    """``--gpus-per-worker``: a finite number of at least 0 (``nan`` once ended in a traceback)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of at least 0")
    return value


PER_RUN: dict[str, str] = {
    "folder": "the folder itself",
    "voc_dir": "where this run writes unverified VOC files",
    "cache": "where this run keeps its proposal cache",
    "no_progress": "how this run reports",
    "ray": "where this run's model runs",
    "workers": "where this run's model runs",
    "gpus_per_worker": "where this run's model runs",
}
"""Options of the window and ``label`` that only change one run, never the proposals: not
remembered. Every option is in exactly one of the two tables (tests/test_remembered_options.py checks)."""


def remembered_given(args: argparse.Namespace) -> list[str]:
    """The remembered options given on this command line (argparse names)."""
    return [name for name in REMEMBERED if getattr(args, name, None) is not None]
