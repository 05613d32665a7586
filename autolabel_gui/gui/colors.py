"""Class colours: a fixed palette indexed by class position, so a class keeps its colour
across images, sessions and machines (the annotator learns "person is orange")."""

from __future__ import annotations

import zlib

from PySide6.QtGui import QColor

# Kelly-style high-contrast colours, ordered so that neighbours differ strongly in hue; all
# are readable as 2-px lines on both dark and light photographs.
PALETTE: tuple[str, ...] = (
    "#ff8c00",  # orange
    "#00b4ff",  # sky blue
    "#39d353",  # green
    "#ff3b6b",  # pink-red
    "#ffd400",  # yellow
    "#b36bff",  # violet
    "#00e5c0",  # turquoise
    "#ff66e0",  # magenta
    "#a3e635",  # lime
    "#ff6f3c",  # coral
    "#4d7cff",  # blue
    "#d4a373",  # tan
)

# A box drawn with W has no class until the window assigns one.
UNLABELLED_COLOR = QColor("#e0e0e0")


def color_for_index(index: int) -> QColor:
    """The colour of the class at ``index`` in the class list (wraps after the palette ends)."""
    return QColor(PALETTE[index % len(PALETTE)])


def class_colors(names: list[str]) -> dict[str, QColor]:
    """Colours for a class list, in class-list order."""
    return {name: color_for_index(i) for i, name in enumerate(names)}


def fallback_color(label: str) -> QColor:
    """A stable colour for a label that is not in the class list (e.g. read from an old file)."""
    if not label:
        return QColor(UNLABELLED_COLOR)
    return color_for_index(zlib.crc32(label.encode("utf-8")))


def relative_luminance(color: QColor) -> float:
    """WCAG 2 relative luminance: the sRGB channels made linear, then weighted."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.redF()) + 0.7152 * linear(color.greenF()) + 0.0722 * linear(color.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio, 1 to 21 (4.5 is the minimum for small text)."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_color_on(background: QColor) -> QColor:
    """Black or white, whichever contrasts more with ``background``. By WCAG's measure, not by
    a luminance cut at 0.5: that gave white on the blue and the pink-red tags (3.7:1 and 3.5:1,
    below the 4.5:1 small text needs) where black reads at 5.6:1 and 6.1:1, in either theme."""
    black, white = QColor("#000000"), QColor("#ffffff")
    return black if contrast_ratio(background, black) >= contrast_ratio(background, white) else white
