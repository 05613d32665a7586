"""Which command-line option sets which folder setting: named once, for every command.

``ProjectSettings.with_args`` applies the table, ``commands.options`` says which options are
remembered from it, and ``tests/test_remembered_options.py`` fails on an option of the window
or ``label`` that is neither here nor a per-run option. Kept apart (no imports) so that
``--help`` stays light.
"""

from __future__ import annotations

REMEMBERED: dict[str, str] = {
    "classes": "classes",
    "prompt": "prompts",
    "box_threshold": "box_threshold",
    "text_threshold": "text_threshold",
    "batch_size": "batch_size",
    "device": "device",
    "precision": "precision",
    "model": "backend",  # and what the catalogue entry sets: weights, config, extra, thresholds
    "backend": "backend",
    "server": "backend",  # and the server's address and model id (``ProjectSettings.with_server``)
    "weights": "weights",
    "config": "config",
    "text_encoder": "text_encoder",
    "annotations": "annotations_dir",
    "segmenter": "segmenter",  # the window's only: what F fits boxes with
    "preview": "preview",
}
"""Options of the window and ``label`` remembered for the folder, by argparse name, with the
``.autolabel/project.json`` setting each one sets. Given on the command line, any of them makes
the window save the folder's settings."""

READ_AS_GIVEN = ("box_threshold", "text_threshold", "batch_size", "device", "precision", "backend", "weights",
                 "config", "text_encoder", "segmenter", "preview")
"""The remembered options whose value is the setting as it is (the others are read:
a model name, a class list, prompts, a folder relative to the working directory)."""
