"""Training: ``fit(config)`` alternates BoxSup's two steps, one epoch at a time.

    relabel (network fixed: one candidate per box)  ->  ``passes`` passes of SGD (labels fixed)  -> repeat

The first relabel happens before any training. Every supervision goes through this one loop; they
differ only in where each image's label map comes from (``labels.py``). The run folder is written
through ``runs.py``; starting the same config again resumes after the last finished epoch, and since
every random choice of epoch e is seeded from (seed, e), a resumed run ends exactly where an
uninterrupted one does on the CPU. ``fit`` only trains: ``experiments.train_run`` evaluates the
finished network and writes ``metrics.json``.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import runs
from .atomic import locked
from .config import Config
from .data.sample import IGNORE
from .data.transforms import image_to_tensor, random_scale_crop_flip
from .labels import TrainingImages
from .models import build_model, describe_start, param_groups, replace_classifier
from .predict import resolve_device
from .pretrain import pretrain_toyfcn
from .relabel import autocast, relabel_epoch

# Seeds of the two torch streams of each pass (dropout; the loader's shuffling): seed * SALT +
# epoch * 101 + pass, with distinct prime salts so the streams never coincide across seeds.
DROPOUT_SALT, SHUFFLE_SALT = 100003, 7919


class Crops(torch.utils.data.Dataset):
    """Augmented (image, label) crops of the training images with their current label maps."""

    def __init__(self, images: TrainingImages, epoch: int, rep: int = 0):
        self.images, self.epoch, self.rep = images, epoch, rep

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        cfg = self.images.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, self.rep, i])
        img, lab = random_scale_crop_flip(self.images.sample(i).image, self.images.labels[i], cfg.crop, rng)
        return image_to_tensor(img), torch.from_numpy(lab.astype(np.int64))


def train_one_epoch(model, optimizer, loader, device, epoch: int, progress: bool = True,
                    precision: str = "auto") -> float:
    """One pass of SGD over ``loader``; returns the mean loss. The loss ignores only 255."""
    model.train()
    # Earlier versions wrapped the loader in tqdm.auto, whose asyncio base class opens one unused
    # iterator: that drew one number from the shuffle generator (and, with loader workers, a whole
    # shuffle, which is why the worker count changed the weights). The one draw stays, so that runs
    # are bit-identical to those versions for any number of workers.
    torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
    bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}", disable=not progress, leave=False, mininterval=2)
    total, n = 0.0, 0
    for x, y in loader:
        bar.update()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            out = model(x)
        loss = F.cross_entropy(out.float(), y, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(x)
        n += len(x)
    bar.close()
    return total / max(n, 1)


def _dist_setup(cfg: Config) -> tuple[int, int, torch.device]:
    """(rank, world size, device). DDP only under torchrun (WORLD_SIZE > 1), never required."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(cfg.device)
    if world == 1:
        return 0, 1, device
    import torch.distributed as dist  # local: only under torchrun

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def init_from_run(model: torch.nn.Module, folder: str | os.PathLike, num_classes: int) -> None:
    """Start from a finished run's weights; a different label set gets a fresh classifier."""
    state = runs.load_checkpoint(folder)
    if state is None:
        raise FileNotFoundError(f"init_from={str(folder)!r}: no checkpoint at {Path(folder) / runs.CHECKPOINT}")
    weights = state["model"]
    head = [k for k in weights if k.endswith("classifier.weight")]
    if head and weights[head[0]].shape[0] != num_classes:
        replace_classifier(model, weights[head[0]].shape[0])
        model.load_state_dict(weights)
        replace_classifier(model, num_classes)
    else:
        model.load_state_dict(weights)


def _loader(data: Crops, cfg: Config, epoch: int, rep: int, rank: int, world: int, device: torch.device):
    drop = len(data) > cfg.batch_size * world
    common = dict(batch_size=cfg.batch_size, drop_last=drop, num_workers=cfg.workers,
                  pin_memory=device.type == "cuda")
    if world > 1:  # each rank takes its share of the same epoch-seeded permutation
        sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=True, seed=cfg.seed, drop_last=drop)
        sampler.set_epoch(epoch * cfg.passes + rep)
        return torch.utils.data.DataLoader(data, sampler=sampler, **common)
    gen = torch.Generator().manual_seed(cfg.seed * SHUFFLE_SALT + epoch * 101 + rep)
    return torch.utils.data.DataLoader(data, shuffle=True, generator=gen, **common)


def fit(cfg: Config, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume) the run of ``cfg``; returns its folder. A run whose epochs are all done is
    returned as it is. ``stop_after``: return after that many epochs of this call (a simulated kill)."""
    out = runs.run_dir(cfg)
    if runs.read_metrics(out) is not None:
        return out
    rank, world, device = _dist_setup(cfg)
    lock = locked(out) if rank == 0 else contextlib.nullcontext()
    with lock:
        return _fit(cfg, out, rank, world, device, progress, stop_after)


def _fit(cfg: Config, out: Path, rank: int, world: int, device: torch.device, progress: bool,
         stop_after: int | None) -> Path:
    # === the run folder, the data and the network ===================================================
    if rank == 0:
        runs.create(cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.arch == "toyfcn" and cfg.pretrained:
        pretrain_toyfcn(cfg.data_root, progress=progress)  # once per benchmark version; cached
    torch.manual_seed(cfg.seed)  # the classifier's initialisation
    images = TrainingImages(cfg)
    model = build_model(cfg.arch, len(images.classes), cfg.pretrained, cfg.data_root)
    origin = describe_start(cfg.arch, cfg.pretrained, cfg.data_root)  # what the weights start from
    if cfg.init_from:
        init_from_run(model, cfg.init_from, len(images.classes))
        origin["init_from"] = str(cfg.init_from)
    model.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPUs and GPUs alike
    net = model  # what relabel and checkpoints use; DDP only wraps the training step
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(param_groups(net, cfg.lr, cfg.weight_decay, cfg.head_lr_mult), lr=cfg.lr,
                                momentum=cfg.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=0.1)

    # === resume =====================================================================================
    start, log = 0, []
    state = runs.load_checkpoint(out, map_location=device)
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, log, images.picks = state["epoch"], state.get("log", []), state["picks"]
        if rank == 0:
            runs.write_log(out, log)  # repairs a log that a kill left one epoch behind
    if start >= cfg.epochs:
        return out
    images.init_fixed_labels(progress)
    if images.box_items():
        images.prepare_candidates()

    # === epochs: relabel, then train on the new labels ==============================================
    show = progress and rank == 0
    if show:  # the plan, then one bar for the whole run (its ETA) and one line per epoch, on stderr
        what = f"relabel {len(images.box_items())} images + " if images.box_items() else ""
        tqdm.write(f"{out.name}: epochs {start + 1}-{cfg.epochs} of {cfg.epochs}, each {what}{cfg.passes} "
                   f"pass(es) over {len(images)} images, on {device}; "
                   f"{runs.describe_expected(cfg, cfg.epochs - start)}", file=sys.stderr)
    run_bar = tqdm(total=cfg.epochs, initial=start, desc=out.name, unit="epoch", disable=not show)
    done = 0
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        stats = relabel_epoch(net, images, device, epoch, rank, world, progress) if images.box_items() else {}
        if rank == 0:
            ids = [i for i in cfg.snapshot_ids if i < len(images) and images.labels[i] is not None]
            if images.box_items() and ids:
                runs.save_snapshot(out, epoch, {i: images.labels[i] for i in ids})
        loss = 0.0
        for rep in range(cfg.passes):  # passes over the data between two relabels (paper: 1)
            torch.manual_seed(cfg.seed * DROPOUT_SALT + epoch * 101 + rep)
            loader = _loader(Crops(images, epoch, rep), cfg, epoch, rep, rank, world, device)
            loss += train_one_epoch(model, optimizer, loader, device, epoch, progress and rank == 0,
                                    cfg.precision) / cfg.passes
        scheduler.step()
        if rank != 0:
            continue
        log.append({"epoch": epoch + 1, "loss": loss, "lr": optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - t0, **stats})
        if show:
            pick = f", picks' IoU {100 * stats['pick_mIoU']:.1f}%" if stats.get("pick_mIoU") is not None else ""
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: loss {loss:.3f}, lr {log[-1]['lr']:.2g}{pick}, "
                       f"{log[-1]['seconds']:.1f} s", file=sys.stderr)
        run_bar.update()
        runs.save_checkpoint(out, {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                                   "picks": images.picks, "config": cfg.to_dict(), "log": log, "start": origin})
        done += 1
        if stop_after is not None and done >= stop_after and epoch + 1 < cfg.epochs:
            break
    run_bar.close()
    return out
