"""QApplication start-up: one place for the application's name, style and high-DPI policy."""

from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QWidget

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


def close_on_interrupt(window: QWidget) -> QTimer:
    """Ctrl+C in the terminal closes the window (saving first) instead of killing it.

    Python runs signal handlers only between bytecodes, so a timer wakes the interpreter from
    Qt's event loop a few times a second. Keep the returned timer alive.
    """
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    return timer
