"""Where a toy run's time goes, stage by stage, and what the convolution layout and precision buy.

    python benchmarks/toy_stages.py [--data-root data] [--repeats 20]

Times, in one process on the default toy benchmark, with the toy profile's shapes:
- a training iteration (batch 16, 64x64 crops, forward + backward + SGD step),
- the relabel forward pass (batch 16, whole 112x112 images) and the selection per image,
- whole-image inference per val image,
each for the first code path (fp32, NCHW: what runs used before channels_last on the CPU), fp32
channels_last (``precision="fp32"``) and bf16 autocast (channels_last: the toy profile's default,
whose final mIoU stays within seed noise of fp32, README "Speed"), and prints the ratios against the
first path, plus a toy mask run and
BoxSup run projected from the stage times (15 epochs x 3 passes x 25 iterations; 15 relabels of
400 images; 160 val images).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup.config import Config  # noqa: E402
from boxsup.data.transforms import normalise_batch  # noqa: E402
from boxsup.labels import TrainingImages  # noqa: E402
from boxsup.models import param_groups, toy_fcn  # noqa: E402
from boxsup.relabel import select  # noqa: E402

VARIANTS = {"fp32 NCHW (previous)": (torch.contiguous_format, False), "fp32 channels_last":
            (torch.channels_last, False), "bf16 channels_last (toy default)": (torch.channels_last, True)}


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    cfg = Config(supervision="box", data_root=args.data_root, device="cpu")
    images = TrainingImages(cfg)
    images.prepare_candidates()
    batch = [images.sample(i) for i in range(16)]
    big = np.stack([s.image for s in batch])
    crops = torch.randn(16, 3, cfg.crop, cfg.crop)
    target = torch.randint(0, 7, (16, cfg.crop, cfg.crop))
    rows = {}
    for name, (layout, bf16) in VARIANTS.items():
        torch.manual_seed(0)
        model = toy_fcn(7).to(memory_format=layout)
        opt = torch.optim.SGD(param_groups(model, cfg.lr, cfg.weight_decay, cfg.head_lr_mult), lr=cfg.lr, momentum=0.9)
        x = crops.contiguous(memory_format=layout)

        def train_step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            loss = F.cross_entropy(out.float(), target, ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def forward():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return F.log_softmax(model(normalise_batch(big, torch.device("cpu")).contiguous(
                    memory_format=layout)).float(), 1)

        model.train()
        t_train = timed(train_step, args.repeats)
        model.eval()
        t_fwd = timed(forward, max(3, args.repeats // 4))
        rows[name] = (t_train, t_fwd)
    logps = forward().numpy()
    rng = np.random.default_rng(0)

    def selection():
        for i, s, lp in zip(range(16), batch, logps):
            cand, cand_boxes = images.candidates(i)
            select(lp, s.boxes, s.labels, cand, cand_boxes, cfg.k, cfg.lam, rng, cfg.er_norm)

    t_sel = timed(selection, 3) / 16
    base_train, base_fwd = rows["fp32 NCHW (previous)"]
    print(f"{'':28s} {'train it':>10s} {'ratio':>6s} {'relabel fwd/img':>16s} {'ratio':>6s} "
          f"{'mask run':>9s} {'BoxSup run':>11s}")
    for name, (tt, tf) in rows.items():
        per_img = tf / 16
        mask_run = 15 * 3 * 25 * tt + 160 * per_img
        box_run = mask_run + 15 * 400 * (per_img + t_sel)
        print(f"{name:28s} {1000 * tt:8.1f}ms {base_train / tt:5.2f}x {1000 * per_img:14.2f}ms {base_fwd / tf:5.2f}x "
              f"{mask_run / 60:7.2f}min {box_run / 60:9.2f}min")
    print(f"relabel selection: {1000 * t_sel:.2f} ms per image (numpy, unchanged by layout and precision)")


if __name__ == "__main__":
    main()
