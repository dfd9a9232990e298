"""Candidate segments: quality and speed of every generator, and of the box-derived masks.

    python benchmarks/proposals.py                 # toy val (40) + real photos (20 each), ~3-5 min
    python benchmarks/proposals.py --toy-n 10 --real-n 5

For Selective Search (ours), mcg-ours and gop-ours: candidates per image, ABO (mean over ground-
truth instances of the best mask IoU of any candidate), recall at mask IoU 0.5 / 0.7, box ABO
(tight boxes of the candidates vs the ground-truth boxes) and seconds per image on ONE core
(generation only; real photos are processed at a 500-pixel longer side, i.e. 500x375 for VOC-sized
images). OpenCV's Selective Search (boxes only) is run alongside as the speed / box-recall reference.
Box-derived masks (rectangle, GrabCut, CRF-in-box): mean IoU with the true instance masks, on toy
train and on the real photos, so one can see whether the toy data is easier than real photos.

Ground truth on ../shared/realdata: weizmann_horse has one box per image and figure/ground masks;
coco128_seg's instance masks are rasterised from its original COCO polygons (labels_yolo_original),
matched to the XML boxes by class and box IoU. coco128 is also reported on instances of at least
32x32 pixels (COCO's medium + large), closer to the object sizes of PASCAL VOC.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the targets are stated
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boxsup.data import VOCLayout, load_dataset  # noqa: E402
from boxsup.data.boxes import box_iou, tight_box  # noqa: E402
from boxsup.experiments import REALDATA  # noqa: E402
from boxsup.proposals.boxmasks import box_masks  # noqa: E402
from boxsup.proposals.generators import generate_segments  # noqa: E402
from boxsup.proposals.quality import ignore_region, instance_masks, mask_iou_matrix, summarize  # noqa: E402
from boxsup.proposals.selective_search import opencv_selective_search_boxes  # noqa: E402

GENERATORS = ("ss", "mcg-ours", "gop-ours")
COCO_TO_VOC = {0: 15, 1: 2, 2: 7, 3: 14, 4: 1, 5: 6, 6: 19, 8: 4, 14: 3, 15: 8, 16: 12, 17: 13, 18: 17, 19: 10,
               39: 5, 56: 9, 57: 18, 58: 16, 60: 11, 62: 20}


def coco_polygon_instances(sample, root: Path) -> np.ndarray:
    """True instance masks of a coco128_seg image from its COCO polygons, aligned with the XML boxes."""
    gt = instance_masks(sample)  # fallback: class pixels inside the box
    f = root / "labels_yolo_original" / f"{sample.image_id}.txt"
    if not f.is_file():
        return gt
    h, w = sample.size
    polys = []
    for line in f.read_text().splitlines():
        v = line.split()
        if len(v) < 7 or int(v[0]) not in COCO_TO_VOC:
            continue
        pts = np.asarray(v[1:], np.float64).reshape(-1, 2) * [w, h]
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        polys.append((COCO_TO_VOC[int(v[0])], m.astype(bool)))
    if not polys:
        return gt
    iou = box_iou(sample.boxes, np.stack([tight_box(m) for _, m in polys]))
    for k, lab in enumerate(sample.labels):
        same = [j for j, (c, _) in enumerate(polys) if c == lab]
        if same:
            j = max(same, key=lambda j: iou[k, j])
            if iou[k, j] > 0.8:
                gt[k] = polys[j][1]
    return gt


def datasets(args) -> list[tuple[str, list]]:
    """(name, [(sample, gt instance masks, ignore or None), ...]) for the proposal benchmark."""
    out = []
    toy = load_dataset("toy", "val", args.data_root)
    out.append(("toy val", [(s, instance_masks(s), ignore_region(s)) for s in (toy[i] for i in range(args.toy_n))]))
    real = Path(args.realdata)
    horse, coco = real / "weizmann_horse", real / "coco128_seg"
    if horse.is_dir():
        ds = VOCLayout(horse, "val", masks="optional")
        out.append(("weizmann_horse val", [(s, instance_masks(s), None) for s in (ds[i] for i in range(args.real_n))]))
    else:
        print(f"skipping weizmann_horse: {horse} not found")
    if coco.is_dir():
        ds = VOCLayout(coco, "list_voc_classes.txt", masks="optional")
        items = [(s, coco_polygon_instances(s, coco), None) for s in (ds[i] for i in range(args.real_n))]
        out.append(("coco128", items))
    else:
        print(f"skipping coco128_seg: {coco} not found")
    return out


def bench_generator(method: str, items: list) -> dict:
    best, best_large, box_best, counts, secs = [], [], [], [], []
    for s, gt, ign in items:
        t0 = time.perf_counter()
        seg = generate_segments(method, s.image, image_id=s.image_id)
        secs.append(time.perf_counter() - t0)
        counts.append(len(seg))
        b = mask_iou_matrix(seg.rles(), gt, ign).max(0) if len(seg) else np.zeros(len(gt))
        best.append(b)
        best_large.append(b[gt.reshape(len(gt), -1).sum(1) >= 1024])
        box_best.append(box_iou(seg.boxes(), s.boxes).max(0) if len(seg) else np.zeros(len(gt)))
    r = summarize(best, counts)
    r["abo_large"] = summarize(best_large, counts)["abo"]
    r["box_abo"] = summarize(box_best, counts)["abo"]
    r["box_recall70"] = summarize(box_best, counts)["recall70"]
    r["sec"] = float(np.mean(secs))
    r["sec_max"] = float(np.max(secs))
    return r


def bench_opencv_ss(items: list) -> dict:
    box_best, counts, secs = [], [], []
    for s, gt, _ in items:
        t0 = time.perf_counter()
        boxes = opencv_selective_search_boxes(s.image)
        secs.append(time.perf_counter() - t0)
        counts.append(len(boxes))
        box_best.append(box_iou(boxes, s.boxes).max(0) if len(boxes) else np.zeros(len(gt)))
    r = summarize(box_best, counts)
    return {"mean_candidates": r["mean_candidates"], "box_abo": r["abo"], "box_recall70": r["recall70"],
            "sec": float(np.mean(secs)), "sec_max": float(np.max(secs)), "instances": r["instances"]}


def bench_box_masks(items: list, methods) -> dict:
    out = {}
    for method in methods:
        ious, secs, stats = [], [], Counter()
        for s, gt, ign in items:
            t0 = time.perf_counter()
            m = box_masks(s.image, s.boxes, method, stats)
            secs.append(time.perf_counter() - t0)
            ious.extend(np.diag(mask_iou_matrix(m, gt, ign)).tolist() if len(m) else [])
        fell = sum(v for k, v in stats.items() if "->" in k)
        out[method] = {"miou": float(np.mean(ious)), "sec": float(np.mean(secs)), "fallbacks": fell,
                       "boxes": sum(stats.values())}
    return out


def fmt(x, nd=3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toy-n", type=int, default=40)
    ap.add_argument("--real-n", type=int, default=20)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--realdata", default=str(REALDATA))
    ap.add_argument("--methods", nargs="+", default=list(GENERATORS), choices=GENERATORS)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    t_start = time.perf_counter()
    sets = datasets(args)

    print("\n## Region proposals (one core; seconds = generation only)\n")
    print("| data | generator | cands/img | ABO | ABO (>=32x32 px) | recall@0.5 | recall@0.7 | box ABO | "
          "box recall@0.7 | s/img (max) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    for name, items in sets:
        for method in args.methods:
            r = bench_generator(method, items)
            results[(name, method)] = r
            print(f"| {name} ({r['instances']} inst.) | {method} | {r['mean_candidates']:.0f} | {fmt(r['abo'])} | "
                  f"{fmt(r['abo_large'])} | {fmt(r['recall50'])} | {fmt(r['recall70'])} | {fmt(r['box_abo'])} | "
                  f"{fmt(r['box_recall70'])} | {fmt(r['sec'], 2)} ({fmt(r['sec_max'], 2)}) |", flush=True)
        r = bench_opencv_ss(items)
        print(f"| {name} | OpenCV SS fast (boxes only) | {r['mean_candidates']:.0f} | - | - | - | - | "
              f"{fmt(r['box_abo'])} | {fmt(r['box_recall70'])} | {fmt(r['sec'], 2)} ({fmt(r['sec_max'], 2)}) |",
              flush=True)

    print("\n## Masks from boxes alone: mean IoU with the true instance masks\n")
    methods = ["rect", "grabcut"]
    try:
        from boxsup.crf import require_crf

        require_crf()
        methods.append("crfbox")
    except ImportError as e:
        print(f"(crfbox skipped: {e})")
    toy_train = load_dataset("toy", "train", args.data_root)
    box_sets = [("toy train", [(s, instance_masks(s), ignore_region(s))
                               for s in (toy_train[i] for i in range(args.toy_n))])]
    box_sets += [(n, items) for n, items in sets if n != "toy val"]
    print("| data | " + " | ".join(methods) + " | s/img " + "/".join(methods) + " | fallbacks to rect |")
    print("| --- | " + " | ".join("---" for _ in methods) + " | --- | --- |")
    for name, items in box_sets:
        r = bench_box_masks(items, methods)
        print(f"| {name} ({r['rect']['boxes']} boxes) | " + " | ".join(fmt(r[m]["miou"]) for m in methods) + " | "
              + "/".join(fmt(r[m]["sec"], 2) for m in methods) + " | "
              + ", ".join(f"{m} {r[m]['fallbacks']}" for m in methods if m != "rect") + " |", flush=True)

    print("\n## Targets (real photos)\n")
    for name in ("weizmann_horse val", "coco128"):
        for method, target in (("mcg-ours", 0.75), ("ss", 0.70)):
            r = results.get((name, method))
            if r is None:
                continue
            ok = r["abo"] >= target and r["sec"] <= 2.0
            print(f"- {name}: {method} ABO {r['abo']:.3f} (>=32x32 px: {fmt(r['abo_large'])}) vs target {target}, "
                  f"{r['sec']:.2f} s/img vs 2 s: {'met' if ok else 'NOT met'}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
