"""Dense CRF cost and benefit: seconds per image at toy size and VOC size, mIoU with and without.

    python benchmarks/crf.py                    # standalone: noisy ground-truth-derived probabilities
    python benchmarks/crf.py runs/<name>-<hash> # probabilities from a trained run (boxsup.train.load_model)
    python benchmarks/crf.py --search           # also tune the CRF on a held-out slice, score the rest
    python benchmarks/crf.py --photos 10        # also: the torch CRF against pydensecrf on real photos

Without a run the "network" is simulated: the one-hot ground truth is blurred (as a stride-8
network's upsampled scores are) and perturbed by smooth noise, then softmaxed. Those numbers show
what the CRF can recover from blurred boundaries, not what it adds to a trained model.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup.crf import (CRFParams, dense_crf, dense_crf_many, dense_crf_torch, holdout_indices,  # noqa: E402
                        require_crf, search_crf_params)
from boxsup.data import load_dataset  # noqa: E402
from boxsup.experiments import REALDATA  # noqa: E402
from boxsup.metrics import ConfusionMatrix  # noqa: E402


def simulated_probs(mask: np.ndarray, num_classes: int, rng: np.random.Generator,
                    blur: float = 4.0, noise: float = 1.5) -> np.ndarray:
    """(C,H,W) probabilities from a ground-truth map: blurred one-hot logits plus smooth noise."""
    m = np.where(mask == 255, 0, mask)
    onehot = (np.arange(num_classes)[:, None, None] == m[None]).astype(np.float32)
    h, w = mask.shape
    logits = np.stack([cv2.GaussianBlur(c, (0, 0), blur) for c in onehot]) * 6.0
    small = rng.normal(size=(num_classes, max(2, h // 8), max(2, w // 8))).astype(np.float32)
    logits += noise * np.stack([cv2.resize(s, (w, h), interpolation=cv2.INTER_CUBIC) for s in small])
    e = np.exp(logits - logits.max(0, keepdims=True))
    return (e / e.sum(0, keepdims=True)).astype(np.float32)


def model_probs(run_dir: str, dataset, n: int, device: str) -> list[np.ndarray]:
    from boxsup.predict import predict_dataset
    from boxsup.runs import load_model

    model, _ = load_model(Path(run_dir))
    out = {s.image_id: p for s, p in predict_dataset(model, dataset, max_images=n, device=device)}
    return [out[dataset.ids[i]] for i in range(n)]


def miou(labels, targets, num_classes: int) -> float:
    cm = ConfusionMatrix(num_classes)
    for lab, t in zip(labels, targets):
        cm.update(t, lab)
    return 100 * cm.mean_iou


def seconds_per_image(image: np.ndarray, probs: np.ndarray, params: CRFParams, repeat: int) -> float:
    dense_crf(image, probs, **params.as_dict())  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        dense_crf(image, probs, **params.as_dict())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default=None, help="a trained run; default: simulated probabilities")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1] / "data"))
    ap.add_argument("--images", type=int, default=160, help="toy val images scored (default: all 160)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--search", action="store_true", help="grid-search CRF parameters on 40 held-out images")
    ap.add_argument("--torch-device", default=None,
                    help="also time boxsup.crf.dense_crf_torch on this device (cpu, cuda) and compare labels")
    ap.add_argument("--photos", type=int, default=0,
                    help="compare dense_crf_torch with pydensecrf on this many photos of each set in --realdata")
    ap.add_argument("--realdata", default=str(REALDATA))
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 2, 4, 8],
                    help="source strides of dense_crf_torch on the photos (stride 1: the exact kernel)")
    ap.add_argument("--max-pairs", type=float, default=2e9,
                    help="skip a stride whose kernel has more pixel pairs than this (per image)")
    ap.add_argument("--cache-gib", type=float, default=6.0,
                    help="keep the torch CRF's kernel matrix in memory up to this size (else recomputed)")
    args = ap.parse_args(argv)
    require_crf()
    params = CRFParams()

    ds = load_dataset("toy", "val", args.data_root)
    n = min(args.images, len(ds))
    samples = [ds[i] for i in range(n)]
    images, targets = [s.image for s in samples], [s.mask for s in samples]
    c = len(ds.classes)
    if args.run_dir:
        probs, source = model_probs(args.run_dir, ds, n, args.device), f"model {args.run_dir}"
    else:
        rng = np.random.default_rng(0)
        probs = [simulated_probs(t, c, rng) for t in targets]
        source = "SIMULATED probabilities (blurred one-hot ground truth + smooth noise), not a trained model"

    print(f"dense CRF benchmark; probabilities: {source}")
    print(f"CRF params: {params.as_dict()}")
    # --- speed: toy size, and VOC size (a toy image and its probabilities upsampled, 21 classes) ---
    t_toy = seconds_per_image(images[0], probs[0], params, args.repeat)
    big = cv2.resize(images[0], (500, 375), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(1)
    big_mask = cv2.resize(targets[0], (500, 375), interpolation=cv2.INTER_NEAREST)
    big_probs = simulated_probs(big_mask, 21, rng, blur=12.0)
    t_voc = seconds_per_image(big, big_probs, params, max(1, args.repeat // 2))
    print(f"seconds/image, 1 process: {t_toy:.3f} at 112x112 ({c} classes), "
          f"{t_voc:.3f} at 500x375 (21 classes) -> {t_voc / t_toy:.1f}x for {500 * 375 / 112 ** 2:.1f}x pixels")

    t = time.perf_counter()
    serial = dense_crf_many(images, probs, params, workers=1, labels=True, progress=False)
    t_serial = time.perf_counter() - t
    line = f"{n} toy images: serial {t_serial:.2f} s ({t_serial / n:.3f} s/image)"
    if args.workers > 1:
        t = time.perf_counter()
        dense_crf_many(images, probs, params, workers=args.workers, labels=True, progress=False)
        t_par = time.perf_counter() - t
        line += f"; {args.workers} workers {t_par:.2f} s (speed-up {t_serial / t_par:.2f}x)"
    print(line)

    # --- quality ---
    no_crf = miou((p.argmax(0) for p in probs), targets, c)
    with_crf = miou(serial, targets, c)
    print(f"toy val mIoU ({n} images): no CRF {no_crf:.2f}  CRF (DeepLab VOC defaults) {with_crf:.2f}  "
          f"delta {with_crf - no_crf:+.2f}")

    if args.torch_device:
        torch_crf(args.torch_device, params, images, probs, serial, big, big_probs, t_toy, t_voc)
    if args.search:
        tuned_crf(images, probs, targets, serial, c, args.workers)
    if args.photos:
        photo_agreement(Path(args.realdata), args.photos, params, args.torch_device or "cpu", args.strides,
                        args.max_pairs, int(args.cache_gib * 2 ** 30))
    return 0


def torch_crf(device: str, params: CRFParams, images, probs, serial, big, big_probs, t_toy, t_voc) -> None:
    """Time ``dense_crf_torch`` and compare its labels with pydensecrf's."""
    import torch

    def timed(im, p, stride):
        dense_crf_torch(im, p, params, device=device, source_stride=stride)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        q = dense_crf_torch(im, p, params, device=device, source_stride=stride)
        return time.perf_counter() - t, q.argmax(0)

    k = min(3, len(images))
    res = [timed(images[i], probs[i], 1) for i in range(k)]
    agree = np.mean([np.mean(lab == serial[i]) for i, (_, lab) in enumerate(res)])
    print(f"torch mean field on {device}: {np.median([r[0] for r in res]):.3f} s/image at 112x112 "
          f"(pydensecrf {t_toy:.3f}); label agreement with pydensecrf {100 * agree:.2f}% on {k} images")
    if not device.startswith("cuda"):  # O(N^2): minutes per VOC-size image on a CPU
        print("  (500x375 skipped on CPU; use --torch-device cuda)")
        return
    ref = dense_crf(big, big_probs, **params.as_dict()).argmax(0)
    for stride in (1, 2):
        dt, lab = timed(big, big_probs, stride)
        print(f"  500x375, source_stride {stride}: {dt:.3f} s/image (pydensecrf {t_voc:.3f}); "
              f"agreement {100 * np.mean(lab == ref):.2f}%")


def photo_agreement(real: Path, n: int, params: CRFParams, device: str, strides: list[int],
                    max_pairs: float, cache_bytes: int) -> None:
    """Label agreement of ``dense_crf_torch`` with pydensecrf on real photos (probabilities simulated
    from their masks, as above), per source stride, with seconds per image on ``device``. Agreement
    does not depend on the device beyond float rounding, so the CPU measures it; a GPU, the speed."""
    from boxsup.data.voc import VOCLayout

    sets = [("weizmann_horse", "val"), ("coco128_seg", "list_voc_classes.txt")]
    if not real.is_dir():
        print(f"real photos: {real} not found, skipped")
        return
    for sub, split in sets:
        if not (real / sub).is_dir():
            print(f"real photos: {real / sub} not found, skipped")
            continue
        ds = VOCLayout(real / sub, split, masks="required")
        rng = np.random.default_rng(0)
        samples = [ds[i] for i in range(min(n, len(ds)))]
        probs = [simulated_probs(s.mask, len(ds.classes), rng, blur=8.0) for s in samples]
        t = time.perf_counter()
        ref = [dense_crf(s.image, p, **params.as_dict()).argmax(0) for s, p in zip(samples, probs)]
        t_ref = (time.perf_counter() - t) / len(samples)
        pixels = int(np.mean([s.image.shape[0] * s.image.shape[1] for s in samples]))
        print(f"{sub} ({len(samples)} photos, {pixels} pixels on average): pydensecrf {t_ref:.3f} s/photo")
        for stride in strides:
            pairs = pixels * pixels / stride ** 2
            if pairs > max_pairs:
                print(f"  torch, source_stride {stride}: skipped ({pairs:.1e} pixel pairs > --max-pairs)")
                continue
            t = time.perf_counter()
            labs = [dense_crf_torch(s.image, p, params, device=device, source_stride=stride,
                                    cache_bytes=cache_bytes).argmax(0)
                    for s, p in zip(samples, probs)]
            dt = (time.perf_counter() - t) / len(samples)
            agree = [np.mean(lab == r) for lab, r in zip(labs, ref)]
            print(f"  torch on {device}, source_stride {stride}: {dt:.3f} s/photo; agreement with pydensecrf "
                  f"{100 * np.mean(agree):.2f}% (lowest photo {100 * np.min(agree):.2f}%)")


def tuned_crf(images, probs, targets, serial, c: int, workers: int) -> None:
    """DeepLab/BoxSup protocol: tune on a held-out slice, report on the rest."""
    n = len(images)
    sel = holdout_indices(n, min(40, n // 2)).tolist()
    rest = sorted(set(range(n)) - set(sel))
    r = search_crf_params([images[i] for i in sel], [probs[i] for i in sel], [targets[i] for i in sel],
                          c, workers=workers)
    tuned = dense_crf_many([images[i] for i in rest], [probs[i] for i in rest], r["best"], workers,
                           labels=True, progress=False)
    rt = [targets[i] for i in rest]
    print(f"search on {len(sel)} held-out images: best {r['best'].as_dict()} "
          f"(held-out mIoU {100 * r['best_mIoU']:.2f})")
    print(f"other {len(rest)} images: no CRF {miou((probs[i].argmax(0) for i in rest), rt, c):.2f}  "
          f"default CRF {miou((serial[i] for i in rest), rt, c):.2f}  tuned CRF {miou(tuned, rt, c):.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
