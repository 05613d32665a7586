"""Grounding DINO's image input (resize, normalise) in numpy and PIL, without torch or the model package.

The original model was trained on the package's transforms: PIL bilinear resize of the shorter
side to ``size`` with the longer side capped at ``max_size``, then ``ToTensor`` + ``Normalize``
with the ImageNet mean and std. Both backends must feed the same numbers for the same weights to
give the same boxes, so the rule is written once here (a test checks it bit for bit against the
package). Pure numpy/PIL: it runs on decode threads without starting a torch thread pool.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from autolabel_gui.detection.gdino_spec import resized_size

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resized_shape(height: int, width: int, size: int, max_size: int) -> tuple[int, int]:
    """(height, width) of the model input: the original backend's rule (``gdino_spec.resized_size``),
    so both backends see the same pixels, strips included."""
    out_w, out_h = resized_size(width, height, size, max_size)
    return out_h, out_w


@functools.cache
def normalize_table() -> np.ndarray:
    """(3, 256) float32: ``(v / 255 - mean) / std`` of every uint8 value, per channel.

    The transform is elementwise, so a lookup gives the same float32 numbers as computing it,
    in the same order of operations as torchvision's ``ToTensor`` + ``Normalize``.
    """
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    mean = np.asarray(MEAN, np.float32)[:, None]
    std = np.asarray(STD, np.float32)[:, None]
    return np.ascontiguousarray((values[None, :] - mean) / std, dtype=np.float32)


def preprocess_array(image: np.ndarray, size: int, max_size: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> the normalised float32 (3, h, w) model input."""
    height, width = image.shape[:2]
    out_h, out_w = resized_shape(height, width, size, max_size)
    pil = Image.fromarray(image)
    if (out_h, out_w) != (height, width):
        pil = pil.resize((out_w, out_h), Image.Resampling.BILINEAR)
    pixels = np.asarray(pil)
    table = normalize_table()
    out = np.empty((3, *pixels.shape[:2]), np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
    return out


def check_image(name: str, image: np.ndarray) -> None:
    """Raise ValueError naming ``name`` unless ``image`` is a non-empty RGB uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{name}: expected an RGB uint8 array (H, W, 3), got shape {shape}, {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name}: empty image {image.shape}")


PREVIEW_SIDES = (400, 667)
"""The model input of the opt-in preview size (``ProjectSettings.preview``): half the sides of
Grounding DINO's 800/1333, about a quarter of the pixels: faster, and LESS ACCURATE (small
objects are the first lost); its AP cost is measured on the trained instrument (README)."""


def is_preview(extra: dict[str, str]) -> bool:
    """Whether backend options ``extra`` ask for the preview size (what ``ProjectSettings.preview`` sets)."""
    return (extra.get("image_size"), extra.get("max_size")) == tuple(str(side) for side in PREVIEW_SIDES)


INPUT_SIDES = (32, 2048)
"""The model input sides ``image_size`` and ``max_size`` may ask for. Grounding DINO is trained at
800/1333; 2048 keeps one prepared image under 50 MB (3 x 2048 x 2048 float32) and the model's
activations within an ordinary GPU. A folder's ``image_size: "12000"`` once made a 64x48 image a
4.25 GB input, then an allocation failure (issue 21)."""


def input_side(value: object) -> int:
    """``value`` as an ``image_size``/``max_size`` in pixels; ValueError saying why it is not one."""
    low, high = INPUT_SIDES
    side: object = value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        side = int(value)
    elif isinstance(value, float) and value.is_integer():
        side = int(value)
    if isinstance(side, bool) or not isinstance(side, int) or not low <= side <= high:
        raise ValueError(f"{value!r} is not a whole number of pixels from {low} to {high}")
    return side


def resize_options(extra: dict[str, str], default_size: object, default_max: object) -> tuple[int, int]:
    """Shorter-side size and longer-side cap: ``DetectorConfig.extra`` wins over the model's defaults.

    Raises ValueError on values that are not whole numbers in ``INPUT_SIDES``, or a cap below the size.
    """
    sides = []
    for key, default in (("image_size", default_size), ("max_size", default_max)):
        try:
            sides.append(input_side(extra.get(key, default)))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    size, max_size = sides
    if max_size < size:
        raise ValueError(f"image_size {size} must be <= max_size {max_size}")
    return size, max_size
