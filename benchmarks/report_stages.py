"""Where `make reports` spends the time that is not training, on runs that are already trained.

    python benchmarks/report_stages.py [--runs-dir runs] [--data-root data] [--calls 5] [--no-crf]

1. The candidate-store check that every trained run and every label-quality column makes before it
   reads candidates (``proposals_for`` on the toy train split): the previous code path read every
   file back in full on each call; the current one reads only files written or touched since the
   last check. Both are run here, in this process, on the same store; the ratio is printed.
2. Each report's data function (Tables 1-5, the sensitivity page, Figures 3-4) on the trained runs
   in ``--runs-dir``, with every evaluation cache of those runs and every label-quality cache of
   the store moved aside first (put back at the end), so each score is computed again: seconds per
   report and the functions that took the most (cProfile, cumulative). ``--no-crf`` leaves the dense
   CRF out (the plain network's scores and the label-quality columns only).

Part 2 needs the reports' runs (``make reports`` made them); without them it would train them, so
it stops and says so instead. Training time is in ``run_stages.py``.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup import experiments, paper, paper_figures, results as results_mod  # noqa: E402
from boxsup.data import load_dataset  # noqa: E402
from boxsup.proposals import store as store_mod  # noqa: E402
from boxsup.runs import CHECKPOINT, run_dir  # noqa: E402
from boxsup.sensitivity import sensitivity  # noqa: E402


def store_check(cfg, calls: int) -> None:
    ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root)
    st = store_mod.proposals_for(cfg.dataset, cfg.train_split, cfg.proposals, cfg.data_root, dataset=ds,
                                 progress=False)
    stamps = list(st.root.glob(".verified-*.json"))
    times = {}
    for name in ("previous (read every file)", "current (read what changed)"):
        t = time.perf_counter()
        for _ in range(calls):
            if name.startswith("previous"):
                for p in stamps:
                    p.unlink(missing_ok=True)
            res = store_mod.precompute(ds, st, cfg.proposals, progress=False)
            assert res["computed"] == 0, res
        times[name] = (time.perf_counter() - t) / calls
    print(f"1. candidate-store check, {len(ds)} images of toy {cfg.train_split} ({cfg.proposals}), "
          f"mean of {calls} calls")
    for name, s in times.items():
        print(f"   {name:28s} {s:7.3f} s")
    prev, cur = times.values()
    print(f"   ratio {prev / cur:.1f}x (each training run makes one such call; the reports' label-quality "
          "columns about a hundred)")


def report_steps(cfg) -> list:
    return [("table1", lambda: paper.table1(cfg, seeds=3, progress=False)),
            ("table2", lambda: paper.table2(cfg, 3, progress=False)),
            ("table3", lambda: paper.table3(cfg, 200, 3, 0.9)),
            ("table4", lambda: paper.table4(cfg, out_dir=tempfile.mkdtemp(), seeds=3, progress=False)),
            ("table5", lambda: paper.table5(cfg, 3, progress=False)),
            ("sensitivity", lambda: sensitivity(cfg)),
            ("fig3", lambda: paper_figures.fig3(cfg, (1, 5, 20))),
            ("fig4", lambda: paper_figures.fig4(cfg, [1, 2, 4, 8, 12, 16]))]


def move_caches(runs_dir: Path, store_root: Path, aside: Path) -> list[tuple[Path, Path]]:
    moved = []
    files = list(runs_dir.glob("*/eval-*.json")) + list(store_root.glob("*/*/*/label-iou-*.json")) + \
        list(store_root.glob("*/*/*/pool-quality-*.json"))
    for i, p in enumerate(files):
        dst = aside / f"{i}-{p.name}"
        shutil.move(p, dst)
        moved.append((p, dst))
    return moved


def non_training(cfg, runs_dir: Path, store_root: Path) -> None:
    trained = []
    orig_train = experiments.train_run

    def no_training(c, progress=True):  # a run that is not in the cache would train: stop instead
        out = run_dir(c)
        if not (out / CHECKPOINT).is_file() or not (out / "metrics.json").is_file():
            raise SystemExit(f"{out} is not trained: run `make reports` (or these reports) first")
        trained.append(out)
        return orig_train(c, progress)

    aside = Path(tempfile.mkdtemp(prefix="boxsup-caches-"))
    moved = move_caches(runs_dir, store_root, aside)
    results_mod.train_run, experiments.train_run = no_training, no_training
    pr = cProfile.Profile()
    print(f"\n2. non-training work per report (use_crf={cfg.use_crf}; {len(moved)} cached scores moved aside)")
    total = 0.0
    try:
        for name, f in report_steps(cfg):
            t = time.perf_counter()
            pr.enable()
            f()
            pr.disable()
            total += time.perf_counter() - t
            print(f"   {name:12s} {time.perf_counter() - t:7.1f} s", flush=True)
    finally:
        results_mod.train_run, experiments.train_run = orig_train, orig_train
        for p, dst in moved:  # the measured caches are recomputed copies: keep the originals
            p.unlink(missing_ok=True)
            shutil.move(dst, p)
        shutil.rmtree(aside, ignore_errors=True)
    print(f"   {'total':12s} {total:7.1f} s over {len(set(trained))} runs")
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(r"boxsup/(?!.*__init__)", 25)
    print("\n   the functions that took the most (cumulative seconds):")
    print("\n".join("   " + line for line in s.getvalue().splitlines() if "boxsup/" in line or "cumtime" in line))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--calls", type=int, default=5, help="store checks timed per code path")
    ap.add_argument("--no-crf", action="store_true", help="part 2 without the dense CRF")
    ap.add_argument("--skip-reports", action="store_true", help="part 1 only")
    args = ap.parse_args()
    cfg = paper.params_config(profile="toy", runs_dir=args.runs_dir, data_root=args.data_root,
                              use_crf=not args.no_crf)
    store_check(cfg, args.calls)
    if not args.skip_reports:
        non_training(cfg, Path(cfg.runs_dir), store_mod.cache_root(cfg.data_root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
