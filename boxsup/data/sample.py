"""The one sample type every loader returns, plus the image/label file helpers they share.

Box convention used everywhere in boxsup: ``(x0, y0, x1, y1)`` in pixels, half-open, so the box
covers columns ``x0 .. x1-1`` and rows ``y0 .. y1-1``; the tight box of a mask is
``(min col, min row, max col + 1, max row + 1)``. VOC XML (1-based, inclusive) maps to it as
``(xmin - 1, ymin - 1, xmax, ymax)``; COCO ``[x, y, w, h]`` as ``(x, y, x + w, y + h)``.
Class ids are integers with 0 = background and 255 = ignore in label maps.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

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


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path``; write there, then ``os.replace`` it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results must stay readable by others (web servers)
    return Path(tmp)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = atomic_path(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj, indent: int | None = 1) -> None:
    """JSON to ``path`` through a temporary sibling and a rename (never half-written)."""
    import json

    write_bytes_atomic(Path(path), json.dumps(obj, indent=indent, default=float).encode())


def write_palette_png(path: Path, label: np.ndarray) -> None:
    """Write a class/instance map as an 8-bit palette PNG with the VOC colour map (atomically)."""
    if label.dtype != np.uint8:
        if label.min() < 0 or label.max() > 255:
            raise ValueError(f"label map for {path} has values outside 0..255")
        label = label.astype(np.uint8)
    img = Image.fromarray(label, mode="P")
    img.putpalette(voc_palette().ravel().tolist())
    tmp = atomic_path(path)
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    tmp = atomic_path(path)
    Image.fromarray(image).save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, path)


def read_image(path: Path) -> np.ndarray:
    """Read an image as HxWx3 uint8 RGB; a missing or corrupt file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e


def read_label_png(path: Path) -> np.ndarray:
    """Read a palette (or grey) PNG label map as HxW uint8 indices, never through RGB."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("P", "L", "I", "I;16"):
                raise DataError(f"label file {path} has mode {im.mode}; expected an indexed (palette) "
                                "or greyscale PNG of class indices")
            arr = np.asarray(im)
    except (OSError, SyntaxError) as e:
        raise DataError(f"cannot read label file {path}: {e}") from e
    if arr.dtype != np.uint8:
        if arr.max() > 255:
            raise DataError(f"label file {path} has values above 255")
        arr = arr.astype(np.uint8)
    return arr


def tight_box(mask: np.ndarray) -> np.ndarray:
    """Tight half-open box of a boolean mask; an empty mask gives (0, 0, 0, 0)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros(4, dtype=np.float32)
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def check_boxes(boxes: np.ndarray, labels: np.ndarray, height: int, width: int, where: str,
                num_classes: int | None = None) -> None:
    """Raise DataError naming ``where`` for a box outside the image, of zero area, or a bad class id."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
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
