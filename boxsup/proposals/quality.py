"""Proposal quality: average best overlap (ABO), recall at mask IoU 0.5 / 0.7, candidates per image.

IoUs come from pycocotools on RLEs (one C call per image, no loop over candidates). Where the
ground truth has an ignore region (255 bands of VOC-style label maps), pixels in it count for
neither side: |c & g| / (|c| + |g| - |c & g| - |c & ignore|), with g disjoint from the ignore region.
"""
from __future__ import annotations

import numpy as np

from pycocotools import mask as mask_utils

from ..data.sample import IGNORE, Sample


def encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO RLEs (counts as str) of bool masks (M, H, W)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (M, H, W), got shape {masks.shape}")
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for r in rles:
        r["counts"] = r["counts"].decode("ascii") if isinstance(r["counts"], bytes) else r["counts"]
    return rles


def rle_areas(rles: list[dict]) -> np.ndarray:
    """Pixel areas of RLEs. pycocotools' ``area`` overflows on lists of 256 or more under numpy 2
    (it sizes its output with a uint8), so call it in chunks."""
    if not rles:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.asarray(mask_utils.area(rles[s:s + 255]), dtype=np.int64)
                           for s in range(0, len(rles), 255)])


def _rle_list(x) -> list[dict]:
    return x if isinstance(x, list) else encode_masks(x)


def _inter_from_iou(iou: np.ndarray, area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    # iou = I / (A + B - I)  =>  I = iou (A + B) / (1 + iou)
    return iou * (area_a[:, None] + area_b[None, :]) / (1.0 + iou)


def mask_iou_matrix(cands, gts, ignore: np.ndarray | None = None) -> np.ndarray:
    """(M, N) mask IoU between candidates and ground-truth instances (RLE lists or bool arrays)."""
    c, g = _rle_list(cands), _rle_list(gts)
    if not c or not g:
        return np.zeros((len(c), len(g)))
    iou = np.asarray(mask_utils.iou(c, g, [0] * len(g)), dtype=np.float64).reshape(len(c), len(g))
    if ignore is None or not np.any(ignore):
        return iou
    ca, ga = rle_areas(c).astype(np.float64), rle_areas(g).astype(np.float64)
    inter = _inter_from_iou(iou, ca, ga)
    ign = encode_masks(np.asarray(ignore, dtype=bool)[None])
    iou_i = np.asarray(mask_utils.iou(c, ign, [0]), dtype=np.float64).reshape(len(c), 1)
    c_ign = _inter_from_iou(iou_i, ca, rle_areas(ign).astype(np.float64))[:, 0]
    union = ca[:, None] - c_ign[:, None] + ga[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def best_overlaps(cands, gts, ignore: np.ndarray | None = None) -> np.ndarray:
    """(N,) best IoU of any candidate with each ground-truth instance (0 where there are no candidates)."""
    iou = mask_iou_matrix(cands, gts, ignore)
    return iou.max(0) if iou.shape[0] else np.zeros(iou.shape[1])


def summarize(best: list[np.ndarray], counts: list[int]) -> dict:
    """ABO, recall@0.5/0.7 over all instances, and mean candidates per image."""
    b = np.concatenate([np.asarray(x, dtype=np.float64) for x in best]) if best else np.zeros(0)
    return {"abo": float(b.mean()) if b.size else float("nan"),
            "recall50": float((b >= 0.5).mean()) if b.size else float("nan"),
            "recall70": float((b >= 0.7).mean()) if b.size else float("nan"),
            "mean_candidates": float(np.mean(counts)) if counts else 0.0,
            "instances": int(b.size), "images": len(counts)}


def instance_masks(sample: Sample) -> np.ndarray:
    """(N, H, W) bool true instance masks aligned with the boxes.

    Uses ``sample.instances`` when the loader has them; otherwise pixels of the box's class inside
    the box (exact for one object per class and box, approximate where same-class boxes overlap).
    """
    if sample.instances is not None:
        return np.asarray(sample.instances, dtype=bool)
    if sample.mask is None:
        raise ValueError(f"image {sample.image_id}: no masks, so no instance ground truth")
    h, w = sample.size
    out = np.zeros((len(sample.boxes), h, w), dtype=bool)
    for k, (b, lab) in enumerate(zip(sample.boxes.astype(int), sample.labels)):
        x0, y0, x1, y1 = b
        out[k, y0:y1, x0:x1] = sample.mask[y0:y1, x0:x1] == lab
    return out


def ignore_region(sample: Sample) -> np.ndarray | None:
    return None if sample.mask is None else sample.mask == IGNORE

