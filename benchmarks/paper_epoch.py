"""A paper-scale BoxSup epoch you can time without VOC: train + relabel, then val inference + CRF.

    python benchmarks/paper_epoch.py                      # one GPU: VOC-sized images, DeepLab-LargeFOV
    python benchmarks/paper_epoch.py --device cpu --images 8 --val 4 --size 96 --arch toyfcn   # smoke

The workload: the toy generator at VOC size (square ``--size`` images, 2-3 objects, the toy's 7
classes; DeepLab's 21-way classifier costs the same to within a few percent), ``--images`` training
images of which the timing is projected to VOC's 10,582, and candidates made cheaply for timing:
``--candidates`` random unions of a grid of ~600 superpixel atoms per image, written to the proposal
store in the format every generator uses, so the run reads and relabels them exactly as a real one.
The epoch goes through the real code path (``train.fit`` with the paper profile's batch 20, crop
321, bf16 + channels_last on CUDA). Prints training img/s, the relabel share of the epoch, peak GPU
memory, the projected 45-epoch time and the training throughput as a fraction of the GPU's dense
bf16 peak (``--peak-tflops``; H200: 989).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup.config import Config  # noqa: E402
from boxsup.crf import CRFParams, require_crf  # noqa: E402
from boxsup.data import load_dataset  # noqa: E402
from boxsup.data.synthetic import ToySpec, ensure_toy  # noqa: E402
from boxsup.evaluate import evaluate  # noqa: E402
from boxsup.proposals.segments import Segments  # noqa: E402
from boxsup.proposals.store import ProposalStore, cache_root, store_dir  # noqa: E402
from boxsup.runs import load_model  # noqa: E402
from boxsup.train import fit  # noqa: E402

VOC_TRAIN, VOC_VAL, EPOCHS = 10_582, 1_449, 45
GFLOP_PER_IMAGE = 120  # DeepLab-LargeFOV forward + backward at 321x321, estimated from its layers


def grid_candidates(h: int, w: int, m: int, rng: np.random.Generator) -> Segments:
    """``m`` random unions of a grid of about 600 atoms (cell size chosen from the image size)."""
    cell = max(2, int(np.sqrt(h * w / 600)))
    atoms = ((np.arange(h)[:, None] // cell) * ((w + cell - 1) // cell) + np.arange(w)[None, :] // cell)
    member = rng.random((m, int(atoms.max()) + 1)) < rng.uniform(0.005, 0.05, size=(m, 1))
    member[~member.any(1), 0] = True
    return Segments(atoms.astype(np.int32), member)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400, help="training images timed (projected to 10,582)")
    ap.add_argument("--val", type=int, default=100, help="val images for inference + CRF")
    ap.add_argument("--size", type=int, default=448, help="image side (VOC images are about 500x375)")
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--arch", default="deeplab-largefov")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--crf-workers", type=int, default=8)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    ap.add_argument("--root", default=None, help="where to build the workload (default: a temp folder)")
    args = ap.parse_args()

    root = Path(args.root or tempfile.mkdtemp(prefix="boxsup-paper-epoch-"))
    t0 = time.perf_counter()
    ensure_toy(root, ToySpec(size=args.size, train=args.images, val=args.val, test=1, extra=1, context_train=1,
                             context_val=1, imagenet=7, crfval=1, context_crfval=1))
    train = load_dataset("toy", "train", root, masks="optional")
    cfg = Config(profile="paper", dataset="toy", data_root=str(root), runs_dir=str(root / "runs"), arch=args.arch,
                 pretrained=False, supervision="box", proposals="mcg-ours", epochs=1, device=args.device,
                 workers=4 if args.device != "cpu" else 0, crop=min(321, args.size))
    store = ProposalStore(store_dir(cache_root(root), "toy", "train", "mcg-ours"))
    rng = np.random.default_rng(0)
    for i in range(len(train)):
        if not store.has(train.ids[i]):
            store.save(train.ids[i], grid_candidates(args.size, args.size, args.candidates, rng))
    print(f"workload: {len(train)} train / {args.val} val images of {args.size}x{args.size}, "
          f"{args.candidates} candidates each, built in {time.perf_counter() - t0:.0f} s under {root}")

    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out = fit(cfg, progress=False)
    log = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    epoch_s, relabel_s = log["seconds"], log["relabel_s"]
    train_s = epoch_s - relabel_s
    img_s = len(train) / train_s
    print(f"epoch: {epoch_s:.1f} s = relabel {relabel_s:.1f} s (selection {log['relabel_select_s']:.1f} s) "
          f"+ training {train_s:.1f} s; relabel share {100 * relabel_s / epoch_s:.1f}%")
    print(f"training: {img_s:.1f} img/s; relabel: {1000 * relabel_s / len(train):.2f} ms/img")
    if cuda:
        print(f"peak GPU memory (training + relabel): {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB")
        frac = img_s * GFLOP_PER_IMAGE / (1000 * args.peak_tflops)
        print(f"training throughput: {100 * frac:.1f}% of the {args.peak_tflops:.0f} TFLOPS dense bf16 peak "
              f"(at ~{GFLOP_PER_IMAGE} GFLOP per image)")

    model, _ = load_model(out)
    val = load_dataset("toy", "val", root)
    plain = evaluate(model, val, len(val.classes), device=cfg.device, progress=False)
    per_val = plain["seconds"] / plain["num_images"]
    line = f"val inference: {1000 * per_val:.1f} ms/img"
    crf_per = 0.0
    try:
        require_crf()
        with_crf = evaluate(model, val, len(val.classes), device=cfg.device, crf=CRFParams(),
                            workers=args.crf_workers, progress=False)
        crf_per = with_crf["seconds"] / with_crf["num_images"]
        line += f"; with the dense CRF ({args.crf_workers} workers): {1000 * crf_per:.1f} ms/img"
    except ImportError as e:  # pydensecrf is optional
        line += f"; CRF not timed ({e})"
    print(line)
    projected = EPOCHS * epoch_s * VOC_TRAIN / len(train) + VOC_VAL * max(per_val, crf_per)
    print(f"projected 45-epoch run on VOC train_aug (10,582 images) + val scoring: {projected / 3600:.2f} h")


if __name__ == "__main__":
    main()
