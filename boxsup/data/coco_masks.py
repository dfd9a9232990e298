"""COCO segmentations checked, then decoded: polygons and RLE are validated before pycocotools sees
them, because it reads uninitialised memory for RLE counts that do not cover the image and
allocates without bound for polygons with huge or non-finite coordinates (see ``coco.py``).
"""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils

from .sample import DataError, is_number

# polygon points further than this many image sizes outside the image are corrupt (and would make
# pycocotools rasterise an enormous outline)
FAR_OUTSIDE = 1.0


def is_int(v) -> bool:
    return type(v) is int  # bool is a subclass of int: True must not pass as 1


def polygon_problem(segm: list, height: int, width: int, where: str) -> str | None:
    """Why a polygon segmentation cannot be rasterised faithfully (None if it can).

    Coordinates that are not finite numbers are malformed data: DataError. Degenerate geometry
    (a ring of < 3 points, an odd number of coordinates, zero area, points far outside the image)
    is returned as a reason, so the caller can skip and count the annotation.
    """
    if not segm:
        return "no rings"
    lo_x, hi_x = -FAR_OUTSIDE * width, (1 + FAR_OUTSIDE) * width
    lo_y, hi_y = -FAR_OUTSIDE * height, (1 + FAR_OUTSIDE) * height
    for r, ring in enumerate(segm):
        if not isinstance(ring, list):
            raise DataError(f"{where}: polygon ring {r} is {type(ring).__name__}, not a list of numbers")
        if not all(map(is_number, ring)):
            bad = next(v for v in ring if not is_number(v))
            raise DataError(f"{where}: polygon ring {r} has coordinate {bad!r}, not a finite number")
        if len(ring) % 2:
            return f"ring {r} has an odd number ({len(ring)}) of coordinates"
        if len(ring) < 6:
            return f"ring {r} has {len(ring) // 2} points (< 3)"
        xs, ys = np.asarray(ring[0::2], dtype=np.float64), np.asarray(ring[1::2], dtype=np.float64)
        if xs.min() < lo_x or xs.max() > hi_x or ys.min() < lo_y or ys.max() > hi_y:
            return f"ring {r} has points far outside the {width}x{height} image"
        area = 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
        if area <= 0:
            return f"ring {r} has zero area (collinear or repeated points)"
    return None


def rle_counts_sum(counts) -> int:
    """Sum of the run lengths of a compressed COCO RLE string (pycocotools' rleFrString, in Python)."""
    s = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    runs: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise ValueError("truncated run")
            c = s[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"byte {s[p]!r} outside the RLE alphabet")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]  # runs after the third are stored as deltas to the run two back
        if x < 0:
            raise ValueError(f"negative run length {x}")
        runs.append(x)
    return sum(runs)


def check_rle(segm: dict, height: int, width: int, where: str) -> None:
    """DataError unless an RLE dict has the image's size and counts covering exactly height*width."""
    size = segm.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(map(is_int, size))):
        raise DataError(f"{where}: RLE 'size' must be [height, width] ints, got {size!r}")
    if tuple(size) != (height, width):
        raise DataError(f"{where}: mask is {size[1]}x{size[0]} but the image is {width}x{height}")
    counts = segm.get("counts")
    if isinstance(counts, list):
        if not all(is_int(c) and c >= 0 for c in counts):
            raise DataError(f"{where}: RLE counts must be non-negative ints")
        total = sum(counts)
    elif isinstance(counts, (str, bytes)):
        try:
            total = rle_counts_sum(counts)
        except (ValueError, UnicodeEncodeError) as e:
            raise DataError(f"{where}: malformed compressed RLE counts: {e}") from e
    else:
        raise DataError(f"{where}: RLE 'counts' is {type(counts).__name__}, not a list or string")
    if total != height * width:
        raise DataError(f"{where}: RLE counts sum to {total}, not height*width = {height * width}")


def ann_to_mask(segm, height: int, width: int, where: str) -> np.ndarray:
    """Decode one COCO segmentation (polygons, uncompressed or compressed RLE) to an HxW bool mask.

    Same as ``COCO.annToMask`` but without building a COCO index, with errors naming the file, and
    with the input checked first (degenerate polygons, RLE size and counts), so pycocotools never
    sees data that makes it read uninitialised memory or allocate without bound.
    """
    if isinstance(segm, list):  # polygons: a list of [x0, y0, x1, y1, ...] rings
        problem = polygon_problem(segm, height, width, where)
        if problem:
            raise DataError(f"{where}: degenerate polygon: {problem}")
    elif isinstance(segm, dict):
        check_rle(segm, height, width, where)
    else:
        raise DataError(f"{where}: segmentation is neither polygons nor RLE")
    try:
        if isinstance(segm, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
        elif isinstance(segm["counts"], list):
            rle = mask_utils.frPyObjects(segm, *segm["size"])  # uncompressed RLE (crowd)
        else:
            rle = dict(segm)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        with warnings.catch_warnings():  # pycocotools' cython __array__ predates numpy 2: harmless
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except Exception as e:  # pycocotools raises bare TypeError/ValueError/IndexError
        raise DataError(f"{where}: cannot decode segmentation: {e}") from e
