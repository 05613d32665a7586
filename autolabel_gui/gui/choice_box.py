"""A modal question whose buttons are the answers: the one way the window's dialogs ask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from PySide6.QtWidgets import QMessageBox

T = TypeVar("T")

Button = tuple[str, QMessageBox.ButtonRole, T] | tuple[QMessageBox.StandardButton, None, T]
"""A button's text and role (or a standard button) and the answer it gives."""


def choose(box: QMessageBox, buttons: Sequence[Button[T]], default: T, escape: T) -> T:
    """Show ``box`` with ``buttons``; the answer of the one clicked. ``default`` is the button
    Enter presses, ``escape`` the one Esc presses and the answer when the box is closed."""
    answers = {}
    for label, role, answer in buttons:
        if isinstance(label, QMessageBox.StandardButton):
            answers[answer] = box.addButton(label)
        else:
            answers[answer] = box.addButton(label, role or QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(answers[default])
    box.setEscapeButton(answers[escape])
    box.exec()
    clicked = box.clickedButton()
    return next((answer for answer, button in answers.items() if button is clicked), escape)
