"""The run folder, and the one module that reads or writes it.

``<runs_dir>/<name>-<hash of the config>/`` holds:

- ``config.json``: the Config (its fields are the notebook parameters);
- ``last.pth``: the checkpoint of the last finished epoch: model, optimizer, scheduler, epoch, the
  current picks (BoxSup's estimated labels), the config and the log so far. It holds tensors and
  plain types only and is read with ``weights_only=True``: nothing in it is unpickled as code;
- ``log.jsonl``: one JSON line per epoch, rewritten from the checkpoint each time it is saved, so
  no kill leaves the log and the checkpoint out of step;
- ``snapshots/epoch_NNN.npz``: estimated masks of a few training images at each relabel (Fig. 3);
- ``scalars.csv`` (and ``tb/``, TensorBoard events, when ``tensorboard`` is installed): the log's
  numbers per epoch (loss, lr, pick quality, seconds, ...), rewritten with the log;
- ``metrics.json``: the plain network on the eval split, written once the run is finished;
- ``eval-<split>-<tag>.json``: cached evaluations under other protocols (``eval_tag``).

A lock file (``.lock``, ``atomic.locked``) keeps two processes from training the same run at once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import TEMP_GLOB, locked, read_json, save_npz, save_torch, write_json, write_text
from .config import Config
from .data.sample import DataError
from .models import build_model

CONFIG, CHECKPOINT, LOG, METRICS, SNAPSHOTS = "config.json", "last.pth", "log.jsonl", "metrics.json", "snapshots"
SCALARS, TENSORBOARD = "scalars.csv", "tb"
SCALAR_ORDER = ("epoch", "loss", "lr", "pick_mIoU", "seconds")  # first columns; other numbers follow


def run_dir(cfg: Config) -> Path:
    return Path(cfg.runs_dir) / cfg.run_name()


def create(cfg: Config) -> Path:
    """The run's folder with its ``config.json``; temporaries left by a killed writer are removed
    (call it while holding the folder's lock)."""
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(TEMP_GLOB):
        stale.unlink(missing_ok=True)
    write_json(out / CONFIG, cfg.to_dict())
    return out


def status(cfg: Config) -> dict:
    """Where ``cfg``'s run stands: its folder, whether it is finished (``metrics.json``), whether a
    checkpoint to resume from exists, and the epochs done (from the log, without loading weights)."""
    out = run_dir(cfg)
    finished = read_metrics(out) is not None
    return {"folder": str(out), "exists": out.is_dir(), "finished": finished,
            "resumable": not finished and (out / CHECKPOINT).is_file(), "epochs_done": len(read_log(out)),
            "epochs": cfg.epochs}


def delete(cfg: Config) -> bool:
    """Remove ``cfg``'s run folder (``boxsup train --force``): renamed away under its lock first, so
    no reader or resuming trainer ever sees a half-deleted run. Returns whether there was one."""
    out = run_dir(cfg)
    if not out.is_dir():
        return False
    trash = out.parent / f".{out.name}.deleted-{os.getpid()}"
    with locked(out):  # waits for a process still training it
        os.replace(out, trash)
    shutil.rmtree(trash)
    return True


def read_config(folder: str | os.PathLike) -> Config:
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a run folder: no {CONFIG}")
    d = read_json(path)
    if not isinstance(d, dict):
        raise DataError(f"{path} is not a readable JSON object; delete the run folder to retrain it")
    return Config.from_dict(d)


# --- checkpoint and log ----------------------------------------------------------------------------

def _digest(obj: Any, h=None) -> str:
    """SHA-256 of everything a checkpoint holds (torch's zip format does not check its data)."""
    h = h or hashlib.sha256()
    if isinstance(obj, torch.Tensor):
        h.update(str((obj.dtype, tuple(obj.shape))).encode())
        h.update(obj.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode())
            _digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _digest(v, h)
    else:
        h.update(repr(obj).encode())
    return h.hexdigest()


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """``last.pth`` (with a digest of its contents) first, then ``log.jsonl`` from the log the
    checkpoint carries."""
    state = dict(state, picks={int(i): torch.as_tensor(p) for i, p in state.get("picks", {}).items()})
    state["digest"] = _digest({k: v for k, v in state.items() if k != "digest"})
    save_torch(folder / CHECKPOINT, state)
    write_log(folder, state.get("log", []))


def load_checkpoint(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The checkpoint (None when there is none yet); picks come back as numpy arrays. A truncated,
    garbled or crafted file raises ``DataError`` naming it."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for damaged zips and refused pickles
        raise DataError(f"cannot load checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}. "
                        "It is damaged or not a boxsup checkpoint; delete it to retrain the run") from e
    if not isinstance(state, dict) or "model" not in state:
        raise DataError(f"checkpoint {path} holds no model state; delete it to retrain the run")
    if state.pop("digest", None) != _digest(state):
        raise DataError(f"checkpoint {path} is damaged: its contents do not match their digest; delete it to "
                        "retrain the run")
    state["picks"] = {int(i): p.cpu().numpy() for i, p in state.get("picks", {}).items()}
    return state


def write_log(folder: Path, lines: list[dict]) -> None:
    write_text(Path(folder) / LOG, "".join(json.dumps(d) + "\n" for d in lines))
    write_scalars(folder, lines)


def _scalars(lines: list[dict]) -> list[str]:
    """The log's numeric fields, ``SCALAR_ORDER`` first, then in order of first appearance."""
    seen = [k for d in lines for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return [k for k in SCALAR_ORDER if k in seen] + [k for k in dict.fromkeys(seen) if k not in SCALAR_ORDER]


def write_scalars(folder: str | os.PathLike, lines: list[dict]) -> None:
    """``scalars.csv`` (one row per epoch, pandas / spreadsheets read it) and, when ``tensorboard``
    is installed, TensorBoard events under ``tb/``; both rewritten whole from the log."""
    cols = _scalars(lines)
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({k: d.get(k) for k in cols} for d in lines)
    write_text(Path(folder) / SCALARS, buf.getvalue())
    write_tensorboard(folder, lines, cols)


def write_tensorboard(folder: str | os.PathLike, lines: list[dict], cols: list[str] | None = None) -> bool:
    """``tb/``: TensorBoard events of the log's numbers (step = epoch). TensorBoard's writer only
    appends, so the events are written into a fresh hidden folder that then replaces ``tb/``: a
    reader never sees a half-written file. Returns False when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # local: tensorboard is optional
    except ImportError:
        return False
    folder = Path(folder)
    for stale in [*folder.glob(".tbnew-*"), *folder.glob(".tbold-*")]:  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    new = Path(tempfile.mkdtemp(prefix=".tbnew-", dir=folder))
    old = folder / f".tbold-{os.getpid()}-{time.monotonic_ns()}"
    try:
        writer = SummaryWriter(log_dir=str(new))
        for i, d in enumerate(lines):
            for k in cols or _scalars(lines):
                if isinstance(d.get(k), (int, float)) and k != "epoch":
                    writer.add_scalar(k, d[k], int(d.get("epoch", i + 1)))
        writer.close()
        if (folder / TENSORBOARD).exists():
            os.replace(folder / TENSORBOARD, old)
        os.replace(new, folder / TENSORBOARD)
    finally:
        shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return True


def read_log(folder: str | os.PathLike) -> list[dict]:
    """The run's log.jsonl, one dict per finished epoch."""
    path = Path(folder) / LOG
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line]
    except ValueError as e:
        raise DataError(f"{path} is not JSON lines ({e}); it is rewritten from last.pth on the next resume") from e


def training_seconds(folder: str | os.PathLike) -> float:
    """Wall time the run spent training and relabeling (the sum over its log)."""
    return sum(d.get("seconds", 0.0) for d in read_log(folder))


# what makes two runs' epochs cost about the same: the data, the network, the step shapes, whether a
# relabel precedes each epoch; seeds, k, lam and the proposal method barely change the time
_TIME_FIELDS = ("profile", "dataset", "extra", "arch", "crop", "batch_size", "passes", "precision")


def _kind(cfg: Config) -> str:
    return {"box": "relabel", "semi": "relabel"}.get(cfg.supervision, "fixed") + (
        "+relabel" if cfg.extra == "boxes" else "")


def expected_seconds(cfg: Config, epochs: int | None = None) -> tuple[float, int] | None:
    """(expected seconds for ``epochs`` epochs of ``cfg`` (default: all of them), number of runs the
    estimate comes from): the median seconds per epoch of the finished runs alike in ``runs_dir`` (same
    data, network, step shapes and relabel kind); None when there is none yet."""
    want = {k: getattr(cfg, k) for k in _TIME_FIELDS} | {"kind": _kind(cfg)}
    per_epoch = []
    for folder in Path(cfg.runs_dir).glob("*/"):
        if not (folder / METRICS).is_file() or not (folder / CONFIG).is_file():
            continue
        try:
            other = read_config(folder)
            log = read_log(folder)
        except (ValueError, OSError):  # a foreign or broken folder says nothing about speed
            continue
        if log and {k: getattr(other, k) for k in _TIME_FIELDS} | {"kind": _kind(other)} == want:
            per_epoch.append(sum(d.get("seconds", 0.0) for d in log) / len(log))
    if not per_epoch:
        return None
    return float(np.median(per_epoch)) * (cfg.epochs if epochs is None else epochs), len(per_epoch)


def describe_expected(cfg: Config, epochs: int | None = None) -> str:
    """"expected ≈ 1.5 min (from 3 finished runs alike)", or why there is no estimate yet."""
    est = expected_seconds(cfg, epochs)
    if est is None:
        return "expected time: not known yet (no finished run alike in this runs folder; see the bar's ETA)"
    secs, n = est
    return f"expected ≈ {secs / 60:.1f} min (from {n} finished run{'s' if n > 1 else ''} alike)"


def load_model(folder: str | os.PathLike) -> tuple[torch.nn.Module, Config]:
    """The network of a run folder (its last checkpoint), in eval mode, and its config."""
    cfg = read_config(folder)
    state = load_checkpoint(folder)
    if state is None:
        raise FileNotFoundError(f"run {folder} has no checkpoint yet ({Path(folder) / CHECKPOINT})")
    return model_from_checkpoint(state, cfg, folder), cfg


def model_from_checkpoint(state: dict, cfg: Config, folder: str | os.PathLike = "") -> torch.nn.Module:
    """The network held by a loaded checkpoint, in eval mode."""
    weights = state["model"]
    heads = [k for k in weights if k.endswith("classifier.weight")]
    if not heads:
        raise DataError(f"{Path(folder) / CHECKPOINT}: no classifier weights in the model state")
    model = build_model(cfg.arch, weights[heads[0]].shape[0], pretrained=False)
    model.load_state_dict(weights)
    return model.eval()


# --- snapshots (Fig. 3) ----------------------------------------------------------------------------

def save_snapshot(folder: Path, epoch: int, labels: dict[int, np.ndarray]) -> None:
    """Label maps of a few training items, as relabeled at the start of ``epoch`` (0-based)."""
    save_npz(Path(folder) / SNAPSHOTS / f"epoch_{epoch:03d}.npz", **{f"item_{i}": m for i, m in labels.items()})


def snapshot_epochs(folder: str | os.PathLike, wanted: tuple[int, ...] = (1, 5, 20)) -> list[int]:
    """Epochs (1-based: the labels epoch e trained on) with a saved snapshot, among ``wanted``, plus
    the last one."""
    have = sorted(int(p.stem.split("_")[1]) + 1 for p in (Path(folder) / SNAPSHOTS).glob("epoch_*.npz"))
    if not have:
        raise FileNotFoundError(f"{folder} has no {SNAPSHOTS}/ (only box-supervised runs keep them)")
    return sorted({e for e in wanted if e in have} | {have[-1]})


def load_snapshot(folder: str | os.PathLike, epoch: int) -> dict[int, np.ndarray]:
    """{training item: label map} as saved for 1-based ``epoch``."""
    path = Path(folder) / SNAPSHOTS / f"epoch_{epoch - 1:03d}.npz"
    with np.load(path, allow_pickle=False) as z:
        return {int(k.split("_")[1]): z[k] for k in z.files}


# --- results ---------------------------------------------------------------------------------------

def write_metrics(folder: Path, metrics: dict) -> None:
    write_json(Path(folder) / METRICS, metrics)


def read_metrics(folder: str | os.PathLike) -> dict | None:
    """metrics.json, or None when the run is not finished (or the file is unreadable)."""
    m = read_json(Path(folder) / METRICS)
    return m if isinstance(m, dict) else None


def eval_tag(scales: tuple[float, ...] = (1.0,), flip: bool = False, crf: str | None = None,
             max_images: int | None = None, trimap_widths: tuple[int, ...] | None = None) -> str:
    """The name of one evaluation protocol, e.g. ``s0.8-1-1.2_crf_trimap1-2-4``; ``crf`` is
    "crf" for the default parameters or a short name of other ones."""
    parts = ["s" + "-".join(f"{s:g}" for s in scales)]
    if flip:
        parts.append("flip")
    if crf:
        parts.append(crf)
    if max_images:
        parts.append(f"n{max_images}")
    if trimap_widths:
        parts.append("trimap" + "-".join(map(str, trimap_widths)))
    return "_".join(parts)


def cached_eval(folder: str | os.PathLike, split: str, tag: str, compute: Callable[[], dict]) -> dict:
    """``eval-<split>-<tag>.json``, computed once per checkpoint: a cache written for an earlier
    ``last.pth`` (or unreadable) is recomputed."""
    path = Path(folder) / f"eval-{split}-{tag}.json"
    ckpt = Path(folder) / CHECKPOINT
    stamp = f"{ckpt.stat().st_mtime_ns}-{ckpt.stat().st_size}" if ckpt.is_file() else None
    cached = read_json(path)
    if isinstance(cached, dict) and cached.get("checkpoint") == stamp:
        return cached
    t0 = time.perf_counter()
    result = compute()
    # the wall time of the whole computation (network, CRF, selection): evaluation_seconds sums it
    write_json(path, {**result, "compute_seconds": time.perf_counter() - t0, "checkpoint": stamp})
    return read_json(path)


def evaluation_seconds(folder: str | os.PathLike) -> float:
    """Wall time spent on the run's cached evaluations (CRF search and scores, pick quality, ...);
    evaluations cached before their time was recorded count 0."""
    total = 0.0
    for path in Path(folder).glob("eval-*.json"):
        d = read_json(path)
        total += float(d.get("compute_seconds", 0.0)) if isinstance(d, dict) else 0.0
    return total
