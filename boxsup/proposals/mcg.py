"""MCG candidates: (a) a reader for the officially released pre-computed MCG proposals, and
(b) ``mcg-ours``, OUR multiscale combinatorial grouping in MCG's spirit (not the published code).

(a) Pont-Tuset et al. release one ``.mat`` per image with ``superpixels`` (HxW, 1-based ids),
``labels`` (cell array; entry i = the superpixel ids of candidate i) and ``scores``. A candidate is
the union of its superpixels. The file's ``bboxes`` field is de-duplicated separately and is NOT
aligned with ``labels``: it is never read; tight boxes are computed from the masks.

(b) Ours: at several image scales and for three base partitions (Felzenszwalb-Huttenlocher in Lab,
HSV and normalised rg + intensity), a hierarchy is grown by Selective-Search similarities minus
the mean colour-gradient strength along the shared border (so merges across strong boundaries come
last, as in a UCM). All hierarchy regions, plus connected pairs and triples of adjacent regions of
the partitions at several levels of each hierarchy (MCG's combinatorial step), are aligned to full
resolution, ranked, de-duplicated and cut to the top N. Ranking: log-area strata taken
round-robin; within a stratum, hierarchy regions before combinations, each ordered by boundary
contrast (mean edge strength along the candidate's outline). Ranking by contrast alone measured
worse (it starves small objects). MCG learns its contours and its ranker; we have neither.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io
import scipy.sparse as sp

from ..data.sample import DataError
from .segments import (Segments, adjacency, boundary_map, candidate_budget, check_image, dedup_rank, pool,
                       resize_labels, working_scale)
from .selective_search import felzenszwalb, group, texture_bins, to_colour_space


# --- (a) the official pre-computed proposals ---------------------------------------------------------

def read_mcg_mat(path: str | Path) -> Segments:
    """Candidates of one official MCG ``.mat`` file as Segments (scores from the file, order kept)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MCG proposal file not found: {path}")
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["superpixels", "labels", "scores"])
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise DataError(f"cannot read MCG file {path}: MATLAB v7.3 files are not supported; re-save it with "
                        "save(..., '-v7')") from e
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, ... on damaged files
        raise DataError(f"cannot read MCG file {path} (corrupt or truncated?): {e}") from e
    for key in ("superpixels", "labels"):
        if key not in mat:
            raise DataError(f"MCG file {path} has no '{key}' variable (found: "
                            f"{', '.join(k for k in mat if not k.startswith('__'))})")
    spx = np.asarray(mat["superpixels"])
    if spx.ndim != 2 or spx.size == 0:
        raise DataError(f"MCG file {path}: 'superpixels' must be a non-empty HxW array, got shape {spx.shape}")
    spx = spx.astype(np.int64)
    n = int(spx.max())
    if spx.min() < 1:
        raise DataError(f"MCG file {path}: superpixel ids must be 1-based, found {int(spx.min())}")
    cells = np.asarray(mat["labels"], dtype=object).ravel()
    member = np.zeros((len(cells), n), dtype=bool)
    for i, cell in enumerate(cells):
        ids = np.asarray(cell).ravel().astype(np.int64)
        if ids.size and (ids.min() < 1 or ids.max() > n):
            raise DataError(f"MCG file {path}: candidate {i} names superpixel {int(ids.max())}, "
                            f"outside 1..{n}")
        member[i, ids - 1] = True
    scores = np.asarray(mat.get("scores", np.zeros(len(cells))), dtype=np.float64).ravel()
    if scores.size != len(cells):
        scores = -np.arange(len(cells), dtype=np.float64)  # keep the file's order
    return Segments((spx - 1).astype(np.int32), member, scores)


def mcg_from_dir(image: np.ndarray, mcg_dir: str | Path, image_id: str, max_candidates: int | None = None
                 ) -> Segments:
    """The official MCG candidates of ``image_id`` from ``<mcg_dir>/<image_id>.mat``."""
    path = Path(mcg_dir) / f"{image_id}.mat"
    seg = read_mcg_mat(path)
    if image is not None and seg.shape != tuple(np.asarray(image).shape[:2]):
        raise DataError(f"MCG file {path}: superpixels are {seg.shape[1]}x{seg.shape[0]} but the image is "
                        f"{image.shape[1]}x{image.shape[0]}")
    return dedup_rank(seg, max_candidates)


# --- (b) ours ---------------------------------------------------------------------------------------

def level_partitions(n: int, merges: np.ndarray, levels) -> list[np.ndarray]:
    """Hierarchy node ids alive when the hierarchy has R regions, for each R in ``levels``."""
    parent = np.full(n + len(merges), -1, dtype=np.int64)
    if len(merges):
        parent[merges[:, 0]] = parent[merges[:, 1]] = n + np.arange(len(merges))
    ids = np.arange(len(parent))
    out = []
    for r in sorted(set(int(x) for x in levels)):
        cut = n + n - r  # after n - r merges
        if r < 2 or cut <= n or cut > len(parent):
            continue
        out.append(np.flatnonzero((ids < cut) & ((parent >= cut) | (parent == -1))))
    return out


def combinations(member: np.ndarray, n: int, merges: np.ndarray, edges: np.ndarray, levels,
                 triples: bool = True) -> np.ndarray:
    """Unions of 2 and 3 connected adjacent regions of the hierarchy cut at each level; (K, n) bool."""
    out = []
    for alive in level_partitions(n, merges, levels):
        sub = member[alive]
        assign = np.empty(n, dtype=np.int64)
        r_idx, i_idx = np.nonzero(sub)
        assign[i_idx] = r_idx
        a, b = assign[edges[:, 0]], assign[edges[:, 1]]
        keep = a != b
        pairs = np.unique(np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], 1), axis=0)
        if not len(pairs):
            continue
        out.append(sub[pairs[:, 0]] | sub[pairs[:, 1]])
        if triples:
            # Paths u - c - v through a centre region c: every pair of c's neighbours.
            both = np.concatenate([pairs, pairs[:, ::-1]])
            both = both[np.argsort(both[:, 0], kind="stable")]
            starts = np.searchsorted(both[:, 0], np.arange(len(alive) + 1))
            tri = [(c, both[i, 1], both[j, 1]) for c in range(len(alive))
                   for i in range(starts[c], starts[c + 1]) for j in range(i + 1, starts[c + 1])]
            if tri:
                t = np.asarray(tri)
                out.append(sub[t[:, 0]] | sub[t[:, 1]] | sub[t[:, 2]])
    return np.concatenate(out) if out else np.zeros((0, n), dtype=bool)


def boundary_contrast(labels: np.ndarray, member: np.ndarray, strength: np.ndarray, chunk: int = 1024
                      ) -> np.ndarray:
    """Mean boundary strength along each candidate's outline (the region borders it cuts), (M,)."""
    edges, length, total = adjacency(labels, strength)
    m, n = member.shape
    if not len(edges):
        return np.zeros(m)
    e = len(edges)
    # Signed incidence of region borders: |D x| is 1 exactly on the borders candidate x cuts.
    d = sp.csr_matrix((np.r_[np.ones(e), -np.ones(e)], (np.r_[np.arange(e), np.arange(e)],
                                                        np.r_[edges[:, 0], edges[:, 1]])), shape=(e, n))
    out = np.zeros(m)
    for s in range(0, m, chunk):
        cut = np.abs(d @ member[s:s + chunk].T.astype(np.float32))  # (E, chunk)
        out[s:s + chunk] = (total @ cut) / np.maximum(length @ cut, 1)
    return out


def mcg_ours_segments(image: np.ndarray, scales=(1.0, 0.5), partitions=(("lab", 50), ("hsv", 100), ("rgi", 50)),
                      boundary_weight: float = 1.0, levels=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
                      triples: bool = True, max_side: int | None = 500, max_candidates: int | None = -1,
                      min_area: int = 1) -> Segments:
    """Our MCG-style candidates as Segments (see the module docstring). Deterministic."""
    image = check_image(image, "mcg-ours")
    h, w = image.shape[:2]
    base = working_scale((h, w), max_side)
    parts = []
    for s in scales:
        f = base * float(s)
        small = image if f == 1.0 else cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))),
                                                  interpolation=cv2.INTER_AREA)
        strength = boundary_map(small)
        for space, k in partitions:
            cimg = to_colour_space(small, space)
            labels = felzenszwalb(cimg, k * float(s))  # k scales with the image, so regions do too
            n = int(labels.max()) + 1
            member, _, merges = group(labels, cimg, texture_bins(cimg), "CTSF", strength, boundary_weight)
            edges, _, _ = adjacency(labels)
            combo = combinations(member, n, merges, edges, levels, triples)
            allm = np.concatenate([member, combo])
            # Within a size stratum: hierarchy regions first, then combinations; each by contrast
            # (contrast is in [0, 1], so the +2 orders the two groups). Measured on real photos, this
            # beat contrast alone and random order.
            score = boundary_contrast(labels, allm, strength)
            score[:len(member)] += 2.0
            parts.append((resize_labels(labels, (h, w)), allm, score))
    return pool(parts, candidate_budget(max_candidates, (h, w), 4000, 500), min_area, stratify=True)


def mcg_ours(image: np.ndarray, **params) -> np.ndarray:
    """Our MCG-style candidate masks, bool (M, H, W)."""
    return mcg_ours_segments(image, **params).masks()
