"""Weights lookup and the resumable, verified download, against a local HTTP server only."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from autolabel_gui.cli import main
from autolabel_gui.detection import weights as w

PAYLOAD = bytes(range(256)) * 1200  # 300 KiB, several download chunks


class _Server:
    """A tiny HTTP server with Range support; records the Range header of every request."""

    def __init__(self, payload: bytes, honour_range: bool = True) -> None:
        self.payload = payload
        self.ranges: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                body, status = outer.payload, 200
                if rng and honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(outer.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    body, status = outer.payload[start:], 206
                    self.send_response(status)
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                else:
                    self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/groundingdino_swint_ogc.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server(PAYLOAD)
    yield s
    s.close()


def _spec(url: str, sha: str | None = hashlib.sha256(PAYLOAD).hexdigest(), size: int | None = len(PAYLOAD)):
    return w.WeightsSpec(name="groundingdino_swint_ogc.pth", url=url, size=size, sha256=sha)


def test_full_download_is_verified_and_renamed_into_place(server, tmp_path):
    path = w.download(dest=tmp_path, spec=_spec(server.url), progress=False)
    assert path == tmp_path / "groundingdino_swint_ogc.pth"
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "groundingdino_swint_ogc.pth.part").exists()
    assert server.ranges == [None]


def test_partial_file_is_resumed_with_a_range_request(server, tmp_path):
    (tmp_path / "groundingdino_swint_ogc.pth.part").write_bytes(PAYLOAD[:100_000])
    path = w.download(dest=tmp_path, spec=_spec(server.url), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=100000-"]


def test_server_that_ignores_range_restarts_from_zero(tmp_path):
    s = _Server(PAYLOAD, honour_range=False)
    try:
        (tmp_path / "groundingdino_swint_ogc.pth.part").write_bytes(b"x" * 5000)
        path = w.download(dest=tmp_path, spec=_spec(s.url), progress=False)
    finally:
        s.close()
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_the_bad_file_deleted(server, tmp_path):
    with pytest.raises(w.WeightsError, match="sha256"):
        w.download(dest=tmp_path, spec=_spec(server.url, sha="0" * 64), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_checksum_verifies_what_is_known(server, tmp_path):
    with pytest.raises(w.WeightsError, match="size"):
        w.download(dest=tmp_path, spec=_spec(server.url, sha=None, size=len(PAYLOAD) + 1), progress=False)
    path = w.download(dest=tmp_path, spec=_spec(server.url, sha=None, size=None), progress=False)
    assert path.read_bytes() == PAYLOAD


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/groundingdino_swint_ogc.pth"


def test_no_network_says_what_to_download_and_where(tmp_path):
    url = _refused_url()
    with pytest.raises(w.WeightsError) as info:
        w.download(dest=tmp_path, spec=_spec(url), progress=False, timeout=5)
    msg = str(info.value)
    assert url in msg
    assert str(tmp_path / "groundingdino_swint_ogc.pth") in msg
    assert "bert-base-uncased" in msg and "--text-encoder" in msg
    assert not (tmp_path / "groundingdino_swint_ogc.pth").exists()


def test_mirror_is_tried_when_the_first_url_fails(server, tmp_path):
    spec = w.WeightsSpec(name="groundingdino_swint_ogc.pth", url=_refused_url(), mirrors=(server.url,),
                         size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert w.download(dest=tmp_path, spec=spec, progress=False).read_bytes() == PAYLOAD


def test_lookup_order_flag_env_repo_user(tmp_path, monkeypatch):
    name = w.load_manifest().name
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(w, "REPO_WEIGHTS_DIR", tmp_path / "repo" / "weights")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(w.ENV_VAR, raising=False)
    assert w.find_weights() is None

    user = tmp_path / "data" / "autolabel-gui" / "weights" / name
    user.parent.mkdir(parents=True)
    user.write_bytes(b"u")
    assert w.find_weights() == user

    repo = tmp_path / "repo" / "weights" / name
    repo.parent.mkdir(parents=True)
    repo.write_bytes(b"r")
    assert w.find_weights() == repo

    cwd = tmp_path / "weights" / name
    cwd.parent.mkdir()
    cwd.write_bytes(b"c")
    assert w.find_weights() == repo, "the working directory is not looked at (test_hostile_models)"

    env = tmp_path / "env.pth"
    env.write_bytes(b"e")
    monkeypatch.setenv(w.ENV_VAR, str(env))
    assert w.find_weights() == env
    monkeypatch.setenv(w.ENV_VAR, str(tmp_path / "nothing.pth"))
    assert w.find_weights() is None, "a named but missing file must not fall back to another one"

    flag = tmp_path / "flag.pth"
    flag.write_bytes(b"f")
    assert w.find_weights(str(flag)) == flag
    assert w.find_weights(str(tmp_path / "missing.pth")) is None


def test_missing_message_names_url_places_and_text_encoder(tmp_path, monkeypatch):
    monkeypatch.delenv(w.ENV_VAR, raising=False)
    msg = w.missing_weights_message(tmp_path / "nope.pth")
    assert w.load_manifest().url in msg
    assert str(tmp_path / "nope.pth") in msg
    assert "bert-base-uncased" in msg and "--text-encoder" in msg


def test_manifest_file_matches_the_builtin_copy():
    data = json.loads(Path(w.MANIFEST_PATH).read_text(encoding="utf-8"))
    assert data == w.BUILTIN_MANIFEST
    assert len(data["sha256"]) == 64


def test_weights_status_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(w, "REPO_WEIGHTS_DIR", tmp_path / "repo")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(w.ENV_VAR, raising=False)
    assert main(["weights", "status"]) == 1
    out = capsys.readouterr()
    assert "missing" in out.out and "weights download" in out.err
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / w.load_manifest().name).write_bytes(b"x")
    assert main(["weights", "status"]) == 0
    assert "WARNING: size is 1 bytes" in capsys.readouterr().out


def test_weights_download_command_reports_failure(tmp_path, monkeypatch, capsys):
    assert main(["weights", "download", "--dest", str(tmp_path), "--url", _refused_url()]) == 1
    assert "by hand" in capsys.readouterr().err


def test_weights_download_command_fetches_checkpoint_then_text_encoder(server, tmp_path, monkeypatch, capsys):
    """One command gets everything; a text encoder that cannot be fetched is named, exit 1."""
    monkeypatch.setattr(w, "load_manifest", lambda path=None: w.WeightsSpec(
        name="groundingdino_swint_ogc.pth", url=server.url, size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(), text_encoder="no-such-org/no-such-encoder"))
    assert main(["weights", "download", "--dest", str(tmp_path), "--skip-text-encoder"]) == 0
    assert (tmp_path / "groundingdino_swint_ogc.pth").read_bytes() == PAYLOAD
    assert "text encoder" not in capsys.readouterr().err
    (tmp_path / "groundingdino_swint_ogc.pth").unlink()
    assert main(["weights", "download", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no-such-org/no-such-encoder" in err and "--text-encoder DIR" in err
    assert (tmp_path / "groundingdino_swint_ogc.pth").read_bytes() == PAYLOAD
