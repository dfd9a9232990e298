"""Masks estimated from each ground-truth box alone (Table 2's fixed-mask baselines, and the fallback).

- ``rect``: the box filled.
- ``grabcut``: OpenCV GrabCut initialised from the box (GC_INIT_WITH_RECT, a few iterations) on a
  crop around the box; tiny boxes, boxes that leave no background to model and degenerate results
  fall back to the rectangle (counted in ``stats``).
- ``crfbox``: WSSL-style (Papandreou et al. 2015): a dense CRF whose unary says "inside the box:
  foreground 0.6 / background 0.4, outside: background", run on a crop around the box.

One mask per box, each restricted to its box. ``box_masks_to_label`` paints them large-to-small
(small objects on top) into a class map; pixels covered by no mask are background.
"""
from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from ..crf import dense_crf  # pydensecrf itself is imported only when a CRF runs
from ..data.boxes import int_box, paint_largest_first, rect_mask
from ..data.sample import Sample
from .segments import check_image

BOX_METHODS = ("rect", "grabcut", "crfbox")
MIN_SIDE = 4          # GrabCut's colour models need a few pixels; smaller boxes stay rectangles
MIN_FILL = 0.05       # a result covering less of its box than this counts as degenerate
MARGIN = 0.5          # crop = box grown by this fraction of its size on each side (at least 8 px)
MAX_CROP = 200        # GrabCut runs on the crop scaled down to this longer side (speed; masks are smooth)
MIN_BOX = 64          # ...and small boxes scaled up to this shorter side: GrabCut's smoothness term
#                       otherwise outweighs the colour models and labels a small box all background


def _crop(shape: tuple[int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    h, w = shape
    x0, y0, x1, y1 = b
    mx, my = max(8, int(MARGIN * (x1 - x0))), max(8, int(MARGIN * (y1 - y0)))
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def grabcut_mask(image: np.ndarray, box, iterations: int = 5) -> tuple[np.ndarray, bool]:
    """GrabCut from the box; returns (mask restricted to the box, ok). ok=False: the rectangle."""
    image = check_image(image, "grabcut")
    h, w = image.shape[:2]
    b = x0, y0, x1, y1 = int_box(box, h, w)
    rect = rect_mask((h, w), box)
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        return rect, False
    cx0, cy0, cx1, cy1 = _crop((h, w), b)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1, ::-1])  # GrabCut expects BGR
    f = min(MAX_CROP / max(crop.shape[:2]), max(1.0, MIN_BOX / min(x1 - x0, y1 - y0)))
    if f != 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                          interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    gc = np.zeros(crop.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        if (x0, y0, x1, y1) == (cx0, cy0, cx1, cy1):
            # The box is the whole image: no outside pixels to learn the background from, so let a
            # thin frame inside the box be "probably background" instead.
            fh, fw = max(1, gc.shape[0] // 20), max(1, gc.shape[1] // 20)
            gc[:] = cv2.GC_PR_BGD
            gc[fh:-fh, fw:-fw] = cv2.GC_PR_FGD
            cv2.grabCut(crop, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        else:
            rx0, ry0 = int(round((x0 - cx0) * f)), int(round((y0 - cy0) * f))
            rx1 = min(gc.shape[1], max(rx0 + 1, int(round((x1 - cx0) * f))))
            ry1 = min(gc.shape[0], max(ry0 + 1, int(round((y1 - cy0) * f))))
            cv2.grabCut(crop, gc, (rx0, ry0, rx1 - rx0, ry1 - ry0), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return rect, False  # e.g. a one-colour crop: the colour models cannot be fitted
    if f != 1.0:
        gc = cv2.resize(gc, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST)
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    out = np.zeros((h, w), dtype=bool)
    out[cy0:cy1, cx0:cx1] = fg
    out &= rect
    if out.sum() < MIN_FILL * rect.sum():
        return rect, False
    return out, True


def crf_box_mask(image: np.ndarray, box, fg_prob: float = 0.6, iterations: int = 10, **crf_params
                 ) -> tuple[np.ndarray, bool]:
    """WSSL-style dense-CRF mask inside the box; returns (mask restricted to the box, ok)."""
    image = check_image(image, "crfbox")
    h, w = image.shape[:2]
    b = x0, y0, x1, y1 = int_box(box, h, w)
    rect = rect_mask((h, w), box)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return rect, False
    cx0, cy0, cx1, cy1 = _crop((h, w), b)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    inside = rect[cy0:cy1, cx0:cx1]
    fg = np.where(inside, fg_prob, 1e-4).astype(np.float32)  # outside the box: background for sure
    q = dense_crf(crop, np.stack([1 - fg, fg]), iterations=iterations, **crf_params)
    out = np.zeros((h, w), dtype=bool)
    out[cy0:cy1, cx0:cx1] = q[1] > q[0]
    out &= rect
    if out.sum() < MIN_FILL * rect.sum():
        return rect, False
    return out, True


def box_mask(image: np.ndarray, box, method: str, stats: Counter | None = None, **params) -> np.ndarray:
    """One box's mask by ``method`` (rect | grabcut | crfbox); ``stats`` counts fallbacks."""
    if method == "rect":
        m, ok = rect_mask(np.asarray(image).shape[:2], box), True
    elif method == "grabcut":
        m, ok = grabcut_mask(image, box, **params)
    elif method == "crfbox":
        m, ok = crf_box_mask(image, box, **params)
    else:
        raise ValueError(f"box mask method {method!r}; allowed: {', '.join(BOX_METHODS)}")
    if stats is not None:
        stats[method if ok else f"{method}->rect"] += 1
    return m


def box_masks(image: np.ndarray, boxes: np.ndarray, method: str = "grabcut", stats: Counter | None = None,
              **params) -> np.ndarray:
    """(N, H, W) bool, one mask per box (an image with no boxes gives (0, H, W))."""
    h, w = np.asarray(image).shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, h, w), dtype=bool)
    return np.stack([box_mask(image, b, method, stats, **params) for b in boxes])


def box_masks_to_label(sample: Sample, method: str, stats: Counter | None = None, **params) -> np.ndarray:
    """The fixed training label map of one image from its boxes alone (Table 2's baselines)."""
    masks = box_masks(sample.image, sample.boxes, method, stats, **params)
    return paint_largest_first(sample.size, sample.boxes, sample.labels, masks)


def fallback_mask(image: np.ndarray, box, stats: Counter | None = None) -> np.ndarray:
    """Mask for a box no candidate overlaps: GrabCut, or the rectangle when GrabCut fails.

    ``stats`` (a Counter) counts "grabcut" and "rect" uses.
    """
    m, ok = grabcut_mask(image, box)
    if stats is not None:
        stats["grabcut" if ok else "rect"] += 1
    return m
