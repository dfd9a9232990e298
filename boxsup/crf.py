"""Fully connected CRF post-processing (Krähenbühl & Koltun 2011) as used by DeepLab and BoxSup.

The unary is -log of the network's softmax probabilities; the pairwise terms are DeepLab's VOC
defaults: a Gaussian smoothness kernel (w=3, sigma_xy=3) and an appearance kernel (w=4,
sigma_xy=121, sigma_rgb=5). pydensecrf is an optional dependency (the ``crf`` extra, PyPI package
``pydensecrf2``) imported lazily, so everything else in boxsup works without it; notebooks call
``require_crf()`` first so that a missing install fails before any compute.

DeepLab tuned the CRF on a held-out slice of val (BoxSup held out 100 val images);
``search_crf_params`` repeats that grid search and caches its result as JSON.

``dense_crf_torch`` is the same mean field in plain torch with exact Gaussian kernels (no
pydensecrf needed): O(N^2) in the pixels, meant for a GPU or as a reference (``benchmarks/crf.py``
measures its speed and its agreement with pydensecrf).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .atomic import write_json
from .metrics import ConfusionMatrix

INSTALL_HINT = "dense CRF needs pydensecrf: run `pip install -e .[crf]` (PyPI package pydensecrf2)"

# DeepLab's coarse search ranges (w1 = bi_w, sigma_alpha = bi_xy_std, sigma_beta = bi_rgb_std);
# the smoothness kernel stays at w2 = 3, sigma_gamma = 3 as in their paper.
DEFAULT_GRID: dict[str, tuple] = {"bi_w": (3, 4, 5), "bi_xy_std": (50, 80, 121), "bi_rgb_std": (3, 5, 8)}
REFERENCE_SIDE = 500  # DeepLab's values are for VOC images, whose longer side is 500 px


def scaled_grid(side: int) -> dict[str, tuple]:
    """The search grid of the "+CRF" protocol for images of longer side ``side``: both xy kernels at
    DeepLab's values and scaled by side / 500 (a 3-px smoothness kernel on a 112-px image erases
    shapes a few pixels thick), each with the appearance weight at DeepLab's 4 and at half of it.
    Eight points: small enough to search for every trained network on a CPU. DeepLab's defaults
    are one of the points, so the tuned setting never scores below them on the hold-out images."""
    s = side / REFERENCE_SIDE

    def vals(*v: float) -> tuple:
        return tuple(sorted({round(float(x), 2) for x in v}))

    return {"pos_xy_std": vals(3, 3 * s), "bi_xy_std": vals(121, 121 * s), "bi_w": (2, 4)}


def _import_dcrf():
    try:
        import pydensecrf.densecrf as dcrf  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return dcrf


def require_crf() -> None:
    """Fail fast (e.g. at the top of a notebook) when pydensecrf is not installed."""
    _import_dcrf()


@dataclass(frozen=True)
class CRFParams:
    """Dense CRF settings; the defaults are DeepLab's for PASCAL VOC."""

    iterations: int = 10
    pos_w: float = 3
    pos_xy_std: float = 3
    bi_w: float = 4
    bi_xy_std: float = 121
    bi_rgb_std: float = 5

    def __post_init__(self):
        if int(self.iterations) < 1:
            raise ValueError(f"CRFParams.iterations={self.iterations}; must be >= 1")
        for f in ("pos_w", "bi_w"):
            if getattr(self, f) < 0:
                raise ValueError(f"CRFParams.{f}={getattr(self, f)}; must be >= 0")
        for f in ("pos_xy_std", "bi_xy_std", "bi_rgb_std"):
            if getattr(self, f) <= 0:
                raise ValueError(f"CRFParams.{f}={getattr(self, f)}; must be > 0")

    def as_dict(self) -> dict:
        return asdict(self)

    def short_hash(self) -> str:
        """A short stable name of these settings (cache file names)."""
        return hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:8]

    @classmethod
    def from_dict(cls, d: Mapping) -> "CRFParams":
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown CRF parameter(s) {sorted(bad)}; allowed: {sorted(known)}")
        return cls(**dict(d))


def dense_crf(image: np.ndarray, probs: np.ndarray, iterations: int = 10, pos_w: float = 3,
              pos_xy_std: float = 3, bi_w: float = 4, bi_xy_std: float = 121,
              bi_rgb_std: float = 5) -> np.ndarray:
    """Mean-field inference; ``image`` HxWx3 uint8 RGB, ``probs`` (C,H,W) -> refined (C,H,W) float32."""
    dcrf = _import_dcrf()
    image = np.asarray(image)
    probs = np.asarray(probs, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
    if probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs must be (C,H,W) with H,W={image.shape[:2]}, got {probs.shape}")
    c, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, c)
    # clip so that a confident network (p == 0 somewhere) does not give an infinite unary
    unary = -np.log(np.clip(probs, 1e-8, 1.0)).reshape(c, -1)
    d.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    d.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
    # pydensecrf's Cython memoryview rejects read-only buffers (e.g. np.asarray of a PIL image)
    rgb = np.array(image, order="C", copy=True) if not image.flags.writeable else np.ascontiguousarray(image)
    d.addPairwiseBilateral(sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=rgb, compat=bi_w)
    q = d.inference(int(iterations))
    return np.asarray(q, dtype=np.float32).reshape(c, h, w)


def crf_probs(image: np.ndarray, probs: np.ndarray, params: CRFParams | None = None) -> np.ndarray:
    return dense_crf(image, probs, **(params or CRFParams()).as_dict())


def crf_labels(image: np.ndarray, probs: np.ndarray, params: CRFParams | None = None) -> np.ndarray:
    """Arg-max label map (HxW uint8 when C <= 256) after the CRF."""
    q = crf_probs(image, probs, params)
    return q.argmax(0).astype(np.uint8 if q.shape[0] <= 256 else np.int64)


def _crf_job(args: tuple) -> np.ndarray:
    image, probs, params, labels = args
    return crf_labels(image, probs, params) if labels else crf_probs(image, probs, params)


def dense_crf_many(images: Sequence[np.ndarray], probs_list: Sequence[np.ndarray],
                   params: CRFParams | None = None, workers: int = 1, *, labels: bool = False,
                   progress: bool = True, desc: str = "dense CRF",
                   pool: Executor | None = None) -> list[np.ndarray]:
    """CRF over many images in a process pool (pydensecrf holds the GIL, so threads do not help).

    Returns refined probabilities, or label maps with ``labels=True`` (which also keeps the
    inter-process traffic C times smaller). Order follows the inputs. Pass ``pool`` to reuse one
    executor across many calls (``evaluate`` does, chunk by chunk).
    """
    if len(images) != len(probs_list):
        raise ValueError(f"{len(images)} images but {len(probs_list)} probability maps")
    if workers < 1:
        raise ValueError(f"workers={workers}; must be >= 1")
    require_crf()
    params = params or CRFParams()
    jobs = [(im, p, params, labels) for im, p in zip(images, probs_list)]
    show = progress and len(jobs) > 1
    if pool is None and (workers == 1 or len(jobs) <= 1):
        return [_crf_job(j) for j in tqdm(jobs, desc=desc, disable=not show, leave=False)]
    chunksize = max(1, len(jobs) // (4 * workers))
    if pool is not None:
        return list(tqdm(pool.map(_crf_job, jobs, chunksize=chunksize), total=len(jobs), desc=desc,
                         disable=not show, leave=False))
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as own:
        it = own.map(_crf_job, jobs, chunksize=chunksize)
        return list(tqdm(it, total=len(jobs), desc=desc, disable=not show, leave=False))


def _grid_job(args: tuple) -> list[np.ndarray]:
    image, probs, points = args
    return [crf_labels(image, probs, pt) for pt in points]


def grid_labels(images: Sequence[np.ndarray], probs: Sequence[np.ndarray], points: Sequence[CRFParams],
                workers: int = 1, progress: bool = True) -> list[list[np.ndarray]]:
    """The CRF label maps of every image under every setting: ``[point][image]``. One job per image
    runs all the points: one pool, one transfer per image, and no wait at the end of each point for
    its slowest chunk (``benchmarks/run_stages.py`` times it against one pass per point)."""
    jobs = [(im, p, tuple(points)) for im, p in zip(images, probs)]
    per_image = []
    pool = ProcessPoolExecutor(min(workers, len(jobs))) if workers > 1 and len(jobs) > 1 else None
    try:
        with tqdm(total=len(jobs), desc="CRF grid search", disable=not progress, leave=False) as bar:
            for labs in (pool.map(_grid_job, jobs) if pool is not None else map(_grid_job, jobs)):
                per_image.append(labs)
                bar.update()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return [[labs[i] for labs in per_image] for i in range(len(points))]


def holdout_indices(n: int, k: int = 100, seed: int = 0) -> np.ndarray:
    """A fixed random slice of ``k`` of ``n`` images for CRF tuning (sorted; the paper used 100)."""
    k = min(k, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _grid_points(grid: Mapping[str, Iterable], base: CRFParams) -> list[CRFParams]:
    names = {f.name for f in fields(CRFParams)}
    bad = set(grid) - names
    if bad:
        raise ValueError(f"CRF grid has unknown parameter(s) {sorted(bad)}; allowed: {sorted(names)}")
    keys = list(grid)
    values = [tuple(grid[k]) for k in keys]
    if any(len(v) == 0 for v in values):
        raise ValueError(f"CRF grid {dict(grid)} has an empty list of values")
    return [replace(base, **dict(zip(keys, combo))) for combo in itertools.product(*values)]


def _fingerprint(images, probs, targets, num_classes: int, points: list[CRFParams]) -> str:
    """Cheap identity of the search inputs: full targets, strided samples of images and probs."""
    h = hashlib.sha1()
    h.update(json.dumps([num_classes, [p.as_dict() for p in points]], sort_keys=True).encode())
    for im, p, t in zip(images, probs, targets):
        h.update(str((im.shape, np.shape(p))).encode())
        h.update(np.ascontiguousarray(t).tobytes())
        h.update(np.ascontiguousarray(im[::7, ::7]).tobytes())
        h.update(np.ascontiguousarray(np.asarray(p, dtype=np.float32)[:, ::7, ::7]).round(3).tobytes())
    return h.hexdigest()


def _miou(labels: Iterable[np.ndarray], targets: Iterable[np.ndarray], num_classes: int) -> float:
    cm = ConfusionMatrix(num_classes)
    for lab, t in zip(labels, targets):
        cm.update(t, lab)
    return cm.mean_iou


def search_crf_params(images: Sequence[np.ndarray], probs: Sequence[np.ndarray],
                      targets: Sequence[np.ndarray], num_classes: int,
                      grid: Mapping[str, Iterable] | None = None,
                      cache_path: str | os.PathLike | None = None, *, base: CRFParams | None = None,
                      workers: int = 1, progress: bool = True) -> dict:
    """Grid search of CRF parameters by mean IoU on a held-out slice (e.g. ``holdout_indices``).

    Returns ``{"best": CRFParams, "best_mIoU", "no_crf_mIoU", "results": [records], "cached"}``.
    With ``cache_path`` the result is stored as JSON (atomically) and reused when the inputs and
    the grid are the same; a different grid or data silently recomputes and overwrites it.
    """
    if not (len(images) == len(probs) == len(targets)) or not len(images):
        raise ValueError(f"need equal, non-zero numbers of images ({len(images)}), probs ({len(probs)}) "
                         f"and targets ({len(targets)})")
    points = _grid_points(grid if grid is not None else DEFAULT_GRID, base or CRFParams())
    key = _fingerprint(images, probs, targets, num_classes, points)
    cache = Path(cache_path) if cache_path is not None else None
    if cache is not None and cache.is_file():
        try:
            data = json.loads(cache.read_text())
        except json.JSONDecodeError:
            data = {}
        if data.get("key") == key:
            return {"best": CRFParams.from_dict(data["best"]), "best_mIoU": data["best_mIoU"],
                    "no_crf_mIoU": data["no_crf_mIoU"], "results": data["results"], "cached": True}
    require_crf()
    no_crf = _miou((np.asarray(p).argmax(0) for p in probs), targets, num_classes)
    labels = grid_labels(images, probs, points, workers, progress)
    results = [{**pt.as_dict(), "mIoU": _miou(labs, targets, num_classes)} for pt, labs in zip(points, labels)]
    scores = np.array([r["mIoU"] for r in results], dtype=np.float64)
    tied = np.flatnonzero(scores == np.nanmax(scores))
    # on a tie keep the base setting (DeepLab's defaults): a change must earn its place
    best_i = int(next((i for i in tied if points[i] == (base or CRFParams())), tied[0]))
    best = points[best_i]
    out = {"key": key, "num_images": len(images), "best": best.as_dict(),
           "best_mIoU": results[best_i]["mIoU"], "no_crf_mIoU": no_crf, "results": results}
    if cache is not None:
        write_json(cache, out)
    return {"best": best, "best_mIoU": out["best_mIoU"], "no_crf_mIoU": no_crf, "results": results,
            "cached": False}


# --- a pure-torch mean field (exact Gaussian kernels), for GPUs and as a reference -------------

def _gauss_filter(v, std: float):
    """Separable truncated (4 sigma) Gaussian blur of (C,H,W), zero outside the image, self included."""
    r = int(np.ceil(4 * std))
    x = torch.arange(-r, r + 1, dtype=v.dtype, device=v.device)
    k = torch.exp(-x ** 2 / (2 * std ** 2))
    c = v.shape[0]
    v = F.conv2d(F.pad(v[None], (r, r, 0, 0)), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    v = F.conv2d(F.pad(v, (0, 0, r, r)), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return v[0]


def dense_crf_torch(image: np.ndarray, probs: np.ndarray, params: CRFParams | None = None, *,
                    device: str = "cpu", source_stride: int = 1, chunk: int = 4096,
                    cache_bytes: int | None = None) -> np.ndarray:
    """Mean field like ``dense_crf`` but with exact kernels instead of the permutohedral lattice.

    Same energy as pydensecrf (Potts, both kernels symmetrically normalised, self-pairs included);
    on toy images the labels agree with pydensecrf on >99% of pixels. The bilateral sum over all
    pixel pairs is O(N^2): use it on a GPU, or with ``source_stride`` s > 1, which sums over every
    s-th pixel in each direction only (a quadrature: sigma_xy = 121 px is much wider than s).
    The bilateral kernel matrix is kept in memory when it fits ``cache_bytes`` (default: 1 GiB on
    CPU, half the free GPU memory on CUDA), else recomputed in row chunks every iteration.
    """
    p = params or CRFParams()
    if source_stride < 1:
        raise ValueError(f"source_stride={source_stride}; must be >= 1")
    dev = torch.device(device)
    c, h, w = probs.shape
    if image.shape != (h, w, 3):
        raise ValueError(f"image is {image.shape} but probs are {probs.shape}; need HxWx3 and (C,H,W)")
    u = -torch.log(torch.as_tensor(np.asarray(probs, np.float32), device=dev).clamp(1e-8, 1)).reshape(c, -1)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=dev),
                            torch.arange(w, dtype=torch.float32, device=dev), indexing="ij")
    rgb = torch.as_tensor(np.array(image, np.float32), device=dev)
    f = torch.cat([torch.stack([xx, yy], -1) / p.bi_xy_std, rgb / p.bi_rgb_std], -1).reshape(-1, 5)
    f = f - f.mean(0)  # smaller magnitudes: less cancellation in |a|^2 + |b|^2 - 2ab
    keep = ((torch.arange(h, device=dev) % source_stride == 0)[:, None]
            & (torch.arange(w, device=dev) % source_stride == 0)[None]).reshape(-1)
    fs = f[keep]
    n2, n2s = (f * f).sum(1, keepdim=True), (fs * fs).sum(1, keepdim=True)
    a = torch.cat([f, n2, torch.ones_like(n2)], 1)       # a_i . b_j = |f_i - f_j|^2
    b = torch.cat([-2 * fs, torch.ones_like(n2s), n2s], 1)
    weight = float(source_stride ** 2)                   # each source stands for s x s pixels
    if cache_bytes is None:
        cache_bytes = torch.cuda.mem_get_info(dev)[0] // 2 if dev.type == "cuda" else 2 ** 30
    kmat = None
    if a.shape[0] * b.shape[0] * 4 <= cache_bytes:
        kmat = torch.exp(-0.5 * (a @ b.T).clamp_min(0))

    def bilateral(v):  # (C', N) -> (C', N): sum_j k(f_i, f_j) v_j over the sources
        vs = v[:, keep] * weight
        if kmat is not None:
            return vs @ kmat.T
        out = torch.empty_like(v)
        for i in range(0, a.shape[0], chunk):
            out[:, i:i + chunk] = vs @ torch.exp(-0.5 * (a[i:i + chunk] @ b.T).clamp_min(0)).T
        return out

    # k(f_i, f_i) = 1, so the exact normaliser is >= 1; the clamp keeps subsampled sums finite
    ng = _gauss_filter(torch.ones(1, h, w, device=dev), p.pos_xy_std).reshape(1, -1).clamp_min(1).rsqrt()
    nb = bilateral(torch.ones(1, h * w, device=dev)).clamp_min(1).rsqrt()
    q = torch.softmax(-u, 0)
    for _ in range(int(p.iterations)):
        mg = ng * _gauss_filter((q * ng).reshape(c, h, w), p.pos_xy_std).reshape(c, -1)
        mb = nb * bilateral(q * nb)
        q = torch.softmax(-u + p.pos_w * mg + p.bi_w * mb, 0)
    return q.reshape(c, h, w).cpu().numpy()
