"""``--server URL``: the folder's settings made to take proposals from a proposal server.

The server is asked once which model it runs (``GET /v1/info``); its model id goes into the
settings (``ProjectSettings.with_server``), so every run id computed from them, on this machine
and offline, is the server's. When the server does not answer, a folder that already names the
same server keeps it: what it proposed is in the cache, and the window keeps trying it.
"""

from __future__ import annotations

from collections.abc import Callable

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.detection import remote_spec
from autolabel_gui.detection.base import DetectorUnavailable, DetectorUnreachable
from autolabel_gui.detection.remote import connect
from autolabel_gui.detection.server_client import Address, UsageError
from autolabel_gui.detection.wire import ServerInfo

InfoOf = Callable[[str], ServerInfo]


def fetch_info(url: str) -> ServerInfo:
    """What the server at ``url`` runs; DetectorUnreachable / DetectorUnavailable otherwise."""
    return connect(url, attempts=2, read_timeout=15.0).info()


def normalised(url: str) -> str:
    """``gpu-box:8000`` -> ``http://gpu-box:8000``; DetectorUnavailable for a value that is no address."""
    try:
        return Address.parse(url).url
    except UsageError as exc:
        raise DetectorUnavailable(str(exc)) from None


def with_server(settings: ProjectSettings, url: str, info_of: InfoOf | None = None, *,
                offline_ok: bool = True) -> tuple[ProjectSettings, str | None]:
    """``settings`` taking proposals from the server at ``url``, and a note when it did not answer
    but the folder already knew it (``offline_ok``: the window, which shows what it proposed
    before and keeps trying); DetectorUnavailable (the reason) when it cannot be used."""
    url = normalised(url)
    try:
        info = (info_of or fetch_info)(url)
    except DetectorUnreachable as exc:
        if offline_ok and _already_names(settings, url):
            return settings, f"{exc}: showing what it proposed before; it is tried again"
        raise
    return settings.with_server(url, info.model_id, info.model, info.title), None


def _already_names(settings: ProjectSettings, url: str) -> bool:
    """The folder already takes its proposals from the server at ``url`` (and knows its model):
    its settings are what ``with_server`` would make of what they hold."""
    extra = settings.extra
    model_id = extra.get(remote_spec.MODEL_ID, "")
    again = settings.with_server(url, model_id, extra.get(remote_spec.MODEL, ""), extra.get(remote_spec.TITLE, ""))
    return bool(model_id) and again == settings
