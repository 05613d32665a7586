"""Argument types for the model options: the rules of ``app.project`` (the one place that says
what a valid threshold, batch size or device is), applied while the command line is parsed.

``app.project`` is imported only when an option is checked, so ``--help`` stays light.
"""

from __future__ import annotations

import argparse

from autolabel_gui.detection.compute_path import PRECISION_HELP, PRECISIONS

__all__ = ["PRECISIONS", "PRECISION_HELP", "batch_size", "device", "threshold"]


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
device = _checked("device_problem", str)
