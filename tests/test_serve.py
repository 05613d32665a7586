"""``autolabel-gui serve`` as a real local Ray Serve application on the tiny checkpoint (CPU).

One Ray (2 CPUs) and one server serve the module, started by each pytest worker that runs one of
its tests, as in tests/test_ray_label.py (``--dist loadgroup`` would keep them on one worker, but
pytest 9.2 drops the node-id suffix it groups by: pytest-xdist issue 1386). The server's replica
runs torch on one thread (Ray's rule for a fractional CPU), so the local runs compared with it do
too, and then cache rows and VOC files match byte for byte.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.serve import APP_NAME, STATS_PATH, Running, ServeOptions, start
from autolabel_gui.cli import main
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.server_token import TOKEN_ENV, digest
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.pipeline import DetectionPipeline
from autolabel_gui.detection.server_client import ServerClient
from autolabel_gui.detection.wire import DETECT_PATH, INFO_PATH, Limits, encode_request

from tests.fixtures.hostile import label_args, voc_files
from tests.fixtures.pipeline import SAMPLES, cache_rows, sample_photos, write_images

ray = pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install -e '.[cluster]')")

CLASSES = "person,cat,cup"
TOKEN = "test-token-0123456789abcdefghij"
LIMITS = Limits(max_body=1 << 20, max_pixels=4_000_000, max_classes=50)
pytestmark = pytest.mark.model


@dataclass
class Server:
    running: Running
    options: ServeOptions
    config: object

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def model_id(self) -> str:
        return self.running.info.model_id

    def restart(self) -> None:
        self.running = start(self.config, self.options, digest(TOKEN))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_gdino):
    """Ray and the proposal server on the tiny model, for the module; the clients' token in the env."""
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    before = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    options = ServeOptions(port=_free_port(), max_batch_size=4, batch_wait_s=0.05, limits=LIMITS)
    config = tiny_gdino.detector_config()
    try:
        yield Server(start(config, options, digest(TOKEN)), options, config)
    finally:
        if before is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = before
        ray.shutdown()





def _rows(folder: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(folder / ".autolabel" / "cache.sqlite")
    try:
        return conn.execute("SELECT relpath, run_id, size, mtime_ns, boxes FROM proposals ORDER BY relpath").fetchall()
    finally:
        conn.close()


def _voc_bytes(voc_dir: Path, image_root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(voc_dir)): p.read_bytes().replace(str(image_root).encode(), b"ROOT")
            for p in voc_files(voc_dir)}


def _skipped(err: str, root: Path) -> list[str]:
    return sorted(line.replace(str(root), "ROOT") for line in err.splitlines() if line.startswith("skipped "))


def _http(url: str, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN,
          headers: dict[str, str] | None = None) -> tuple[int, dict]:
    host, port = url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()


# -- equality --------------------------------------------------------------------------------


def test_label_through_the_server_writes_the_cache_rows_and_voc_bytes_of_the_local_run(
        server, tiny_gdino, tmp_path, capsys, one_torch_thread):
    local, remote = sample_photos(tmp_path / "local" / "photos"), sample_photos(tmp_path / "remote" / "photos")
    assert main(["label", str(local), "--voc-dir", str(local.parent / "voc"), *label_args(tiny_gdino, batch=1),
                 "--classes", CLASSES]) == 1, "the broken image makes both runs report a failure"
    local_err = capsys.readouterr().err
    remote_args = ["label", str(remote), "--voc-dir", str(remote.parent / "voc"), "--classes", CLASSES,
                   "--server", server.url, "--batch-size", "1", "--no-progress"]
    assert main(remote_args) == 1
    out, err = capsys.readouterr()

    photos = sorted(p.name for p in SAMPLES.glob("*.jpg"))
    assert [row[0] for row in _rows(remote)] == photos
    assert _rows(remote) == _rows(local), "the same run id, file identities and proposals, to the last bit"
    assert _voc_bytes(remote.parent / "voc", remote) == _voc_bytes(local.parent / "voc", local)
    assert _skipped(err, remote) == _skipped(local_err, local) and len(_skipped(err, remote)) == 1
    assert f"{len(photos)} detected" in out and "1 failed" in out
    assert "server 127.0.0.1" in err

    # Reopened without asking the server: the folder's settings carry the server's model id, so
    # the run id computed offline finds every proposal (and the local model's run id is the same).
    settings = ProjectSettings.load(remote)
    assert settings.backend == "server" and not settings.notes
    assert settings.run_plan().id == ProjectSettings.load(local).run_plan().id
    with ProposalCache.for_folder(remote) as cache:
        assert settings.run_plan().cached_relpaths(cache) == set(photos)
    assert main(remote_args) == 1
    out = capsys.readouterr().out
    assert "0 detected" in out and f"{len(photos)} from cache" in out, "no image is sent twice"


# -- security --------------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_refused(server, monkeypatch):
    assert _http(server.url, "GET", "/v1/health", token=None)[0] == 200, "health tells nothing, needs nothing"
    for token in (None, "wrong-token-0123456789abcdef", TOKEN + "x", ""):
        status, body = _http(server.url, "GET", INFO_PATH, token=token)
        assert status == 401 and body == {"error": "missing or wrong token"}
    assert _http(server.url, "GET", INFO_PATH, headers={"Authorization": f"Basic {TOKEN}"}, token=None)[0] == 401
    status, body = _http(server.url, "GET", INFO_PATH)
    assert status == 200 and body["model_id"] == server.model_id and body["device"] == "cpu"

    client = ServerClient(server.url, "wrong-token-0123456789abcdef", attempts=1)
    with pytest.raises(DetectorUnavailable, match=f"refused the token.*{TOKEN_ENV}") as refused:
        client.info()
    assert "wrong-token" not in str(refused.value), "no token in any message"
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(DetectorUnavailable, match="refused the token"):
        ServerClient(server.url, None, attempts=1).info()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _bomb() -> bytes:
    """A real 3000 x 3000 PNG (9 Mpx, over the test server's 4 Mpx) that compresses to some KB."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (3000, 3000)).save(out, format="PNG")
    return out.getvalue()


def test_oversized_bombs_and_malformed_requests_are_refused_with_a_clear_status(server):
    ontology = Ontology.from_names(["cat"])
    photo = (SAMPLES / "chelsea_cat.jpg").read_bytes()

    def detect(body: bytes, **kwargs) -> tuple[int, str]:
        status, reply = _http(server.url, "POST", DETECT_PATH, body, **kwargs)
        return status, reply.get("error", "")

    assert len(_bomb()) < 100_000
    cases = {
        "oversized body": (detect(b"\0" * (LIMITS.max_body + 1)), 413, "request body over 1 MB"),
        "oversized, chunked": (_chunked(server.url, b"\0" * (LIMITS.max_body + 1)), 413, "request body over 1 MB"),
        "bomb header": (detect(encode_request(ontology, _png_header(30_000, 30_000), server.model_id)), 422,
                        "too large: 30000x30000 pixels"),
        "real bomb": (detect(encode_request(ontology, _bomb(), server.model_id)), 422, "too large: 3000x3000"),
        "truncated": (detect(encode_request(ontology, photo[:len(photo) // 2], server.model_id)), 422,
                      "corrupt or truncated"),
        "not an image": (detect(encode_request(ontology, b"hello", server.model_id)), 422, "not an image"),
        "garbage": (detect(b"\xff\xff\xff\xff garbage"), 400, "malformed request"),
        "header not JSON": (detect(b"\0\0\0\x05{{{{{" + photo), 400, "the header is not JSON"),
        "no classes": (detect(encode_request(Ontology(()), photo, server.model_id)), 400, "no classes"),
        "too many classes": (detect(encode_request(Ontology.from_names([f"c{i}" for i in range(51)]), photo,
                                                   server.model_id)), 413, "too many classes: 51"),
        "another model": (detect(encode_request(ontology, photo, "grounding_dino:another")), 409,
                          "this server runs"),
        "wrong method": (_http(server.url, "GET", DETECT_PATH)[0], 405, None),
        "unknown path": (_http(server.url, "GET", "/etc/passwd")[0], 404, None),
    }
    for name, (got, status, text) in cases.items():
        got_status, got_text = got if isinstance(got, tuple) else (got, None)
        assert got_status == status, name
        if text is not None:
            assert text in got_text, (name, got_text)
            assert "/" not in got_text.replace("s/img", "") and "Traceback" not in got_text, (name, got_text)
    status, reply = _http(server.url, "POST", DETECT_PATH, encode_request(ontology, photo, server.model_id))
    assert status == 200 and reply["model_id"] == server.model_id, "the server works after all of that"


def _chunked(url: str, body: bytes) -> tuple[int, str]:
    """A body sent without Content-Length (chunked): refused while it is read."""
    host, port = url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", DETECT_PATH)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has refused
        response = conn.getresponse()
        return response.status, json.loads(response.read()).get("error", "")
    finally:
        conn.close()


# -- many reviewers --------------------------------------------------------------------------


def _server_settings(server: Server, classes: str = CLASSES, batch_size: int = 1) -> ProjectSettings:
    info = ServerClient(server.url, TOKEN).info()
    return ProjectSettings(classes=classes.split(","), batch_size=batch_size).with_server(
        server.url, info.model_id, info.model, info.title)


def test_four_concurrent_clients(server, tmp_path):
    settings = _server_settings(server, batch_size=2)
    photos = sorted(p.name for p in SAMPLES.glob("*.jpg"))
    reference = sample_photos(tmp_path / "reference", broken=False)
    with ProposalCache.for_folder(reference) as cache:
        alone = {r.relpath: r.boxes for r in DetectionPipeline(
            ImageFolder(reference), cache, settings.detector_config(), settings.ontology(), batch_size=1,
            plan=settings.run_plan()).run(photos)}
    _, before = _http(server.url, "GET", STATS_PATH)

    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def review(n: int) -> None:
        try:
            folder = sample_photos(tmp_path / f"client{n}", broken=False)
            with ProposalCache.for_folder(folder) as cache:
                pipeline = DetectionPipeline(ImageFolder(folder), cache, settings.detector_config(),
                                             settings.ontology(), plan=settings.run_plan())
                results[n] = {r.relpath: r.boxes for r in pipeline.run(photos) if r.ok}
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    start_time = time.perf_counter()
    threads = [threading.Thread(target=review, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    seconds = time.perf_counter() - start_time
    assert not errors and not any(t.is_alive() for t in threads)
    assert seconds < 90, f"four clients took {seconds:.0f} s"
    for n in range(4):
        assert sorted(results[n]) == photos
        for rel in photos:
            assert _close(results[n][rel], alone[rel]), f"client {n}, {rel}: batched differs from alone"
    _, after = _http(server.url, "GET", STATS_PATH)
    assert after["images"] - before["images"] <= 4 * len(photos), "no image computed twice for one client"
    assert after["largest_batch"] > 1, "requests of several clients met in one batch"


def _close(a, b, tol: float = 1e-3) -> bool:
    """Same proposals up to float noise (a batch's forward pass may round differently)."""
    if len(a) != len(b):
        return False
    return all(x.label == y.label and abs(x.score - y.score) <= tol
               and max(abs(p - q) for p, q in zip((x.x0, x.y0, x.x1, x.y1), (y.x0, y.y0, y.x1, y.y1))) <= 0.1
               for x, y in zip(a, b))


# -- a server that goes away -----------------------------------------------------------------


class _Gated:
    """The real remote detector; ``gate`` holds each call, so the test kills the server between two."""

    def __init__(self, inner, gate: threading.Event) -> None:
        self._inner, self._gate = inner, gate

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def device(self) -> str:
        return self._inner.device

    def detect(self, images, ontology, score_floor):
        assert self._gate.wait(60)
        return self._inner.detect(images, ontology, score_floor)


def test_server_killed_mid_folder_the_window_reports_it_and_resumes_when_it_returns(server, tmp_path, qtbot,
                                                                                    monkeypatch):
    from autolabel_gui.gui import worker as worker_module
    from autolabel_gui.gui.worker import DetectionController

    from tests.test_worker import Recorder

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.5, 1.0, 2.0))
    root = tmp_path / "photos"
    images = write_images(root, [f"img{i:02d}.png" for i in range(12)], size=(120, 90))
    folder = ImageFolder(root)
    settings = _server_settings(server)
    gate = threading.Event()
    gate.set()
    cache = ProposalCache.for_folder(root)
    controller = DetectionController(folder, cache, settings,
                                     detector_factory=lambda config: _Gated(create_detector(config), gate))
    rec = Recorder(controller)
    try:
        controller.start()
        controller.prioritize(images[0], images[1:])
        qtbot.waitUntil(lambda: len(rec.of("boxes")) >= 3, timeout=60_000)
        gate.clear()  # the worker holds its next request; then the server goes away
        from ray import serve

        serve.delete(APP_NAME)
        before = cache_rows(cache.path)
        assert 3 <= len(before) < len(images)
        gate.set()
        qtbot.waitUntil(lambda: any(s == "error" and "does not answer" in m for s, m, in rec.of("state")),
                        timeout=60_000)
        told = [m for s, m in rec.of("state") if s == "error"][0]
        assert server.url.split("://")[1] in told and told.endswith("retrying in 0.5 s")
        assert cache_rows(cache.path) == before, "nothing is lost while the server is away"

        server.restart()
        qtbot.waitUntil(lambda: len(cache_rows(cache.path)) == len(images), timeout=90_000)
        qtbot.waitUntil(lambda: len(rec.delivered()) == len(images), timeout=10_000)
    finally:
        gate.set()
        controller.stop()
        cache.close()
    delivered = [r for r, _ in rec.of("boxes")]
    assert sorted(delivered) == images and not rec.of("failed"), "every image once, none failed"
    after = cache_rows(cache.path)
    assert {rel: after[rel] for rel in before} == before, "an image cached before the kill was not sent again"
    assert any(s == "ready" and m == "model working again" for s, m in rec.of("state"))
