"""Robust image loading: every photo a user drops in a folder either loads as 8-bit RGB or
fails with one clear ``ImageLoadError`` that names the file and the reason.

- Bytes are read first and decoded from memory, so non-ASCII and odd paths work everywhere
  (``cv2.imread`` cannot open them on Windows).
- EXIF orientation is applied exactly once, to the decoded array, the same way for both
  decoders; ``image_size`` reports the same oriented size from the header alone. Boxes are
  stored in this oriented frame.
- 8-bit RGB/grey JPEGs (the bulk of every dataset) are decoded by OpenCV, 1.4-1.8x faster
  than Pillow + ``exif_transpose`` for a 12 Mpx photo (benchmarks/bench_images.py);
  everything else, and any JPEG that does not end in an end-of-image marker, by Pillow, whose
  mode conversions cover grey, palette, alpha, 16-bit and CMYK and which refuses truncated
  data instead of painting it grey as libjpeg does for OpenCV.
- Pillow's decompression-bomb limit (89 Mpx) is raised to ``MAX_PIXELS`` for this process:
  scans and aerial tiles of 20000x15000 are real inputs. Anything larger is refused before
  decoding, with the size in the message.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from autolabel_gui.core.safe_read import UnsafeFileError, open_regular

MAX_PIXELS = 500_000_000
"""Largest image (width x height) we decode: 1.5 GB as RGB. Pillow's own limit is raised to it."""

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_ORIENTATION_TAG = 0x0112
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageLoadError(Exception):
    """An image that cannot be shown: missing, unreadable, not an image, corrupt or too large."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DecodeBudget:
    """Memory that image decodes may use at once, shared by every thread of the process.

    A decode first reserves what it will need at its peak (the file's bytes plus a measured
    figure per pixel for the image's mode: ``decode_need``) and waits while other
    decodes hold the rest, so the pipeline's two decode threads plus its prefetch queue never
    decode two huge images at once. An image that alone needs more than the whole budget is
    refused before any pixel is decoded.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()

    def check(self, path: Path, need: int) -> None:
        """Refuse an image that could never be decoded within the budget."""
        if need > self.total:
            raise ImageLoadError(path, f"too large to decode: it needs about {need / GB:.1f} GB of memory, more "
                                       f"than the {self.total / GB:.1f} GB images may use")

    @contextlib.contextmanager
    def reserve(self, path: Path, need: int):
        self.check(path, need)
        with self._cond:
            self._cond.wait_for(lambda: self.in_use + need <= self.total)
            self.in_use += need
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= need
                self._cond.notify_all()


GB = 1 << 30
DECODE_BUDGET = DecodeBudget(3 * GB)
"""3 GB: a 20,000 x 15,000 RGB scan (2.8 GB at its peak) decodes; a 22,000 x 22,000 one (4.5 GB) is refused."""
_PEAK_BYTES_PER_PIXEL = {
    "1": 9, "L": 9, "P": 9, "I;16": 8, "I;16B": 8, "I;16L": 8, "I;16N": 8, "I": 12, "F": 12,
    "RGB": 10, "YCbCr": 10, "CMYK": 10, "RGBA": 13, "RGBa": 13, "LA": 13, "La": 13, "PA": 13,
}
"""Peak memory of one decode per pixel, by the mode Pillow opens the file in, beyond the file's
bytes: Pillow's buffer, the conversion, the RGB result and its oriented copy. Measured by
``benchmarks/bench_decode_memory.py`` (3000 x 3000, as stored and rotated, ``load_image`` and
``load_thumbnail``; the largest of each mode, in bytes: 1/L 7.1, P 7.5 (transparent), I;16 6.8,
I/F 10.3, RGB 8.6, CMYK 8.8, RGBA/LA 11.0, an RGB JPEG through OpenCV 6.8) plus 15-25 %.
The estimate this replaced (buffer + 6) was 3x short for RGBA; ``tests/test_decode_memory.py``
checks every mode's reservation against a real decode."""
_OTHER_MODES_BYTES_PER_PIXEL = max(_PEAK_BYTES_PER_PIXEL.values())
_WEBP_BYTES_PER_PIXEL = {"RGB": 20, "RGBA": 24}
"""A WebP decodes through libwebp's own 4-byte buffer before Pillow's: measured (same benchmark,
3000 x 3000, lossy and lossless alike) RGB 16.7, RGBA 19.4 bytes per pixel, plus 15-25 %; the
mode figures above were 1.67 times short for an RGB WebP (982 MiB used for 611 reserved at
8000 x 8000). Other modes take the larger figure."""
_PROGRESSIVE_JPEG_BYTES_PER_BAND = 2
"""A progressive JPEG keeps every DCT coefficient (2 bytes) of every component until the last
scan: on top of the mode's figure, 2 bytes per pixel per band (no chroma subsampling, the worst
case). Measured: a progressive CMYK JPEG 12.3 B/px (1.23 times the CMYK figure), RGB 6.5, L 6.4."""


def decode_need(size: tuple[int, int], mode: str, file_bytes: int, fmt: str | None = None,
                progressive: bool = False) -> int:
    """Peak bytes one decode of an image this size needs (see ``DecodeBudget``); ``fmt``: Pillow's
    format name (``WEBP`` costs more), ``progressive``: a progressive JPEG."""
    width, height = size
    per_pixel = _PEAK_BYTES_PER_PIXEL.get(mode, _OTHER_MODES_BYTES_PER_PIXEL)
    if fmt == "WEBP":
        per_pixel = max(per_pixel, _WEBP_BYTES_PER_PIXEL.get(mode, max(_WEBP_BYTES_PER_PIXEL.values())))
    if progressive:
        try:
            bands = Image.getmodebands(mode)
        except (KeyError, ValueError):
            bands = 4
        per_pixel += _PROGRESSIVE_JPEG_BYTES_PER_BAND * bands
    return file_bytes + width * height * per_pixel


@contextlib.contextmanager
def _pillow_errors(path: Path) -> Iterator[None]:
    """Pillow's many ways of saying "this is not a readable image", as one ImageLoadError each,
    for the header check and for the decode alike."""
    try:
        yield
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image, or an image format that cannot be read") from None
    except MemoryError:
        raise ImageLoadError(path, "not enough memory to decode it") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise ImageLoadError(path, f"corrupt or truncated image data ({exc})") from None


def load_image(path: Path | str) -> np.ndarray:
    """Decode ``path`` to a C-contiguous (H, W, 3) uint8 RGB array in display orientation."""
    path = Path(path)
    data, need = _read_checked(path)
    with DECODE_BUDGET.reserve(path, need):
        return _decode(path, data)


def _decode(path: Path, data: bytes) -> np.ndarray:
    rgb, orientation = _decode_stored(path, data)
    out = np.ascontiguousarray(_apply_orientation(rgb, orientation))
    # Pillow hands out read-only views of its buffer; callers may draw on the array.
    return out if out.flags.writeable else out.copy()


def _decode_stored(path: Path, data: bytes) -> tuple[np.ndarray, int]:
    """RGB pixels as stored and the EXIF orientation; Pillow's own buffer is freed on return,
    before the oriented copy is made (``DecodeBudget`` counts one of them, not both)."""
    with _pillow_errors(path):
        with Image.open(io.BytesIO(data)) as im:
            _check_pixels(path, im.size)
            if _is_plain_jpeg(im, data):
                orientation = orientation_of(im)
                rgb = _decode_jpeg_cv2(data)
                if rgb is None:
                    rgb = _to_rgb(im)
            else:
                im.load()
                orientation = orientation_of(im)
                rgb = _to_rgb(im)
    return rgb, orientation


def load_thumbnail(path: Path | str, max_side: int) -> np.ndarray:
    """``path`` decoded to at most ``max_side`` pixels a side, (H, W, 3) uint8 RGB, oriented.

    For the grid of many 12-MP photos: a JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg
    itself (Pillow's draft mode), several times faster than a full decode plus a resize, then
    brought to size with an area filter. Same checks, budget, mode conversions and truncation
    refusal as ``load_image``: a thumbnail never shows a picture the full view would refuse.
    """
    path = Path(path)
    data, need = _read_checked(path)
    with DECODE_BUDGET.reserve(path, need):
        with _pillow_errors(path):
            with Image.open(io.BytesIO(data)) as im:
                _check_pixels(path, im.size)
                width, height = im.size
                scale = max_side / max(width, height)
                if scale < 1:
                    im.draft(None, (max(int(width * scale), 1), max(int(height * scale), 1)))
                im.load()
                orientation = orientation_of(im)
                rgb = _to_rgb(im)
    height, width = rgb.shape[:2]
    scale = max_side / max(width, height)
    if scale < 1:
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    out = np.ascontiguousarray(_apply_orientation(rgb, orientation))
    return out if out.flags.writeable else out.copy()


def image_size(path: Path | str) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header without decoding pixels."""
    path = Path(path)
    try:
        with os.fdopen(open_regular(path), "rb") as fh:  # a FIFO named like an image must not block
            with Image.open(fh) as im:
                width, height = _stored_size(im)
                if im.format == "PNG":
                    fh.seek(0)
                    orientation = _png_orientation(fh)
                else:
                    orientation = orientation_of(im)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except UnidentifiedImageError:
        reason = "empty file" if _is_empty(path) else "not an image, or an image format that cannot be read"
        raise ImageLoadError(path, reason) from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageLoadError(path, f"cannot read the image header ({getattr(exc, 'strerror', None) or exc})") from None
    if orientation in (5, 6, 7, 8):
        return height, width
    return width, height


def _stored_size(im: Image.Image) -> tuple[int, int]:
    """Size as stored in the file, before orientation.

    Pillow's TIFF reader already reports (and on load applies) the oriented size, so its
    ``size`` cannot be swapped again; the TIFF width/length tags give the stored one.
    """
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        if 256 in tags and 257 in tags:
            return int(tags[256]), int(tags[257])
    return im.size


def _read_checked(path: Path) -> tuple[bytes, int]:
    """The file's bytes and its decode need, the header checked before the rest is read.

    A 2 GB file of junk named ``.jpg`` is refused after its first bytes, and an image too large
    for the pixel limit or the decode budget before its data is read.
    """
    try:
        with open(open_regular(path), "rb", buffering=0) as raw:  # a FIFO named like an image must not block
            st = os.fstat(raw.fileno())
            if st.st_size == 0:
                raise ImageLoadError(path, "empty file (0 bytes)")
            fh = io.BufferedReader(raw)
            need = _header_need(path, fh, st.st_size)
            fh.seek(0)
            return fh.read(), need
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a folder, not an image") from None
    except UnsafeFileError as exc:
        raise ImageLoadError(path, exc.reason) from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot be read ({exc.strerror or exc})") from None


def _header_need(path: Path, fh: IO[bytes], file_bytes: int, max_pixels: int = MAX_PIXELS) -> int:
    """The decode need of the image whose header ``fh`` starts with: ImageLoadError when it is not
    an image, has more pixels than ``max_pixels`` or could never fit the decode budget."""
    with _pillow_errors(path), Image.open(fh) as im:
        _check_pixels(path, im.size, max_pixels)
        progressive = im.format == "JPEG" and bool(im.info.get("progressive") or im.info.get("progression"))
        need = decode_need(im.size, im.mode, file_bytes, im.format, progressive)
    DECODE_BUDGET.check(path, need)
    return need


def decode_image_bytes(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An encoded image (a file's bytes, sent by a proposal client) decoded exactly as
    ``load_image`` decodes the file: the same header checks before any pixel (pixel limit, decode
    budget), the same decoders, orientation and truncation refusal. ``name`` stands for the path
    in ``ImageLoadError``; its ``reason`` never names a path of this machine. ``max_pixels``: a
    lower pixel limit than ``MAX_PIXELS`` (a server's)."""
    path = Path(name)
    if not data:
        raise ImageLoadError(path, "empty file (0 bytes)")
    need = _header_need(path, io.BytesIO(data), len(data), min(max_pixels, MAX_PIXELS))
    with DECODE_BUDGET.reserve(path, need):
        return _decode(path, data)


def read_image_file(path: Path | str) -> bytes:
    """A file's bytes, refused as ``load_image`` refuses it before decoding (not a regular file,
    empty, not an image, too many pixels, beyond the decode budget): what a proposal client sends."""
    return _read_checked(Path(path))[0]


def _is_empty(path: Path) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


def _check_pixels(path: Path, size: tuple[int, int], limit: int = MAX_PIXELS) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageLoadError(path, f"invalid image size {width}x{height}")
    if width * height > limit:
        raise ImageLoadError(path, f"too large: {width}x{height} pixels (the limit is {limit:,} pixels)")


def _is_plain_jpeg(im: Image.Image, data: bytes) -> bool:
    """An 8-bit RGB or gray JPEG that ends properly: the case OpenCV decodes faster.

    libjpeg only warns on a truncated file and OpenCV then returns the image padded with grey,
    so a JPEG without a final end-of-image marker goes to Pillow, which raises instead.
    """
    return (
        im.format == "JPEG"
        and im.mode in ("RGB", "L")
        and data.startswith(_JPEG_MAGIC)
        and data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    )


_IMREAD_COLOR_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.11 decodes straight to RGB


def _decode_jpeg_cv2(data: bytes) -> np.ndarray | None:
    """OpenCV's JPEG decode to RGB, orientation left to ``_apply_orientation``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if _IMREAD_COLOR_RGB is not None:
        return cv2.imdecode(buf, _IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)


def orientation_of(im: Image.Image) -> int:
    """The EXIF orientation (1-8, 1 = as stored) of an opened image; 1 when missing or broken."""
    try:
        exif = im.getexif()
    except Exception:  # a broken EXIF block must not make a good image unreadable
        return 1
    return _orientation_in(exif)


def _orientation_in(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_orientation(fh: io.BufferedIOBase) -> int:
    """Orientation from a PNG ``eXIf`` chunk, walking chunk headers only.

    Pillow's ``getexif`` decodes the whole PNG when the chunk follows the pixel data.
    """
    if fh.read(8) != _PNG_MAGIC:
        return 1
    while True:
        header = fh.read(8)
        if len(header) < 8:
            return 1
        length, kind = struct.unpack(">I4s", header)
        if kind == b"eXIf":
            exif = Image.Exif()
            try:
                exif.load(fh.read(length))
            except Exception:  # as in orientation_of: a broken EXIF block is ignored
                return 1
            return _orientation_in(exif)
        if kind == b"IEND":
            return 1
        fh.seek(length + 4, os.SEEK_CUR)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit RGB: alpha composited on white, 16/32-bit scaled, CMYK converted."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        top = _full_scale(im)
        return _in_bands(im, lambda band: _gray_to_rgb(_scale_to_8bit(np.asarray(band), top)))
    if mode == "P":
        target = "RGBA" if "transparency" in im.info else "RGB"
    elif mode in ("1", "L"):
        target = "L"
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        target = "RGBA"
    else:
        target = "RGB"

    def convert(band: Image.Image) -> np.ndarray:
        pixels = np.asarray(band if band.mode == target else band.convert(target))
        if target == "L":
            return _gray_to_rgb(pixels)
        return _composite_on_white(pixels) if target == "RGBA" else pixels

    return _in_bands(im, convert)


_CHUNK_PIXELS = 1 << 20
"""Pixels converted at a time: each band's copies and wider temporaries are a few MB."""


def _bands(im: Image.Image) -> Iterator[tuple[int, int, Image.Image]]:
    """(top, bottom, copy of those rows) of ``im``, about ``_CHUNK_PIXELS`` pixels each."""
    width, height = im.size
    rows = max(1, _CHUNK_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        yield top, bottom, im.crop((0, top, width, bottom))


def _in_bands(im: Image.Image, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """The (H, W, 3) uint8 result of ``convert`` applied a band of rows at a time.

    Converting the whole image at once held Pillow's converted copy, the packed bytes numpy
    copies from and, for alpha, 20 bytes a pixel of uint16 temporaries beside the decoded
    buffer: up to 30 bytes a pixel where this needs 7 (benchmarks/bench_decode_memory.py).
    """
    width, height = im.size
    out = np.empty((height, width, 3), np.uint8)
    for top, bottom, band in _bands(im):
        out[top:bottom] = convert(band)
    return out


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2RGB)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Transparent pixels show as white (what image viewers show), not as their hidden colour."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _full_scale(im: Image.Image) -> float:
    """The value of a 16-bit (or 32-bit/float) gray image that becomes 255.

    Full-range data maps linearly (x / 257). Sensors of 10-12 bits store their values in a
    16-bit container and would come out almost black, so when the maximum fits in fewer bits
    the scale follows that bit depth instead; the brightness order of pixels is kept.
    """
    maxima = [np.asarray(band).max() for _, _, band in _bands(im)]
    vmax = float(np.max(maxima)) if maxima else 0.0
    if im.mode == "F" and vmax <= 1.0:
        return 1.0
    bits = max(8, int(np.ceil(np.log2(vmax + 1))) if vmax > 0 else 8)
    return float(2**bits - 1)


def _scale_to_8bit(values: np.ndarray, top: float) -> np.ndarray:
    """``values`` * 255 / ``top``, rounded and clipped to uint8."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scaled = np.clip(values.astype(np.float32) * (255.0 / top), 0, 255)
    return (scaled + 0.5).astype(np.uint8)


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation as numpy views (the final ``ascontiguousarray`` makes the one copy).

    Same transforms as Pillow's ``ImageOps.exif_transpose``: 2 mirror, 3 rotate 180, 4 flip,
    5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
    """
    if orientation == 2:
        return rgb[:, ::-1]
    if orientation == 3:
        return rgb[::-1, ::-1]
    if orientation == 4:
        return rgb[::-1]
    if orientation == 5:
        return rgb.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(rgb, k=-1)
    if orientation == 7:
        return rgb[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(rgb, k=1)
    return rgb
