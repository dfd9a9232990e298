"""The paper's experiments as functions the notebooks call: each trains (or reuses) the runs it needs
through ``run`` and returns tidy pandas tables. A run is a Config; finished runs are cached under
``runs/<name>-<hash>/`` and shared by every notebook that needs them (Table 1's "box" run is Table 2's
"ours")."""
from __future__ import annotations

import json
import time
from pathlib import Path

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


def run(cfg: Config, progress: bool = True) -> dict:
    """Train (or resume, or reuse) ``cfg``; returns its metrics.json contents plus the run dir."""
    from .train import fit

    out = fit(cfg, progress=progress)
    m = json.loads((out / "metrics.json").read_text())
    m["run_dir"] = str(out)
    return m


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
        (f"_trimap{len(trimap_widths)}" if trimap_widths else "")
    path = run_dir / f"eval-{split}-{tag}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if use_crf:
        require_crf()
    ds = load_dataset(cfg.dataset, split, cfg.data_root)
    res = evaluate(model, ds, len(ds.classes), scales=scales, crf=CRFParams() if use_crf else None,
                   device=cfg.device, class_names=tuple(ds.classes), trimap_widths=trimap_widths)
    write_json_atomic(path, _json_safe(res))
    return res


def _final_pick_quality(run_dir: str | Path) -> float | None:
    lines = (Path(run_dir) / "log.jsonl").read_text().splitlines()
    last = json.loads(lines[-1]) if lines else {}
    return last.get("pick_mIoU")


def box_mask_quality(cfg: Config, method: str, max_images: int = 100) -> float:
    """Mean IoU of the masks a fixed box-derived method makes on train boxes vs the true instances."""
    import numpy as np

    from .proposals.boxmasks import box_masks

    ds = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root)
    ious = []
    for i in range(min(max_images, len(ds))):
        s = ds[i]
        if s.instances is None:
            continue
        for m, g in zip(box_masks(s.image, s.boxes, method), s.instances):
            union = (m | g).sum()
            ious.append((m & g).sum() / union if union else np.nan)
    return float(np.nanmean(ious)) if ious else float("nan")


# Table 2's rows: (row name, config changes, paper mIoU)
TABLE2_ROWS = [
    ("rectangles", dict(supervision="rect"), 52.3),
    ("GrabCut", dict(supervision="grabcut"), 55.2),
    ("CRF-box (WSSL-style)", dict(supervision="crfbox"), 58.5),
    ("ours w/o sampling (k=1)", dict(supervision="box", k=1), 59.7),
    ("ours (top-5 sampling)", dict(supervision="box", k=5), 62.0),
]
TABLE2_ORDER = "rect < GrabCut < CRF-box < ours w/o sampling <= ours"


def table2(cfg: Config, progress: bool = True) -> pd.DataFrame:
    """Masks estimated from the boxes (no ground-truth mask used): val mIoU of each way of turning
    boxes into training labels, next to the paper, with the quality of the training labels."""
    rows = []
    for name, change, paper in TABLE2_ROWS:
        c = cfg.replace(**change)
        m = run(c, progress)
        miou = evaluate_run(m["run_dir"], use_crf=True)["mIoU"] if cfg.use_crf else m["mIoU"]
        if c.supervision == "box":
            quality = _final_pick_quality(m["run_dir"])
        else:
            quality = box_mask_quality(c, c.supervision)
        rows.append({"masks": name, "mIoU": 100 * miou, "paper mIoU": paper,
                     "training-mask IoU vs truth": 100 * quality if quality is not None else None,
                     "run": Path(m["run_dir"]).name})
    return pd.DataFrame(rows).set_index("masks")


def ordering_verdict(values: list[float], names: list[str], strict: list[bool]) -> str:
    """Which consecutive pairs of an expected ordering hold (strict '<' or '<=' within 0.5 point)."""
    broken = []
    for a, b, va, vb, st in zip(names, names[1:], values, values[1:], strict):
        ok = va < vb if st else va <= vb + 0.5
        if not ok:
            broken.append(f"{a} ({va:.1f}) {'<' if st else '<='} {b} ({vb:.1f})")
    return "ordering holds" if not broken else "does not hold: " + "; ".join(broken)
