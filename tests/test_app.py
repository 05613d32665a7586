"""Application start-up guards."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
from autolabel_gui.gui.app import drop_opencv_plugin_path


def test_opencv_qt_plugin_path_is_dropped(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/venv/lib/python3.11/site-packages/cv2/qt/plugins")
    drop_opencv_plugin_path()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ


def test_a_users_own_plugin_path_is_kept(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/opt/qt6/plugins")
    drop_opencv_plugin_path()
    assert os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] == "/opt/qt6/plugins"


def test_the_venv_holds_only_headless_opencv():
    """make installs only the headless wheel, whose cv2 has no bundled Qt plugins."""
    assert not (Path(cv2.__file__).parent / "qt" / "plugins").exists()
