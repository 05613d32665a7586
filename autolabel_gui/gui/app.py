"""QApplication start-up: one place for the application's name, style and high-DPI policy."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication

APP_NAME = "autolabel-gui"


def create_app(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, created on first call (tests already have one from pytest-qt)."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName(APP_NAME)
        QCoreApplication.setApplicationName(APP_NAME)
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setStyle("Fusion")  # the same look on every platform; the screenshots match it
    return app
