"""QApplication start-up: one place for the application's name, style and high-DPI policy."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QWidget

APP_NAME = "autolabel-gui"


def drop_opencv_plugin_path() -> None:
    """Forget a Qt plugin path that the non-headless opencv-python wheel set on import.

    That wheel points Qt at its own Qt 5 plugins, and Qt 6 then fails to start with a message
    naming OpenCV's folder (docs/decisions/0002-opencv-headless.md).
    """
    path = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if path and "cv2" in Path(path).parts:
        del os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]


def create_app(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, created on first call (tests already have one from pytest-qt)."""
    running = QApplication.instance()
    if isinstance(running, QApplication):
        return running
    drop_opencv_plugin_path()
    QCoreApplication.setOrganizationName(APP_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setStyle("Fusion")  # the same look on every platform; the screenshots match it
    return app


def close_on_interrupt(window: QWidget) -> QTimer:
    """Ctrl+C in the terminal closes the window instead of killing it: the same path as Ctrl+Q,
    which saves first and asks when a save still fails.

    Python runs signal handlers only between bytecodes, so a timer wakes the interpreter from
    Qt's event loop a few times a second. Keep the returned timer alive.
    """
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    return timer
