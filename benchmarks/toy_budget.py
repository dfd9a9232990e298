"""What a cheaper toy would cost and what it would measure: the default toy against a compact variant.

    python benchmarks/toy_budget.py                              # 80-px images, 10 epochs, 48-px crops
    python benchmarks/toy_budget.py --size 96 --epochs 12 --lr-step 5 --crop 56 --crfval 60

Both are built from nothing in fresh folders, in this one process, stage by stage: the benchmark, the
body's pre-training, the mcg-ours candidates of the train split, a mask run and a BoxSup k=5 run
(training and scoring, seed 0), and each network's CRF protocol (the search on the crfval images and
the scores with the default and the tuned setting). It prints seconds per stage, the ratio of the
variant to the default, and both networks' val mIoU: one seed each, a sign of how much harder the
variant is to learn, never a verdict. A clean-clone render is about 38 minutes of training, 19 of
the CRF protocol and 9 of the rest (README, "What 30 minutes would take"); scale each by its ratio.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup.config import DEFAULTS, Config  # noqa: E402
from boxsup.data.synthetic import ToySpec, ensure_toy  # noqa: E402
from boxsup.evaluate import crf_scores  # noqa: E402
from boxsup.experiments import train_run  # noqa: E402
from boxsup.pretrain import pretrain_toyfcn  # noqa: E402
from boxsup.proposals.store import proposals_for  # noqa: E402


def measure(root: Path, spec: ToySpec, overrides: dict, workers: int) -> tuple[dict, dict]:
    """(seconds per stage, scores per run) of one toy built from nothing under ``root``."""
    t, scores = {}, {}
    s = time.perf_counter()
    ensure_toy(root, spec)
    t["benchmark"] = time.perf_counter() - s
    s = time.perf_counter()
    pretrain_toyfcn(root, progress=False)
    t["body pre-training"] = time.perf_counter() - s
    s = time.perf_counter()
    cfg = Config(data_root=str(root), runs_dir=str(root / "runs"), **overrides)
    proposals_for("toy", "train", cfg.proposals, root, workers=workers, progress=False)
    t["candidates (mcg-ours, train)"] = time.perf_counter() - s
    for name, sup in (("mask", dict(supervision="mask")), ("BoxSup k=5", dict(supervision="box", k=5))):
        c = cfg.replace(**sup)
        s = time.perf_counter()
        run = train_run(c, progress=False)
        t[f"{name}: training and scoring"] = time.perf_counter() - s
        s = time.perf_counter()
        scores[name] = crf_scores(run, progress=False)
        t[f"{name}: CRF protocol"] = time.perf_counter() - s
    return t, scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=80, help="the variant's image side (default toy: 112)")
    ap.add_argument("--epochs", type=int, default=10, help="the variant's epochs (default toy: 15)")
    ap.add_argument("--lr-step", type=int, default=4, help="the variant's lr step (default toy: 6)")
    ap.add_argument("--crop", type=int, default=48, help="the variant's training crop (default toy: 64)")
    ap.add_argument("--crfval", type=int, default=100, help="the variant's CRF hold-out images (default: 100)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the candidates")
    ap.add_argument("--root", default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--smoke", action="store_true", help="a few images and one epoch: checks the script, measures nothing")
    args = ap.parse_args(argv)

    default, base = ToySpec(), {}
    if args.smoke:
        default = ToySpec(train=6, extra=4, val=4, test=4, context_train=4, context_val=3, imagenet=40, crfval=4)
        base = dict(epochs=1, lr_step=1, batch_size=4)
    variant = replace(default, size=args.size, crfval=min(args.crfval, default.crfval))
    overrides = {**base, "epochs": 1 if args.smoke else args.epochs, "lr_step": args.lr_step, "crop": args.crop}
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        base_t, base_s = measure(Path(tmp) / "default", default, base, args.workers)
        var_t, var_s = measure(Path(tmp) / "variant", variant, overrides, args.workers)
    toy = {**DEFAULTS["toy"], **base}
    print(f"variant: {variant.size}-px images, {variant.crfval} crfval images, epochs {overrides['epochs']}, "
          f"lr step {overrides['lr_step']}, crop {overrides['crop']}; default toy: {default.size} px, "
          f"{default.crfval}, {toy['epochs']}, {toy['lr_step']}, {toy['crop']} (seconds, this machine)")
    print(f"{'stage':38s} {'default':>9s} {'variant':>9s} {'ratio':>7s}")
    for k in base_t:
        print(f"{k:38s} {base_t[k]:9.1f} {var_t[k]:9.1f} {base_t[k] / var_t[k]:6.2f}x")
    train = [k for k in base_t if k.endswith("training and scoring")]
    crf = [k for k in base_t if k.endswith("CRF protocol")]
    rest = [k for k in base_t if k not in train + crf]
    for label, keys in (("networks' training", train), ("CRF protocol", crf), ("benchmark, body, candidates", rest)):
        b, v = sum(base_t[k] for k in keys), sum(var_t[k] for k in keys)
        print(f"{label:38s} {b:9.1f} {v:9.1f} {b / v:6.2f}x")
    print("val mIoU % (seed 0; FCN / +CRF defaults / +CRF tuned):")
    for name in base_s:
        fmt = lambda d: " / ".join(f"{v:.1f}" for v in d.values())  # noqa: E731
        print(f"  {name:12s} default {fmt(base_s[name])}   variant {fmt(var_s[name])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
