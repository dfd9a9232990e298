"""Selective Search with segment masks (Uijlings et al., IJCV 2013), our own implementation.

Initial regions come from Felzenszwalb-Huttenlocher graph segmentation (OpenCV's, in the chosen
colour space); regions are grouped greedily by the published similarities (colour histogram 25
bins/channel, texture histogram of 8 oriented Gaussian derivatives x 10 bins/channel, size, fill),
and every region of every hierarchy is a candidate. Several strategies (colour spaces x k x
similarity sets) are pooled, ranked as in the paper (hierarchy level x a random factor), de-duplicated
and cut to ``max_candidates``. Region histograms live in arrays and merge by size-weighted averaging,
so each merge costs one vectorised similarity computation against the new region's neighbours.

OpenCV's ``cv2.ximgproc.segmentation`` Selective Search returns boxes only; the benchmark uses it as
the speed and box-recall reference (``opencv_selective_search_boxes``).
"""
from __future__ import annotations

import zlib

import cv2
import numpy as np

from .segments import (Segments, adjacency, agglomerate, candidate_budget, check_image, consecutive_ids,
                       hierarchy_members, pool, region_boxes, resize_labels, working_scale)

COLOUR_BINS, TEXTURE_BINS, ORIENTATIONS = 25, 10, 8
# "fast" is the paper's fast mode (8 strategies); "default" adds the paper's rgI colour space (12
# strategies: +0.03 ABO on weizmann_horse train, ~1.5x the time); "quality" is broader still.
MODES = {
    "single": dict(colour_spaces=("hsv",), ks=(100,), sims=("CTSF",)),
    "fast": dict(colour_spaces=("hsv", "lab"), ks=(50, 100), sims=("CTSF", "TSF")),
    "default": dict(colour_spaces=("hsv", "lab", "rgi"), ks=(50, 100), sims=("CTSF", "TSF")),
    "quality": dict(colour_spaces=("hsv", "lab", "rgi", "h"), ks=(50, 100, 150, 300), sims=("CTSF", "TSF", "F", "S")),
}


def to_colour_space(image: np.ndarray, space: str) -> np.ndarray:
    """RGB uint8 -> a 3-channel uint8 image in one of SS's colour spaces."""
    if space == "rgb":
        return image
    if space == "hsv":
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.uint16) * 255 // 179).astype(np.uint8)  # hue to 0..255
        return hsv
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    if space == "rgi":  # normalised r, g plus intensity
        f = image.astype(np.float32)
        s = f.sum(2) + 1e-6
        return np.dstack([f[..., 0] / s * 255, f[..., 1] / s * 255, s / 3]).clip(0, 255).astype(np.uint8)
    if space == "h":
        h = to_colour_space(image, "hsv")[..., 0]
        return np.dstack([h, h, h])
    raise ValueError(f"colour space {space!r}; allowed: rgb, hsv, lab, rgi, h")


def felzenszwalb(image: np.ndarray, k: float, sigma: float = 0.8, min_size: int | None = None) -> np.ndarray:
    """Felzenszwalb-Huttenlocher regions (int32 labels 0..n-1) via OpenCV's graph segmentation."""
    gs = cv2.ximgproc.segmentation.createGraphSegmentation(sigma=sigma, k=float(k),
                                                           min_size=int(k if min_size is None else min_size))
    return consecutive_ids(gs.processImage(np.ascontiguousarray(image)))


def texture_bins(cimg: np.ndarray) -> np.ndarray:
    """(H*W, 3*ORIENTATIONS) bin index of each pixel's oriented-derivative response, per channel."""
    out = []
    for c in range(3):
        ch = cv2.GaussianBlur(cimg[..., c].astype(np.float32), (0, 0), 1.0)
        gx = cv2.Sobel(ch, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(ch, cv2.CV_32F, 0, 1, ksize=3)
        for o in range(ORIENTATIONS):
            th = 2 * np.pi * o / ORIENTATIONS
            r = np.maximum(np.cos(th) * gx + np.sin(th) * gy, 0).ravel()
            top = float(r.max()) or 1.0
            out.append(np.minimum((r * (TEXTURE_BINS / top)).astype(np.int64), TEXTURE_BINS - 1))
    return np.stack(out, 1)


def region_histograms(labels: np.ndarray, n: int, cimg: np.ndarray, tex: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """L1-normalised colour (n, 75) and texture (n, 240) histograms of each region."""
    flat = labels.ravel().astype(np.int64)
    cb = np.minimum(cimg.reshape(-1, 3).astype(np.int64) * COLOUR_BINS // 256, COLOUR_BINS - 1)
    nc = 3 * COLOUR_BINS
    cidx = (flat[:, None] * nc + np.arange(3) * COLOUR_BINS + cb).ravel()
    colour = np.bincount(cidx, minlength=n * nc).reshape(n, nc).astype(np.float32)
    nt = tex.shape[1] * TEXTURE_BINS
    tidx = (flat[:, None] * nt + np.arange(tex.shape[1]) * TEXTURE_BINS + tex).ravel()
    texture = np.bincount(tidx, minlength=n * nt).reshape(n, nt).astype(np.float32)
    colour /= np.maximum(colour.sum(1, keepdims=True), 1)
    texture /= np.maximum(texture.sum(1, keepdims=True), 1)
    return colour, texture


def group(labels: np.ndarray, cimg: np.ndarray, tex: np.ndarray, sims: str,
          boundary: np.ndarray | None = None, boundary_weight: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hierarchy on a label map: returns (member (R, n) bool, level rank (R,) with 1 = top,
    merges (R - n, 2)).

    ``sims`` is any subset of "CTSF". With a ``boundary`` map, ``boundary_weight`` times the mean
    boundary strength along the shared border is subtracted (our MCG-style grouping uses it; plain
    Selective Search does not).
    """
    n = int(labels.max()) + 1
    im_size = float(labels.size)
    cap = 2 * n
    colour = np.zeros((cap, 3 * COLOUR_BINS), np.float32)
    texture = np.zeros((cap, tex.shape[1] * TEXTURE_BINS), np.float32)
    colour[:n], texture[:n] = region_histograms(labels, n, cimg, tex)
    size = np.zeros(cap); size[:n] = np.bincount(labels.ravel(), minlength=n)
    box = np.zeros((cap, 4)); box[:n] = region_boxes(labels, n)
    use = set(sims)
    use_boundary = boundary is not None and boundary_weight != 0
    border: dict[tuple[int, int], list[float]] = {}  # (a, b) a < b -> [length, strength sum]

    def similarity(i, j: np.ndarray, length=None, total=None) -> np.ndarray:
        s = np.zeros(len(j))
        if "C" in use:
            s += np.minimum(colour[i], colour[j]).sum(1)
        if "T" in use:
            s += np.minimum(texture[i], texture[j]).sum(1)
        if "S" in use:
            s += 1 - (size[i] + size[j]) / im_size
        if "F" in use:
            bw = np.maximum(box[i, 2], box[j, 2]) - np.minimum(box[i, 0], box[j, 0])
            bh = np.maximum(box[i, 3], box[j, 3]) - np.minimum(box[i, 1], box[j, 1])
            s += 1 - (bw * bh - size[i] - size[j]) / im_size
        if use_boundary:
            s -= boundary_weight * total / np.maximum(length, 1)
        return s

    def on_merge(a: int, b: int, t: int, nb: np.ndarray) -> np.ndarray:
        sa, sb = size[a], size[b]
        colour[t] = (sa * colour[a] + sb * colour[b]) / (sa + sb)
        texture[t] = (sa * texture[a] + sb * texture[b]) / (sa + sb)
        size[t] = sa + sb
        box[t, :2] = np.minimum(box[a, :2], box[b, :2])
        box[t, 2:] = np.maximum(box[a, 2:], box[b, 2:])
        if not use_boundary:
            return similarity(t, nb)
        # The border of t with k is the union of a's and b's borders with k.
        length, total = np.zeros(len(nb)), np.zeros(len(nb))
        for idx, k in enumerate(nb.tolist()):
            for o in (a, b):
                e = border.pop((o, k) if o < k else (k, o), None)
                if e is not None:
                    length[idx] += e[0]; total[idx] += e[1]
            border[(k, t)] = [length[idx], total[idx]]  # k < t always: t is the newest id
        return similarity(t, nb, length, total)

    edges, length, total = adjacency(labels, boundary if use_boundary else None)
    if use_boundary:
        border.update({(a, b): [l, t] for (a, b), l, t in zip(edges.tolist(), length.tolist(), total.tolist())})
    init = similarity(edges[:, 0], edges[:, 1], length, total) if len(edges) else np.zeros(0)
    merges, _ = agglomerate(n, edges, init, on_merge)
    member = hierarchy_members(n, merges)
    # Level rank as in SS: the last region created is 1, earlier ones larger; initial regions last.
    rank = np.arange(len(member), 0, -1, dtype=np.float64)
    return member, rank, merges


def selective_search_segments(image: np.ndarray, mode: str = "default", colour_spaces=None, ks=None, sims=None,
                              sigma: float = 0.8, max_side: int | None = 500, max_candidates: int | None = -1,
                              min_area: int = 1, seed: int = 0) -> Segments:
    """Selective Search candidates as Segments (see the module docstring); deterministic given ``seed``."""
    image = check_image(image, "selective search")
    if mode not in MODES:
        raise ValueError(f"selective search mode {mode!r}; allowed: {', '.join(MODES)}")
    cfg = dict(MODES[mode])
    for key, val in (("colour_spaces", colour_spaces), ("ks", ks), ("sims", sims)):
        if val is not None:
            cfg[key] = tuple(val) if not isinstance(val, str) else (val,)
    h, w = image.shape[:2]
    scale = working_scale((h, w), max_side)
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    parts = []
    for space in cfg["colour_spaces"]:
        cimg = to_colour_space(small, space)
        tex = texture_bins(cimg)
        for k in cfg["ks"]:
            labels = felzenszwalb(cimg, k, sigma)
            full = resize_labels(labels, (h, w))
            for sim in cfg["sims"]:
                member, rank, _ = group(labels, cimg, tex, sim)
                # Region ids of ``labels`` survive the nearest resize (tiny ones may vanish: empty rows
                # are dropped later by the area filter).
                parts.append((full, member, -(rank * rng.random(len(rank)))))
    return pool(parts, candidate_budget(max_candidates, (h, w), 2000, 500), min_area)


def selective_search(image: np.ndarray, **params) -> np.ndarray:
    """Selective Search candidate masks, bool (M, H, W)."""
    return selective_search_segments(image, **params).masks()


def opencv_selective_search_boxes(image: np.ndarray, fast: bool = True, max_side: int | None = 500) -> np.ndarray:
    """OpenCV's Selective Search (boxes only, the reference): (M, 4) float32 half-open boxes."""
    image = check_image(image, "opencv selective search")
    h, w = image.shape[:2]
    scale = working_scale((h, w), max_side)
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    ss.switchToSelectiveSearchFast() if fast else ss.switchToSelectiveSearchQuality()
    r = np.asarray(ss.process(), dtype=np.float32).reshape(-1, 4)  # x, y, w, h
    boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], 1) / scale
    return np.minimum(np.maximum(boxes, 0), np.array([w, h, w, h], np.float32)).astype(np.float32)


def image_seed(image_id: str) -> int:
    """A stable per-image seed for the random parts of ranking."""
    return zlib.crc32(str(image_id).encode())
