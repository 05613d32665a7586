"""load_image / image_size: orientation, pixel formats, odd paths, broken files, huge images."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from autolabel_gui.core.images import MAX_PIXELS, ImageLoadError, image_size, load_image
from PIL import Image, ImageOps

from tests.fixtures.images import GREEN, GREY, RED, ImageSpec, corner_colors, write_image

# Where the stored top-left (red) and top-right (green) corners must appear once the EXIF
# orientation is applied, straight from the EXIF 2.3 definition of tag 0x0112.
ORIENTATION_CORNERS = {
    1: ("TL", "TR"),  # as stored
    2: ("TR", "TL"),  # mirrored left-right
    3: ("BR", "BL"),  # rotated 180
    4: ("BL", "BR"),  # mirrored top-bottom
    5: ("TL", "BL"),  # transposed (mirror about the main diagonal)
    6: ("TR", "BR"),  # turned 90 degrees clockwise
    7: ("BR", "TR"),  # transversed (mirror about the anti-diagonal)
    8: ("BL", "TL"),  # turned 90 degrees counter-clockwise
}


def close(color: tuple[int, int, int], expected: tuple[int, int, int], tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(color, expected))


def check_rgb(rgb: np.ndarray, height: int, width: int) -> None:
    assert rgb.shape == (height, width, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous and rgb.flags.writeable


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_puts_the_markers_where_a_viewer_shows_them(tmp_path: Path, orientation: int,
                                                                     suffix: str) -> None:
    stored_w, stored_h = 40, 24
    path = write_image(tmp_path / f"o{orientation}{suffix}",
                       ImageSpec(size=(stored_w, stored_h), marker=RED, marker2=GREEN, exif_orientation=orientation))
    rgb = load_image(path)
    turned = orientation >= 5
    w, h = (stored_h, stored_w) if turned else (stored_w, stored_h)
    check_rgb(rgb, h, w)
    assert image_size(path) == (w, h)
    corners = corner_colors(rgb)
    red_at, green_at = ORIENTATION_CORNERS[orientation]
    assert close(corners[red_at], RED), corners
    assert close(corners[green_at], GREEN), corners
    for other in {"TL", "TR", "BL", "BR"} - {red_at, green_at}:
        assert close(corners[other], GREY), corners


def test_jpeg_fast_path_matches_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "noise.jpg"
    Image.fromarray(pixels).save(path, quality=90, exif=exif)
    ours = load_image(path).astype(int)
    with Image.open(path) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    assert ours.shape == ref.shape == (160, 120, 3)
    assert np.abs(ours - ref).max() <= 3


def _save(im: Image.Image, path: Path) -> Path:
    im.save(path)
    return path


def _gray16(tmp_path: Path, value: int, peak: int | None = None) -> Path:
    g = np.full((10, 12), value, np.uint16)
    if peak is not None:
        g[0, 0] = peak
    path = tmp_path / f"g16_{value}_{peak}.png"
    assert cv2.imwrite(str(path), g)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")
    return path


def _rgb16(tmp_path: Path) -> Path:
    bgr = np.zeros((10, 12, 3), np.uint16)
    bgr[:] = (0x0000, 0x8000, 0xFFFF)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), bgr)
    return path


def _palette(tmp_path: Path, transparent: bool) -> Path:
    im = Image.new("P", (12, 10), 1)
    im.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    path = tmp_path / f"p_{transparent}.png"
    if transparent:
        im.save(path, transparency=1)
    else:
        im.save(path)
    return path


def _one_bit(tmp_path: Path) -> Path:
    im = Image.new("1", (12, 10), 1)
    return _save(im, tmp_path / "bits.png")


# (builder, expected RGB at pixel (5, 5))
FORMATS = {
    "L png": (lambda t: _save(Image.new("L", (12, 10), 100), t / "l.png"), (100, 100, 100)),
    "L jpeg": (lambda t: _save(Image.new("L", (12, 10), 100), t / "l.jpg"), (100, 100, 100)),
    "1-bit": (_one_bit, (255, 255, 255)),
    "P": (lambda t: _palette(t, False), (200, 30, 40)),
    "P transparent": (lambda t: _palette(t, True), (255, 255, 255)),
    "RGBA opaque": (lambda t: _save(Image.new("RGBA", (12, 10), (10, 20, 30, 255)), t / "rgba.png"), (10, 20, 30)),
    "RGBA clear": (lambda t: _save(Image.new("RGBA", (12, 10), (10, 20, 30, 0)), t / "clear.png"), (255, 255, 255)),
    "RGBA half": (lambda t: _save(Image.new("RGBA", (12, 10), (0, 0, 0, 128)), t / "half.png"), (127, 127, 127)),
    "LA": (lambda t: _save(Image.new("LA", (12, 10), (50, 255)), t / "la.png"), (50, 50, 50)),
    "I;16 full range": (lambda t: _gray16(t, 32896, peak=65535), (128, 128, 128)),
    "I;16 12-bit data": (lambda t: _gray16(t, 2048, peak=4095), (128, 128, 128)),
    "16-bit RGB png": (_rgb16, (255, 128, 0)),
    "CMYK jpeg": (lambda t: _save(Image.new("CMYK", (12, 10), (0, 255, 255, 0)), t / "cmyk.jpg"), (255, 0, 0)),
    "CMYK tiff": (lambda t: _save(Image.new("CMYK", (12, 10), (255, 0, 255, 0)), t / "cmyk.tif"), (0, 255, 0)),
    "float tiff": (lambda t: _save(Image.fromarray(np.full((10, 12), 0.5, np.float32)), t / "f.tif"), (128, 128, 128)),
    "RGB bmp": (lambda t: _save(Image.new("RGB", (12, 10), (1, 2, 3)), t / "x.bmp"), (1, 2, 3)),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_pixel_format_becomes_8bit_rgb(tmp_path: Path, name: str) -> None:
    build, expected = FORMATS[name]
    path = build(tmp_path)
    rgb = load_image(path)
    check_rgb(rgb, 10, 12)
    assert close(tuple(int(v) for v in rgb[5, 5]), expected, tol=3), rgb[5, 5]
    assert image_size(path) == (12, 10)


@pytest.mark.parametrize("name", ["고양이 사진.jpg", "猫/咖啡杯.png", "🚀 launch.jpg", "with  two spaces.webp"])
def test_unicode_and_space_paths(tmp_path: Path, name: str) -> None:
    path = write_image(tmp_path / name, ImageSpec(size=(30, 20), color=(200, 100, 50)))
    rgb = load_image(path)
    check_rgb(rgb, 20, 30)
    assert close(tuple(int(v) for v in rgb[10, 15]), (200, 100, 50), tol=4)
    assert image_size(path) == (30, 20)


def _jpeg_bytes(size: tuple[int, int] = (200, 150)) -> bytes:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _assert_load_error(path: Path, *words: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    err = info.value
    assert err.path == path
    assert str(err).startswith(f"{path}: ")
    for word in words:
        assert word in err.reason
    return err


def test_truncated_jpeg_is_an_error_not_a_grey_picture(tmp_path: Path) -> None:
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 2 // 3])
    _assert_load_error(path, "truncated")
    assert image_size(path) == (200, 150)  # the header is intact


def test_jpeg_with_bytes_after_the_end_marker_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "tail.jpg"
    path.write_bytes(_jpeg_bytes() + b"trailing vendor data")
    check_rgb(load_image(path), 150, 200)


def test_truncated_png(tmp_path: Path) -> None:
    src = write_image(tmp_path / "src.png", ImageSpec(size=(300, 200), color=(1, 2, 3)))
    data = src.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) - 40])
    _assert_load_error(path, "truncated")


def test_corrupt_jpeg_body(tmp_path: Path) -> None:
    data = bytearray(_jpeg_bytes())
    start = data.index(b"\xff\xda")  # start of scan: damage the entropy-coded data and its markers
    data[start + 2:start + 600] = b"\xff\xd0" * 299
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data[: start + 800]))
    _assert_load_error(path, "corrupt")


@pytest.mark.parametrize(("content", "words"), [
    (b"", ("empty",)),
    (b"hello, I am text\n", ("not an image",)),
    (bytes(range(256)) * 4, ("not an image",)),
])
def test_files_that_are_not_images(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    _assert_load_error(path, *words)
    with pytest.raises(ImageLoadError) as info:
        image_size(path)
    assert info.value.path == path
    assert words[0] in info.value.reason


def test_missing_file_and_folder(tmp_path: Path) -> None:
    _assert_load_error(tmp_path / "nope.jpg", "not found")
    folder = tmp_path / "dir.jpg"
    folder.mkdir()
    _assert_load_error(folder, "folder")
    with pytest.raises(ImageLoadError, match="not found"):
        image_size(tmp_path / "nope.jpg")


def test_image_size_reads_only_the_header(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    src = tmp_path / "big.jpg"
    Image.new("RGB", (640, 480), (9, 9, 9)).save(src, exif=exif)
    head = tmp_path / "head.jpg"
    head.write_bytes(src.read_bytes()[:1024])  # EXIF and frame header, no pixels
    assert image_size(head) == (480, 640)
    with pytest.raises(ImageLoadError):
        load_image(head)


def _png_with_size(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (pixel data for 1x1 only)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_beyond_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _png_with_size(tmp_path / "bomb.png", 40000, 20000)
    assert 40000 * 20000 > MAX_PIXELS
    err = _assert_load_error(path, "too large", "40000x20000")
    assert "limit" in err.reason
    assert image_size(path) == (40000, 20000)


def test_20000_by_15000_image_opens(tmp_path: Path) -> None:
    """300 Mpx, beyond Pillow's default bomb limit; 1-bit PNG so the file is tiny."""
    im = Image.new("1", (20000, 15000), 0)
    im.paste(1, (19990, 14990, 20000, 15000))
    path = tmp_path / "huge.png"
    im.save(path)
    del im
    assert image_size(path) == (20000, 15000)
    rgb = load_image(path)
    assert rgb.shape == (15000, 20000, 3)
    assert rgb[-1, -1].tolist() == [255, 255, 255]
    assert rgb[0, 0].tolist() == [0, 0, 0]


def test_sample_photos_load(sample_images: Path) -> None:
    files = sorted(sample_images.glob("*.jpg"))
    assert len(files) >= 5
    for path in files:
        rgb = load_image(path)
        assert max(rgb.shape[:2]) <= 1024
        assert image_size(path) == (rgb.shape[1], rgb.shape[0])
    gray = load_image(sample_images / "camera_gray.jpg")
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    upright = load_image(sample_images / "coffee_cup.jpg").astype(int)
    rotated = load_image(sample_images / "coffee_cup_exif_rotated.jpg").astype(int)
    assert upright.shape == rotated.shape
    assert np.abs(upright - rotated).mean() < 5
