"""The one sample type every loader returns, plus the image/label file helpers they share.

Boxes follow the half-open convention of ``boxes.py``, which holds all box geometry. Class ids are
integers with 0 = background and 255 = ignore in label maps.
"""
from __future__ import annotations

import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import replacing
from .boxes import tight_box  # noqa: F401  (re-exported: loaders take it from here)

IGNORE = 255

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


class DataError(ValueError):
    """Bad or missing data on disk; the message names the file and what is wrong."""


@dataclass
class Sample:
    """One image with its annotations.

    image: HxWx3 uint8 RGB. boxes: (N, 4) float32 ``x0, y0, x1, y1`` (half-open pixels).
    labels: (N,) int64 class ids (>= 1). mask: HxW uint8 class map (255 = ignore) or None when the
    image only has boxes. instances: (N, H, W) bool masks aligned with ``boxes`` or None.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    image_id: str
    mask: np.ndarray | None = None
    instances: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]


def voc_palette() -> np.ndarray:
    """The 256x3 colour map of the VOC devkit (bit-interleaved class index)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def write_palette_png(path: Path, label: np.ndarray) -> None:
    """Write a class/instance map as an 8-bit palette PNG with the VOC colour map (atomically)."""
    if label.dtype != np.uint8:
        if label.min() < 0 or label.max() > 255:
            raise ValueError(f"label map for {path} has values outside 0..255")
        label = label.astype(np.uint8)
    img = Image.fromarray(label, mode="P")
    img.putpalette(voc_palette().ravel().tolist())
    with replacing(path) as tmp:
        img.save(tmp, format="PNG")


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    with replacing(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)


_VOC_PALETTE = voc_palette()  # computed once: read_label_png checks every mask against it
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# what PIL raises on a corrupt or truncated file besides OSError (bad chunks, bad headers, zlib)
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
               Image.DecompressionBombError, Image.DecompressionBombWarning)


def _open_checked(path: Path, formats: tuple[str, ...] | None = None) -> Image.Image:
    """Image.open + load with PIL's decompression-bomb warning raised as an error (caller catches)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(path, formats=formats)
        try:
            im.load()
        except BaseException:
            im.close()
            raise
    return im


def read_image(path: Path) -> np.ndarray:
    """Read an image as HxWx3 uint8 RGB; a missing, corrupt or oversized file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with _open_checked(path) as im:
            return np.asarray(im.convert("RGB"))
    except _PIL_ERRORS as e:
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from e


def read_label_png(path: Path, palette: np.ndarray | str | None = "voc") -> np.ndarray:
    """Read a palette (or grey) PNG label map as HxW uint8 indices, never through RGB.

    The file must be a PNG by content. For palette-mode files, every palette entry the map uses
    must match ``palette`` ("voc": the VOC colour map; an (K, 3) array; None: not checked), so a
    file saved with another index order or an adaptive palette cannot pass as class indices.
    16/32-bit grey maps must hold values in 0..255 (never wrapped).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file not found: {path}")
    try:
        with path.open("rb") as f:
            head = f.read(8)
        if head != PNG_MAGIC:
            raise DataError(f"label file {path} is not a PNG (content starts {head[:8]!r})")
        with _open_checked(path, formats=("PNG",)) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise DataError(f"label file {path} has mode {im.mode}; expected an indexed (palette) "
                                "or greyscale PNG of class indices")
            arr = np.asarray(im)
            pal = im.getpalette() if im.mode == "P" else None
            mode = im.mode
    except DataError:
        raise
    except _PIL_ERRORS as e:
        raise DataError(f"cannot read label file {path}: {type(e).__name__}: {e}") from e
    if arr.ndim != 2:
        raise DataError(f"label file {path} is not a single-channel map (shape {arr.shape})")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):  # astype(uint8) would wrap them
            raise DataError(f"label file {path} has values outside 0..255 "
                            f"(min {int(arr.min())}, max {int(arr.max())})")
        arr = arr.astype(np.uint8)
    if mode == "P" and palette is not None:
        check_palette(arr, pal, _VOC_PALETTE if isinstance(palette, str) else palette, path)
    return arr


def check_palette(arr: np.ndarray, pal: list[int] | None, expected: np.ndarray, path: Path) -> None:
    """DataError unless every palette index used by ``arr`` has the colour ``expected`` gives it."""
    if pal is None:
        raise DataError(f"label file {path} is palette-mode but has no palette")
    pal = np.asarray(pal, dtype=np.int64).reshape(-1, 3)
    expected = np.asarray(expected, dtype=np.int64).reshape(-1, 3)
    used = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))  # O(pixels), no sort
    n = min(len(pal), len(expected))
    over = used[used >= n]
    if over.size:
        raise DataError(f"label file {path}: index {int(over[0])} has no entry in its palette of {len(pal)} colours")
    bad = used[(pal[used] != expected[used]).any(axis=1)]
    if bad.size:
        i = int(bad[0])
        raise DataError(f"label file {path}: palette colour of index {i} is {tuple(pal[i].tolist())}, not "
                        f"{tuple(expected[i].tolist())} of the expected (VOC) colour map: the file was "
                        "saved with another palette, so its indices are not class ids")


def check_class_values(mask: np.ndarray, num_classes: int, where: str) -> None:
    """DataError naming ``where`` for a label value that is neither a class id nor 255 (ignore)."""
    bad = (mask >= num_classes) & (mask != IGNORE)
    if bad.any():
        raise DataError(f"{where}: class index {int(mask[bad].max())} >= {num_classes} classes")


# Strict numbers: Python's float()/int() accept "1_2", "nan", "inf", " 12 " -- annotations may not.
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")


def parse_float(text: str | None, where: str, what: str) -> float:
    """A finite decimal number from ``text`` (surrounding whitespace allowed), else DataError."""
    t = (text or "").strip()
    if not t.isascii() or not _FLOAT_RE.fullmatch(t):
        raise DataError(f"{where}: {what} is {text!r}, not a decimal number")
    v = float(t)
    if not math.isfinite(v):
        raise DataError(f"{where}: {what} is {text!r}, not a finite number")
    return v


def parse_int(text: str | None, where: str, what: str) -> int:
    """A decimal integer from ``text`` (surrounding whitespace allowed), else DataError."""
    t = (text or "").strip()
    if not t.isascii() or not _INT_RE.fullmatch(t):
        raise DataError(f"{where}: {what} is {text!r}, not an integer")
    return int(t)


def is_number(v) -> bool:
    """A JSON number: int or finite float, never bool (True would read as 1) or a string."""
    return (type(v) is int) or (type(v) is float and math.isfinite(v))


def check_boxes(boxes: np.ndarray, labels: np.ndarray, height: int, width: int, where: str,
                num_classes: int | None = None) -> None:
    """Raise DataError naming ``where`` for a non-finite box, one outside the image, of zero area, or a bad class id."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    if not finite.all():  # NaN fails every comparison below, so it must be caught first
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{where}: box {i} {boxes[i].tolist()} has a non-finite coordinate")
    for i, (b, lab) in enumerate(zip(boxes, np.asarray(labels).reshape(-1))):
        x0, y0, x1, y1 = (float(v) for v in b)
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"{where}: box {i} {b.tolist()} has zero or negative area")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise DataError(f"{where}: box {i} {b.tolist()} lies outside the {width}x{height} image")
        if lab < 1 or (num_classes is not None and lab >= num_classes):
            raise DataError(f"{where}: box {i} has class id {int(lab)}, outside 1..{(num_classes or 0) - 1}")


def check_mask_size(mask: np.ndarray, image: np.ndarray, where: str) -> None:
    if mask.shape[:2] != image.shape[:2]:
        raise DataError(f"{where}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                        f"{image.shape[1]}x{image.shape[0]}")


def read_split_file(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    return [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]
