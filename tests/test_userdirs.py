"""The per-user folders keep the places they had before ``platformdirs`` chose them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from autolabel_gui.core import userdirs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rules are Linux's")


def test_the_xdg_variables_choose_the_folders(tmp_path: Path, monkeypatch) -> None:
    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    assert userdirs.user_data_dir() == tmp_path / "data" / "autolabel-gui"
    assert userdirs.user_cache_dir() == tmp_path / "cache" / "autolabel-gui"
    assert userdirs.user_config_dir() == tmp_path / "config" / "autolabel-gui"


def test_without_them_the_folders_are_under_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.delenv(f"XDG_{name}_HOME", raising=False)
    assert userdirs.user_data_dir() == tmp_path / ".local" / "share" / "autolabel-gui"
    assert userdirs.user_cache_dir() == tmp_path / ".cache" / "autolabel-gui"
    assert userdirs.user_config_dir() == tmp_path / ".config" / "autolabel-gui"
