"""``autolabel-gui [FOLDER]``: the review window.

Command-line model options override what the folder remembers and are saved with the folder,
as the Settings dialog saves them (``--classes a,b`` once, and the folder keeps its classes).
Without FOLDER the last folder is opened again.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.commands.options import remembered_given

if TYPE_CHECKING:  # the window is imported only when it opens
    from PySide6.QtWidgets import QApplication

    from autolabel_gui.gui.main_window import MainWindow

CLOSE_WAIT_MS = 1500
"""How long closing the window waits for the detector before the process ends without it."""


def _gives_settings(args: argparse.Namespace) -> bool:
    return bool(remembered_given(args))


def _save(folder: Path, settings: ProjectSettings) -> None:
    """Keep what the command line gave with the folder, as the Settings dialog does (validated
    by ``with_args``, so only valid values reach the file)."""
    try:
        settings.save(folder)
    except (OSError, ValueError) as exc:
        print(f"autolabel-gui: warning: settings not saved in {folder}: {exc}", file=sys.stderr)


def folder_settings(folder: Path, args: argparse.Namespace) -> ProjectSettings:
    """The folder's settings with the command line's options over them, saved with the folder
    when the command line gave any (``options.REMEMBERED``); ValueError for an invalid one."""
    settings = ProjectSettings.load(folder).with_args(args)
    for note in settings.notes:
        print(f"autolabel-gui: warning: {note}", file=sys.stderr)
    if getattr(args, "server", None):
        settings = _with_server(settings, args.server)
    if _gives_settings(args):
        _save(folder, settings)
    return settings


def _with_server(settings: ProjectSettings, url: str) -> ProjectSettings:
    """``--server URL``: asked which model it runs before the window opens (a few seconds at most);
    ValueError when it cannot be used."""
    from autolabel_gui.app.server_choice import with_server
    from autolabel_gui.detection.base import DetectorUnavailable

    try:
        settings, note = with_server(settings, url)
    except DetectorUnavailable as exc:
        raise ValueError(f"--server {url}: {exc}") from None
    if note:
        print(f"autolabel-gui: warning: {note}", file=sys.stderr)
    return settings


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
        if not folder.is_dir():
            print(f"autolabel-gui: {folder}: not a folder", file=sys.stderr)
            return 2
        try:
            settings = folder_settings(folder, args)
        except ValueError as exc:
            print(f"autolabel-gui: {exc}", file=sys.stderr)
            return 2
        window.open_folder(folder, settings)
        if settings.notes:
            window.show_message(settings.notes[0], error=True)
    window.show()
    _keep = close_on_interrupt(window)  # noqa: F841
    return serve(app, window)


def serve(app: QApplication, window: MainWindow) -> NoReturn:
    """Run the event loop until the window closes; then end the process within about
    ``CLOSE_WAIT_MS`` even when the detector is in the middle of an image."""
    window.close_wait_ms = CLOSE_WAIT_MS
    code = app.exec()
    # Every file is saved, the settings written and the cache closed (or, with the model inside
    # a forward pass that cannot be interrupted, committed a batch whole or not at all). What is
    # left is the interpreter tearing down torch and Qt: 3-4 s measured after the window had
    # gone, for nothing the user wants. So the process ends now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
