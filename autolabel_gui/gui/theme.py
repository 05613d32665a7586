"""View ▸ Theme: System (follow the desktop's light or dark setting), Light or Dark.

The application runs the Fusion style (``gui.app``), which draws every widget from the
palette, so a theme is a palette: both are spelled out here rather than taken from the
platform, so Light is light even on a dark desktop. System reads Qt's colour scheme
(``QStyleHints.colorScheme``, Qt 6.5+; the pin is 6.6 or newer) and follows it when it
changes. The choice is the user's and lives in QSettings. The canvas behind the image follows
the theme; box colours do not need to, since boxes and their tags lie on the photograph and
each tag picks black or white text for its own colour (``gui.colors.text_color_on``).
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu, QWidget

KEY = "view/theme"
THEME_TITLE = "Theme"
Role = QPalette.ColorRole


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


CANVAS_BACKGROUND = {True: QColor("#2b2b2b"), False: QColor("#c8c8c8")}
"""Behind the image, dark or light: a neutral grey that never competes with the photograph."""

_DARK = {
    Role.Window: "#353535", Role.WindowText: "#f0f0f0", Role.Base: "#262626", Role.AlternateBase: "#303030",
    Role.ToolTipBase: "#454545", Role.ToolTipText: "#f0f0f0", Role.PlaceholderText: "#9a9a9a",
    Role.Text: "#f0f0f0", Role.Button: "#3c3c3c", Role.ButtonText: "#f0f0f0", Role.BrightText: "#ff5252",
    Role.Light: "#5a5a5a", Role.Midlight: "#4a4a4a", Role.Mid: "#2e2e2e", Role.Dark: "#202020",
    Role.Shadow: "#121212", Role.Highlight: "#2f7fd0", Role.HighlightedText: "#ffffff",
    Role.Link: "#6cb4ff", Role.LinkVisited: "#c58af9",
}
_LIGHT = {  # Fusion's own light palette
    Role.Window: "#efefef", Role.WindowText: "#000000", Role.Base: "#ffffff", Role.AlternateBase: "#f7f7f7",
    Role.ToolTipBase: "#ffffdc", Role.ToolTipText: "#000000", Role.PlaceholderText: "#808080",
    Role.Text: "#000000", Role.Button: "#efefef", Role.ButtonText: "#000000", Role.BrightText: "#ffffff",
    Role.Light: "#ffffff", Role.Midlight: "#cacaca", Role.Mid: "#b8b8b8", Role.Dark: "#9f9f9f",
    Role.Shadow: "#767676", Role.Highlight: "#308cc6", Role.HighlightedText: "#ffffff",
    Role.Link: "#0000ff", Role.LinkVisited: "#ff00ff",
}
_DISABLED = {True: "#7f7f7f", False: "#bebebe"}


def is_dark(theme: Theme, scheme: Qt.ColorScheme) -> bool:
    """Whether ``theme`` is dark on a desktop whose colour scheme is ``scheme``."""
    if theme is Theme.SYSTEM:
        return scheme == Qt.ColorScheme.Dark
    return theme is Theme.DARK


def palette(dark: bool) -> QPalette:
    """The whole palette of the light or dark theme."""
    result = QPalette()
    for role, color in (_DARK if dark else _LIGHT).items():
        result.setColor(role, QColor(color))
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        result.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED[dark]))
    return result


def remembered(qsettings: QSettings) -> Theme:
    """The user's choice; System when none (or an unknown value) is stored."""
    try:
        return Theme(str(qsettings.value(KEY, Theme.SYSTEM.value)))
    except ValueError:
        return Theme.SYSTEM


class ThemeMenu(QMenu):
    """View ▸ Theme: three exclusive choices; applies the palette to the whole application and
    says whether it is dark (``dark_changed``) for what paints its own colours."""

    dark_changed = Signal(bool)

    def __init__(self, qsettings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(THEME_TITLE, parent)
        self.setObjectName("theme_menu")
        self._qsettings = qsettings
        self.theme = remembered(qsettings)
        group = QActionGroup(self)
        self.choices: dict[Theme, QAction] = {}
        for theme in Theme:
            action = QAction(theme.value.capitalize(), self, checkable=True)
            action.setObjectName(f"theme_{theme.value}")
            action.setChecked(theme is self.theme)
            action.triggered.connect(lambda _checked=False, t=theme: self.choose(t))
            group.addAction(action)
            self.addAction(action)
            self.choices[theme] = action
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._scheme_changed)

    def choose(self, theme: Theme) -> None:
        """Use ``theme`` now and from now on."""
        self.theme = theme
        self.choices[theme].setChecked(True)
        self._qsettings.setValue(KEY, theme.value)
        self.apply()

    def apply(self) -> bool:
        """Put the chosen theme's palette on the application; True when it is dark."""
        dark = is_dark(self.theme, QGuiApplication.styleHints().colorScheme())
        QApplication.setPalette(palette(dark))
        self.dark_changed.emit(dark)
        return dark

    def _scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.theme is Theme.SYSTEM:
            self.apply()
