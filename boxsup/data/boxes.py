"""Box geometry, in one place, next to the box convention every loader follows.

Boxes are ``(x0, y0, x1, y1)`` in pixels, half-open: the box covers columns ``x0 .. x1-1`` and rows
``y0 .. y1-1``; the tight box of a mask is ``(min col, min row, max col + 1, max row + 1)``. VOC XML
(1-based, inclusive) maps to it as ``(xmin - 1, ymin - 1, xmax, ymax)``; COCO ``[x, y, w, h]`` as
``(x, y, x + w, y + h)``. Boxes may be fractional (COCO); ``int_boxes`` gives the pixels they touch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (M, 4) with every box in ``b`` (N, 4): an (M, N) float64 array."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(N,) float64 areas of half-open boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def int_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 4) int64 pixel boxes covering every pixel a (possibly fractional) box touches, clipped
    to the image; an empty clip gives x1 == x0 or y1 == y0."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.stack([np.floor(b[:, 0]), np.floor(b[:, 1]), np.ceil(b[:, 2]), np.ceil(b[:, 3])], 1)
    out = np.clip(out, 0, [width, height, width, height]).astype(np.int64)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return out


def int_box(box, height: int, width: int) -> tuple[int, int, int, int]:
    """One box as ``int_boxes`` makes it, as a tuple of ints."""
    x0, y0, x1, y1 = (int(v) for v in int_boxes(box, height, width)[0])
    return x0, y0, x1, y1


def rect_mask(shape: tuple[int, int], box) -> np.ndarray:
    """(H, W) bool: the pixels a box covers (the "rectangles" baseline of Table 2)."""
    h, w = shape
    x0, y0, x1, y1 = int_box(box, h, w)
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def tight_box(mask: np.ndarray) -> np.ndarray:
    """Tight half-open box of a boolean mask; an empty mask gives (0, 0, 0, 0)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros(4, dtype=np.float32)
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def paint_largest_first(shape: tuple[int, int], boxes: np.ndarray, labels: np.ndarray,
                        regions: Sequence[np.ndarray | None]) -> np.ndarray:
    """A uint8 class map: each box's region painted with its label in order of decreasing box area,
    so that small objects stay on top; pixels no region covers are background (0).

    ``regions[j]``: an (H, W) bool mask, flat row-major pixel indices, or None (nothing painted).
    """
    h, w = shape
    out = np.zeros(h * w, dtype=np.uint8)
    for j in np.argsort(-box_areas(boxes), kind="stable"):
        r = regions[j]
        if r is None:
            continue
        r = np.asarray(r)
        out[r.reshape(-1) if r.dtype == bool else r] = labels[j]
    return out.reshape(h, w)
