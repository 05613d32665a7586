"""Per-user folders (data, cache) in the place each platform expects them.

The weights lookup and the proposal cache's fallback for read-only folders both need these;
keeping them in one place means both follow the same platform rules and the same env overrides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "autolabel-gui"


def user_data_dir() -> Path:
    """Where downloaded weights live when the repository's ``weights/`` is not used."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_NAME


def user_cache_dir() -> Path:
    """Where the proposal cache goes for a folder we may not write into."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / APP_NAME / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP_NAME
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP_NAME


def user_config_dir() -> Path:
    """The user's own settings (not a folder's): what the user chose on this machine."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / APP_NAME
