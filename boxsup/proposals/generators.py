"""One entry point for every candidate generator: ``generate(method, image, boxes=None, **params)``.

Methods: ``ss`` (our Selective Search with masks), ``mcg`` (the official pre-computed MCG files;
needs ``mcg_dir`` and ``image_id``), ``mcg-ours`` (our multiscale combinatorial grouping),
``gop-ours`` (our geodesic proposals), and the per-box masks ``rect``, ``grabcut``, ``crfbox``
(one candidate per ground-truth box; need ``boxes``).
"""
from __future__ import annotations

import numpy as np

from .boxmasks import BOX_METHODS, box_masks
from .gop import gop_ours_segments
from .mcg import mcg_from_dir, mcg_ours_segments
from .segments import Segments, check_image
from .selective_search import image_seed, selective_search_segments

PROPOSAL_METHODS = ("ss", "mcg", "mcg-ours", "gop-ours")
METHODS = PROPOSAL_METHODS + BOX_METHODS


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown proposal method {method!r}; allowed: {', '.join(METHODS)}")


def generate_segments(method: str, image: np.ndarray, boxes: np.ndarray | None = None,
                      image_id: str | None = None, **params) -> Segments | np.ndarray:
    """Candidates as ``Segments`` (region-based methods) or bool (M, H, W) masks (per-box methods)."""
    check_method(method)
    if method in BOX_METHODS:
        if boxes is None:
            raise ValueError(f"method {method!r} derives one mask per box: pass boxes=(N, 4)")
        return box_masks(check_image(image, method), boxes, method, **params)
    if method == "ss":
        params.setdefault("seed", image_seed(image_id or ""))
        return selective_search_segments(image, **params)
    if method == "mcg":
        if "mcg_dir" not in params or image_id is None:
            raise ValueError("method 'mcg' reads the official pre-computed files: pass mcg_dir=<folder of "
                             "<image_id>.mat> and image_id=")
        return mcg_from_dir(image, params.pop("mcg_dir"), image_id, **params)
    if method == "mcg-ours":
        return mcg_ours_segments(image, **params)
    return gop_ours_segments(image, **params)


def generate(method: str, image: np.ndarray, boxes: np.ndarray | None = None, **params) -> np.ndarray:
    """Candidate masks, bool (M, H, W). See the module docstring for methods and their parameters."""
    out = generate_segments(method, image, boxes, **params)
    return out.masks() if isinstance(out, Segments) else out
