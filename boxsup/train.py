"""Training: ``fit(config)`` alternates BoxSup's two steps, one epoch at a time.

    relabel (network fixed: one candidate per box)  ->  one epoch of SGD (labels fixed)  -> repeat

The first relabel happens before any training. Every supervision the paper uses goes through this
one loop; they differ only in where each training image's label map comes from:

- ``mask``: the ground-truth mask, fixed.            - ``box``: BoxSup, re-estimated every epoch.
- ``semi``: masks for a subset, BoxSup for the rest. - ``rect``/``grabcut``/``crfbox``: masks made
  once from the boxes (Table 2's baselines), fixed.  - ``extra``: an extra set (COCO at paper scale)
  added with boxes (BoxSup) or masks.

A run lives in ``<runs_dir>/<name>-<hash>/``: ``config.json``, ``last.pth`` (model, optimizer,
scheduler, epoch, RNG states and the current picks, i.e. the estimated labels), ``log.jsonl`` (one
line per epoch), ``snapshots/`` (estimated masks of a few training images, Fig. 3) and
``metrics.json`` once finished. Starting the same config again resumes from the last completed epoch;
every random choice of epoch e is seeded from (seed, e), so a resumed run ends exactly where an
uninterrupted one does on the CPU.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import relabel as rl
from .config import Config
from .data import load_dataset
from .data.sample import IGNORE, atomic_path, write_json_atomic
from .data.transforms import image_to_tensor, random_scale_crop_flip
from .models import build_model, param_groups, replace_classifier
from .predict import normalise_batch, resolve_device


def open_split(spec: str, split: str, data_root: str | None, masks: str | None = None):
    """``"toy:extra"`` style specs name a dataset and its split in one string."""
    if ":" in spec and not Path(spec).exists():
        spec, split = spec.split(":", 1)
    return load_dataset(spec, split, data_root, masks=masks)


@dataclass
class Item:
    """One training image: where it comes from and how its label map is obtained."""

    source: int   # index into ``Trainer.sources``
    index: int    # index into that dataset
    kind: str     # "mask" | "box" | "fixed"


class TrainSet(torch.utils.data.Dataset):
    """Augmented (image, label) crops; labels are looked up in ``labels`` (refreshed each epoch)."""

    def __init__(self, trainer: "Trainer", epoch: int, rep: int = 0):
        self.t, self.epoch, self.rep = trainer, epoch, rep

    def __len__(self) -> int:
        return len(self.t.items)

    def __getitem__(self, i: int):
        cfg = self.t.cfg
        s = self.t.sample(i)
        label = self.t.labels[i]
        rng = np.random.default_rng([cfg.seed, self.epoch, self.rep, i])
        img, lab = random_scale_crop_flip(s.image, label, cfg.crop, rng)
        return image_to_tensor(img), torch.from_numpy(lab.astype(np.int64))


class Trainer:
    """Holds the data sources, the training items, the candidate stores and the current labels."""

    def __init__(self, cfg: Config, progress: bool = True):
        self.cfg, self.progress = cfg, progress
        masks_needed = "required" if cfg.supervision in ("mask", "semi") else "optional"
        train = open_split(cfg.dataset, cfg.train_split, cfg.data_root, masks=masks_needed)
        self.sources = [train]
        self.classes = tuple(train.classes)
        kind = {"mask": "mask", "box": "box", "semi": "box"}.get(cfg.supervision, "fixed")
        self.items = [Item(0, i, kind) for i in range(len(train))]
        if cfg.supervision == "semi":
            n = len(train)
            count = int(round(cfg.semi_masks * n)) if cfg.semi_masks < 1 else int(cfg.semi_masks)
            keep = np.random.default_rng(cfg.seed).permutation(n)[:min(count, n)]
            for i in keep:
                self.items[i].kind = "mask"
        if cfg.extra != "none":
            extra = open_split(cfg.extra_dataset, "extra", cfg.data_root,
                               masks="required" if cfg.extra == "masks" else "optional")
            if tuple(extra.classes) != self.classes:
                raise ValueError(f"extra dataset {cfg.extra_dataset!r} has classes {extra.classes}, "
                                 f"the train set {self.classes}: they must match")
            self.sources.append(extra)
            self.items += [Item(1, i, "mask" if cfg.extra == "masks" else "box") for i in range(len(extra))]
        # small data (the toy benchmark) is decoded once and kept in memory
        total_px = sum(len(s) for s in self.sources) * 500 * 375
        self._cache = {} if total_px < 2e9 else None
        self.labels: list[np.ndarray] = [None] * len(self.items)  # type: ignore[list-item]
        self.stores = {}
        self._cand_cache: dict[int, tuple] = {}
        self._fresh: set[int] = set()  # items relabeled by this process in the last relabel
        self.fallbacks: dict[int, list] = {}
        self.picks: dict[int, np.ndarray] = {}

    def sample(self, i: int):
        it = self.items[i]
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = self.sources[it.source][it.index]
        if self._cache is not None:
            self._cache[i] = s
        return s

    # -- label maps that never change --------------------------------------------------------
    def init_fixed_labels(self) -> None:
        if any(it.kind == "fixed" for it in self.items):
            from .proposals.boxmasks import box_masks_to_label
        for i, it in enumerate(tqdm(self.items, desc="fixed labels", disable=not self.progress,
                                    mininterval=2)):
            s = self.sample(i)
            if it.kind == "mask":
                self.labels[i] = s.mask
            elif it.kind == "fixed":
                self.labels[i] = box_masks_to_label(s, self.cfg.supervision)

    # -- candidates --------------------------------------------------------------------------
    def prepare_candidates(self) -> None:
        from .proposals.store import proposals_for

        cfg = self.cfg
        needed = {it.source for it in self.items if it.kind == "box"}
        for src in needed:
            spec = cfg.dataset if src == 0 else cfg.extra_dataset
            split = cfg.train_split if src == 0 else "extra"
            if ":" in spec and not Path(spec).exists():
                spec, split = spec.split(":", 1)
            self.stores[src] = proposals_for(spec, split, cfg.proposals, cfg.data_root, cfg.proposals_dir,
                                             dataset=self.sources[src], workers=max(cfg.workers, 1))

    def candidates(self, i: int):
        """(incidence, tight boxes) of item i's candidates; kept in memory for small datasets."""
        if i in self._cand_cache:
            return self._cand_cache[i]
        it = self.items[i]
        cand = self.stores[it.source].load(self.sources[it.source].ids[it.index])
        out = (cand.incidence(), cand.boxes)
        if self._cache is not None and isinstance(out[0], rl.AtomSets):  # pixel matrices are too big
            self._cand_cache[i] = out
        return out

    @torch.inference_mode()
    def relabel(self, model: torch.nn.Module, device: torch.device, epoch: int,
                shard: tuple[int, int] = (0, 1)) -> dict:
        """Pick one candidate per box for every box-supervised image (of this shard: images
        ``rank::world`` under DDP; the caller gathers the labels); returns statistics."""
        from .proposals.boxmasks import fallback_mask

        cfg = self.cfg
        model.eval()
        box_items = [i for i, it in enumerate(self.items) if it.kind == "box"][shard[0]::shard[1]]
        self._fresh: set[int] = set()
        t0 = time.perf_counter()
        t_select = 0.0
        ious, fallbacks, boxes_seen = [], 0, 0
        bar = tqdm(total=len(box_items), desc=f"relabel {epoch}", disable=not self.progress, mininterval=2)
        for chunk in _same_size_chunks(box_items, self.sample, cfg.batch_size):
            samples = [self.sample(i) for i in chunk]
            x = normalise_batch(np.stack([s.image for s in samples]), device)  # uint8 to the device
            x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
            with _autocast(device):
                logps = F.log_softmax(model(x).float(), 1).cpu().numpy()
            ts = time.perf_counter()
            for i, s, logp in zip(chunk, samples, logps):
                mat, cand_boxes = self.candidates(i)
                # one stream per (epoch, image): picks do not depend on order, sharding or resume
                rng = np.random.default_rng([cfg.seed, epoch, 7, i])
                p = rl.select(logp, s.boxes, s.labels, mat, cand_boxes, cfg.k, cfg.lam, rng, cfg.er_norm)
                if p.fallback:
                    fb = self.fallbacks.setdefault(i, [None] * len(s.boxes))
                    for j in np.flatnonzero(p.index < 0):
                        if fb[j] is None:
                            fb[j] = fallback_mask(s.image, s.boxes[j])
                self.labels[i] = rl.paint(s.size, s.boxes, s.labels, p.index, mat, self.fallbacks.get(i))
                self.picks[i] = p.index
                self._fresh.add(i)
                fallbacks += p.fallback
                boxes_seen += len(s.boxes)
                if s.instances is not None and len(s.instances) == len(s.boxes):
                    ious.extend(rl.pick_iou(mat, p.index, s.instances).tolist())
            t_select += time.perf_counter() - ts
            bar.update(len(chunk))
        bar.close()
        return {"relabel_images": len(box_items), "relabel_boxes": boxes_seen, "fallbacks": fallbacks,
                "pick_mIoU": float(np.nanmean(ious)) if np.isfinite(ious).any() else None,
                "pick_iou_sum": float(np.nansum(ious)), "pick_iou_n": int(np.isfinite(ious).sum()),
                "relabel_s": time.perf_counter() - t0, "relabel_select_s": t_select}


def _same_size_chunks(items: list[int], sample, size: int):
    """Consecutive runs of same-sized images, at most ``size`` long (one forward pass each)."""
    chunk: list[int] = []
    shape = None
    for i in items:
        sh = sample(i).size
        if chunk and (sh != shape or len(chunk) == size):
            yield chunk
            chunk = []
        chunk.append(i)
        shape = sh
    if chunk:
        yield chunk


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_one_epoch(model, optimizer, loader, device, epoch: int, progress: bool = True) -> float:
    model.train()
    total, n = 0.0, 0
    for x, y in tqdm(loader, desc=f"epoch {epoch}", disable=not progress, leave=False, mininterval=2):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            out = model(x)
        loss = F.cross_entropy(out.float(), y, ignore_index=IGNORE)  # only 255 is ignored
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(x)
        n += len(x)
    return total / max(n, 1)


def _dist_setup(cfg: Config) -> tuple[int, int, torch.device]:
    """(rank, world size, device). DDP only under torchrun (WORLD_SIZE > 1), never required."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(cfg.device)
    import torch.distributed as dist

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _gather_relabel(tr: "Trainer", stats: dict, world: int) -> dict:
    """Every rank relabeled its shard; share the label maps and picks, and merge the statistics."""
    if world == 1:
        return stats
    import torch.distributed as dist

    mine = {i: (tr.labels[i], tr.picks[i]) for i in tr.picks if tr.labels[i] is not None and i in tr._fresh}
    parts: list = [None] * world
    dist.all_gather_object(parts, (mine, stats))
    merged = {k: 0 for k in ("relabel_images", "relabel_boxes", "fallbacks", "pick_iou_sum", "pick_iou_n")}
    for labels, st in parts:
        for i, (lab, pk) in labels.items():
            tr.labels[i], tr.picks[i] = lab, pk
        for k in merged:
            merged[k] += st[k]
    merged["pick_mIoU"] = merged["pick_iou_sum"] / merged["pick_iou_n"] if merged["pick_iou_n"] else None
    merged["relabel_s"] = max(st["relabel_s"] for _, st in parts)
    merged["relabel_select_s"] = max(st["relabel_select_s"] for _, st in parts)
    return merged


def run_dir_for(cfg: Config) -> Path:
    return Path(cfg.runs_dir) / cfg.run_name()


def _save_atomic(obj, path: Path) -> None:
    tmp = atomic_path(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _init_weights(model: torch.nn.Module, run: str, num_classes: int) -> None:
    """Start from a finished run's weights; a different label set gets a fresh classifier."""
    path = Path(run) / "last.pth"
    if not path.is_file():
        raise FileNotFoundError(f"init_from={run!r}: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    cls_w = [k for k in state if k.endswith("classifier.weight")]
    if cls_w and state[cls_w[0]].shape[0] != num_classes:
        replace_classifier(model, state[cls_w[0]].shape[0])
        model.load_state_dict(state)
        replace_classifier(model, num_classes)
    else:
        model.load_state_dict(state)


def fit(cfg: Config, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume, or reuse) the run of ``cfg``; returns its run folder.

    ``stop_after``: return after that many epochs of this call (tests use it to simulate a kill).
    """
    out = run_dir_for(cfg)
    if (out / "metrics.json").is_file():
        return out
    rank, world, device = _dist_setup(cfg)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", cfg.to_dict())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    tr = Trainer(cfg, progress)
    model = build_model(cfg.arch, len(tr.classes), cfg.pretrained, cfg.data_root)
    if cfg.init_from:
        _init_weights(model, cfg.init_from, len(tr.classes))
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = model  # what relabel, checkpoints and evaluation use; DDP only wraps the training step
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(param_groups(net, cfg.lr, cfg.weight_decay, cfg.head_lr_mult), lr=cfg.lr,
                                momentum=cfg.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=0.1)
    start = 0
    ckpt = out / "last.pth"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["epoch"]
        tr.picks = state.get("picks", {})
    tr.init_fixed_labels()
    if any(it.kind == "box" for it in tr.items):
        tr.prepare_candidates()
    done = 0
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        stats = _gather_relabel(tr, tr.relabel(net, device, epoch, (rank, world)), world) if tr.stores else {}
        if rank == 0:
            _snapshot(out, tr, epoch, cfg)
        loss = 0.0
        for rep in range(cfg.passes):  # passes over the data between two relabels (paper: 1)
            torch.manual_seed(cfg.seed * 100003 + epoch * 101 + rep)  # dropout and shuffling
            data = TrainSet(tr, epoch, rep)
            drop = len(tr.items) > cfg.batch_size * world
            if world > 1:  # each rank takes its share of the same epoch-seeded permutation
                sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=True, seed=cfg.seed,
                                                              drop_last=drop)
                sampler.set_epoch(epoch * cfg.passes + rep)
                loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, sampler=sampler,
                                                     drop_last=drop, num_workers=cfg.workers,
                                                     pin_memory=device.type == "cuda")
            else:
                loader = torch.utils.data.DataLoader(
                    data, batch_size=cfg.batch_size, shuffle=True, drop_last=drop, num_workers=cfg.workers,
                    pin_memory=device.type == "cuda",
                    generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 101 + rep))
            loss += train_one_epoch(model, optimizer, loader, device, epoch, progress and rank == 0) / cfg.passes
        scheduler.step()
        if rank != 0:
            continue
        _save_atomic({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "picks": tr.picks,
                      "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                              "python": random.getstate()},
                      "config": cfg.to_dict()}, ckpt)
        line = {"epoch": epoch + 1, "loss": loss, "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0, **stats}
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        done += 1
        if stop_after is not None and done >= stop_after and epoch + 1 < cfg.epochs:
            return out
    if rank != 0:
        return out
    from .evaluate import evaluate

    # metrics.json is the plain FCN at the config's scales; the dense CRF and other protocols are
    # run by `boxsup evaluate`, so use_crf never changes what a run folder holds
    ev = load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root)
    res = evaluate(net, ev, len(tr.classes), scales=cfg.eval_scales, device=str(device),
                   class_names=tr.classes)
    write_json_atomic(out / "metrics.json", {"config": cfg.to_dict(), "split": cfg.eval_split, **res})
    return out


def _snapshot(out: Path, tr: Trainer, epoch: int, cfg: Config) -> None:
    """Keep the estimated masks of a few fixed training images (Fig. 3)."""
    ids = [i for i in cfg.snapshot_ids if i < len(tr.items)]
    if not ids or tr.labels[ids[0]] is None:
        return
    path = out / "snapshots" / f"epoch_{epoch:03d}.npz"
    path.parent.mkdir(exist_ok=True)
    tmp = atomic_path(path)
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **{f"item_{i}": tr.labels[i] for i in ids})
    os.replace(tmp, path)


def load_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, Config]:
    """The network of a run folder (its last checkpoint) and its config."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: no config.json")
    cfg = Config.from_dict(json.loads(cfg_path.read_text()))
    ckpt = run_dir / "last.pth"
    if not ckpt.is_file():
        raise FileNotFoundError(f"run {run_dir} has no checkpoint yet ({ckpt})")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    n = state["model"][[k for k in state["model"] if k.endswith("classifier.weight")][0]].shape[0]
    model = build_model(cfg.arch, n, pretrained=False)
    model.load_state_dict(state["model"])
    return model.eval(), cfg
