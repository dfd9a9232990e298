"""``gop-ours``: geodesic object proposals in the spirit of Kraehenbuehl & Koltun (ECCV 2014), OUR own
learning-free version (GOP learns its seed placement and level-set selection; we use heuristics).

Superpixels (Felzenszwalb-Huttenlocher) form a graph whose edge weights are the mean colour-gradient
strength along each shared border plus a colour difference term, so geodesic distance grows fast
across object boundaries and slowly inside objects. Seeds: a regular grid plus geodesic
farthest-point seeds (each new seed is the superpixel farthest from all earlier ones). For every
seed we compute the foreground geodesic distance (scipy.sparse.csgraph.dijkstra, all seeds in one
call) and, for the "fg-bg" variant, subtract the distance to the image border (background seeds).
Level sets are cut where the sorted distances jump (the critical levels, i.e. where the growing
region crosses a strong boundary), several per seed; each level set is a candidate mask.
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from .segments import (Segments, adjacency, boundary_map, candidate_budget, check_image, pool, resize_labels,
                       working_scale)
from .selective_search import felzenszwalb, to_colour_space


def superpixel_graph(image: np.ndarray, labels: np.ndarray, colour_weight: float = 0.5
                     ) -> sp.csr_matrix:
    """Symmetric (n, n) graph of adjacent superpixels, weight = border strength + colour distance."""
    n = int(labels.max()) + 1
    edges, length, total = adjacency(labels, boundary_map(image))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    cnt = np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    mean = np.stack([np.bincount(labels.ravel(), weights=lab[:, c], minlength=n) for c in range(3)], 1) / cnt[:, None]
    colour = np.linalg.norm(mean[edges[:, 0]] - mean[edges[:, 1]], axis=1) / 100.0 if len(edges) else np.zeros(0)
    # A small floor keeps distances growing with the number of hops inside flat regions.
    w = total / np.maximum(length, 1) + colour_weight * colour + 1e-3
    g = sp.coo_matrix((np.r_[w, w], (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
                      shape=(n, n))
    return g.tocsr()


def place_seeds(graph: sp.csr_matrix, labels: np.ndarray, n_grid: int, n_geodesic: int) -> np.ndarray:
    """Grid seeds (superpixels under a regular grid) followed by geodesic farthest-point seeds."""
    h, w = labels.shape
    g = max(1, int(round(np.sqrt(n_grid))))
    ys = ((np.arange(g) + 0.5) * h / g).astype(int)
    xs = ((np.arange(g) + 0.5) * w / g).astype(int)
    seeds = list(dict.fromkeys(labels[ys[:, None], xs[None, :]].ravel().tolist()))
    if n_geodesic > 0 and graph.shape[0] > len(seeds):
        dist = dijkstra(graph, indices=seeds, min_only=True)
        for _ in range(n_geodesic):
            far = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
            if dist[far] <= 0:
                break
            seeds.append(far)
            dist = np.minimum(dist, dijkstra(graph, indices=far))
    return np.asarray(seeds, dtype=np.int64)


def level_sets(dist: np.ndarray, areas: np.ndarray, n_levels: int, min_frac: float, max_frac: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``dist``, the sets {d <= t} at the ``n_levels`` largest jumps of the sorted distances.

    Returns member (K, n) bool and the size of the jump at each set's border (K,), its score.
    """
    s, n = dist.shape
    if n < 2:
        return np.ones((s, n), dtype=bool), np.zeros(s)
    order = np.argsort(dist, axis=1)
    sd = np.take_along_axis(dist, order, 1)
    frac = np.cumsum(areas[order], axis=1) / areas.sum()
    with np.errstate(invalid="ignore"):  # inf - inf where a superpixel is unreachable
        gap = np.diff(sd, axis=1)  # gap[:, i]: the jump after taking the first i + 1 superpixels
    gap = np.where(np.isfinite(gap) & (frac[:, :-1] >= min_frac) & (frac[:, :-1] <= max_frac), gap, -1)
    k = min(n_levels, n - 1)
    top = np.argpartition(-gap, k - 1, axis=1)[:, :k]  # (S, k) cut positions
    jump = np.take_along_axis(gap, top, 1)
    thr = np.take_along_axis(sd, top, 1)  # distance of the last superpixel inside
    member = dist[:, None, :] <= thr[:, :, None]  # (S, k, n)
    valid = jump > 0
    return member[valid], jump[valid]


def gop_ours_segments(image: np.ndarray, k: float = 50, min_size: int = 20, n_grid: int = 100, n_geodesic: int = 100,
                      n_levels: int = 10, colour_weight: float = 0.5, min_frac: float = 1e-4,
                      max_frac: float = 0.9, max_side: int | None = 500, max_candidates: int | None = -1,
                      min_area: int = 1) -> Segments:
    """Our GOP-style candidates as Segments (see the module docstring). Deterministic."""
    image = check_image(image, "gop-ours")
    h, w = image.shape[:2]
    scale = working_scale((h, w), max_side)
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    labels = felzenszwalb(to_colour_space(small, "lab"), k, min_size=min_size)
    n = int(labels.max()) + 1
    areas = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    graph = superpixel_graph(small, labels, colour_weight)
    seeds = place_seeds(graph, labels, n_grid, n_geodesic)
    fg = dijkstra(graph, indices=seeds)  # (S, n)
    border = np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    bg = dijkstra(graph, indices=border, min_only=True)  # (n,)
    with np.errstate(invalid="ignore"):
        signed = fg - bg[None, :]  # below 0: closer to the seed than to the image border
    sets = [level_sets(fg, areas, n_levels, min_frac, max_frac),
            level_sets(signed, areas, n_levels, min_frac, max_frac)]
    member = np.concatenate([np.eye(n, dtype=bool)[seeds]] + [m for m, _ in sets])
    # Within each size stratum, level sets bounded by a larger jump in geodesic distance come first.
    scores = np.concatenate([np.zeros(len(seeds))] + [j for _, j in sets])
    return pool([(resize_labels(labels, (h, w)), member, scores)], candidate_budget(max_candidates, (h, w), 3000, 750),
                min_area, stratify=True)


def gop_ours(image: np.ndarray, **params) -> np.ndarray:
    """Our GOP-style candidate masks, bool (M, H, W)."""
    return gop_ours_segments(image, **params).masks()
