"""Decoded images off the UI thread, with the neighbours of the current image prefetched.

A 12-MP JPEG takes ~100 ms to decode; doing that on the key press (as labelImg does) makes
every D a visible stall. Here a small thread pool decodes the next and previous images while
the annotator works, and a small LRU keeps them, so D usually finds its image already decoded.
Results cross to the GUI thread through a queued signal.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, load_image

DEFAULT_CAPACITY = 6
"""Decoded images kept: current, two behind, three ahead (~36 MB each at 12 MP)."""


class ImageCache(QObject):
    """``request`` returns a decoded image at once when it is cached, else ``loaded`` follows."""

    loaded = Signal(str, object)  # relpath, (H, W, 3) uint8 RGB
    failed = Signal(str, str)  # relpath, reason
    _done = Signal(str, object, str)  # from a pool thread: relpath, image or None, error

    def __init__(self, folder: ImageFolder, capacity: int = DEFAULT_CAPACITY,
                 loader: Callable[..., np.ndarray] = load_image, workers: int = 2,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._folder = folder
        self._capacity = max(capacity, 1)
        self._loader = loader
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autolabel-image")
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, Future] = {}
        self._wanted: list[str] = []
        self._closed = False
        self._done.connect(self._on_done)

    def get(self, rel: str) -> np.ndarray | None:
        image = self._images.get(rel)
        if image is not None:
            self._images.move_to_end(rel)
        return image

    def request(self, rel: str) -> np.ndarray | None:
        """The image if decoded; otherwise it is decoded first of all and ``loaded`` is emitted."""
        image = self.get(rel)
        if image is None:
            self._submit(rel)
        return image

    def prefetch(self, current: str, neighbours: list[str]) -> None:
        """Keep ``current`` and ``neighbours``; decode the missing ones; drop stale queued work."""
        self._wanted = [current, *neighbours]
        for rel, future in list(self._pending.items()):
            if rel not in self._wanted and future.cancel():
                del self._pending[rel]
        for rel in neighbours:
            if rel not in self._images:
                self._submit(rel)

    def close(self) -> None:
        """Cancel queued decodes and wait for the running ones (call before the window goes)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, rel: str) -> None:
        if self._closed or rel in self._pending:
            return
        path = self._folder.image_path(rel)
        self._pending[rel] = self._pool.submit(self._decode, rel, path)

    def _decode(self, rel: str, path) -> None:
        """Runs in a pool thread; never raises (an exception would vanish in the Future)."""
        try:
            self._done.emit(rel, self._loader(path), "")
        except ImageLoadError as exc:
            self._done.emit(rel, None, str(exc))
        except Exception as exc:  # a decoder bug must not leave the image loading forever
            self._done.emit(rel, None, f"{path}: {type(exc).__name__}: {exc}")

    @Slot(str, object, str)
    def _on_done(self, rel: str, image: np.ndarray | None, error: str) -> None:
        self._pending.pop(rel, None)
        if self._closed:
            return
        if image is None:
            self.failed.emit(rel, error)
            return
        self._images[rel] = image
        self._images.move_to_end(rel)
        while len(self._images) > self._capacity:
            oldest = next((r for r in self._images if r not in self._wanted), None)
            if oldest is None:
                break
            del self._images[oldest]
        self.loaded.emit(rel, image)
