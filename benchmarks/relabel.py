"""Relabel speed: the vectorised cost (one sparse product for all candidates and boxes) against the
naive per-candidate loop that builds a label map per candidate, on the same inputs in one process.

    python benchmarks/relabel.py [--candidates 500] [--size 500x375] [--images 3]

Prints seconds per image for both and their ratio (target >= 50x), and checks that they agree.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from boxsup import relabel as rl
from boxsup.data.boxes import tight_box


def random_candidates(rng, h: int, w: int, m: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    masks = np.zeros((m, h, w), bool)
    for i in range(m):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(5, h / 3), rng.uniform(5, w / 3)
        masks[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--size", default="500x375")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--classes", type=int, default=21)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    t_fast = t_slow = t_sparse = 0.0
    for _ in range(args.images):
        masks = random_candidates(rng, h, w, args.candidates)
        boxes = np.array([[50, 40, 250, 300], [200, 100, 480, 360], [10, 10, 90, 120]], np.float32)
        labels = rng.integers(1, args.classes, size=len(boxes))
        logits = rng.normal(size=(args.classes, h, w)).astype(np.float32)
        logp = logits - np.log(np.exp(logits).sum(0, keepdims=True))
        t0 = time.perf_counter()
        cand = rl.masks_to_sparse(masks)
        cb = np.stack([tight_box(m) for m in masks])
        t1 = time.perf_counter()
        fast, _, _ = rl.costs(logp, boxes, labels, cand, cb, lam=3.0)
        t2 = time.perf_counter()
        slow = rl.costs_naive(logp, boxes, labels, masks, lam=3.0)
        t3 = time.perf_counter()
        np.testing.assert_allclose(fast, slow, rtol=1e-3, atol=1e-3)
        t_sparse += t1 - t0
        t_fast += t2 - t1
        t_slow += t3 - t2
    n = args.images
    print(f"relabel cost, {args.candidates} candidates x 3 boxes, {w}x{h}, {args.classes} classes, {n} images")
    print(f"  naive per-candidate loop : {t_slow / n:8.3f} s/image")
    print(f"  vectorised (sparse)      : {t_fast / n:8.4f} s/image   (+ {t_sparse / n:.3f} s/image to build "
          "the candidate matrix, done once per image load)")
    print(f"  speed-up                 : {t_slow / t_fast:8.1f}x  (including matrix build: "
          f"{t_slow / (t_fast + t_sparse):.1f}x)")


if __name__ == "__main__":
    main()
