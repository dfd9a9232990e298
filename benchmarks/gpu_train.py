"""GPU throughput of the paper's network and of the relabel step (run on a CUDA machine).

    python benchmarks/gpu_train.py [--iters 30] [--batch 20] [--size 321]

1. Training images/s of DeepLab-LargeFOV (VGG-16) at 321x321, batch 20, SGD step included:
   fp32 + NCHW (baseline) vs bf16 autocast + channels_last, in the same process.
2. Relabel time per image with 2,000 candidates on a 500x375 image, 21 classes: the network's
   forward pass and the vectorised selection (CPU, numpy/scipy), timed separately.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from boxsup import relabel as rl
from boxsup.models import build_model, param_groups
from boxsup.proposals.segments import Segments


def train_speed(bf16: bool, channels_last: bool, iters: int, batch: int, size: int) -> float:
    torch.manual_seed(0)
    model = build_model("deeplab-largefov", 21, pretrained=False).cuda()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, 1e-3, 5e-4), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device="cuda")
    y = torch.randint(0, 21, (batch, size, size), device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    torch.backends.cudnn.benchmark = True

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = F.cross_entropy(out.float(), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return iters * batch / (time.perf_counter() - t0)


def relabel_speed(candidates: int, images: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    h, w, c = 375, 500, 21
    model = build_model("deeplab-largefov", c, pretrained=False).cuda().eval()
    # candidates as unions of ~600 superpixels (as our generators and MCG store them)
    atoms = (np.arange(h)[:, None] // 15) * 34 + (np.arange(w)[None, :] // 15)
    member = rng.random((candidates, atoms.max() + 1)) < 0.02
    sets = Segments(atoms.astype(np.int32), member)
    cb = np.stack([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                   for ys, xs in (np.nonzero(member[i][atoms]) for i in range(candidates))]).astype(np.float32)
    boxes = np.array([[50, 40, 250, 300], [200, 100, 480, 360], [10, 10, 90, 120]], np.float32)
    labels = np.array([3, 7, 15])
    t_fwd = t_sel = 0.0
    x = torch.randn(1, 3, h, w, device="cuda")
    for i in range(images + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            logp = F.log_softmax(model(x).float(), 1)[0].cpu().numpy()
        t1 = time.perf_counter()
        rl.select(logp, boxes, labels, sets, cb, 5, 3.0, rng)
        t2 = time.perf_counter()
        if i >= 2:
            t_fwd += t1 - t0
            t_sel += t2 - t1
    return t_fwd / images, t_sel / images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--size", type=int, default=321)
    ap.add_argument("--candidates", type=int, default=2000)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark measures GPU throughput")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    base = train_speed(False, False, args.iters, args.batch, args.size)
    fast = train_speed(True, True, args.iters, args.batch, args.size)
    bf16 = train_speed(True, False, args.iters, args.batch, args.size)
    print(f"DeepLab-LargeFOV train, {args.size}x{args.size}, batch {args.batch}:")
    print(f"  fp32 NCHW (baseline)     : {base:7.1f} images/s")
    print(f"  bf16 NCHW                : {bf16:7.1f} images/s  ({bf16 / base:.2f}x)")
    print(f"  bf16 + channels_last     : {fast:7.1f} images/s  ({fast / base:.2f}x)")
    fwd, sel = relabel_speed(args.candidates, 10)
    print(f"relabel, 500x375, {args.candidates} candidates, 3 boxes: forward {fwd * 1000:.1f} ms/image (GPU), "
          f"selection {sel * 1000:.1f} ms/image (CPU)")


if __name__ == "__main__":
    main()
