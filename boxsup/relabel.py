"""The BoxSup relabeling step, whole: with the network fixed, pick one candidate segment per box
for every box-supervised training image (``relabel_epoch``), then paint the new label maps.

For box B (class l) and candidate S, with the network's per-pixel log-probabilities log P_c(p):

    Eo(S) = 1 - IoU(B, tightbox(S))                          (box vs box, never box vs pixels)
    Er(S) = ( sum_{p in S} -log P_l(p) + sum_{p in B \\ S} -log P_0(p) ) / Z

i.e. the cross-entropy of the network against the labelling "S -> l, the rest of the box ->
background" (pixels outside B and S are labelled alike by every candidate and drop out; pixels of S
outside B are charged -log P_l, so a candidate that spills out of its box pays for it). The paper
leaves Z open; ``er_norm`` "image" (default) takes Z = H*W, the per-pixel mean of the FCN loss of the
paper's Eqn. (1), "box" takes Z = |B| (the README shows how each balances Eo against lam * Er).
With a per-box difference map

    d_B(p) = -log P_l(p) + [p in B] log P_0(p),    Er(S) = ( sum_{p in B} -log P_0(p) + sum_{p in S} d_B(p) ) / Z

Er for ALL candidates and boxes is one product ``candidates (M x HW) @ D (HW x N)``: a sparse pixel
matrix, or per-atom sums and a small (M x A) product when candidates are unions of atoms (``Segments``).
cost = Eo + lam * Er; the pick is uniform among the k lowest costs (k = 1 is the arg-min). Only
candidates whose tight box overlaps B at all are eligible; a box with none gets a fallback mask.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .config import ER_NORMS
from .data.boxes import box_iou, int_boxes, paint_largest_first
from .data.sample import IGNORE
from .data.transforms import normalise_batch
from .labels import TrainingImages
from .proposals.boxmasks import fallback_mask
from .proposals.quality import ignore_region, instance_masks
from .proposals.segments import Segments

# The relabel's random stream of image i at epoch e is [seed, e, RELABEL_STREAM, i]; the training
# crops use [seed, e, pass, i] with pass < passes, so the two never share a stream.
RELABEL_STREAM = 7

Incidence = Segments | sp.csr_matrix


def masks_to_sparse(masks: np.ndarray) -> sp.csr_matrix:
    """(M, H, W) bool -> CSR (M, H*W) of ones: the candidate-by-pixel incidence matrix."""
    m = np.asarray(masks, dtype=bool)
    flat = m.reshape(len(m), int(np.prod(m.shape[1:])))
    rows, cols = np.nonzero(flat)  # row-major: rows come out sorted, so indptr is a cumulative count
    indptr = np.zeros(len(m) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(m)), out=indptr[1:])
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=flat.shape)


def num_candidates(cand: Incidence) -> int:
    return len(cand) if isinstance(cand, Segments) else cand.shape[0]


def pixel_sums(cand: Incidence, maps: np.ndarray) -> np.ndarray:
    """(M, N): the sum of each of N pixel maps (N, H*W) over each candidate's pixels."""
    if isinstance(cand, Segments):
        a = cand.member.shape[1]
        atoms = cand.atoms.reshape(-1)
        per_atom = np.stack([np.bincount(atoms, weights=m, minlength=a) for m in maps], 1)
        return cand.member.astype(np.float64) @ per_atom
    return np.asarray(cand @ maps.T.astype(np.float32), dtype=np.float64)


def candidate_pixels(cand: Incidence, i: int) -> np.ndarray:
    """Flat (row-major) pixel indices of candidate ``i``."""
    if isinstance(cand, Segments):
        return np.flatnonzero(cand.member[i][cand.atoms.reshape(-1)])
    return cand.indices[cand.indptr[i]:cand.indptr[i + 1]]


def costs(logp: np.ndarray | torch.Tensor, boxes: np.ndarray, labels: np.ndarray, cand: Incidence,
          cand_boxes: np.ndarray, lam: float = 3.0, er_norm: str = "image"
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost, Eo, Er), each (M candidates, N boxes) float64 numpy, computed for all pairs at once.

    logp: (C, H, W) log-probabilities of the network on the whole image: a numpy array, or a torch
    tensor, whose sums then run on its device (a GPU relabel never copies the maps to the host).
    """
    if er_norm not in ER_NORMS:
        raise ValueError(f"er_norm={er_norm!r}; allowed: {', '.join(ER_NORMS)}")
    er = _er_torch(logp, boxes, labels, cand, er_norm) if isinstance(logp, torch.Tensor) else \
        _er_numpy(logp, boxes, labels, cand, er_norm)
    eo = 1.0 - box_iou(cand_boxes, boxes)
    return eo + lam * er, eo, er


def _er_numpy(logp: np.ndarray, boxes: np.ndarray, labels: np.ndarray, cand: Incidence, er_norm: str) -> np.ndarray:
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
    z = np.maximum(inside.sum(1), 1).astype(np.float64) if er_norm == "box" else np.full(n, float(h * w))
    return (pixel_sums(cand, diff) + base[None, :]) / z[None, :]


def _er_torch(logp: torch.Tensor, boxes: np.ndarray, labels: np.ndarray, cand: Incidence, er_norm: str) -> np.ndarray:
    """Er as ``_er_numpy``, in float64 torch on ``logp``'s device; only the (M, N) result comes back."""
    c, h, w = logp.shape
    dev = logp.device
    ib = torch.as_tensor(int_boxes(boxes, h, w), device=dev)[:, :, None, None]
    ys, xs = torch.arange(h, device=dev).view(1, h, 1), torch.arange(w, device=dev).view(1, 1, w)
    inside = ((ys >= ib[:, 1]) & (ys < ib[:, 3]) & (xs >= ib[:, 0]) & (xs < ib[:, 2])).reshape(len(boxes), -1)
    flat = logp.reshape(c, -1).double()
    lab = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=dev)
    nll0 = -flat[0]
    diff = -flat[lab] - inside * nll0                           # (N, HW): d_B per box
    base = (inside * nll0).sum(1)
    z = inside.sum(1).clamp(min=1).double() if er_norm == "box" else torch.full_like(base, float(h * w))
    if isinstance(cand, Segments):
        atoms = torch.as_tensor(cand.atoms.reshape(-1).astype(np.int64), device=dev)
        per_atom = torch.zeros(cand.member.shape[1], len(boxes), dtype=torch.float64, device=dev)
        per_atom.index_add_(0, atoms, diff.T)
        sums = torch.as_tensor(cand.member, device=dev).double() @ per_atom
    else:
        rows = np.repeat(np.arange(cand.shape[0]), np.diff(cand.indptr))
        idx = torch.as_tensor(np.stack([rows, cand.indices]).astype(np.int64), device=dev)
        mat = torch.sparse_coo_tensor(idx, torch.ones(idx.shape[1], dtype=torch.float64, device=dev), cand.shape,
                                      check_invariants=False)  # built from a valid CSR: nothing to check
        sums = torch.sparse.mm(mat, diff.T)
    return ((sums + base) / z).cpu().numpy()


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


def select(logp: np.ndarray, boxes: np.ndarray, labels: np.ndarray, cand: Incidence,
           cand_boxes: np.ndarray, k: int, lam: float, rng: np.random.Generator, er_norm: str = "image") -> Picks:
    """Relabel one image: costs for all candidates, then the pick."""
    if len(boxes) == 0:
        return Picks(np.zeros(0, np.int64), np.zeros(0), 0)
    if num_candidates(cand) == 0:
        return Picks(np.full(len(boxes), -1, np.int64), np.full(len(boxes), np.nan), len(boxes))
    cost, eo, _ = costs(logp, boxes, labels, cand, cand_boxes, lam, er_norm)
    return pick(cost, eo < 1.0, k, rng)


def paint(shape: tuple[int, int], boxes: np.ndarray, labels: np.ndarray, picks: np.ndarray,
          cand: Incidence, fallback_masks: list[np.ndarray | None] | None = None) -> np.ndarray:
    """The estimated label map: each box's chosen segment (or its fallback mask), painted large to
    small; every other pixel is background. Never 255."""
    regions = [candidate_pixels(cand, p) if p >= 0 else None if fallback_masks is None else fallback_masks[j]
               for j, p in enumerate(picks)]
    out = paint_largest_first(shape, boxes, labels, regions)
    assert not (out == IGNORE).any()
    return out


def pick_iou(cand: Incidence, picks: np.ndarray, instances: np.ndarray, ignore: np.ndarray | None = None
             ) -> np.ndarray:
    """IoU of each chosen candidate with the box's true instance mask (NaN for fallbacks), the
    ``ignore`` pixels (the truth's 255 rims) left out of both: the one label metric of the reports
    (``label_quality.label_ious``)."""
    valid = None if ignore is None else ~np.asarray(ignore, dtype=bool).reshape(-1)
    out = np.full(len(picks), np.nan)
    for j, i in enumerate(picks):
        if i < 0:
            continue
        g = np.asarray(instances[j], dtype=bool).reshape(-1)
        row = candidate_pixels(cand, i)
        if valid is not None:
            g, row = g & valid, row[valid[row]]
        inter = g[row].sum()
        union = row.size + g.sum() - inter
        out[j] = inter / union if union else np.nan
    return out


# --- one relabel of a whole training set ----------------------------------------------------------

def _same_size_chunks(items: list[int], images: TrainingImages, size: int):
    """Batches of same-sized images, at most ``size`` long (one forward pass each). Images wait in a
    bucket per size, so that photos of mixed sizes still fill batches; a bounded look-ahead (the
    largest bucket goes when ``4 * size`` images wait) bounds memory. Equal sizes keep their order."""
    buckets: dict[tuple[int, int], list[int]] = {}
    waiting = 0
    for i in items:
        b = buckets.setdefault(images.sample(i).size, [])
        b.append(i)
        waiting += 1
        if len(b) == size or waiting >= 4 * size:
            key = images.sample(i).size if len(b) == size else max(buckets, key=lambda k: len(buckets[k]))
            chunk = buckets.pop(key)
            waiting -= len(chunk)
            yield chunk
    yield from (b for b in buckets.values() if b)


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast with ``precision="bf16"``, or "auto" on CUDA; full fp32 otherwise (the CPU's
    default: bf16 changes more than the order of float rounding)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def relabel_epoch(model: torch.nn.Module, images: TrainingImages, device: torch.device, epoch: int,
                  rank: int = 0, world: int = 1, progress: bool = True) -> dict:
    """Re-estimate the label map of every box-supervised image with the network fixed; returns the
    epoch's statistics (picks' mean IoU with the true masks where the loader has instances, timings).

    Under DDP each rank relabels the images ``rank::world`` and the label maps are then shared, so
    every rank trains on all of them. Each (epoch, image) draws from its own random stream, so the
    picks do not depend on order, sharding or resuming.
    """
    # numpy's BLAS (the Er products) on one thread: its spinning threads and torch's OpenMP pool
    # fought over the cores and made the forward passes in between 2-3x slower (benchmarks/toy_stages.py)
    with threadpool_limits(1, user_api="blas"), torch.inference_mode():
        return _relabel(model, images, device, epoch, rank, world, progress)


def _relabel(model: torch.nn.Module, images: TrainingImages, device: torch.device, epoch: int,
             rank: int, world: int, progress: bool) -> dict:
    cfg = images.cfg
    model.eval()
    mine = images.box_items()[rank::world]
    t0 = time.perf_counter()
    t_select = 0.0
    ious, fallbacks, boxes_seen = [], 0, 0
    bar = tqdm(total=len(mine), desc=f"relabel {epoch + 1}", disable=not progress, mininterval=2)
    for chunk in _same_size_chunks(mine, images, cfg.batch_size):
        samples = [images.sample(i) for i in chunk]
        x = normalise_batch(np.stack([s.image for s in samples]), device)  # uint8 to the device
        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
        with autocast(device, cfg.precision):
            logps = F.log_softmax(model(x).float(), 1)
        if device.type != "cuda":  # the CPU sums run in numpy; on a GPU they stay on the device
            logps = logps.cpu().numpy()
        ts = time.perf_counter()
        for i, s, logp in zip(chunk, samples, logps):
            cand, cand_boxes = images.candidates(i)
            rng = np.random.default_rng([cfg.seed, epoch, RELABEL_STREAM, i])
            p = select(logp, s.boxes, s.labels, cand, cand_boxes, cfg.k, cfg.lam, rng, cfg.er_norm)
            if p.fallback:
                fb = images.fallbacks.setdefault(i, [None] * len(s.boxes))
                for j in np.flatnonzero(p.index < 0):
                    if fb[j] is None:
                        fb[j] = fallback_mask(s.image, s.boxes[j])
            images.labels[i] = paint(s.size, s.boxes, s.labels, p.index, cand, images.fallbacks.get(i))
            images.picks[i] = p.index
            fallbacks += p.fallback
            boxes_seen += len(s.boxes)
            truth = instance_masks(s) if s.mask is not None or s.instances is not None else None
            if truth is not None and len(truth) == len(s.boxes):  # the one label metric (label_quality)
                ious.extend(pick_iou(cand, p.index, truth, ignore_region(s)).tolist())
        t_select += time.perf_counter() - ts
        bar.update(len(chunk))
    bar.close()
    stats = {"relabel_images": len(mine), "relabel_boxes": boxes_seen, "fallbacks": fallbacks,
             "pick_mIoU": float(np.nanmean(ious)) if np.isfinite(ious).any() else None,
             "pick_iou_sum": float(np.nansum(ious)), "pick_iou_n": int(np.isfinite(ious).sum()),
             "relabel_s": time.perf_counter() - t0, "relabel_select_s": t_select}
    return _share(images, mine, stats, world) if world > 1 else stats


def _share(images: TrainingImages, mine: list[int], stats: dict, world: int) -> dict:
    """DDP: every rank sends the label maps and picks it made and receives the others'; the
    statistics are summed (times: the slowest rank)."""
    import torch.distributed as dist  # local: only under torchrun

    made = {i: (images.labels[i], images.picks[i]) for i in mine}
    parts: list = [None] * world
    dist.all_gather_object(parts, (made, stats))
    merged = {k: 0 for k in ("relabel_images", "relabel_boxes", "fallbacks", "pick_iou_sum", "pick_iou_n")}
    for labels, st in parts:
        for i, (lab, pk) in labels.items():
            images.labels[i], images.picks[i] = lab, pk
        for k in merged:
            merged[k] += st[k]
    merged["pick_mIoU"] = merged["pick_iou_sum"] / merged["pick_iou_n"] if merged["pick_iou_n"] else None
    merged["relabel_s"] = max(st["relabel_s"] for _, st in parts)
    merged["relabel_select_s"] = max(st["relabel_select_s"] for _, st in parts)
    return merged
