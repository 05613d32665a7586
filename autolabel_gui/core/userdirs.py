"""Per-user folders (data, cache, config) in the place each platform expects them.

The weights lookup and the proposal cache's fallback for read-only folders both need these;
keeping them in one place means both follow the same platform rules and the same env overrides.
The rules are ``platformdirs``'s (XDG_DATA_HOME, XDG_CACHE_HOME and XDG_CONFIG_HOME on Linux;
``%LOCALAPPDATA%``, ``%APPDATA%`` on Windows; ``~/Library`` on macOS), read at each call.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "autolabel-gui"


def user_data_dir() -> Path:
    """Where downloaded weights live when the repository's ``weights/`` is not used
    (``~/.local/share/autolabel-gui``, ``%LOCALAPPDATA%\\autolabel-gui``,
    ``~/Library/Application Support/autolabel-gui``)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    """Where the proposal cache goes for a folder we may not write into (``~/.cache/autolabel-gui``,
    ``%LOCALAPPDATA%\\autolabel-gui\\Cache``, ``~/Library/Caches/autolabel-gui``)."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    """The user's own settings (not a folder's): what the user chose on this machine
    (``~/.config/autolabel-gui``, ``%APPDATA%\\autolabel-gui``,
    ``~/Library/Application Support/autolabel-gui``)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))
