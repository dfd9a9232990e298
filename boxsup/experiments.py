"""What the notebooks call around the training runs: parameter validation, ``run`` (train, resume or
reuse a run), cached evaluation of finished runs, and the quality of training labels and proposals.
A run is a Config; finished runs are cached under ``runs/<name>-<hash>/`` and shared by every notebook
that needs them. The tables themselves are in ``tables.py``, the figures in ``figures.py``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config
from .data import load_dataset
from .data.sample import write_json_atomic
from .data.stats import summary

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata_root() -> Path | None:
    """``../shared/realdata`` next to the repository, when present (never copied into it)."""
    return REALDATA if REALDATA.is_dir() else None


def params_config(**params) -> Config:
    """Validate notebook parameters (bad values fail here, before any compute)."""
    params = {k: v for k, v in params.items() if v is not None or k in ("epochs",)}
    if params.get("epochs") is None:
        params.pop("epochs", None)
    return Config(**params)


RUNS_USED: list[str] = []  # run folders this process has used, in order (recorded in metrics.json)


def run(cfg: Config, progress: bool = True) -> dict:
    """Train (or resume, or reuse) ``cfg``; returns its metrics.json contents plus the run dir."""
    from .train import fit

    out = fit(cfg, progress=progress)
    m = json.loads((out / "metrics.json").read_text())
    m["run_dir"] = str(out)
    if str(out) not in RUNS_USED:
        RUNS_USED.append(str(out))
    return m


def training_seconds(run_dir: str | Path) -> float:
    """Wall time a run spent training and relabeling (the sum over its log.jsonl)."""
    return sum(d.get("seconds", 0.0) for d in read_log(run_dir))


def _cached_json(path: Path, compute):
    """``compute()``'s JSON-able result, kept in ``path`` so that re-rendering a report is cheap."""
    if path.is_file():
        return json.loads(path.read_text())
    out = compute()
    write_json_atomic(path, out)
    return out


def dataset_overview(cfg: Config) -> tuple[pd.DataFrame, dict]:
    """Split sizes, objects per image, image size and box fill: the toy benchmark's splits and,
    when present, the real photos in ../shared/realdata, side by side."""
    from .data.synthetic import default_data_root, ensure_toy

    t0 = time.perf_counter()
    root = ensure_toy(cfg.data_root)
    gen = json.loads((default_data_root(root) / "toy.json").read_text()).get("seconds")
    rows, fills = [], {}
    for name, split in (("toy", "train"), ("toy", "extra"), ("toy", "val"), ("toy", "test"),
                        ("toy-context", "train"), ("toy-context", "val")):
        s = summary(load_dataset(name, split, cfg.data_root))
        rows.append({"dataset": f"{name}/{split}", **{k: v for k, v in s.items() if k != "box_fill_per_class"}})
        if (name, split) == ("toy", "train"):
            fills["toy train"] = s["box_fill_per_class"]
    real = realdata_root()
    if real is not None:
        from .data import VOCLayout

        for sub, split in (("weizmann_horse", "train"), ("coco128_seg", "list_voc_classes.txt")):
            if (real / sub).is_dir():
                ds = VOCLayout(real / sub, split, masks="optional")
                s = summary(ds)
                rows.append({"dataset": f"realdata/{sub}", **{k: v for k, v in s.items() if k != "box_fill_per_class"}})
                fills[f"real {sub}"] = {"(all classes)": s["mean_box_fill"]}
    df = pd.DataFrame(rows).set_index("dataset")
    info = {"generation_seconds": gen, "overview_seconds": time.perf_counter() - t0, "box_fill": fills}
    return df, info


def evaluate_run(run_dir: str | Path, split: str | None = None, scales: tuple[float, ...] = (1.0,),
                 use_crf: bool = False, trimap_widths: tuple[int, ...] | None = None) -> dict:
    """Evaluate a finished run on a split (optionally multi-scale and/or with the dense CRF),
    cached as ``eval-<split>-<tag>.json`` in the run folder (the same files `boxsup evaluate` writes)."""
    from .crf import CRFParams, require_crf
    from .evaluate import _json_safe, evaluate
    from .train import load_model

    run_dir = Path(run_dir)
    model, cfg = load_model(run_dir)
    split = split or cfg.eval_split
    tag = "s" + "-".join(f"{s:g}" for s in scales) + ("_crf" if use_crf else "") + \
        ("_trimap" + "-".join(map(str, trimap_widths)) if trimap_widths else "")
    def compute() -> dict:
        if use_crf:
            require_crf()
        ds = load_dataset(cfg.dataset, split, cfg.data_root)
        return _json_safe(evaluate(model, ds, len(ds.classes), scales=scales, crf=CRFParams() if use_crf else None,
                                   device=cfg.device, class_names=tuple(ds.classes), trimap_widths=trimap_widths))

    return _cached_json(run_dir / f"eval-{split}-{tag}.json", compute)


def trimap_rows(run_dir: str | Path, widths: tuple[int, ...], use_crf: bool = False, name: str = "") -> pd.DataFrame:
    """Fig. 4: tidy (band_width, region, method, mIoU) rows of a finished run on its eval split."""
    res = evaluate_run(run_dir, trimap_widths=tuple(widths), use_crf=use_crf)
    df = pd.DataFrame(res["trimap"], columns=["band_width", "region", "method", "mIoU"])
    df["method"] = name or Path(run_dir).name
    return df


def predict_labels(run_dir: str | Path, indices: list[int], use_crf: bool = False,
                   split: str | None = None) -> list[np.ndarray]:
    """Predicted label maps of ``dataset[i]``, i in ``indices``, of a finished run on its eval split
    (or ``split``) (Fig. 5)."""
    from .crf import CRFParams, crf_labels, require_crf
    from .predict import predict_probs
    from .train import load_model

    model, cfg = load_model(run_dir)
    if use_crf:
        require_crf()
    ds = load_dataset(cfg.dataset, split or cfg.eval_split, cfg.data_root)
    out = []
    for i in indices:
        s = ds[i]
        p = predict_probs(model, s.image, cfg.eval_scales, device=cfg.device)
        out.append(crf_labels(s.image, p, CRFParams()) if use_crf else p.argmax(0).astype(np.uint8))
    return out


def read_log(run_dir: str | Path) -> list[dict]:
    """The run's log.jsonl, one dict per epoch."""
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines() if line]


def final_pick_quality(run_dir: str | Path) -> float | None:
    """Mean IoU of BoxSup's picks with the true masks at the last relabel (None if not measured)."""
    log = read_log(run_dir)
    return log[-1].get("pick_mIoU") if log else None


def proposal_quality(cfg: Config, max_images: int = 200) -> dict:
    """ABO, recall at mask IoU 0.5 / 0.7 and candidates per image of ``cfg.proposals`` on the
    first ``max_images`` training images that have instance masks (the store is computed if missing)."""
    from .proposals.quality import ignore_region, instance_masks, mask_iou_matrix, summarize
    from .proposals.store import proposals_for

    ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root, masks="optional")
    store = proposals_for(cfg.dataset, cfg.train_split, cfg.proposals, cfg.data_root, cfg.proposals_dir,
                          dataset=ds, workers=max(cfg.workers, 1))
    def compute() -> dict:
        best, counts = [], []
        for i in range(min(max_images, len(ds))):
            s = ds[i]
            if s.mask is None or not len(s.boxes):
                continue
            gt = instance_masks(s)
            cand = store.load(s.image_id)
            counts.append(len(cand))
            best.append(mask_iou_matrix(cand.rles, gt, ignore_region(s)).max(0) if len(cand) else np.zeros(len(gt)))
        if not best:
            raise ValueError(f"{cfg.dataset}/{cfg.train_split}: no image with masks to measure proposals on")
        return summarize(best, counts)

    return _cached_json(store.root / f"quality-{max_images}.json", compute)  # beside the candidates


def box_mask_quality(cfg: Config, method: str, max_images: int = 100) -> float:
    """Mean IoU of the masks a fixed box-derived method makes on train boxes vs the true instances."""
    from .proposals.boxmasks import box_masks
    from .proposals.store import cache_root, store_dir

    def compute() -> dict:
        ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root)
        ious = []
        for i in range(min(max_images, len(ds))):
            s = ds[i]
            if s.instances is None:
                continue
            for m, g in zip(box_masks(s.image, s.boxes, method), s.instances):
                union = (m | g).sum()
                ious.append((m & g).sum() / union if union else np.nan)
        return {"miou": float(np.nanmean(ious)) if ious else float("nan"), "boxes": len(ious)}

    where = store_dir(cache_root(cfg.data_root, cfg.proposals_dir), cfg.dataset, cfg.train_split, method)
    return _cached_json(where / f"quality-{max_images}.json", compute)["miou"]


def ordering_verdict(values: list[float], names: list[str], strict: list[bool]) -> str:
    """Which consecutive pairs of an expected ordering hold (strict '<' or '<=' within 0.5 point)."""
    broken = []
    for a, b, va, vb, st in zip(names, names[1:], values, values[1:], strict):
        ok = va < vb if st else va <= vb + 0.5
        if not ok:
            broken.append(f"{a} ({va:.1f}) {'<' if st else '<='} {b} ({vb:.1f})")
    return "ordering holds" if not broken else "does not hold: " + "; ".join(broken)


def pick_trend(pick_iou: dict[int, float], epochs: list[int]) -> tuple[dict[str, float], str]:
    """Fig. 3: (headline, verdict) for the picks' mean IoU (in %) at the shown epochs; a change of
    more than 2 points between the first and the last shown epoch counts as a trend."""
    shown = [e for e in epochs if e in pick_iou]
    if not shown:
        raise ValueError(f"no pick quality logged at epochs {epochs}")
    first, last = pick_iou[shown[0]], pick_iou[shown[-1]]
    trend = "improve" if last > first + 2 else "get worse" if last < first - 2 else "barely change"
    path = " -> ".join(f"{pick_iou[e]:.1f}" for e in shown)
    return ({f"pick IoU epoch {e}": pick_iou[e] for e in shown},
            f"picks {trend} over training: mean IoU {path} at epochs {', '.join(map(str, shown))} (paper: improve)")
