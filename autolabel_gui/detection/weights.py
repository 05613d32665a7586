"""Where the Grounding DINO checkpoint is looked for, and a resumable, verified download of it.

The checkpoint is 694 MB and often fetched over poor links, so a download resumes a ``.part``
file with an HTTP Range request and only a file whose size and sha256 match the manifest is
renamed into place: a half or corrupt file can never be mistaken for the model.
No torch here: the window and ``weights status`` must answer without loading the model.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from autolabel_gui.core.userdirs import user_data_dir

ENV_VAR = "AUTOLABEL_WEIGHTS"
REPO_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
MANIFEST_PATH = REPO_WEIGHTS_DIR / "manifest.json"
CHUNK = 1 << 20

# Used when the package is installed without the repository's weights/manifest.json;
# tests/test_weights.py checks that the two agree.
BUILTIN_MANIFEST = {
    "name": "groundingdino_swint_ogc.pth",
    "description": "Grounding DINO Swin-T OGC checkpoint (IDEA-Research, Apache-2.0)",
    "url": "https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth",
    "mirrors": ["https://huggingface.co/ShilongLiu/GroundingDINO/resolve/main/groundingdino_swint_ogc.pth"],
    "size": 693997677,
    "sha256": "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799",
    "config": "GroundingDINO_SwinT_OGC.py",
    "text_encoder": "bert-base-uncased",
}


class WeightsError(RuntimeError):
    """A download or verification failed; the message says what to do by hand."""


@dataclass(frozen=True, slots=True)
class WeightsSpec:
    """One downloadable checkpoint; ``size``/``sha256`` may be None when not known for sure."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    mirrors: tuple[str, ...] = field(default=())
    text_encoder: str = "bert-base-uncased"

    @classmethod
    def from_dict(cls, data: dict) -> WeightsSpec:
        return cls(
            name=data["name"],
            url=data["url"],
            size=data.get("size"),
            sha256=data["sha256"].lower() if data.get("sha256") else None,
            mirrors=tuple(data.get("mirrors") or ()),
            text_encoder=data.get("text_encoder") or "bert-base-uncased",
        )

    @property
    def urls(self) -> list[str]:
        return [self.url, *self.mirrors]


def load_manifest(path: Path | None = None) -> WeightsSpec:
    path = MANIFEST_PATH if path is None else Path(path)
    if path.is_file():
        try:
            return WeightsSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsError(f"{path}: cannot read the weights manifest: {exc}") from exc
    return WeightsSpec.from_dict(BUILTIN_MANIFEST)


def user_weights_dir() -> Path:
    return user_data_dir() / "weights"


def default_download_dir() -> Path:
    """The repository's ``weights/`` in a checkout, the user's data folder otherwise."""
    if REPO_WEIGHTS_DIR.is_dir() and os.access(REPO_WEIGHTS_DIR, os.W_OK):
        return REPO_WEIGHTS_DIR
    return user_weights_dir()


def candidates(flag: str | Path | None = None, spec: WeightsSpec | None = None) -> list[tuple[str, Path]]:
    """The places looked at, in order, each with where it came from.

    An explicit ``--weights`` or ``AUTOLABEL_WEIGHTS`` is the only candidate: silently using some
    other checkpoint than the one the user named would label a folder with the wrong model. The
    working directory is not a place looked at: a folder someone handed over, opened from
    inside, would supply the checkpoint.
    """
    spec = spec or load_manifest()
    if flag:
        return [("--weights", Path(flag).expanduser())]
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return [(ENV_VAR, p / spec.name if p.is_dir() else p)]
    out: list[tuple[str, Path]] = []
    for origin, folder in (("repository", REPO_WEIGHTS_DIR), ("user data", user_weights_dir())):
        p = folder / spec.name
        if all(p.resolve() != q.resolve() for _, q in out):
            out.append((origin, p))
    return out


def find_weights(flag: str | Path | None = None) -> Path | None:
    """The checkpoint to use: ``--weights``, then ``AUTOLABEL_WEIGHTS``, the repository's
    ``weights/``, the user data folder."""
    for _, path in candidates(flag):
        if path.is_file():
            return path
    return None


def missing_weights_message(flag: str | Path | None = None) -> str:
    """What to tell a user who has no checkpoint: where we looked and exactly what to fetch."""
    spec = load_manifest()
    looked = "\n".join(f"  {path}  ({origin})" for origin, path in candidates(flag, spec))
    size = f" ({spec.size / 1e6:.0f} MB)" if spec.size else ""
    return (
        f"Grounding DINO weights not found. Looked for:\n{looked}\n"
        f"Get them with:  autolabel-gui weights download\n"
        f"or download {spec.url}{size} by hand and put it at {default_download_dir() / spec.name}"
        f" (or pass --weights PATH, or set {ENV_VAR}=PATH).\n"
        f"The text encoder {spec.text_encoder} is needed too: it is fetched from Hugging Face on "
        f"first use, so it must be reachable, or pass --text-encoder DIR with a local copy of it."
    )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, spec: WeightsSpec, check_hash: bool = True) -> str | None:
    """Return why ``path`` is not the manifest's file, or None when everything known matches."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return f"size is {size} bytes, expected {spec.size}"
    if check_hash and spec.sha256 is not None:
        digest = sha256_of(path)
        if digest != spec.sha256:
            return f"sha256 is {digest}, expected {spec.sha256}"
    return None


def download(dest: Path | None = None, url: str | None = None, spec: WeightsSpec | None = None,
             progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch the checkpoint into ``dest`` (resuming ``NAME.part``), verify it, rename it into place.

    Tries the manifest URL then its mirrors (or only ``url`` when given). Raises WeightsError with
    the manual instructions when every source fails; a partial file is kept for the next resume.
    """
    spec = spec or load_manifest()
    dest = Path(dest) if dest is not None else default_download_dir()
    target = dest / spec.name
    if target.is_file() and verify(target, spec) is None:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / (spec.name + ".part")
    failures: list[str] = []
    for source in [url] if url else spec.urls:
        try:
            _fetch(source, part, spec, progress, timeout)
            break
        except _NetworkError as exc:
            failures.append(f"{source}: {exc}")
    else:
        raise WeightsError(
            "could not download the weights:\n  " + "\n  ".join(failures) + "\n"
            f"Download {url or spec.url} by hand and put it at {target}\n"
            f"(or pass --weights PATH, or set {ENV_VAR}=PATH). The text encoder {spec.text_encoder} "
            f"must be reachable on Hugging Face too, or pass --text-encoder DIR with a local copy."
        )
    problem = verify(part, spec)
    if problem:
        part.unlink(missing_ok=True)
        raise WeightsError(f"downloaded file rejected, {problem}; it was deleted. Run the download "
                           f"again, or fetch {url or spec.url} by hand and put it at {target}.")
    _fsync(part)
    os.replace(part, target)
    return target


class _NetworkError(Exception):
    """One source failed (refused, timed out, HTTP error, cut off); the next source may work."""


def _fetch(url: str, part: Path, spec: WeightsSpec, progress: bool, timeout: float) -> None:
    """Append the rest of the file to ``part``: a Range request when part of it is already there."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    if spec.size is not None and offset > spec.size:
        part.unlink()
        offset = 0
    if spec.size is not None and offset == spec.size:
        return
    headers = {"User-Agent": "autolabel-gui"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the part is already complete; verification decides
        raise _NetworkError(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _NetworkError(getattr(exc, "reason", exc)) from exc
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else spec.size
        with open(part, "ab" if offset else "wb") as fh, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=spec.name, file=sys.stderr, disable=None if progress else True,  # None: no bar in a log
        ) as bar:
            try:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _NetworkError(f"cut off after {fh.tell()} bytes ({exc}); run again to resume") from exc
    if total is not None and part.stat().st_size < total:
        raise _NetworkError(f"cut off after {part.stat().st_size} of {total} bytes; run again to resume")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
