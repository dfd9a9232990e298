"""Candidate-pool hygiene: near-duplicate suppression before relabeling (measured, not a default).

The generators drop exact duplicates (``segments.dedup_rank``) but keep near-twins: candidates that
differ by a superpixel or two. A pool full of twins lets the top-k sampling draw the same segment
several times, so it narrows the choice without the cost saying so. ``near_duplicates`` removes every
candidate whose mask IoU with a better-ranked kept one exceeds a threshold (greedy, like NMS); the
stores hold candidates best-ranked first, so "better-ranked" is "earlier in the store".
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from .store import Candidates

NEAR_DUPLICATE_IOU = 0.9


def pairwise_iou(cand: Candidates) -> np.ndarray:
    """(M, M) mask IoU between the candidates of one image: from the atoms when the candidates are
    unions of atoms (one small matrix product, exact while areas stay below 2**24), else from RLEs."""
    if not len(cand):
        return np.zeros((0, 0))
    seg = cand.segments
    if seg is None:
        return np.asarray(mask_utils.iou(cand.rles, cand.rles, [0] * len(cand)), dtype=np.float64).reshape(len(cand), -1)
    member = seg.member.astype(np.float32)
    inter = (member * seg.atom_areas().astype(np.float32)) @ member.T
    area = np.diag(inter).astype(np.float64)
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def near_duplicates(cand: Candidates, threshold: float = NEAR_DUPLICATE_IOU) -> np.ndarray:
    """(M,) bool: True for the candidates to keep. A candidate is dropped when its IoU with an
    earlier kept candidate is above ``threshold``."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r}; must be in (0, 1]")
    iou = pairwise_iou(cand)
    keep = np.ones(len(cand), dtype=bool)
    for i in range(len(cand)):  # greedy in rank order: M is a few hundred at most per image
        if keep[i]:
            later = np.arange(len(cand)) > i
            keep &= ~(later & (iou[i] > threshold))
    return keep


def dedup(cand: Candidates, threshold: float | None = NEAR_DUPLICATE_IOU) -> Candidates:
    """The pool without near-duplicates (``threshold=None``: unchanged)."""
    return cand if threshold is None else cand.select(near_duplicates(cand, threshold))
