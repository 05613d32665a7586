"""``autolabel-gui [FOLDER]``: the review window.

Command-line model options override what the folder remembers for this session only; the
folder's settings change when the user edits them in the Settings dialog. Without FOLDER the
last folder is opened again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autolabel_gui.app.project import ProjectSettings


def run(args: argparse.Namespace) -> int:
    from autolabel_gui.gui.app import close_on_interrupt, create_app
    from autolabel_gui.gui.main_window import MainWindow

    app = create_app()
    window = MainWindow()
    folder: Path | None = args.folder
    if folder is None:
        last = str(window.qsettings.value("last_folder", "") or "")
        folder = Path(last) if last and Path(last).is_dir() else None
    if folder is not None:
        try:
            settings = ProjectSettings.load(folder).with_args(args)
        except ValueError as exc:
            print(f"autolabel-gui: {exc}", file=sys.stderr)
            return 2
        if not folder.is_dir():
            print(f"autolabel-gui: {folder}: not a folder", file=sys.stderr)
            return 2
        window.open_folder(folder, settings)
    window.show()
    _keep = close_on_interrupt(window)  # noqa: F841
    return app.exec()
