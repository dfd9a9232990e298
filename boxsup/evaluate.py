"""The paper's evaluation protocols on top of ``predict`` and ``crf``.

- VOC 2012 val: one confusion matrix over the whole split (VOC devkit IoU), 21 classes with
  background, 255 ignored; ``per_class_table`` lays several methods out in VOC class order.
- VOC 2012 test: the server takes ``results/VOC2012/Segmentation/comp6_test_cls/<id>.png`` palette
  PNGs in a tarball (comp6 = trained on data beyond VOC, as BoxSup is); ``write_voc_submission``.
- PASCAL-Context (Table 5): the same confusion matrix over 60 classes, i.e. the 59 most frequent
  classes plus background, background counted as a class in the mean (the "59 + background"
  convention of the paper and of FCN); pixels of the remaining classes are 255 and ignored.
  ``evaluate`` needs nothing special for it: num_classes = len(dataset.classes) = 60.
- Fig. 4: mIoU inside / outside bands around ground-truth boundaries (``trimap_table``).
"""
from __future__ import annotations

import argparse
import json
import os
import tarfile
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .crf import CRFParams, dense_crf_many, require_crf
from .data.sample import VOC_CLASSES, write_palette_png
from .metrics import ConfusionMatrix, Trimap
from .predict import check_scales, predict_dataset, resolve_device

CONTEXT_NUM_CLASSES = 60
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
    tmp = out / f".results.{os.getpid()}.tgz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(out / "results", arcname="results")
    os.replace(tmp, tgz)
    return tgz


def trimap_table(model, dataset, widths: Sequence[int], method_name: str, *, num_classes: int | None = None,
                 scales: Sequence[float] = (1.0,), flip: bool = False, crf: CRFParams | None = None,
                 device: str = "auto", max_images: int | None = None, workers: int = 1,
                 progress: bool = True) -> pd.DataFrame:
    """Fig. 4: tidy rows (band_width, region in {boundary, interior}, method, mIoU) for one model."""
    n = num_classes if num_classes is not None else len(dataset.classes)
    r = evaluate(model, dataset, n, scales=scales, flip=flip, crf=crf, device=device, trimap_widths=widths,
                 max_images=max_images, workers=workers, progress=progress)
    df = pd.DataFrame(r["trimap"], columns=["band_width", "region", "method", "mIoU"])
    df["method"] = method_name
    return df


# --- CLI glue: `boxsup evaluate RUN_DIR ...` -------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished run folder (config.json + last.pth)")
    parser.add_argument("--split", default="val", help="dataset split (default: val)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="test scales whose score maps are averaged (BoxSup+: 0.8 1 1.2)")
    parser.add_argument("--flip", action="store_true", help="also average the horizontally flipped image")
    parser.add_argument("--crf", action="store_true", help="dense CRF post-processing (needs pydensecrf)")
    parser.add_argument("--crf-params", default=None,
                        help="JSON with CRF parameters, or a search_crf_params cache (its 'best' is used)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--workers", type=int, default=1, help="processes for the CRF (default: 1)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--trimap", type=int, nargs="*", default=None, metavar="WIDTH",
                        help="also report trimap band mIoU for these widths (Fig. 4)")
    parser.add_argument("--submission", default=None, metavar="OUT",
                        help="write the VOC test-server PNGs and results.tgz under OUT instead of scoring")


def _load_crf_params(path: str | None) -> CRFParams:
    if path is None:
        return CRFParams()
    data = json.loads(Path(path).read_text())
    return CRFParams.from_dict(data["best"] if "best" in data else data)


def _json_safe(obj):
    """NaN (a class absent from a trimap band, say) -> null, so the file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _tag(args) -> str:
    parts = ["s" + "-".join(f"{s:g}" for s in args.scales)]
    if args.flip:
        parts.append("flip")
    if args.crf:
        parts.append("crf")
    if args.max_images:
        parts.append(f"n{args.max_images}")
    return "_".join(parts)


def run(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .train import load_model  # written alongside; imported lazily to keep this module light

    run_dir = Path(args.run_dir)
    crf = _load_crf_params(args.crf_params) if args.crf else None
    if crf is not None:
        require_crf()
    model, config = load_model(run_dir)
    dataset = load_dataset(config.dataset, args.split, config.data_root)
    common = dict(scales=args.scales, flip=args.flip, crf=crf, device=args.device,
                  max_images=args.max_images, workers=args.workers)
    if args.submission:
        tgz = write_voc_submission(model, dataset, args.submission, batch_size=args.batch_size, **common)
        print(f"wrote {tgz}")
        return 0
    res = evaluate(model, dataset, len(dataset.classes), trimap_widths=args.trimap or None,
                   batch_size=args.batch_size, **common)
    res.update({"split": args.split, "run_dir": str(run_dir)})
    path = run_dir / f"eval-{args.split}-{_tag(args)}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_json_safe(res), indent=1))
    os.replace(tmp, path)
    print(f"{args.split}: mIoU {100 * res['mIoU']:.2f}  pixel acc {100 * res['pixel_acc']:.2f}  "
          f"({res['num_images']} images, {res['seconds']:.1f} s) -> {path}")
    return 0
