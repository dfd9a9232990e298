"""The paper's evaluation protocols on top of ``predict`` and ``crf``.

- VOC 2012 val: one confusion matrix over the whole split (VOC devkit IoU), 21 classes with
  background, 255 ignored; ``per_class_table`` lays several methods out in VOC class order.
- VOC 2012 test: the server takes ``results/VOC2012/Segmentation/comp6_test_cls/<id>.png`` palette
  PNGs in a tarball (comp6 = trained on data beyond VOC, as BoxSup is); ``write_voc_submission``.
- PASCAL-Context (Table 5): the same confusion matrix over 60 classes, i.e. the 59 most frequent
  classes plus background, background counted as a class in the mean (the "59 + background"
  convention of the paper and of FCN); pixels of the remaining classes are 255 and ignored.
  ``evaluate`` needs nothing special for it: num_classes = len(dataset.classes) = 60.
- Fig. 4: mIoU inside / outside bands around ground-truth boundaries (``trimap_widths``).

``evaluate_run`` scores a run folder under a protocol and caches the result in it (``runs.eval_tag``);
the CLI and the results layer (paper.py) both go through it.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import runs
from .atomic import replacing
from .crf import CRFParams, crf_labels, dense_crf_many, holdout_indices, require_crf, scaled_grid, search_crf_params
from .data import load_dataset
from .data.sample import VOC_CLASSES, write_palette_png
from .metrics import ConfusionMatrix, Trimap
from .predict import check_scales, predict_dataset, predict_probs, resolve_device

SUBMISSION_DIR = "results/VOC2012/Segmentation/{comp}_test_cls"


def _labels_stream(model, dataset, *, scales, flip, crf: CRFParams | None, device, max_images,
                   workers: int, batch_size: int, save_dir=None, progress: bool = True, desc: str = "evaluate"):
    """Yield ``(sample, label map)``; with a CRF, images are refined in chunks across ``workers``."""
    if crf is not None:
        require_crf()  # before any network time is spent
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    stream = predict_dataset(model, dataset, scales=scales, flip=flip, device=device, batch_size=batch_size,
                             max_images=max_images, save_dir=save_dir, progress=False)
    chunk = max(1, 4 * workers)
    pending: list = []
    # one pool for the whole split: forking per chunk would cost a start-up every few images
    pool = ProcessPoolExecutor(workers) if crf is not None and workers > 1 else None

    def drain():
        labs = dense_crf_many([s.image for s, _ in pending], [p for _, p in pending], crf, workers,
                              labels=True, progress=False, pool=pool)
        out = list(zip((s for s, _ in pending), labs))
        pending.clear()
        return out

    bar = tqdm(total=n, desc=desc + (" + CRF" if crf else ""), disable=not progress)
    try:
        for sample, probs in stream:
            if crf is None:
                bar.update(1)
                yield sample, probs.argmax(0).astype(np.uint8)
                continue
            pending.append((sample, probs))
            if len(pending) >= chunk:
                for item in drain():
                    bar.update(1)
                    yield item
        if pending:
            for item in drain():
                bar.update(1)
                yield item
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def evaluate(model, dataset, num_classes: int, *, scales: Sequence[float] = (1.0,), flip: bool = False,
             crf: CRFParams | None = None, device: str = "auto", trimap_widths: Sequence[int] | None = None,
             class_names: Sequence[str] | None = None, max_images: int | None = None, workers: int = 1,
             batch_size: int = 8, save_dir: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """mIoU, pixel accuracy and per-class IoU of ``model`` on a split with masks.

    Returns ``{"mIoU", "pixel_acc", "mean_acc", "per_class_iou": {class: IoU|None}, "num_images",
    "seconds", "scales", "flip", "crf", "device"}`` plus ``"trimap"`` (tidy records: band_width,
    region, method, mIoU) when ``trimap_widths`` is given. IoUs are fractions in [0, 1].
    """
    scales = check_scales(scales)
    names = tuple(class_names or getattr(dataset, "classes", None) or [str(i) for i in range(num_classes)])
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for num_classes={num_classes}")
    if getattr(dataset, "masks", None) == "none":  # fail before any network time is spent
        raise ValueError("evaluate() needs a split with ground-truth masks, but this dataset was opened with "
                         "masks='none' (for VOC test use write_voc_submission)")
    cm = ConfusionMatrix(num_classes)
    tri = Trimap(num_classes, tuple(trimap_widths)) if trimap_widths else None
    dev = resolve_device(device)
    t0 = time.perf_counter()
    count = 0
    for sample, labels in _labels_stream(model, dataset, scales=scales, flip=flip, crf=crf, device=dev,
                                         max_images=max_images, workers=workers, batch_size=batch_size,
                                         save_dir=save_dir, progress=progress):
        if sample.mask is None:
            raise ValueError(f"image {sample.image_id} has no ground-truth mask; evaluate() needs a split "
                             "with masks (for VOC test use write_voc_submission)")
        cm.update(sample.mask, labels)
        if tri is not None:
            tri.update(sample.mask, labels)
        count += 1
    out = cm.summary(names)
    out.update({"num_images": count, "seconds": time.perf_counter() - t0, "scales": list(scales),
                "flip": bool(flip), "crf": asdict(crf) if crf is not None else None, "device": str(dev)})
    if tri is not None:
        out["trimap"] = tri.table(method="").to_dict("records")
    return out


def per_class_table(results: dict[str, dict]) -> pd.DataFrame:
    """One row per method, per-class IoU (%) in VOC class order then mIoU (%), as the paper's tables.

    ``results`` maps a method name to an ``evaluate`` result (or anything with ``per_class_iou``
    and ``mIoU``). Classes outside VOC's list (toy, Context) keep the first result's order.
    """
    if not results:
        raise ValueError("per_class_table needs at least one result")
    first = next(iter(results.values()))["per_class_iou"]
    cols = [c for c in VOC_CLASSES if c in first] if set(first) <= set(VOC_CLASSES) else list(first)
    rows = {}
    for method, r in results.items():
        iou = r["per_class_iou"]
        rows[method] = {c: (np.nan if iou.get(c) is None else 100 * iou[c]) for c in cols}
        rows[method]["mIoU"] = 100 * r["mIoU"]
    return pd.DataFrame.from_dict(rows, orient="index")[cols + ["mIoU"]].round(1)


def write_voc_submission(model, dataset, out_dir: str | os.PathLike, *, scales: Sequence[float] = (1.0,),
                         flip: bool = False, crf: CRFParams | None = None, device: str = "auto",
                         max_images: int | None = None, workers: int = 1, batch_size: int = 8,
                         comp: str = "comp6", progress: bool = True) -> Path:
    """Predict a split (no masks needed) and pack the evaluation-server tarball; returns its path.

    ``out_dir/results/VOC2012/Segmentation/<comp>_test_cls/<id>.png`` (VOC palette PNGs) and
    ``out_dir/results.tgz`` holding the ``results/`` tree.
    """
    if comp not in ("comp5", "comp6"):
        raise ValueError(f"comp={comp!r}; allowed: 'comp5' (VOC data only), 'comp6' (extra data)")
    out = Path(out_dir)
    png_dir = out / SUBMISSION_DIR.format(comp=comp)
    png_dir.mkdir(parents=True, exist_ok=True)
    for sample, labels in _labels_stream(model, dataset, scales=check_scales(scales), flip=flip, crf=crf,
                                         device=resolve_device(device), max_images=max_images,
                                         workers=workers, batch_size=batch_size, progress=progress,
                                         desc="submission"):
        write_palette_png(png_dir / f"{sample.image_id}.png", labels)
    tgz = out / "results.tgz"
    with replacing(tgz) as tmp, tarfile.open(tmp, "w:gz") as tar:
        tar.add(out / "results", arcname="results")
    return tgz


# --- run folders -----------------------------------------------------------------------------------

def crf_tag(crf: CRFParams | None) -> str | None:
    """How a CRF setting is named in cached evaluations: "crf" for the defaults."""
    if crf is None:
        return None
    return "crf" if crf == CRFParams() else "crf-" + crf.short_hash()


def evaluate_run(run_dir: str | os.PathLike, split: str | None = None, scales: Sequence[float] = (1.0,), *,
                 flip: bool = False, crf: CRFParams | None = None, trimap_widths: Sequence[int] | None = None,
                 max_images: int | None = None, device: str | None = None, workers: int = 1,
                 batch_size: int = 8, exclude: Sequence[int] | None = None, progress: bool = True) -> dict:
    """``evaluate`` of a finished run on a split (default: its eval split), cached in the run folder
    as ``eval-<split>-<tag>.json`` and recomputed only when the checkpoint changes. ``exclude``:
    indices of the split left out (the CRF hold-out when it was taken from this split)."""
    cfg = runs.read_config(run_dir)
    split = split or cfg.eval_split
    scales = check_scales(scales)
    widths = tuple(int(w) for w in trimap_widths) if trimap_widths else None
    tag = runs.eval_tag(scales, flip, crf_tag(crf), max_images, widths)
    skip = sorted({int(i) for i in exclude}) if exclude else []
    if skip:
        tag += f"_minus{len(skip)}-{hashlib.sha1(str(skip).encode()).hexdigest()[:6]}"

    def compute() -> dict:
        if crf is not None:
            require_crf()  # before any network time is spent
        model, _ = runs.load_model(run_dir)
        ds = load_dataset(cfg.dataset, split, cfg.data_root)
        if skip:
            ds = _Rows(ds, [i for i in range(len(ds)) if i not in set(skip)])
        res = evaluate(model, ds, len(ds.classes), scales=scales, flip=flip, crf=crf, device=device or cfg.device,
                       trimap_widths=widths, class_names=tuple(ds.classes), max_images=max_images,
                       workers=workers, batch_size=batch_size, progress=progress)
        return {**res, "split": split, "run_dir": str(run_dir)}

    return runs.cached_eval(run_dir, split, tag, compute)


def predict_run(run_dir: str | os.PathLike, indices: Sequence[int], crf: CRFParams | None = None,
                split: str | None = None) -> list[np.ndarray]:
    """Predicted label maps of ``dataset[i]``, i in ``indices``, of a finished run on its eval split
    (or ``split``), at the run's eval scales (Fig. 5)."""
    if crf is not None:
        require_crf()
    model, cfg = runs.load_model(run_dir)
    ds = load_dataset(cfg.dataset, split or cfg.eval_split, cfg.data_root)
    out = []
    for i in indices:
        s = ds[i]
        p = predict_probs(model, s.image, cfg.eval_scales, device=cfg.device)
        out.append(crf_labels(s.image, p, crf) if crf is not None else p.argmax(0).astype(np.uint8))
    return out


def submit_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, scales: Sequence[float] = (1.0,), *,
               flip: bool = False, crf: CRFParams | None = None, device: str | None = None,
               split: str = "test", dataset: str | None = None, **kwargs) -> Path:
    """The VOC evaluation server's tarball of a finished run's predictions on a split (by default
    the test split of the run's dataset; Table 4 at paper scale passes ``dataset="voc2012"``)."""
    model, cfg = runs.load_model(run_dir)
    ds = load_dataset(dataset or cfg.dataset, split, cfg.data_root, masks="none")
    return write_voc_submission(model, ds, out_dir, scales=scales, flip=flip, crf=crf, device=device or cfg.device,
                                **kwargs)


class _Rows:
    """Some rows of a dataset, in order (the eval split without the CRF hold-out)."""

    def __init__(self, dataset, rows: Sequence[int]):
        self.dataset, self.rows = dataset, list(rows)
        self.classes = dataset.classes
        self.masks = getattr(dataset, "masks", None)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return self.dataset[self.rows[i]]


# --- the dense CRF protocol: parameters chosen per network on held-out images ----------------------
# DeepLab and BoxSup chose the CRF's parameters by cross-validation on 100 held-out val images. Here
# every trained network gets its own search (``tune_crf``) on images it is never scored on:
# - a dataset with a ``crfval`` split (the toy benchmark writes one) is tuned on it, and scored on
#   its whole eval (or test) split;
# - any other dataset (VOC 2012 at paper scale) is tuned on ``CRF_HOLDOUT`` images of its eval
#   split drawn by ``crf.holdout_indices`` (seed 0), and every score of that split leaves them out
#   (DeepLab scored the full val set, hold-out included; we do not, so the columns stay fair).
CRF_HOLDOUT = 100
HOLDOUT_SPLIT = "crfval"
CRF_WORKERS = min(4, os.cpu_count() or 1)  # the CRF runs per image on the CPU: one process per core
FCN, CRF_DEFAULTS, CRF_TUNED = "FCN", "+CRF (DeepLab defaults)", "+CRF"


def crf_holdout(dataset: str, eval_split: str, data_root=None) -> tuple[str, list[int] | None]:
    """(split, indices) the CRF is tuned on; indices None: the whole split."""
    try:
        load_dataset(dataset, HOLDOUT_SPLIT, data_root)
        return HOLDOUT_SPLIT, None
    except (OSError, ValueError):  # no hold-out split: DeepLab's slice of the eval split
        n = len(load_dataset(dataset, eval_split, data_root))
        return eval_split, holdout_indices(n, min(CRF_HOLDOUT, max(1, n // 4))).tolist()


def holdout_exclusion(cfg, split: str) -> list[int] | None:
    """Indices of ``split`` that are CRF hold-out images and so never scored."""
    hold_split, idx = crf_holdout(cfg.dataset, cfg.eval_split, cfg.data_root)
    return idx if hold_split == split else None


def tune_crf(run_dir: str | os.PathLike, grid: dict | None = None, workers: int = CRF_WORKERS,
             progress: bool = True) -> dict:
    """The CRF search of a finished run on its hold-out images (``crf.search_crf_params`` over
    ``crf.scaled_grid`` of the images' size, or ``grid``), cached per checkpoint in the run folder.
    Returns ``{"best": params dict, "best_mIoU", "defaults_mIoU", "no_crf_mIoU", "results", "split",
    "images", "grid"}`` (mIoUs as fractions, on the hold-out images)."""
    cfg = runs.read_config(run_dir)
    split, idx = crf_holdout(cfg.dataset, cfg.eval_split, cfg.data_root)
    tag = "crfsearch" + (f"-n{len(idx)}" if idx is not None else "")
    if grid is not None:
        tag += "-" + hashlib.sha1(repr(sorted(grid.items())).encode()).hexdigest()[:6]

    def compute() -> dict:
        require_crf()  # before any network time is spent
        model, _ = runs.load_model(run_dir)
        ds = load_dataset(cfg.dataset, split, cfg.data_root)
        samples = [ds[i] for i in (idx if idx is not None else range(len(ds)))]
        dev = resolve_device(cfg.device)
        probs = [predict_probs(model, s.image, (1.0,), device=dev) for s in samples]
        side = int(np.median([max(s.size) for s in samples]))
        g = grid or scaled_grid(side)
        res = search_crf_params([s.image for s in samples], probs, [s.mask for s in samples], len(ds.classes),
                                g, workers=workers, progress=progress)
        defaults = CRFParams().as_dict()
        at_defaults = [r["mIoU"] for r in res["results"] if {k: r[k] for k in defaults} == defaults]
        return {"split": split, "images": len(samples), "grid": {k: list(v) for k, v in g.items()},
                "best": res["best"].as_dict(), "best_mIoU": res["best_mIoU"], "no_crf_mIoU": res["no_crf_mIoU"],
                "defaults_mIoU": at_defaults[0] if at_defaults else None, "results": res["results"]}

    return runs.cached_eval(run_dir, split, tag, compute)


def tuned_crf(run_dir: str | os.PathLike, progress: bool = True) -> CRFParams:
    """The CRF setting chosen for this run's network on its hold-out images."""
    return CRFParams.from_dict(tune_crf(run_dir, progress=progress)["best"])


def crf_scores(run_dir: str | os.PathLike, split: str | None = None, scales: Sequence[float] = (1.0,), *,
               use_crf: bool = True, progress: bool = True) -> dict[str, float]:
    """mIoU (%) of a finished run under the three protocols: the plain network (``FCN``), DeepLab's
    default CRF (``CRF_DEFAULTS``) and the CRF tuned for this network (``CRF_TUNED``); only ``FCN``
    without ``use_crf``. Scored on ``split`` (default: the eval split) minus any hold-out images."""
    cfg = runs.read_config(run_dir)
    split = split or cfg.eval_split
    skip = holdout_exclusion(cfg, split)
    out = {FCN: 100 * evaluate_run(run_dir, split, scales, exclude=skip, progress=progress)["mIoU"]}
    if use_crf:
        out[CRF_DEFAULTS] = 100 * evaluate_run(run_dir, split, scales, crf=CRFParams(), exclude=skip,
                                               workers=CRF_WORKERS, progress=progress)["mIoU"]
        out[CRF_TUNED] = 100 * evaluate_run(run_dir, split, scales, crf=tuned_crf(run_dir, progress), exclude=skip,
                                            workers=CRF_WORKERS, progress=progress)["mIoU"]
    return out
