"""Shared machinery of the proposal generators: candidates as unions of superpixels, and grouping.

Every generator here (Selective Search, our MCG-style grouping, our GOP-style proposals, the MCG
reader) produces candidates that are unions of the regions of one or more partitions of the image.
Holding them as ``Segments`` (an atom label map plus an (M, A) membership matrix over the atoms)
keeps them small, makes de-duplication a row hash, and lets areas and tight boxes come from
per-atom statistics; full (M, H, W) masks are materialised only when asked for.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from pycocotools import mask as mask_utils


@dataclass
class Segments:
    """Candidates as unions of atoms. atoms: (H, W) int32 in 0..A-1; member: (M, A) bool."""

    atoms: np.ndarray
    member: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.member.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.atoms.shape[0]), int(self.atoms.shape[1])

    def atom_areas(self) -> np.ndarray:
        return np.bincount(self.atoms.ravel(), minlength=self.member.shape[1]).astype(np.int64)

    def areas(self) -> np.ndarray:
        return member_areas(self.member, self.atom_areas())

    def boxes(self) -> np.ndarray:
        """Tight half-open boxes (M, 4) float32 from per-atom extents; empty candidates give zeros."""
        ab = region_boxes(self.atoms, self.member.shape[1]).T
        h, w = self.shape
        out = np.zeros((len(self), 4), dtype=np.float32)
        for s in range(0, len(self), 256):  # chunks: (chunk, A) temporaries stay small
            m = self.member[s:s + 256]
            out[s:s + 256] = np.stack([np.where(m, ab[0], w).min(1), np.where(m, ab[1], h).min(1),
                                       np.where(m, ab[2], 0).max(1), np.where(m, ab[3], 0).max(1)], 1)
        out[~self.member.any(1)] = 0
        return out

    def masks(self) -> np.ndarray:
        return self.member[:, self.atoms]

    def rles(self, chunk: int = 256) -> list[dict]:
        """COCO RLEs (counts as str) without materialising all M masks at once."""
        # A C-contiguous (m, W, H) array is exactly the Fortran-ordered (H, W, m) pycocotools wants.
        cols = self.atoms.T.ravel()
        h, w = self.shape
        out: list[dict] = []
        member = self.member.astype(np.uint8)
        for s in range(0, len(self), chunk):
            block = np.take(member[s:s + chunk], cols, axis=1).reshape(-1, w, h)
            out.extend(mask_utils.encode(block.transpose(2, 1, 0)))
        for r in out:
            r["counts"] = r["counts"].decode("ascii")
        return out

    def select(self, keep: np.ndarray) -> "Segments":
        return Segments(self.atoms, self.member[keep], None if self.scores is None else self.scores[keep])


def member_areas(member: np.ndarray, unit_areas: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(M,) int64 areas of candidates given the area of each unit (atom or region)."""
    # A float matmul is much faster than an int64 one; float32 is exact while sums stay below 2**24.
    dt = np.float32 if unit_areas.sum() < 2 ** 24 else np.float64
    ua = unit_areas.astype(dt)
    out = np.zeros(len(member), dtype=np.int64)
    for s in range(0, len(member), chunk):
        out[s:s + chunk] = np.rint(member[s:s + chunk].astype(dt) @ ua)
    return out


def consecutive_ids(labels: np.ndarray) -> np.ndarray:
    """Consecutive int32 ids 0..n-1 for an arbitrary label map."""
    _, inv = np.unique(labels.ravel(), return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def common_refinement(partitions: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Atoms = non-empty intersections of all partitions; returns (atoms, [atom -> region id] per partition)."""
    code = np.zeros(partitions[0].size, dtype=np.int64)
    for p in partitions:
        code = code * (int(p.max()) + 1) + p.ravel()
    uniq, first, inv = np.unique(code, return_index=True, return_inverse=True)
    atoms = inv.reshape(partitions[0].shape).astype(np.int32)
    return atoms, [p.ravel()[first].astype(np.int64) for p in partitions]


def _unique_rows(member: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row of a bool matrix, in row order."""
    if not len(member):
        return np.zeros(0, dtype=np.int64)
    packed = np.ascontiguousarray(np.packbits(member, axis=1))
    _, first = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True)
    return np.sort(first)


def dedup_rank(seg: Segments, max_candidates: int | None, min_area: int = 1) -> Segments:
    """Sort by score (high first), drop exact duplicates, empty and tiny candidates, keep the top N."""
    order = np.argsort(-seg.scores, kind="stable") if seg.scores is not None else np.arange(len(seg))
    keep = order[_unique_rows(seg.member[order])]
    if min_area > 0:
        keep = keep[member_areas(seg.member[keep], seg.atom_areas()) >= min_area]
    if max_candidates is not None:
        keep = keep[:max_candidates]
    return seg.select(keep)


def pool(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], max_candidates: int | None,
         min_area: int = 1, stratify: bool = False) -> Segments:
    """Pool candidates defined on different partitions into one ranked, de-duplicated Segments.

    parts: (labels (H, W) at full resolution, member (M_k, n_k) over those labels, scores (M_k,)).
    Ranking, the area filter and most de-duplication happen in each part's own small label space;
    With ``stratify`` the scores only order candidates within log-area strata (``stratified_scores``).
    Only the selected candidates are put onto the common refinement (atoms) of all partitions, where
    the (M, A) membership would otherwise be the dominant cost.
    """
    keys, scores, all_areas = [], [], []
    for k, (labels, member, sc) in enumerate(parts):
        rows = _unique_rows(member)
        areas = member_areas(member[rows], np.bincount(labels.ravel(), minlength=member.shape[1]))
        ok = areas >= max(min_area, 1)
        rows = rows[ok]
        keys.append(np.stack([np.full(len(rows), k), rows], 1))
        scores.append(np.asarray(sc, dtype=np.float64)[rows])
        all_areas.append(areas[ok])
    keys = np.concatenate(keys) if keys else np.zeros((0, 2), dtype=np.int64)
    scores = np.concatenate(scores) if scores else np.zeros(0)
    if stratify:
        scores = stratified_scores(scores, np.concatenate(all_areas), parts[0][0].size)
    order = np.argsort(-scores, kind="stable")
    # Cross-partition duplicates are few; take a margin so the cut still fills up after removing them.
    if max_candidates is not None:
        order = order[:int(max_candidates * 1.15) + 16]
    atoms, maps = common_refinement([p[0] for p in parts])
    member = np.zeros((len(order), atoms.max() + 1 if atoms.size else 0), dtype=bool)
    for k, (_, m, _) in enumerate(parts):
        sel = np.flatnonzero(keys[order, 0] == k)
        member[sel] = m[keys[order[sel], 1]][:, maps[k]]
    first = _unique_rows(member)
    if max_candidates is not None:
        first = first[:max_candidates]
    return Segments(atoms, member[first], scores[order][first])


def stratified_scores(scores: np.ndarray, areas: np.ndarray, total: float, step: float = 2 ** 0.5) -> np.ndarray:
    """Rank candidates round-robin over log-area strata (best ``scores`` first within each stratum).

    A top-N cut then keeps every size range, which matters more for best-overlap than any single
    objectness score (small objects would otherwise lose to large, high-contrast candidates).
    """
    if not len(scores):
        return np.zeros(0)
    b = np.floor(np.log(np.clip(areas / max(total, 1), 1e-9, 1)) / np.log(step)).astype(np.int64)
    order = np.lexsort((-np.asarray(scores, dtype=np.float64), b))
    sb = b[order]
    within = np.empty(len(order), dtype=np.float64)
    within[order] = np.arange(len(order)) - np.searchsorted(sb, sb)
    return -within - np.asarray(scores, dtype=np.float64) * 1e-6


def adjacency(labels: np.ndarray, strength: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region adjacency of a label map: edges (E, 2) with a < b, boundary length (E,), strength sum (E,).

    The strength of a pixel pair across a boundary is the larger of the two pixels' edge values.
    """
    n = int(labels.max()) + 1
    pairs, vals = [], []
    for axis in (1, 0):
        a = labels[:, :-1] if axis == 1 else labels[:-1, :]
        b = labels[:, 1:] if axis == 1 else labels[1:, :]
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        pairs.append(lo.astype(np.int64) * n + hi)
        if strength is not None:
            sa = strength[:, :-1] if axis == 1 else strength[:-1, :]
            sb = strength[:, 1:] if axis == 1 else strength[1:, :]
            vals.append(np.maximum(sa[diff], sb[diff]))
    code = np.concatenate(pairs)
    uniq, inv = np.unique(code, return_inverse=True)
    length = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    total = (np.bincount(inv, weights=np.concatenate(vals), minlength=uniq.size) if strength is not None
             else np.zeros(uniq.size))
    edges = np.stack([uniq // n, uniq % n], 1)
    return edges, length, total


def region_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) int64 half-open boxes of each label."""
    h, w = labels.shape
    ys, xs = np.divmod(np.arange(h * w), w)
    flat = labels.ravel()
    b = np.zeros((n, 4), dtype=np.int64)
    b[:, 0], b[:, 1] = w, h
    np.minimum.at(b[:, 0], flat, xs); np.minimum.at(b[:, 1], flat, ys)
    np.maximum.at(b[:, 2], flat, xs + 1); np.maximum.at(b[:, 3], flat, ys + 1)
    return b


def agglomerate(n: int, edges: np.ndarray, sims: np.ndarray,
                on_merge: Callable[[int, int, int, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Greedy hierarchical grouping: repeatedly merge the most similar adjacent pair.

    Regions 0..n-1 are the initial ones; the k-th merge creates region n+k. ``on_merge(i, j, t,
    neighbours)`` updates the caller's region state for the new region t and returns t's similarity
    to each neighbour. Returns merges (K, 2) (children of region n+k) and the similarity at each merge.
    Stops when no adjacent pair is left (K = n - number of connected components).
    """
    nbrs: list[set[int]] = [set() for _ in range(n)]
    heap = []
    for (a, b), s in zip(edges.tolist(), np.asarray(sims, dtype=np.float64).tolist()):
        nbrs[a].add(b); nbrs[b].add(a)
        heap.append((-s, a, b))
    heapq.heapify(heap)
    alive = [True] * n
    merges, heights = [], []
    while heap:
        s, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # stale entry: one side was merged already
        t = len(alive)
        alive[a] = alive[b] = False
        alive.append(True)
        nb = (nbrs[a] | nbrs[b]) - {a, b}
        for k in nb:
            nbrs[k].discard(a); nbrs[k].discard(b); nbrs[k].add(t)
        nbrs.append(nb)
        nbrs[a] = nbrs[b] = set()
        merges.append((a, b)); heights.append(-s)
        if nb:
            arr = np.fromiter(nb, dtype=np.int64, count=len(nb))
            for k, sk in zip(arr.tolist(), on_merge(a, b, t, arr).tolist()):
                heapq.heappush(heap, (-sk, t, k))
        else:
            on_merge(a, b, t, np.zeros(0, dtype=np.int64))
    return np.asarray(merges, dtype=np.int64).reshape(-1, 2), np.asarray(heights)


def hierarchy_members(n: int, merges: np.ndarray) -> np.ndarray:
    """(n + K, n) bool: which initial regions each region of the hierarchy holds."""
    member = np.zeros((n + len(merges), n), dtype=bool)
    member[np.arange(n), np.arange(n)] = True
    for k, (a, b) in enumerate(merges.tolist()):
        np.logical_or(member[a], member[b], out=member[n + k])
    return member


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (H, W)."""
    if labels.shape == tuple(shape):
        return labels
    h, w = shape
    ys = np.minimum((np.arange(h) + 0.5) * labels.shape[0] / h, labels.shape[0] - 1).astype(np.int64)
    xs = np.minimum((np.arange(w) + 0.5) * labels.shape[1] / w, labels.shape[1] - 1).astype(np.int64)
    return labels[ys[:, None], xs[None, :]]


def check_image(image: np.ndarray, where: str = "image") -> np.ndarray:
    """Validate an HxWx3 uint8 RGB image (grey images are expanded); raise ValueError otherwise."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{where}: expected an HxWx3 RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: expected uint8 pixels, got {image.dtype}")
    return np.ascontiguousarray(image)


def working_scale(shape: tuple[int, int], max_side: int | None) -> float:
    """The factor (<= 1) that brings the longer image side down to ``max_side``."""
    if not max_side:
        return 1.0
    return min(1.0, max_side / max(shape))


def boundary_map(image: np.ndarray, sigmas: tuple[float, ...] = (1.0, 2.0)) -> np.ndarray:
    """Colour-gradient boundary strength in [0, 1] (Lab, Gaussian derivatives at a few scales).

    A hand-made stand-in for MCG's learned contours: each scale's gradient magnitude is normalised by
    its 99th percentile so that low-contrast images still get a usable range.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    out = np.zeros(image.shape[:2], np.float32)
    for s in sigmas:
        b = cv2.GaussianBlur(lab, (0, 0), s)
        gx = cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3)
        m = np.sqrt((gx * gx + gy * gy).sum(2))
        out += m / (float(np.percentile(m, 99)) + 1e-3)
    return np.clip(out / len(sigmas), 0, 1)


def candidate_budget(max_candidates: int | None, shape: tuple[int, int], full: int, floor: int) -> int | None:
    """The top-N cut: ``max_candidates`` when given (None = no cut), else "auto" (-1): ``full`` for a
    500x375 image, fewer for smaller ones (``full * sqrt(area / 500x375)``, at least ``floor``).

    Small images need fewer candidates for the same best overlap (toy 112x112: 500 mcg-ours
    candidates give the ABO of 2500), and every candidate costs the trainer pixels at each relabel.
    """
    if max_candidates is None or max_candidates >= 0:
        return max_candidates
    frac = np.sqrt(shape[0] * shape[1] / (500 * 375))  # sqrt: measured ABO falls faster than linear
    return int(min(full, max(floor, round(full * frac))))
