"""What moves a toy run: the training seed, the arithmetic (fp32 or bf16 autocast) and the toy
pre-training seed. Trains real runs (cached in --runs-dir; a second call only reads them).

    python benchmarks/seeds.py [--seeds 3] [--pretrain-seeds 1 2] [--runs-dir runs]   (--seeds 0: part 2 only)

1. A mask run and a BoxSup run (k = 5) for training seeds 0 .. n-1, each in fp32 and in bf16 (the toy
   default): val mIoU of the plain network and the final picks' mean IoU per seed, mean ± sd per
   precision, the largest fp32-bf16 difference of one seed against the seeds' spread, and the
   wall time of each run with the bf16 / fp32 ratio (one process; a busy machine inflates both).
2. The same two runs (training seed 0, bf16) from toy bodies pre-trained with other seeds (each body
   trained once into its own data root under <runs-dir>/pretrain-seed-<s>, the benchmark linked in):
   how far the pre-training seed moves a run, against the training seeds' spread, with each body's
   held-out accuracy on the toy ImageNet beside it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup import runs  # noqa: E402
from boxsup.config import Config  # noqa: E402
from boxsup.data.synthetic import default_data_root  # noqa: E402
from boxsup.experiments import train_run  # noqa: E402
from boxsup.models import toy_pretrained_path  # noqa: E402
from boxsup.pretrain import pretrain_toyfcn  # noqa: E402

RUNS = {"mask": dict(supervision="mask"), "BoxSup k=5": dict(supervision="box", k=5)}


def one(cfg: Config) -> dict:
    """val mIoU (%), final picks' IoU (%, BoxSup) and the seconds this call took (0 when cached)."""
    t = time.perf_counter()
    out = train_run(cfg, progress=False)
    log = runs.read_log(out)
    pick = log[-1].get("pick_mIoU") if log else None
    return {"miou": 100 * runs.read_metrics(out)["mIoU"], "pick": 100 * pick if pick is not None else None,
            "train_s": runs.training_seconds(out), "call_s": time.perf_counter() - t}


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def precision_table(base: Config, seeds: int) -> dict:
    rows = {}
    for name, change in RUNS.items():
        for prec in ("fp32", "bf16"):
            rows[name, prec] = [one(base.replace(seed=s, precision=prec, **change)) for s in range(seeds)]
    print(f"\n1. fp32 vs bf16 autocast, training seeds 0-{seeds - 1} (val mIoU of the plain network, %)")
    print(f"{'run':12s} {'precision':9s} " + " ".join(f"seed {s:<3d}" for s in range(seeds)) +
          "  mean ± sd   final picks   train min/run")
    for (name, prec), vals in rows.items():
        picks = [v["pick"] for v in vals if v["pick"] is not None]
        print(f"{name:12s} {prec:9s} " + " ".join(f"{v['miou']:8.1f}" for v in vals) +
              f"  {spread([v['miou'] for v in vals]):10s}  {spread(picks) if picks else '–':12s}"
              f"  {statistics.mean(v['train_s'] for v in vals) / 60:.2f}")
    for name in RUNS:
        f32, b16 = rows[name, "fp32"], rows[name, "bf16"]
        diff = max(abs(a["miou"] - b["miou"]) for a, b in zip(f32, b16))
        sd = statistics.stdev(v["miou"] for v in f32) if seeds > 1 else float("nan")
        ratio = sum(v["train_s"] for v in f32) / sum(v["train_s"] for v in b16)
        print(f"{name}: largest |fp32 - bf16| of one seed {diff:.1f} points; fp32 seeds' sd {sd:.1f}; "
              f"training time fp32 / bf16 = {ratio:.2f}x")
    return rows


def link_benchmark(root: Path, source: Path) -> None:
    """A data root sharing the generated benchmark (symlinks) but with its own pre-trained body."""
    root.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name != "pretrained" and not item.name.startswith(".") and not (root / item.name).exists():
            (root / item.name).symlink_to(item.resolve())


def body_accuracy(root: Path) -> float:
    """Held-out accuracy of the toy body pre-trained in ``root`` (recorded with its weights)."""
    return float(torch.load(toy_pretrained_path(root), map_location="cpu", weights_only=True)["heldout_accuracy"])


def pretrain_table(base: Config, pretrain_seeds: list[int], runs_dir: Path) -> None:
    source = default_data_root(base.data_root)
    print("\n2. the toy pre-training seed (training seed 0, bf16; val mIoU %)")
    print(f"{'pre-training seed':18s} {'body held-out acc':>18s} " + " ".join(f"{n:>12s}" for n in RUNS))
    print(f"{0:<18d} {body_accuracy(source):18.3f} " +
          " ".join(f"{one(base.replace(**ch))['miou']:12.1f}" for ch in RUNS.values()))
    for s in pretrain_seeds:
        root = runs_dir / f"pretrain-seed-{s}"
        link_benchmark(root, source)
        pretrain_toyfcn(root, seed=s, progress=False)
        # its own run cache: the run key leaves out the data root, not the body pre-trained in it
        cells = [one(base.replace(data_root=str(root), runs_dir=str(root / "runs"), **ch))["miou"]
                 for ch in RUNS.values()]
        print(f"{s:<18d} {body_accuracy(root):18.3f} " + " ".join(f"{c:12.1f}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0 .. n-1 (0: skip part 1)")
    ap.add_argument("--pretrain-seeds", type=int, nargs="*", default=[1, 2],
                    help="other pre-training seeds (0 is the default body)")
    ap.add_argument("--runs-dir", default="runs", help="run cache (the reports' runs/ shares the bf16 runs)")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    base = Config(runs_dir=args.runs_dir, data_root=args.data_root, device="cpu")
    if args.seeds:  # --seeds 0: part 2 only
        precision_table(base, args.seeds)
    if args.pretrain_seeds:
        pretrain_table(base, args.pretrain_seeds, Path(base.runs_dir))
    print(json.dumps({"note": "times: this machine, this call; compare only within one run of the script"}))


if __name__ == "__main__":
    main()
