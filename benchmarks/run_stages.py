"""Where a whole toy run's time goes, stage by stage, for the previous code path and the current one
in the same process, and whether they compute the same thing.

    python benchmarks/run_stages.py [--epochs 15] [--supervision box mask]

For each supervision it trains the toy run twice into two throw-away runs folders:
- "previous": the code paths as they were before the speed-ups, kept here as baselines: the relabel
  step without its BLAS limit (numpy's OpenBLAS threads free to spin next to torch's OpenMP pool on
  the same cores); the CRF search with one pass over the hold-out images per grid point,
- "current": the code as it is,
then scores each finished network under the reports' protocol (plain network, the CRF search on the
hold-out split, the val scores with DeepLab's defaults and the tuned CRF). It prints the seconds of
each stage (relabel forward, selection, SGD, evaluation, CRF search, CRF scores), the ratio of the
run's total, and checks that both paths end with bit-identical weights and picks (the speed-up
changes no arithmetic) and the same CRF search and scores. Pre-training and proposals are made
before the clock starts (cached).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxsup import crf as crf_mod, relabel, runs, train  # noqa: E402
from boxsup.config import Config  # noqa: E402
from boxsup.evaluate import crf_scores, tune_crf  # noqa: E402
from boxsup.experiments import train_run  # noqa: E402
from boxsup.labels import TrainingImages  # noqa: E402
from boxsup.pretrain import pretrain_toyfcn  # noqa: E402

CURRENT = {(train, "relabel_epoch"): relabel.relabel_epoch, (crf_mod, "grid_labels"): crf_mod.grid_labels}


def previous_relabel(model, images, device, epoch, rank=0, world=1, progress=True) -> dict:
    """The relabel step without the BLAS thread limit."""
    with torch.inference_mode():
        return relabel._relabel(model, images, device, epoch, rank, world, progress)


def previous_grid_labels(images, probs, points, workers=1, progress=True):
    """The CRF search's label maps, one pool and one pass over the images per grid point."""
    return [crf_mod.dense_crf_many(images, probs, pt, workers, labels=True, progress=False) for pt in points]


PREVIOUS = {(train, "relabel_epoch"): previous_relabel, (crf_mod, "grid_labels"): previous_grid_labels}


def use(paths: dict) -> None:
    for (module, name), fn in paths.items():
        setattr(module, name, fn)


def one_run(cfg: Config, path: str) -> dict:
    use(PREVIOUS if path == "previous" else CURRENT)
    t0 = time.perf_counter()
    out = train_run(cfg, progress=False)
    t1 = time.perf_counter()
    search = tune_crf(out, progress=False)
    t2 = time.perf_counter()
    scores = crf_scores(out, None, (1.0,), use_crf=True, progress=False)
    t3 = time.perf_counter()
    log = runs.read_log(out)
    epochs = sum(e["seconds"] for e in log)
    rel = sum(e.get("relabel_s", 0.0) for e in log)
    sel = sum(e.get("relabel_select_s", 0.0) for e in log)
    state = runs.load_checkpoint(out)
    return {"relabel forward": rel - sel, "selection": sel, "SGD": epochs - rel,
            "evaluation": (t1 - t0) - epochs, "CRF search": t2 - t1, "CRF scores": t3 - t2, "total": t3 - t0,
            "_weights": state["model"], "_picks": state["picks"], "_miou": runs.read_metrics(out)["mIoU"],
            "_crf": (search["results"], scores)}


def same(a: dict, b: dict) -> bool:
    weights = all(torch.equal(a["_weights"][k], b["_weights"][k]) for k in a["_weights"])
    picks = a["_picks"].keys() == b["_picks"].keys() and all(
        np.array_equal(a["_picks"][i], b["_picks"][i]) for i in a["_picks"])
    return weights and picks and a["_crf"] == b["_crf"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=None, help="default: the toy profile's 15")
    ap.add_argument("--supervision", nargs="+", default=["box", "mask"])
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    pretrain_toyfcn(None, progress=False)
    for sup in args.supervision:
        results = {}
        for path in ("previous", "current"):
            with tempfile.TemporaryDirectory() as d:
                cfg = Config(supervision=sup, epochs=args.epochs, runs_dir=d)
                if cfg.supervision in ("box", "semi"):
                    TrainingImages(cfg).prepare_candidates()  # proposals: cached before the clock
                results[path] = one_run(cfg, path)
        prev, cur = results["previous"], results["current"]
        print(f"\n{sup} run, {cfg.epochs} epochs: seconds per stage")
        print(f"{'stage':18s} {'previous':>9s} {'current':>9s} {'ratio':>6s}")
        for k in (k for k in cur if not k.startswith("_")):
            ratio = prev[k] / cur[k] if cur[k] > 0.05 else float("nan")
            print(f"{k:18s} {prev[k]:9.1f} {cur[k]:9.1f} {ratio:5.2f}x")
        print(f"val mIoU (plain network) {100 * prev['_miou']:.2f} / {100 * cur['_miou']:.2f}; "
              f"bit-identical weights, picks and CRF scores: {same(prev, cur)}")
    use(CURRENT)


if __name__ == "__main__":
    main()
