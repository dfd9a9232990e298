"""The paper's Figures 3-5 and the data page: one data function and one verdict function each, as
``paper`` has for the tables (``figures`` draws what these return; it reads no files).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from .atomic import read_json
from .config import Config
from .data import VOCLayout, load_dataset
from .data.stats import summary
from .data.synthetic import default_data_root, ensure_toy
from .evaluate import crf_scores, evaluate_run, holdout_exclusion, predict_run
from .experiments import realdata_root
from .label_quality import pool_quality, run_pick_quality
from .results import Result, crf_params, score_column, use_run
from .runs import load_snapshot, read_log, snapshot_epochs


# --- the data page -----------------------------------------------------------------------------------
def _samples(dataset, indices: Sequence[int]) -> tuple[tuple[str, ...], list]:
    """(class names, samples) of the given indices that exist (small test datasets have fewer)."""
    return tuple(dataset.classes), [dataset[i] for i in indices if i < len(dataset)]


def dataset_overview(cfg: Config) -> Result:
    """Split sizes, objects per image, image size and box fill: the toy benchmark's splits and,
    when present, the real photos in ../shared/realdata, side by side; plus a few samples of each."""
    t0 = time.perf_counter()
    root = ensure_toy(cfg.data_root)
    gen = (read_json(default_data_root(root) / "toy.json") or {}).get("seconds")
    rows, fills = [], {}
    for name, split in (("toy", "train"), ("toy", "extra"), ("toy", "val"), ("toy", "test"),
                        ("toy-context", "train"), ("toy-context", "val")):
        s = summary(load_dataset(name, split, cfg.data_root))
        rows.append({"dataset": f"{name}/{split}", **{k: v for k, v in s.items() if k != "box_fill_per_class"}})
        if (name, split) == ("toy", "train"):
            fills["toy train"] = s["box_fill_per_class"]
    samples = {"toy train": _samples(load_dataset("toy", "train", cfg.data_root), range(6)),
               "toy context (labelled stuff behind the objects)":
                   _samples(load_dataset("toy-context", "train", cfg.data_root), range(6))}
    real = realdata_root()
    # (folder, split measured, split shown): the horses' val images are shown, their train measured
    for sub, split, shown in (("weizmann_horse", "train", "val"),
                              ("coco128_seg", "list_voc_classes.txt", "list_voc_classes.txt")):
        if real is not None and (real / sub).is_dir():
            s = summary(VOCLayout(real / sub, split, masks="optional"))
            rows.append({"dataset": f"realdata/{sub}", **{k: v for k, v in s.items() if k != "box_fill_per_class"}})
            fills[f"real {sub}"] = {"(all classes)": s["mean_box_fill"]}
            samples[f"{sub} (real)"] = _samples(VOCLayout(real / sub, shown), range(5))
    stats = pd.DataFrame(rows).set_index("dataset")
    info = {"generation_seconds": gen, "overview_seconds": time.perf_counter() - t0, "box_fill": fills}
    train = stats.loc["toy/train"]
    head = {"toy train images": int(train["images"]), "objects / image": float(train["objects_per_image"]),
            "mean box fill": float(train["mean_box_fill"])}
    return Result(stats, head, dataset_verdict(stats), [],
                  {"stats": stats.reset_index().to_dict("records"), "info": info},
                  data={"samples": samples, "box_fill": fills, "realdata": real})


def dataset_verdict(stats: pd.DataFrame) -> str:
    """The data page checks no claim of the paper; it says the benchmark is there."""
    return "benchmark generated"


# --- Figure 3: BoxSup's estimated masks across epochs -------------------------------------------
def fig3(cfg: Config, shown_epochs: Sequence[int] = (1, 5, 20), items: Sequence[int] = (0, 1, 2, 3),
         progress: bool = True) -> Result:
    """BoxSup's labels of a few training images at the shown epochs (plus the last one), and the
    mean IoU of all picks with the true masks per epoch, with (k=5) and without (k=1) sampling, as
    the training log has it (255 pixels counted as misses); beside it, on the one label metric (255
    ignored, all training images): the final picks, the Eo-only picks and the oracle ceiling.
    ``data["classes"]``: the class names (background first) for the class-colour key."""
    if any(int(e) < 1 for e in shown_epochs):
        raise ValueError(f"shown_epochs={list(shown_epochs)!r}; epochs count from 1")
    used: list[str] = []
    box = use_run(used, cfg.replace(supervision="box"), progress)
    k1 = use_run(used, cfg.replace(supervision="box", k=1), progress)
    epochs = snapshot_epochs(box, tuple(shown_epochs))
    snaps = {e: load_snapshot(box, e) for e in epochs}
    train = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root)
    items = [i for i in items if i in snaps[epochs[0]]]
    logs = {"BoxSup (k=5)": read_log(box), "BoxSup w/o sampling (k=1)": read_log(k1)}
    curves = pd.DataFrame({name: pd.Series({d["epoch"]: 100 * d["pick_mIoU"] for d in log
                                            if d.get("pick_mIoU") is not None}, dtype=float)
                           for name, log in logs.items()})
    curves.index.name = "epoch"
    q = {d["epoch"]: 100 * d["pick_mIoU"] for d in logs["BoxSup (k=5)"] if d.get("pick_mIoU") is not None}
    head, verdict = fig3_verdict(q, epochs)
    levels = fig3_levels(cfg, box, k1)
    verdict += "; " + fig3_ceiling_verdict(levels)
    return Result(curves, head, verdict, used, {"pick_iou": q, "levels": levels},
                  data={"samples": [train[i] for i in items], "levels": levels, "classes": tuple(train.classes),
                        "labels": {e: [snaps[e][i] for i in items] for e in epochs}})


def fig3_levels(cfg: Config, box, k1) -> dict[str, float]:
    """The horizontal lines of Figure 3 (%, 255 ignored, all training images): the final picks of
    the k=5 and k=1 runs, the Eo-only picks and the ceiling (the oracle network's picks)."""
    q = pool_quality(cfg.replace(supervision="box"), None)
    pct = {k: 100 * v if v is not None else float("nan") for k, v in q.items()}
    final = {name: run_pick_quality(out, None)["miou"] for name, out in (("k=5", box), ("k=1", k1))}
    return {"final picks k=5": 100 * final["k=5"] if final["k=5"] is not None else float("nan"),
            "final picks k=1": 100 * final["k=1"] if final["k=1"] is not None else float("nan"),
            "Eo-only k=5": pct["eo_k5"], "Eo-only k=1": pct["eo_k1"],
            "ceiling k=5": pct["oracle_k5"], "ceiling k=1": pct["oracle_k1"]}


def fig3_ceiling_verdict(levels: dict[str, float]) -> str:
    """Where BoxSup's final picks stand between Eo alone and the oracle ceiling (same k)."""
    return "; ".join(f"final picks k={k} {levels[f'final picks k={k}']:.1f} vs Eo-only {levels[f'Eo-only k={k}']:.1f}"
                     f" and ceiling {levels[f'ceiling k={k}']:.1f}" for k in (5, 1))


def fig3_verdict(pick_iou: dict[int, float], epochs: list[int]) -> tuple[dict[str, float], str]:
    """(headline, verdict) for the picks' mean IoU (in %) at the shown epochs; a change of more
    than 2 points between the first and the last shown epoch counts as a trend."""
    shown = [e for e in epochs if e in pick_iou]
    if not shown:
        raise ValueError(f"no pick quality logged at epochs {epochs}")
    first, last = pick_iou[shown[0]], pick_iou[shown[-1]]
    trend = "improve" if last > first + 2 else "get worse" if last < first - 2 else "barely change"
    path = " -> ".join(f"{pick_iou[e]:.1f}" for e in shown)
    return ({f"pick IoU epoch {e}": pick_iou[e] for e in shown},
            f"picks {trend} over training: mean IoU {path} at epochs {', '.join(map(str, shown))} (paper: improve)")


# --- Figure 4: boundary vs interior (trimap) ------------------------------------------------------
def _trimap_frame(run_dir, widths: tuple[int, ...], cfg: Config, name: str, progress: bool) -> pd.DataFrame:
    """Tidy (band_width, region, method, mIoU) rows of a finished run on its eval split (after the
    CRF tuned for it when ``use_crf``; hold-out images left out)."""
    res = evaluate_run(run_dir, trimap_widths=widths, crf=crf_params(cfg, run_dir), progress=progress,
                       exclude=holdout_exclusion(cfg, cfg.eval_split))
    df = pd.DataFrame(res["trimap"], columns=["band_width", "region", "method", "mIoU"])
    df["method"] = name
    return df


def fig4(cfg: Config, band_widths: Sequence[int] = (1, 2, 4, 8, 12, 16), progress: bool = True) -> Result:
    """mIoU inside (boundary) and beyond (interior) bands around the true boundaries, for masks only
    and masks + the extra set's boxes; the table is the gain of the extra boxes (points)."""
    widths = tuple(int(w) for w in band_widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"band_widths={list(band_widths)!r}; need positive widths")
    used: list[str] = []
    masks = use_run(used, cfg.replace(supervision="mask"), progress)
    plus = use_run(used, cfg.replace(supervision="mask", extra="boxes"), progress)
    df = pd.concat([_trimap_frame(masks, widths, cfg, "masks only", progress),
                    _trimap_frame(plus, widths, cfg, "masks + extra boxes", progress)])
    wide = df.pivot_table(index=["band_width", "region"], columns="method", values="mIoU") * 100
    wide["gain"] = wide["masks + extra boxes"] - wide["masks only"]
    gain = wide["gain"].unstack("region")
    head, verdict = fig4_verdict(gain, widths[len(widths) // 2])
    return Result(gain, head, verdict, used, {"gain": gain.reset_index().to_dict("records")}, data={"trimap": df})


def fig4_verdict(gain: pd.DataFrame, width: int) -> tuple[dict[str, float], str]:
    """(headline, verdict) at one band width: does the interior gain more than the boundary?"""
    inner, edge = gain.loc[width, "interior"], gain.loc[width, "boundary"]
    verdict = (f"at band width {width}: extra boxes change interior mIoU by {inner:+.1f} and boundary mIoU by "
               f"{edge:+.1f}; " + ("interior gains more (as in the paper)" if inner > edge
                                   else "interior does not gain more (unlike the paper)"))
    return {f"interior gain (w={width})": float(inner), f"boundary gain (w={width})": float(edge)}, verdict


# --- Figure 5: qualitative results ----------------------------------------------------------------
def fig5(cfg: Config, images: Sequence[int] = (0, 1, 2, 3, 4, 5), progress: bool = True) -> Result:
    """Predictions of the box-, mask- and semi-supervised networks on a few validation images
    (after each network's tuned dense CRF when ``cfg.use_crf``), and their val mIoU under the same
    protocol (at paper scale the shown images may be CRF hold-out images; the scores leave those out).
    ``data["classes"]``: the class names (background first) for the class-colour key."""
    if not len(images) or min(images) < 0:
        raise ValueError(f"images={list(images)!r}; need indices >= 0")
    used: list[str] = []
    trained = {name: use_run(used, cfg.replace(supervision=name), progress) for name in ("box", "mask", "semi")}
    ds = load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root)
    shown = [i for i in images if i < len(ds)]
    preds = {name: predict_run(out, shown, crf=crf_params(cfg, out)) for name, out in trained.items()}
    col = score_column(cfg)
    scores = {name: crf_scores(out, use_crf=cfg.use_crf, progress=progress)[col] for name, out in trained.items()}
    samples = [ds[i] for i in shown]
    return Result(pd.DataFrame({"val mIoU": scores}), scores, fig5_verdict(scores), used,
                  data={"images": [s.image for s in samples], "truths": [s.mask for s in samples],
                        "predictions": preds, "classes": tuple(ds.classes)})


def fig5_verdict(scores: dict[str, float]) -> str:
    """The paper only shows pictures; the verdict lists the scores behind them."""
    return "val mIoU " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items())

