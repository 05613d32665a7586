"""The ``server`` backend: a Detector whose model runs in a proposal server (``autolabel-gui serve``).

The window's worker, its look-ahead, the cache and ``label`` use it like a local model: the
pipeline asks ``read_file`` for each image (the file's bytes as they are on disk, checked as
``load_image`` checks them before decoding, never decoded here) and ``detect`` sends a batch's
images as concurrent requests, so the server's dynamic batching can put them on the GPU together.
Results are filed under the server's model id (``remote_spec``), the id a local run of the same
model files has. A server that stops answering raises ``DetectorUnreachable`` (nothing of the
batch is cached, it is sent again when the server is back); one image the server refuses is
that image's error.

Torch-free: a laptop that only reviews never imports the model stack.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.images import ImageLoadError, read_image_file
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.server_token import TokenError, client_token
from autolabel_gui.detection import remote_spec
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, Prepared, register_backend
from autolabel_gui.detection.image_input import check_image
from autolabel_gui.detection.server_client import ServerClient, UsageError
from autolabel_gui.detection.wire import ServerInfo

_ANSWERS_KEPT = 256
"""Answers kept by (image digest, prompts): an image asked again (a batch split after one of its
images was refused) is answered from here, never sent twice."""


def connect(url: str, **kwargs) -> ServerClient:
    """A client for the server at ``url`` with this user's token; DetectorUnavailable when the
    address or the token file is unusable."""
    try:
        return ServerClient(url, client_token(), **kwargs)
    except (UsageError, TokenError) as exc:
        raise DetectorUnavailable(str(exc)) from None


@register_backend(remote_spec.NAME)
class RemoteDetector:
    """Proposals from a proposal server; ``model_id`` is the server's (checked on every reply)."""

    def __init__(self, config: DetectorConfig, client: ServerClient | None = None) -> None:
        url = config.extra.get(remote_spec.URL)
        problem = remote_spec.missing(config)
        if problem or not url:
            raise DetectorUnavailable(problem or "no server")
        self._client = client or connect(url)
        info = self._client.info()  # DetectorUnreachable while it is down: the caller tries again
        expected = config.extra[remote_spec.MODEL_ID]
        if info.model_id != expected:
            raise DetectorUnavailable(
                f"the proposal server {self._client.where} runs {info.model or info.title}, not the model this "
                f"folder's proposals came from: open the folder with --server {url} to use it")
        self.info: ServerInfo = info
        self._model_id = expected
        self._pool = ThreadPoolExecutor(max(1, config.batch_size), thread_name_prefix="autolabel-server")
        self._answers: OrderedDict[tuple[str, str], list[Box]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def device(self) -> str:
        return f"server {self._client.where}"

    @property
    def precision(self) -> str:
        return self.info.precision

    def describe(self) -> str:
        """``server gpu-box:8000, mm-grounding-dino-t``: where the proposals come from."""
        return f"server {self._client.where}, {self.info.model or self.info.title}"

    def read_file(self, path: Path) -> Prepared:
        data = read_image_file(path)
        if len(data) + 64 * 1024 > self.info.max_body:
            raise ImageLoadError(path, f"too large to send: {len(data) / 2**20:.1f} MB (the server takes "
                                       f"{self.info.max_body / 2**20:.0f} MB)")
        return Prepared(data, 0, 0, (remote_spec.NAME, str(path)))

    def detect(self, images: Sequence[np.ndarray | Prepared], ontology: Ontology,
               score_floor: float) -> list[list[Box]]:
        for i, image in enumerate(images):
            if not isinstance(image, Prepared):  # as every backend: RGB uint8 only, never converted
                check_image(f"image #{i}", image)
        if not images or len(ontology) == 0:
            return [[] for _ in images]
        jobs = [self._pool.submit(self._one, image, i, ontology) for i, image in enumerate(images)]
        wait(jobs)
        results = [job.result() for job in jobs]  # the first failure is raised, after every request ended
        return [[b for b in boxes if b.score is None or b.score >= score_floor] for boxes in results]

    def _one(self, image: np.ndarray | Prepared, index: int, ontology: Ontology) -> list[Box]:
        if isinstance(image, Prepared):
            data, name = image.data, image.spec[1] if isinstance(image.spec, tuple) else f"image #{index}"
        else:  # decoded before the detector existed: sent losslessly
            data, name = _png(image), f"image #{index}"
        key = (hashlib.sha256(data).hexdigest(), json_of(ontology))
        with self._lock:
            known = self._answers.get(key)
        if known is not None:
            return list(known)
        boxes, _seconds = self._client.detect(data, ontology, self._model_id, name)
        with self._lock:
            self._answers[key] = boxes
            while len(self._answers) > _ANSWERS_KEPT:
                self._answers.popitem(last=False)
        return list(boxes)


def json_of(ontology: Ontology) -> str:
    """The prompts as the server reads them (captions cut per group), for the answers' key."""
    return repr(([(c.name, c.text) for c in ontology.classes], ontology.group_starts))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(out, format="PNG", compress_level=1)
    return out.getvalue()
