"""Experiments: a run is a Config. ``train_run`` trains (or resumes, or reuses) it and scores the
finished network; runs are cached under ``runs/<name>-<hash>/`` and shared by every notebook that
needs them. Also here: the quality of training labels that involves no network (the proposals'
best overlaps, the box-derived masks), cached beside the candidates.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import runs
from .atomic import cached_json
from .config import Config
from .data import load_dataset
from .evaluate import evaluate
from .proposals.boxmasks import box_masks
from .proposals.quality import ignore_region, instance_masks, mask_iou_matrix, summarize
from .proposals.store import cache_root, proposals_for, store_dir
from .train import fit

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata_root() -> Path | None:
    """``../shared/realdata`` next to the repository, when present (never copied into it)."""
    return REALDATA if REALDATA.is_dir() else None


def train_run(cfg: Config, progress: bool = True) -> Path:
    """The finished run of ``cfg``: trained (resumed, or reused from the cache) and scored on its
    eval split (``metrics.json``: the plain network at the config's scales). Returns its folder."""
    out = fit(cfg, progress=progress)
    if int(os.environ.get("RANK", "0")) != 0 or runs.read_metrics(out) is not None:
        return out  # under torchrun only rank 0 scores the network
    state = runs.load_checkpoint(out)
    model = runs.model_from_checkpoint(state, cfg, out)
    ev = load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root)
    res = evaluate(model, ev, len(ev.classes), scales=cfg.eval_scales, device=cfg.device,
                   class_names=tuple(ev.classes), progress=progress)
    runs.write_metrics(out, {"config": cfg.to_dict(), "split": cfg.eval_split, "start": state.get("start"), **res})
    return out


def proposal_quality(cfg: Config, max_images: int = 200) -> dict:
    """ABO, recall at mask IoU 0.5 / 0.7 and candidates per image of ``cfg.proposals`` on the
    first ``max_images`` training images that have instance masks (the store is computed if missing)."""
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

    return cached_json(store.root / f"quality-{max_images}.json", compute)  # beside the candidates


def box_mask_quality(cfg: Config, method: str, max_images: int = 100) -> float:
    """Mean IoU of the masks a fixed box-derived method makes on train boxes vs the true instances."""
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
    return cached_json(where / f"quality-{max_images}.json", compute)["miou"]
