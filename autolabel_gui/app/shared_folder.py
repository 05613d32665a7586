"""One folder, many hands: the review's side of image leases (``core/leases.py``), without Qt.

The rules the window follows when other annotators review the same folder:

- The image on screen is leased; the image left is released (unless its save failed: its edits
  are still to be written, so nobody else gets it meanwhile). Closing the folder releases all.
- An image another live session holds opens read-only, and says who holds it and since when.
  "Next unverified" and the grid's pages skip such images; Space and the grid never write them.
- When an image is leased again, a kept state whose VOC file changed on disk meanwhile (another
  annotator saved it) is read again, so nobody writes an old version over a newer one.
- When no lease can be written (a read-only folder), the review goes on without leases, and
  says so once (``problem``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from autolabel_gui.app.session import Opened, ReviewSession
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.leases import DEFAULT_TTL_S, Holder, LeaseBook, LeasesUnavailable

RENEW_EVERY_S = 15.0
"""How often the window renews its leases (a quarter of the default ttl)."""
SCAN_EVERY_S = 3.0
"""How often the window reads who holds what (one directory listing, one small read a lease)."""


def held_text(holder: Holder) -> str:
    """The file list's tooltip: "held by alice@laptop-2 since 14:02"."""
    return f"held by {holder.who} since {holder.since_text()}"


def read_only_text(holder: Holder) -> str:
    """Why an image opened read-only: "held by alice on laptop-2 since 14:02 — opened read-only"."""
    return f"held by {holder.describe()} — opened read-only"


@dataclass
class FolderLeases:
    """The leases of one folder under review in one window (``book`` None: leases are off)."""

    book: LeaseBook | None
    problem: str | None = None
    """Why leases are off, said once; None while they work."""
    held: dict[str, Holder] = field(default_factory=dict)
    """Images held by other live sessions, as of the last ``scan`` (or open)."""
    _read_only: set[str] = field(default_factory=set)
    _kept: set[str] = field(default_factory=set)
    _claims: set[str] = field(default_factory=set)

    @classmethod
    def for_folder(cls, folder: ImageFolder, me: Holder | None = None, ttl_s: float = DEFAULT_TTL_S,
                   clock: Callable[[], float] = time.monotonic) -> FolderLeases:
        try:
            book = LeaseBook(folder.state_dir, me or Holder.current(), ttl_s, clock, root=folder.root)
        except LeasesUnavailable as exc:
            return cls(None, f"{exc.filename}: {exc.strerror}; reviewing without image leases, so other "
                             f"annotators are not told which image is open here")
        return cls(book)

    # ------------------------------------------------------------------ the image on screen

    def open(self, session: ReviewSession, rel: str) -> Opened:
        """Lease ``rel`` and open it: writable if the lease is ours, read-only (with who holds
        it) if another live session has it."""
        other = self._acquire(rel)
        if other is None:
            self.held.pop(rel, None)
            if rel in self._read_only or (session.changed_on_disk(rel) and rel not in session.unsaved()):
                session.forget(rel)
                self._read_only.discard(rel)
            return session.open(rel)
        self.held[rel] = other
        if session.changed_on_disk(rel) and rel not in session.unsaved():
            session.forget(rel)
        opened = session.open(rel)
        if not opened.state.read_only or rel in self._read_only:
            opened.state.read_only = True
            opened.problem = f"{rel}: {read_only_text(other)}"
            self._read_only.add(rel)
        return opened

    def leave(self, session: ReviewSession, rel: str | None) -> None:
        """The window leaves ``rel`` (already saved): its lease goes back, unless its save
        failed (kept until it is written: ``renew`` lets it go then)."""
        if rel is None or self.book is None or rel in self._read_only:
            return
        if rel in session.unsaved():
            self._kept.add(rel)
        else:
            self.book.release(rel)

    def read_only_by_lease(self, rel: str | None) -> bool:
        """``rel`` was opened read-only because someone else holds it."""
        return rel in self._read_only

    def note(self, rel: str | None) -> str | None:
        """What to show over an image opened read-only because it is held, or None."""
        if rel is None or rel not in self._read_only:
            return None
        holder = self.held.get(rel)
        return f"{rel}: {read_only_text(holder)}" if holder is not None else None

    # ------------------------------------------------------------------ other images

    def held_by_other(self, rel: str) -> bool:
        """Skipped by "next unverified" and the grid: another live session holds ``rel``."""
        return rel in self.held

    def claim(self, session: ReviewSession, rel: str) -> str | None:
        """Before the grid verifies ``rel``: take its lease. Returns why it may not be written
        (held by someone else, or changed on disk since it was shown), or None."""
        if self.book is None:
            return None
        mine = rel in self.book.mine()
        try:
            other = self.book.acquire(rel)
        except OSError:
            return None  # leases stopped working: the review goes on without them
        if other is not None:
            self.held[rel] = other
            return read_only_text(other).replace(" — opened read-only", "; not verified")
        if not mine:
            self._claims.add(rel)
        if session.changed_on_disk(rel):
            if rel not in session.unsaved():
                session.forget(rel)  # the single view shows the new file
            return "changed on disk by someone else since it was shown; not verified"
        return None

    def drop_claims(self, keep: str | None) -> None:
        """The grid's page is done: give back the leases ``claim`` took, except ``keep``."""
        for rel in self._claims - {keep}:
            if self.book is not None:
                self.book.release(rel)
        self._claims.clear()

    # ------------------------------------------------------------------ timers and closing

    def scan(self) -> set[str]:
        """Read who holds what now; returns the images whose holder changed."""
        if self.book is None:
            return set()
        others = self.book.others()
        changed = {rel for rel in set(others) | set(self.held) if others.get(rel) != self.held.get(rel)}
        self.held = others
        return changed

    def renew(self, session: ReviewSession, current: str | None) -> list[str]:
        """Renew our leases and let go of those kept for a save that has now worked. Returns
        messages: leases lost (someone took them over), malformed lease files found."""
        if self.book is None:
            return []
        for rel in list(self._kept):
            if rel not in session.unsaved():
                self._kept.discard(rel)
                if rel != current:
                    self.book.release(rel)
        lost = self.book.renew()
        said = [f"{rel}: another annotator took this image over (this window looked gone to them); "
                f"save it again once they are done" for rel in lost]
        return said + self.book.take_reports()

    def reports(self) -> list[str]:
        return [] if self.book is None else self.book.take_reports()

    def close(self) -> None:
        if self.book is not None:
            self.book.release_all()
        self._read_only.clear()
        self._kept.clear()
        self._claims.clear()

    def _acquire(self, rel: str) -> Holder | None:
        if self.book is None:
            return None
        try:
            return self.book.acquire(rel)
        except OSError as exc:  # the folder became read-only: no leases from now on
            self.book = None
            self.problem = (f"{exc}; reviewing without image leases, so other annotators are not told which "
                            f"image is open here")
            return None
