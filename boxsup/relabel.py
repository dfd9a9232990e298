"""The BoxSup relabeling step: with the network fixed, pick one candidate segment per box.

For box B (class l, area |B|) and candidate S, with the network's per-pixel log-probabilities
log P_c(p):

    Eo(S) = 1 - IoU(B, tightbox(S))                          (box vs box, never box vs pixels)
    Er(S) = ( sum_{p in S} -log P_l(p) + sum_{p in B \\ S} -log P_0(p) ) / Z

i.e. the cross-entropy of the network against the labelling "S -> l, the rest of the box ->
background" (pixels outside B and S are labelled alike by every candidate and drop out). Pixels of S
outside B are charged -log P_l too, so a candidate that spills out of its box pays for it.
Z, ``er_norm``: "image" (default) = H*W, i.e. the per-pixel mean of the FCN loss over the image as in
the paper's Eqn. (1); "box" = |B|. With "box", lam * Er outweighs Eo as soon as the network leans
to background, the picks shrink to tiny segments and training collapses onto background (measured
on the toy benchmark: mean IoU of the picks with the true masks fell to 0.04 by epoch 9); with
"image", Eo leads while the network is weak and Er refines among well-overlapping candidates.
Rewriting with a per-box difference map

    d_B(p) = -log P_l(p) + [p in B] log P_0(p),    Er(S) = ( sum_{p in B} -log P_0(p) + sum_{p in S} d_B(p) ) / Z

turns Er for ALL candidates and boxes into one sparse product ``candidates (M x HW) @ D (HW x N)``.
cost = Eo + lam * Er; the pick is uniform among the k lowest costs (k = 1 is the arg-min). Only
candidates whose tight box overlaps B at all are eligible; a box with none gets a fallback mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .data.sample import IGNORE


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (M, 4) with every box in ``b`` (N, 4); half-open pixel boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def int_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel-aligned boxes covering every pixel a (possibly fractional) box touches."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.stack([np.floor(b[:, 0]), np.floor(b[:, 1]), np.ceil(b[:, 2]), np.ceil(b[:, 3])], 1)
    out = np.clip(out, 0, [width, height, width, height]).astype(np.int64)
    return out


def masks_to_sparse(masks: np.ndarray) -> sp.csr_matrix:
    """(M, H, W) bool -> CSR (M, H*W) of ones: the candidate-by-pixel incidence matrix."""
    m = np.asarray(masks, dtype=bool)
    flat = m.reshape(len(m), int(np.prod(m.shape[1:])))
    rows, cols = np.nonzero(flat)  # row-major: rows come out sorted, so indptr is a cumulative count
    indptr = np.zeros(len(m) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(m)), out=indptr[1:])
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=flat.shape)


@dataclass
class AtomSets:
    """Candidates that are unions of atoms (superpixels): ``atoms`` (H*W,) atom id per pixel and
    ``member`` (M, A) bool. Sums of a pixel map over every candidate are per-atom sums (one bincount
    per map) followed by a small (M, A) x (A, N) product, far cheaper than a pixel-level matrix."""

    atoms: np.ndarray
    member: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.member.shape[0], self.atoms.size


def pixel_sums(cand, maps: np.ndarray) -> np.ndarray:
    """(M, N): the sum of each of N pixel maps (N, H*W) over each candidate's pixels."""
    if isinstance(cand, AtomSets):
        a = cand.member.shape[1]
        per_atom = np.stack([np.bincount(cand.atoms, weights=m, minlength=a) for m in maps], 1)
        return cand.member.astype(np.float64) @ per_atom
    return np.asarray(cand @ maps.T.astype(np.float32), dtype=np.float64)


def candidate_pixels(cand, i: int) -> np.ndarray:
    """Flat (row-major) pixel indices of candidate ``i``."""
    if isinstance(cand, AtomSets):
        return np.flatnonzero(cand.member[i][cand.atoms])
    return cand.indices[cand.indptr[i]:cand.indptr[i + 1]]


ER_NORMS = ("image", "box")


def costs(logp: np.ndarray, boxes: np.ndarray, labels: np.ndarray, cand: sp.csr_matrix,
          cand_boxes: np.ndarray, lam: float = 3.0, er_norm: str = "image"
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost, Eo, Er), each (M candidates, N boxes), computed for all pairs at once.

    logp: (C, H, W) float32 log-probabilities of the network on the whole image.
    """
    c, h, w = logp.shape
    n = len(boxes)
    ib = int_boxes(boxes, h, w)
    inside = np.zeros((n, h, w), dtype=bool)
    for j, (x0, y0, x1, y1) in enumerate(ib):  # N boxes, not M candidates: a handful per image
        inside[j, y0:y1, x0:x1] = True
    flat = logp.reshape(c, -1)
    lab = np.asarray(labels, dtype=np.int64)
    inside = inside.reshape(n, -1)
    nll0 = -flat[0]                                            # only the rows needed, not all C
    diff = -flat[lab] - inside * nll0[None, :]                 # (N, HW): d_B per box
    base = (inside * nll0[None, :]).sum(1)                     # (N,): sum_{p in B} -log P_0
    if er_norm == "box":
        z = np.maximum(inside.sum(1), 1).astype(np.float64)
    elif er_norm == "image":
        z = np.full(n, float(h * w))
    else:
        raise ValueError(f"er_norm={er_norm!r}; allowed: {', '.join(ER_NORMS)}")
    er = (pixel_sums(cand, diff) + base[None, :]) / z[None, :]
    eo = 1.0 - box_iou(cand_boxes, boxes)
    return eo + lam * er, eo, er


def costs_naive(logp: np.ndarray, boxes: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                lam: float = 3.0, er_norm: str = "image") -> np.ndarray:
    """Reference: builds the label map of every candidate in a Python loop (tests, benchmark)."""
    c, h, w = logp.shape
    ib = int_boxes(boxes, h, w)
    out = np.zeros((len(masks), len(boxes)))
    for j, ((x0, y0, x1, y1), lab) in enumerate(zip(ib, labels)):
        area = max((x1 - x0) * (y1 - y0), 1) if er_norm == "box" else h * w
        for i, m in enumerate(masks):
            target = np.full((h, w), -1, dtype=np.int64)
            target[y0:y1, x0:x1] = 0
            target[m] = lab
            sel = target >= 0
            er = -logp[target[sel], np.nonzero(sel)[0], np.nonzero(sel)[1]].sum() / area
            ys, xs = np.nonzero(m)
            tb = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]) if len(ys) else np.zeros((1, 4))
            out[i, j] = 1 - box_iou(tb, boxes[j:j + 1])[0, 0] + lam * er
    return out


@dataclass
class Picks:
    """Chosen candidate per box (-1: fallback mask used) and the cost of each pick."""

    index: np.ndarray
    cost: np.ndarray
    fallback: int


def pick(cost: np.ndarray, eligible: np.ndarray, k: int, rng: np.random.Generator) -> Picks:
    """Uniform choice among the k LOWEST-cost eligible candidates of each box."""
    m, n = cost.shape
    index = np.full(n, -1, dtype=np.int64)
    chosen = np.full(n, np.nan)
    fallback = 0
    for j in range(n):  # over boxes; the candidates are handled by argsort
        ok = np.flatnonzero(eligible[:, j])
        if ok.size == 0:
            fallback += 1
            continue
        order = ok[np.argsort(cost[ok, j], kind="stable")]
        i = int(order[rng.integers(min(k, order.size))])
        index[j], chosen[j] = i, cost[i, j]
    return Picks(index, chosen, fallback)


def select(logp: np.ndarray, boxes: np.ndarray, labels: np.ndarray, cand: sp.csr_matrix,
           cand_boxes: np.ndarray, k: int, lam: float, rng: np.random.Generator, er_norm: str = "image") -> Picks:
    """Relabel one image: costs for all candidates, then the pick."""
    if len(boxes) == 0:
        return Picks(np.zeros(0, np.int64), np.zeros(0), 0)
    if cand.shape[0] == 0:
        return Picks(np.full(len(boxes), -1, np.int64), np.full(len(boxes), np.nan), len(boxes))
    cost, eo, _ = costs(logp, boxes, labels, cand, cand_boxes, lam, er_norm)
    return pick(cost, eo < 1.0, k, rng)


def paint(shape: tuple[int, int], boxes: np.ndarray, labels: np.ndarray, picks: np.ndarray,
          cand: sp.csr_matrix, fallback_masks: list[np.ndarray | None] | None = None) -> np.ndarray:
    """The estimated label map: boxes painted large to small (small objects stay on top), each with
    its chosen segment (or its fallback mask); every other pixel is background. Never 255."""
    h, w = shape
    out = np.zeros(h * w, dtype=np.uint8)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    for j in np.argsort(-areas, kind="stable"):
        if picks[j] >= 0:
            out[candidate_pixels(cand, picks[j])] = labels[j]
        elif fallback_masks is not None and fallback_masks[j] is not None:
            out[np.asarray(fallback_masks[j], dtype=bool).reshape(-1)] = labels[j]
    assert not (out == IGNORE).any()
    return out.reshape(h, w)


def pick_iou(cand: sp.csr_matrix, picks: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """IoU of each chosen candidate with the box's true instance mask (NaN for fallbacks)."""
    out = np.full(len(picks), np.nan)
    for j, i in enumerate(picks):
        if i < 0:
            continue
        g = np.asarray(instances[j], dtype=bool).reshape(-1)
        row = candidate_pixels(cand, i)
        inter = g[row].sum()
        union = row.size + g.sum() - inter
        out[j] = inter / union if union else np.nan
    return out
