"""HTTP to a proposal server (``autolabel-gui serve``): timeouts, retries with backoff, typed answers.

Stdlib only (``http.client``), so a reviewer's laptop needs nothing of the server's stack. What a
caller sees:

- ``DetectorUnreachable``: no answer, a refused or dropped connection, a timeout, a gateway or
  "not ready" status, or a reply that is not the format (a proxy's error page): the server may
  come back, nothing is lost by waiting; raised after ``attempts`` tries spaced by a backoff.
- ``DetectorUnavailable``: the server answers but will not serve this client (a wrong or
  missing token, another model, another protocol): waiting does not help, the message says what does.
- ``ImageRefused``: this one image is refused (too large, not decodable); the others go on.

The token is sent as ``Authorization: Bearer`` and appears in no message.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.server_token import TOKEN_ENV, token_path
from autolabel_gui.detection.base import DetectorUnavailable, DetectorUnreachable, ImageRefused
from autolabel_gui.detection.wire import (
    DETECT_PATH,
    INFO_PATH,
    MAX_REPLY,
    ProtocolMismatch,
    ServerInfo,
    encode_request,
    error_text,
    parse_reply,
)

TRANSIENT_STATUSES = frozenset({404, 408, 429, 500, 502, 503, 504})
"""Statuses a starting, restarting or overloaded server (or its proxy) answers with: wait, retry.
A 500 that carries the server's own error reply is the model failing on one image, not this."""


class UsageError(ValueError):
    """A ``--server`` value that cannot be a server address."""


@dataclass(frozen=True, slots=True)
class Address:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Address:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{url!r} is not a server address (http://HOST:PORT or https://HOST)")
        if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise UsageError(f"{url!r}: give the server as http://HOST:PORT, without a path or credentials")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise UsageError(f"{url!r}: not a valid port") from None
        return cls(parts.scheme, parts.hostname, port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def where(self) -> str:
        """``gpu-box:8000``: how messages name the server."""
        return self.url.split("://", 1)[1]


class ServerClient:
    """One proposal server. Thread-safe: each thread keeps its own keep-alive connection."""

    def __init__(self, url: str, token: str | None, *, connect_timeout: float = 5.0, read_timeout: float = 120.0,
                 attempts: int = 3, backoff_s: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        self.address = Address.parse(url)
        self._token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._local = threading.local()

    @property
    def where(self) -> str:
        return self.address.where

    # -- the calls --------------------------------------------------------------------------

    def info(self) -> ServerInfo:
        status, data = self._call("GET", INFO_PATH, None, lambda s, d: s not in TRANSIENT_STATUSES)
        self._refused(status, data)
        try:
            return ServerInfo.from_json(data)
        except ProtocolMismatch as exc:
            raise DetectorUnavailable(f"the proposal server {self.where}: {exc}") from None
        except ValueError:
            raise DetectorUnreachable(f"{self.where} answers, but not as an autolabel-gui proposal server "
                                      f"(HTTP {status})") from None

    def detect(self, image: bytes, ontology: Ontology, model_id: str, name: str) -> tuple[list[Box], float]:
        """The proposals for one encoded image, and the seconds the server spent on it."""
        body = encode_request(ontology, image, model_id)

        def answered(status: int, data: bytes) -> bool:
            if status == 200:
                return _reply_or_none(data, ontology) is not None
            return status not in TRANSIENT_STATUSES or (status == 500 and error_text(data) is not None)

        status, data = self._call("POST", DETECT_PATH, body, answered)
        self._refused(status, data)
        if status in (413, 422) or status == 500:
            reason = error_text(data) or f"HTTP {status}"
            raise ImageRefused(f"{name}: refused by the proposal server {self.where}: {reason}")
        if status == 400:
            raise DetectorUnavailable(f"the proposal server {self.where} cannot read this client's requests "
                                      f"({error_text(data) or 'HTTP 400'}): update the older of the two")
        reply = _reply_or_none(data, ontology) if status == 200 else None
        if reply is None:
            raise DetectorUnreachable(f"the proposal server {self.where} answers something that is not proposals "
                                      f"(HTTP {status})")
        got_model, boxes, seconds = reply
        if got_model != model_id:
            raise _other_model(self.where)
        return boxes, seconds

    def _refused(self, status: int, data: bytes) -> None:
        if status in (401, 403):
            raise DetectorUnavailable(
                f"the proposal server {self.where} refused the token ({error_text(data) or status}): set "
                f"{TOKEN_ENV} to the server's token, or copy its token file to {token_path()}")
        if status == 409:
            raise _other_model(self.where)

    # -- transport --------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes | None,
              answered: Callable[[int, bytes], bool]) -> tuple[int, bytes]:
        """Send, retrying what a restarting server answers; the last answer, or DetectorUnreachable."""
        problem = ""
        status, data = 0, b""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                status, data = self._once(method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                problem = _why(exc)
                continue
            if answered(status, data):
                return status, data
            problem = f"HTTP {status}" + (f": {text}" if (text := error_text(data)) else "")
        if status and status not in TRANSIENT_STATUSES and status != 200:
            return status, data
        if status == 200 and problem.startswith("HTTP 200"):
            raise DetectorUnreachable(f"the proposal server {self.where} answers something that is not its "
                                      f"format (HTTP 200)")
        raise DetectorUnreachable(f"the proposal server {self.where} does not answer ({problem})")

    def _once(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/octet-stream", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for fresh in (False, True):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(MAX_REPLY + 1)
                if len(data) > MAX_REPLY:
                    raise http.client.HTTPException("reply too large")
                if response.getheader("Connection", "").lower() == "close":
                    self._drop()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop()
                if reused and not fresh:  # a kept-alive connection the server had closed: once more, new
                    continue
                raise
            except BaseException:
                self._drop()
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self.address.scheme == "https" else http.client.HTTPConnection
            conn = kind(self.address.host, self.address.port, timeout=self.connect_timeout)
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.read_timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close this thread's connection (the others close with their threads)."""
        self._drop()


def _other_model(where: str) -> DetectorUnavailable:
    return DetectorUnavailable(f"the proposal server {where} now runs another model: open the folder with "
                               f"--server again to use it (the proposals it made so far stay cached)")


def _why(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def _reply_or_none(data: bytes, ontology: Ontology) -> tuple[str, list[Box], float] | None:
    try:
        return parse_reply(data, ontology)
    except ValueError:
        return None
