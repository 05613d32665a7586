"""The proposal server's client side without Ray: token file, wire bounds, a server that is down,
slow or answers garbage, the worker waiting for it, and folder settings that name a server."""

from __future__ import annotations

import http.server
import io
import json
import os
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.trust import remember_chosen
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, decode_image_bytes, load_image
from autolabel_gui.core.ontology import ClassSpec, Ontology
from autolabel_gui.core.server_token import (
    TOKEN_ENV,
    TokenError,
    client_token,
    digest,
    load_or_create_token,
    matches,
    read_token,
)
from autolabel_gui.detection.base import DetectorUnavailable, DetectorUnreachable, ImageRefused
from autolabel_gui.detection.server_client import ServerClient
from autolabel_gui.detection.wire import (
    Limits,
    ServerInfo,
    WireError,
    encode_reply,
    encode_request,
    parse_reply,
    parse_request,
)
from PIL import Image

from tests.fixtures.pipeline import FakeFactory, write_images

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
INFO = ServerInfo(model_id="grounding_dino:0123456789abcdef0123", model="grounding-dino-t-ogc", title="GD T",
                  device="cuda:0", precision="gpu-auto", max_body=1 << 20, max_pixels=10**7, max_classes=10)


# -- token -----------------------------------------------------------------------------------


def test_the_token_is_made_once_for_its_owner_only(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "server-token"
    token, made = load_or_create_token(path)
    assert made and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == (token, False)
    assert matches(token, digest(token))
    assert not matches(token + "x", digest(token)) and not matches(None, digest(token))

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert client_token(path) == token
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-0123")
    assert client_token(path) == "from-the-environment-0123"

    path.chmod(0o644)
    with pytest.raises(TokenError, match="others may read"):
        read_token(path)
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(TokenError, match="not a server token"):
        read_token(path)
    assert read_token(tmp_path / "none") is None


# -- the image decoder for bytes ---------------------------------------------------------------


def test_bytes_decode_exactly_as_the_file_does():
    for photo in sorted(SAMPLES.glob("*.jpg")):
        assert np.array_equal(decode_image_bytes(photo.read_bytes()), load_image(photo)), photo.name
    out = io.BytesIO()
    Image.new("L", (4000, 3000)).save(out, format="PNG")
    with pytest.raises(ImageLoadError, match="too large: 4000x3000 pixels") as refused:
        decode_image_bytes(out.getvalue(), "upload", max_pixels=10**6)
    assert refused.value.reason.startswith("too large") and "/" not in refused.value.reason


# -- wire ------------------------------------------------------------------------------------


def test_requests_and_replies_are_bounded_and_checked():
    ontology = Ontology((ClassSpec("cat", "a cat"), ClassSpec("dog")), group_starts=(1,))
    request = parse_request(encode_request(ontology, b"IMAGE", "m1"), Limits())
    assert [(c.name, c.text) for c in request.ontology] == [("cat", "a cat"), ("dog", "dog")]
    assert (request.ontology.group_starts, request.image, request.model_id) == ((1,), b"IMAGE", "m1")
    for body, status in ((b"", 400), (b"\xff\xff\xff\xff", 400), (b"\0\0\0\x02[]IMG", 400),
                         (encode_request(ontology, b"", "m1"), 400),
                         (encode_request(Ontology.from_names([f"c{i}" for i in range(11)]), b"I", "m1"), 413)):
        with pytest.raises(WireError) as refused:
            parse_request(body, Limits(max_classes=10))
        assert refused.value.status == status
    bad_groups = encode_request(ontology, b"I", "m1").replace(b'"groups": [1]', b'"groups": [5]')
    with pytest.raises(WireError, match="groups"):
        parse_request(bad_groups, Limits())

    boxes = [Box(1.0, 2.0, 3.5, 4.25, "cat", 0.123456789012345, BoxState.PROPOSED)]
    model_id, got, _ = parse_reply(encode_reply("m1", boxes, 0.2), ontology)
    assert model_id == "m1" and got == boxes, "floats come back bit for bit"
    for reply in (b"<html>", b'{"model_id": "m1", "boxes": [[0, 0, 1, 1, "horse", 0.5]]}',
                  b'{"model_id": "m1", "boxes": [[0, 0, 1, 1, "cat", NaN]]}', b'{"boxes": []}'):
        with pytest.raises(ValueError):
            parse_reply(reply, ontology)


# -- a server that misbehaves ------------------------------------------------------------------


@contextmanager
def fake_server(answer):
    """An HTTP server on a free port whose every answer is ``answer(handler) -> (status, body)``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self._reply()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._reply()

        def _reply(self):
            status, body = answer(self)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(url: str, **kwargs) -> tuple[ServerClient, list[float]]:
    waits: list[float] = []
    return ServerClient(url, "a-token-0123456789abcdef", sleep=waits.append, **kwargs), waits


def test_a_server_that_is_down_is_unreachable_after_retries_with_backoff():
    with fake_server(lambda h: (200, b"")) as url:
        pass  # the port is free again: nobody listens
    client, waits = _client(url, attempts=3)
    with pytest.raises(DetectorUnreachable, match="does not answer .connection refused."):
        client.info()
    assert waits == [0.5, 1.0]


def test_garbage_slow_and_restarting_servers():
    ontology = Ontology.from_names(["cat"])
    with fake_server(lambda h: (200, b"<html>hello</html>")) as url:
        client, _ = _client(url)
        with pytest.raises(DetectorUnreachable, match="not as an autolabel-gui proposal server"):
            client.info()
        with pytest.raises(DetectorUnreachable, match="not its format"):
            client.detect(b"IMG", ontology, INFO.model_id, "a.jpg")

    with fake_server(lambda h: (time.sleep(1.0), (200, INFO.to_json()))[1]) as url:
        client, _ = _client(url, read_timeout=0.2, attempts=2)
        with pytest.raises(DetectorUnreachable, match="timed out"):
            client.info()

    answers = iter([(503, b"starting"), (502, b""), (200, INFO.to_json())])
    with fake_server(lambda h: next(answers)) as url:
        client, waits = _client(url)
        assert client.info() == INFO and waits == [0.5, 1.0], "a restarting server is waited for"

    seen: list[str | None] = []

    def refuse(h):
        seen.append(h.headers.get("Authorization"))
        return 422, json.dumps({"error": "corrupt or truncated image data"}).encode()

    with fake_server(refuse) as url:
        client, _ = _client(url)
        with pytest.raises(ImageRefused, match="a.jpg: refused by the proposal server .*: corrupt or truncated"):
            client.detect(b"IMG", ontology, INFO.model_id, "a.jpg")
    assert seen == ["Bearer a-token-0123456789abcdef"]

    with fake_server(lambda h: (200, encode_reply("another-model", [], 0.1))) as url:
        client, _ = _client(url)
        with pytest.raises(DetectorUnavailable, match="now runs another model") as other:
            client.detect(b"IMG", ontology, INFO.model_id, "a.jpg")
        assert not isinstance(other.value, DetectorUnreachable)


# -- the window's worker waits for the server ----------------------------------------------------


class _ComesBack(FakeFactory):
    """A model that is unreachable for its first ``down`` builds or detect calls, then works."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down

    def __call__(self, config):
        if self.down > 0:
            self.down -= 1
            raise DetectorUnreachable("the proposal server gpu-box:8000 does not answer (connection refused)")
        return super().__call__(config)


def test_the_worker_says_the_server_is_away_keeps_the_work_and_resumes(qtbot, tmp_path, monkeypatch):
    from autolabel_gui.gui import worker as worker_module
    from autolabel_gui.gui.worker import DetectionController

    from tests.test_worker import Recorder

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.2, 0.4))
    images = write_images(tmp_path / "images", [f"img{i}.png" for i in range(1, 6)])
    folder = ImageFolder(tmp_path / "images")
    settings = ProjectSettings(classes=["person", "dog"], batch_size=1)
    with ProposalCache(tmp_path / "cache.sqlite") as cache:
        controller = DetectionController(folder, cache, settings, detector_factory=_ComesBack(down=2))
        rec = Recorder(controller)
        controller.start()
        controller.prioritize(images[0], images[1:])
        qtbot.waitUntil(lambda: len(rec.of("boxes")) == len(images), timeout=30_000)
        controller.stop()
    states = rec.of("state")
    errors = [m for s, m in states if s == "error"]
    assert errors[:2] == [
        "the proposal server gpu-box:8000 does not answer (connection refused); retrying in 0.2 s",
        "the proposal server gpu-box:8000 does not answer (connection refused); retrying in 0.4 s"]
    assert ("ready", "model working again") in states
    assert not [s for s, _ in states if s == "unavailable"], "an unreachable server is no missing model"
    assert sorted(r for r, _ in rec.of("boxes")) == images and not rec.of("failed")


# -- settings ----------------------------------------------------------------------------------


def test_a_folder_may_name_only_a_server_the_user_chose(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    ProjectSettings(classes=["cat"]).with_server("http://evil.example:8000", INFO.model_id).save(folder)
    (tmp_path / "cfg").mkdir()
    os.environ["XDG_CONFIG_HOME"], before = str(tmp_path / "cfg"), os.environ["XDG_CONFIG_HOME"]
    try:
        loaded = ProjectSettings.load(folder)
        assert loaded.backend != "server" and "http://evil.example:8000" not in json.dumps(loaded.extra)
        assert "the proposal server it names is not used" in loaded.notes[0]
        remember_chosen(["http://evil.example:8000"])
        assert ProjectSettings.load(folder).backend == "server"
    finally:
        os.environ["XDG_CONFIG_HOME"] = before


def test_serve_and_server_options_are_checked(tmp_path, capsys):
    assert main(["serve", "--port", "0"]) == 2
    assert "--port must be from 1 to 65535" in capsys.readouterr().err
    (tmp_path / "a.jpg").write_bytes(b"")
    assert main(["label", str(tmp_path), "--classes", "dog", "--ray", "local", "--server", "http://x:1"]) == 2
    assert "--ray and --server" in capsys.readouterr().err
    assert main(["label", str(tmp_path), "--classes", "dog", "--server", "ftp://x"]) == 2
    assert "not a server address" in capsys.readouterr().err


def test_label_stops_when_the_server_goes_away_and_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    """The server answers who it is, then only "not ready": label keeps what it has and says so."""
    monkeypatch.setenv(TOKEN_ENV, "a-token-0123456789abcdef")
    images = write_images(tmp_path / "photos", ["a.png", "b.png"])

    def answer(h):
        return (200, INFO.to_json()) if h.path == "/v1/info" else (503, b"")

    with fake_server(answer) as url:
        assert main(["label", str(tmp_path / "photos"), "--classes", "cat", "--server", url, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"does not answer (HTTP 503); 0 of {len(images)} images done and cached: run the same command" in err
    assert "Traceback" not in err
