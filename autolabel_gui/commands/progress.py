"""Progress of a command's phases on stderr: a bar on a terminal, plain lines in a log.

tqdm draws with carriage returns and, for a second bar below an open one, cursor moves: in a
log file or a pipe those are escape codes around every update. So a bar is drawn only when
stderr is a terminal, and one bar at a time (a phase's bar closes when the next starts);
anywhere else each phase says once, when it ends, how far it got.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class PhaseProgress:
    """``progress(phase, done, total)`` callbacks as bars or lines; ``titles`` names each phase."""

    def __init__(self, titles: dict[str, str], stream: TextIO | None = None, unit: str = "img") -> None:
        self.titles = titles
        self.stream = stream or sys.stderr
        self.unit = unit
        self.on_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._phase: str | None = None
        self._bar: tqdm | None = None
        self._done = self._total = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self._phase:
            self.close()
            self._phase = phase
            if self.on_terminal:
                self._bar = tqdm(desc=self.titles.get(phase, phase), unit=self.unit, file=self.stream, total=total)
        self._done, self._total = done, total
        if self._bar is not None:
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        """End the current phase: close its bar, or write its line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._phase is not None:
            print(f"{self.titles.get(self._phase, self._phase)}: {self._done} of {self._total} {self.unit}",
                  file=self.stream)
        self._phase = None
