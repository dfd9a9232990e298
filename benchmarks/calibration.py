"""Toy benchmark vs real photos, on statistics that involve no training (the toy's calibration).

    python benchmarks/calibration.py [--n 40] [--realdata ../shared/realdata] [--data-root data]

For the first ``--n`` images of toy train, weizmann_horse train and coco128 (the images with a VOC
class), side by side, all on one label metric (IoU with the true instance mask, 255 ignored):
- box fill: true object pixels / box pixels;
- pool ABO: the best `mcg-ours` candidate per object;
- Eo-only picks (k=1, and k=5 as the exact expectation over the top 5) and the oracle-network ceiling
  (the project's own cost with the truth as the network, ``label_quality.oracle_logp``), lam = 3;
- rectangle / GrabCut / CRF-box masks, and the CRF-box - ABO gap (the toy's known artefact);
- in-box background under the Eo pick: the share of a box's background pixels the k=1 Eo pick covers;
- edge sharpness: the mean gradient magnitude on the true object boundaries over the image's mean
  gradient magnitude (sharp synthetic edges score high; a colour-contrast CRF exploits them).
coco128's instances come from its COCO polygons (as in ``benchmarks/proposals.py``). Sets missing
under --realdata are skipped with a message. Nothing here trains; the toy is calibrated on these
numbers only, never on a training outcome.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proposals import coco_polygon_instances  # noqa: E402  (benchmarks/proposals.py)

from boxsup.data import VOCLayout, load_dataset  # noqa: E402
from boxsup.data.boxes import int_boxes  # noqa: E402
from boxsup.experiments import REALDATA  # noqa: E402
from boxsup.label_quality import candidate_ious, expected_pick_iou, label_ious, oracle_logp  # noqa: E402
from boxsup.proposals.boxmasks import box_masks  # noqa: E402
from boxsup.proposals.generators import generate_segments  # noqa: E402
from boxsup.proposals.quality import ignore_region, instance_masks  # noqa: E402
from boxsup.relabel import candidate_pixels, costs  # noqa: E402

LAM = 3.0
ROWS = ("box fill", "pool ABO", "Eo-only k=1", "Eo-only k=5", "ceiling k=1", "ceiling k=5", "rectangles",
        "GrabCut", "CRF-box", "CRF-box - ABO", "in-box background under Eo pick", "edge sharpness")


def edge_sharpness(image: np.ndarray, truths: np.ndarray) -> float:
    """Mean gradient magnitude on the true boundaries / mean gradient magnitude of the image."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    edge = np.zeros(gray.shape, bool)
    for t in truths:
        m = t.astype(np.uint8)
        edge |= (cv2.dilate(m, np.ones((3, 3), np.uint8)) != cv2.erode(m, np.ones((3, 3), np.uint8)))
    return float(mag[edge].mean() / max(mag.mean(), 1e-6)) if edge.any() else float("nan")


def measure(items, num_classes: int) -> dict[str, float]:
    """The statistics of ``ROWS`` over (sample, instance masks, ignore) items (per box, then mean)."""
    vals: dict[str, list] = {k: [] for k in ROWS}
    for s, gt, ign in items:
        h, w = s.size
        boxes = int_boxes(s.boxes, h, w)
        seg = generate_segments("mcg-ours", s.image, image_id=s.image_id)
        iou = candidate_ious(seg, gt, ign)                                           # (M, N)
        abo = np.nan_to_num(iou, nan=0.0).max(0) if len(seg) else np.zeros(len(gt))
        cost, eo, _ = costs(oracle_logp(s.mask, num_classes), s.boxes, s.labels, seg, seg.boxes(), LAM, "image")
        vals["pool ABO"] += abo.tolist()
        for k in (1, 5):
            vals[f"Eo-only k={k}"] += expected_pick_iou(eo, eo < 1, iou, k).tolist()
            vals[f"ceiling k={k}"] += expected_pick_iou(cost, eo < 1, iou, k).tolist()
        masks = {name: box_masks(s.image, s.boxes, method) for name, method in
                 (("rectangles", "rect"), ("GrabCut", "grabcut"), ("CRF-box", "crfbox"))}
        for name, m in masks.items():
            vals[name] += label_ious(m, gt, ign).tolist()
        vals["CRF-box - ABO"] += (label_ious(masks["CRF-box"], gt, ign) - abo).tolist()
        flat_gt = gt.reshape(len(gt), -1)
        for j, (x0, y0, x1, y1) in enumerate(boxes):
            inside = np.zeros((h, w), bool)
            inside[y0:y1, x0:x1] = True
            vals["box fill"].append(gt[j][inside].mean() if inside.any() else np.nan)
            ok = np.flatnonzero(eo[:, j] < 1)
            if not ok.size:
                continue
            pick = np.zeros(h * w, bool)
            pick[candidate_pixels(seg, int(ok[np.argmin(eo[ok, j])]))] = True
            background = inside.reshape(-1) & ~flat_gt[j] & (True if ign is None else ~ign.reshape(-1))
            vals["in-box background under Eo pick"].append(pick[background].mean() if background.any() else np.nan)
        vals["edge sharpness"].append(edge_sharpness(s.image, gt))
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in vals.items()}


def sets(args) -> list[tuple[str, list, int]]:
    """(name, [(sample, instance masks, ignore)], number of classes) of every set present."""
    toy = load_dataset("toy", "train", args.data_root)
    out = [("toy train", [(s, instance_masks(s), ignore_region(s)) for s in (toy[i] for i in range(args.n))],
            len(toy.classes))]
    real = Path(args.realdata)
    horse, coco = real / "weizmann_horse", real / "coco128_seg"
    if horse.is_dir():
        ds = VOCLayout(horse, "train", masks="required")
        out.append(("weizmann_horse train", [(s, instance_masks(s), ignore_region(s))
                                             for s in (ds[i] for i in range(min(args.n, len(ds))))], len(ds.classes)))
    else:
        print(f"skipping weizmann_horse: {horse} not found")
    if coco.is_dir():
        ds = VOCLayout(coco, "list_voc_classes.txt", masks="required")
        out.append(("coco128", [(s, coco_polygon_instances(s, coco), ignore_region(s))
                                for s in (ds[i] for i in range(min(args.n, len(ds))))], len(ds.classes)))
    else:
        print(f"skipping coco128_seg: {coco} not found")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="images per set")
    ap.add_argument("--realdata", default=str(REALDATA))
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    cols = {}
    for name, items, classes in sets(args):
        t = time.perf_counter()
        cols[name] = measure(items, classes)
        print(f"{name}: {len(items)} images, {time.perf_counter() - t:.0f} s", file=sys.stderr)
    width = max(map(len, ROWS))
    print(f"{'statistic':{width}s} " + " ".join(f"{c:>21s}" for c in cols))
    for row in ROWS:
        print(f"{row:{width}s} " + " ".join(f"{cols[c][row]:21.3f}" for c in cols))
    if len(cols) > 1:
        real = [c for c in cols if c != "toy train"]
        outside = [row for row in ROWS if not (min(cols[c][row] for c in real) <= cols["toy train"][row]
                                               <= max(cols[c][row] for c in real))]
        print(f"toy outside the real sets' range on: {', '.join(outside) or 'none'}")


if __name__ == "__main__":
    main()
