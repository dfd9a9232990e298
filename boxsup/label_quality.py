"""One label-quality metric for every way of turning boxes into training labels.

The metric: the IoU of a training label (a BoxSup pick, a GrabCut / CRF-box / rectangle mask) with
the true instance mask of its box, pixels the ground truth marks 255 counting for neither side,
averaged over boxes (``label_ious``; the same definition as the pool's ABO in ``proposals.quality``).

For BoxSup, besides its own final picks (``run_pick_quality``, recomputed from the picks stored in
the checkpoint), what the pool and the cost allow on the same images (``pool_quality``):
- ``eo_k1`` / ``eo_k5``: picks by Eo alone (lam = 0), the arg-min and the top-5 sampling;
- ``oracle_k1`` / ``oracle_k5``: the ceiling, picks by the project's own cost (``relabel.costs``)
  when the "network" is the truth: 0.9 on the true class of each pixel, the rest spread evenly
  (uniform on 255 pixels, whose class is unknown);
- ABO, recall at 0.5 / 0.7 and candidates per image.
Top-5 values are the exact expectation over the uniform choice among the 5 lowest costs (what
``relabel.pick`` draws from), never a sample. Every number is cached beside the candidates (pool,
box masks) or in the run folder (picks), and each can be measured on a pool without near-duplicates
(``proposals.dedup``) to show what that option would change.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import runs
from .atomic import cached_json
from .config import Config
from .data import load_dataset
from .data.sample import IGNORE
from .labels import TrainingImages
from .predict import predict_probs, resolve_device
from .proposals.boxmasks import box_masks
from .proposals.dedup import dedup
from .proposals.quality import instance_masks
from .proposals.store import cache_root, proposals_for, store_dir
from .relabel import Incidence, costs, pixel_sums

QUALITY_IMAGES = 200   # the first training images every label quality is measured on
ORACLE_P = 0.9         # the oracle network's probability of the true class


def label_ious(masks: np.ndarray, truths: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """(N,) IoU of each label mask with its true instance mask, ``ignore`` pixels left out
    (NaN where both are empty outside the ignore region)."""
    m = np.asarray(masks, bool).reshape(len(masks), -1)
    g = np.asarray(truths, bool).reshape(len(truths), -1)
    if ignore is not None:
        valid = ~np.asarray(ignore, bool).reshape(1, -1)
        m, g = m & valid, g & valid
    inter, union = (m & g).sum(1), (m | g).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def candidate_ious(cand: Incidence, truths: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """(M, N) ``label_ious`` of every candidate with every box's truth, computed from per-candidate
    pixel sums (no mask is materialised)."""
    n = len(truths)
    g = np.asarray(truths, bool).reshape(n, -1)
    valid = np.ones(g.shape[1], bool) if ignore is None else ~np.asarray(ignore, bool).reshape(-1)
    g = g & valid
    sums = pixel_sums(cand, np.concatenate([g, valid[None]]).astype(np.float64))
    inter, area = sums[:, :n], sums[:, n]
    union = area[:, None] + g.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), np.nan)


def expected_pick_iou(cost: np.ndarray, eligible: np.ndarray, iou: np.ndarray, k: int) -> np.ndarray:
    """(N,) expected IoU of the pick per box when it is drawn uniformly among the k lowest-cost
    eligible candidates (ties in stable order, as ``relabel.pick``); NaN for a box with none."""
    out = np.full(cost.shape[1], np.nan)
    for j in range(cost.shape[1]):
        ok = np.flatnonzero(eligible[:, j])
        if ok.size:
            top = ok[np.argsort(cost[ok, j], kind="stable")][:k]
            out[j] = iou[top, j].mean()
    return out


def oracle_logp(mask: np.ndarray, num_classes: int, p_true: float = ORACLE_P) -> np.ndarray:
    """(C, H, W) log-probabilities of a network that knows the truth: ``p_true`` on each pixel's
    class, the rest spread evenly; uniform on 255 pixels."""
    mask = np.asarray(mask)
    probs = np.full((num_classes,) + mask.shape, (1 - p_true) / (num_classes - 1), np.float32)
    known = mask != IGNORE
    ys, xs = np.nonzero(known)
    probs[mask[known].astype(np.int64), ys, xs] = p_true
    probs[:, ~known] = 1.0 / num_classes
    return np.log(probs)


def mean_or_nan(values) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _measured(ds, max_images: int | None):
    """(index, sample) of the first ``max_images`` images that have instance truth and boxes."""
    for i in range(len(ds) if max_images is None else min(max_images, len(ds))):
        s = ds[i]
        if s.mask is not None and len(s.boxes):
            yield i, s


def _slug(dedup_iou: float | None) -> str:
    return "" if dedup_iou is None else f"-dedup{dedup_iou:g}"


# --- fixed box-derived masks (Table 2's baselines) ---------------------------------------------------
def box_mask_quality(cfg: Config, method: str, max_images: int | None = QUALITY_IMAGES) -> float:
    """Mean label IoU of the masks a fixed box-derived method (rect | grabcut | crfbox) makes on the
    training boxes, cached beside the candidates."""
    def compute() -> dict:
        ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root, masks="optional")
        ious = [label_ious(box_masks(s.image, s.boxes, method), instance_masks(s), s.mask == IGNORE)
                for _, s in _measured(ds, max_images)]
        return {"miou": mean_or_nan(np.concatenate(ious)) if ious else float("nan"),
                "boxes": int(sum(len(x) for x in ious))}

    where = store_dir(cache_root(cfg.data_root, cfg.proposals_dir), cfg.dataset, cfg.train_split, method)
    return cached_json(where / f"label-iou-{max_images}.json", compute)["miou"]


# --- the pool and the cost, without a trained network ------------------------------------------------
def _store(cfg: Config, ds):
    return proposals_for(cfg.dataset, cfg.train_split, cfg.proposals, cfg.data_root, cfg.proposals_dir,
                         dataset=ds, workers=max(cfg.workers, 1))


def pool_quality(cfg: Config, max_images: int | None = QUALITY_IMAGES, dedup_iou: float | None = None) -> dict:
    """Quality of ``cfg.proposals`` on the training images and of the picks the cost can make from
    them: ``abo``, ``recall50``, ``recall70``, ``mean_candidates``, ``eo_k1``, ``eo_k5``, ``oracle_k1``,
    ``oracle_k5`` (fractions), ``boxes``, ``images``; with ``dedup_iou``, on the pool without
    near-duplicates. Cached beside the candidates (per lam and Er normalisation)."""
    ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root, masks="optional")
    store = _store(cfg, ds)

    def compute() -> dict:
        best, counts, picks = [], [], {k: [] for k in ("eo_k1", "eo_k5", "oracle_k1", "oracle_k5")}
        for _, s in _measured(ds, max_images):
            cand = dedup(store.load(s.image_id), dedup_iou)
            counts.append(len(cand))
            if not len(cand):
                best.append(np.zeros(len(s.boxes)))
                continue
            inc = cand.incidence()
            iou = candidate_ious(inc, instance_masks(s), s.mask == IGNORE)
            best.append(np.nan_to_num(iou, nan=0.0).max(0))
            cost, eo, _ = costs(oracle_logp(s.mask, len(ds.classes)), s.boxes, s.labels, inc, cand.boxes,
                                cfg.lam, cfg.er_norm)
            for k in (1, 5):
                picks[f"eo_k{k}"].append(expected_pick_iou(eo, eo < 1, iou, k))
                picks[f"oracle_k{k}"].append(expected_pick_iou(cost, eo < 1, iou, k))
        b = np.concatenate(best) if best else np.zeros(0)
        return {"abo": float(b.mean()) if b.size else float("nan"),
                "recall50": float((b >= 0.5).mean()) if b.size else float("nan"),
                "recall70": float((b >= 0.7).mean()) if b.size else float("nan"),
                "mean_candidates": float(np.mean(counts)) if counts else 0.0,
                **{k: mean_or_nan(np.concatenate(v)) if v else float("nan") for k, v in picks.items()},
                "boxes": int(b.size), "images": len(counts)}

    name = f"pool-quality-{max_images}-lam{cfg.lam:g}-{cfg.er_norm}{_slug(dedup_iou)}.json"
    return cached_json(store.root / name, compute)


# --- a finished BoxSup run ------------------------------------------------------------------------
def run_pick_quality(run_dir: str | os.PathLike, max_images: int | None = QUALITY_IMAGES) -> dict:
    """Label IoU of a BoxSup run's final picks (stored in its checkpoint) on the first ``max_images``
    training images: ``{"miou", "boxes", "fallbacks"}`` (a fallback GrabCut mask is not a candidate
    and is left out, as in the training log). Cached per checkpoint in the run folder."""
    cfg = runs.read_config(run_dir)

    def compute() -> dict:
        state = runs.load_checkpoint(run_dir)
        if state is None:
            raise FileNotFoundError(f"run {run_dir} has no checkpoint yet")
        images = TrainingImages(cfg)
        images.prepare_candidates()
        ious, fallbacks = [], 0
        for i, picked in sorted(state["picks"].items()):
            it = images.items[i]
            if it.source != 0 or (max_images is not None and it.index >= max_images):
                continue
            s = images.sample(i)
            if s.mask is None or not len(s.boxes):
                continue
            cand, _ = images.candidates(i)
            iou = candidate_ious(cand, instance_masks(s), s.mask == IGNORE)
            fallbacks += int((picked < 0).sum())
            ious.extend(iou[p, j] for j, p in enumerate(picked) if p >= 0)
        return {"miou": mean_or_nan(ious), "boxes": len(ious), "fallbacks": fallbacks}

    return runs.cached_eval(run_dir, cfg.train_split, f"pick-iou-{max_images}", compute)


@torch.inference_mode()
def network_pick_quality(run_dir: str | os.PathLike, max_images: int | None = QUALITY_IMAGES,
                         dedup_iou: float | None = None) -> dict:
    """Expected label IoU of the picks a finished run's network makes with the run's cost from the
    pool (``net_k1``, ``net_k5``), optionally without near-duplicates: what one more relabel would
    give, without training on the changed pool. Cached per checkpoint."""
    cfg = runs.read_config(run_dir)

    def compute() -> dict:
        model, _ = runs.load_model(run_dir)
        dev = resolve_device(cfg.device)
        model.to(dev)
        ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root, masks="optional")
        store = _store(cfg, ds)
        out = {1: [], 5: []}
        for _, s in _measured(ds, max_images):
            cand = dedup(store.load(s.image_id), dedup_iou)
            if not len(cand):
                continue
            inc = cand.incidence()
            logp = np.log(np.clip(predict_probs(model, s.image, (1.0,), device=dev), 1e-12, 1.0))
            cost, eo, _ = costs(logp, s.boxes, s.labels, inc, cand.boxes, cfg.lam, cfg.er_norm)
            iou = candidate_ious(inc, instance_masks(s), s.mask == IGNORE)
            for k in out:
                out[k].append(expected_pick_iou(cost, eo < 1, iou, k))
        return {f"net_k{k}": mean_or_nan(np.concatenate(v)) if v else float("nan") for k, v in out.items()}

    return runs.cached_eval(run_dir, cfg.train_split, f"netpick-iou-{max_images}{_slug(dedup_iou)}", compute)


def dedup_effect(cfg: Config, run_dir: str | os.PathLike | Path | None = None, threshold: float = 0.9,
                 max_images: int | None = QUALITY_IMAGES) -> dict[str, dict]:
    """``pool_quality`` (and, given a finished BoxSup run, its network's picks) on the pool as stored
    and without near-duplicates: {"as stored": {...}, "near-duplicates removed": {...}}."""
    out = {}
    for name, t in (("as stored", None), (f"near-duplicates removed (IoU > {threshold:g})", threshold)):
        row = pool_quality(cfg, max_images, t)
        if run_dir is not None:
            row = {**row, **network_pick_quality(run_dir, max_images, t)}
        out[name] = row
    return out
