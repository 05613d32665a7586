"""The ``server`` backend's spec, torch-free: proposals from a proposal server (``autolabel-gui serve``).

A folder reviewed through a server keeps, in ``DetectorConfig.extra``, the server's address
(``url``) and the id of the model it runs (``model_id``, learnt from the server when ``--server``
was given). That id is the model id a local run of the same model files computes, so the run id,
and with it every cache row, is the one a local run would use: reopening the folder without the
server shows what it proposed, and the local model of the same files finds them cached too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from autolabel_gui.detection.base import BackendSpec, DetectorConfig

NAME = "server"
URL, MODEL_ID, MODEL, TITLE = "url", "model_id", "model", "title"


def model_id(config: DetectorConfig) -> str:
    """The server's own model id, as recorded when it was reached (a placeholder before that,
    which no cache row of a real model carries)."""
    return config.extra.get(MODEL_ID) or f"server:{config.extra.get(URL, '')}:not-reached"


def where(url: str) -> str:
    """``gpu-box:8000`` of ``http://gpu-box:8000``: how the window names a server."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def missing(config: DetectorConfig) -> str | None:
    if not config.extra.get(URL):
        return "The server backend needs a proposal server: pass --server URL (see `autolabel-gui serve --help`)."
    if not config.extra.get(MODEL_ID):
        return (f"The proposal server {config.extra[URL]} has not been reached yet: open the folder with "
                f"--server {config.extra[URL]} while it runs.")
    return None


def folder_problem(extra: Mapping[str, str], chosen: Collection[str]) -> str | None:
    """A folder's settings may send its images to a proposal server only when the user chose that
    server on this machine (``--server``): whoever wrote the folder could name any address."""
    url = extra.get(URL, "")
    if url and url in chosen:
        return None
    return f"you have not chosen {url or 'it'} on this machine (pass --server {url or 'URL'} to use it)"


SPEC = BackendSpec(
    name=NAME,
    module="autolabel_gui.detection.remote",
    title="A proposal server (autolabel-gui serve) runs the model; set with --server URL",
    model_id=model_id,
    missing=missing,
    options=(URL, MODEL_ID, MODEL, TITLE),
    servable=False,  # a server holds a model of its own, not a link to another server
    folder_problem=folder_problem,
)
