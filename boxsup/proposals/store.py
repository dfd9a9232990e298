"""The proposal store: candidate segments of each image on disk, one compressed ``.npz`` per image.

A file holds the candidates as COCO RLE (pycocotools, strings concatenated in ``counts`` with
``offsets``), their tight half-open boxes (computed from the masks), areas, the image size and a
JSON ``meta`` (generator name, parameters, timing). Files are written to a temporary name and
renamed, so a killed run never leaves a half-written entry; a damaged file raises ``DataError``
naming it, and ``precompute`` recomputes it. Layout used by ``proposals_for``:
``<cache>/<dataset>/<split>/<method>[-<params hash>]/<image_id>.npz``.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing as mp
import os
import signal
import time
import warnings
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse as sp
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..atomic import TEMP_GLOB, locked, read_json, save_npz, write_json
from ..data import default_data_root, load_dataset
from ..data.sample import DataError
from .generators import check_method, generate_segments
from .quality import best_overlaps, encode_masks, ignore_region, instance_masks, rle_areas, summarize
from .segments import Segments

FORMAT_VERSION = 1


def _decode(rles: list[dict]) -> np.ndarray:
    """pycocotools' decode, (H, W, k) Fortran uint8, minus its numpy-2 DeprecationWarning (harmless)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*__array__.*")
        return mask_utils.decode(rles)


@dataclass
class Candidates:
    """The candidates of one image. boxes: (M, 4) float32 half-open; areas: (M,) int64."""

    rles: list[dict]
    boxes: np.ndarray
    areas: np.ndarray
    height: int
    width: int
    meta: dict = field(default_factory=dict)
    segments: Segments | None = None  # the same candidates as unions of atoms, when a method has them

    def __len__(self) -> int:
        return len(self.rles)

    def incidence(self) -> Segments | sp.csr_matrix:
        """What relabel sums pixels over: the ``Segments`` (cheap: per-atom sums, then a small
        product) when the candidates are unions of atoms, else the pixel CSR matrix."""
        return self.segments if self.segments is not None else self.sparse()

    def select(self, rows) -> "Candidates":
        """A subset (e.g. the candidates whose box overlaps a ground-truth box), same meta."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        return Candidates([self.rles[i] for i in rows], self.boxes[rows], self.areas[rows], self.height,
                          self.width, self.meta, None if self.segments is None else self.segments.select(rows))

    def decode(self) -> np.ndarray:
        """bool (M, H, W) masks."""
        if not self.rles:
            return np.zeros((0, self.height, self.width), dtype=bool)
        return _decode(self.rles).astype(bool).transpose(2, 0, 1)

    def sparse(self, chunk: int = 128) -> sp.csr_matrix:
        """(M, H*W) float32 CSR of the masks, pixels in row-major order (index y * W + x).

        Cost and memory grow with the total candidate area: ~1 s per 20M stored pixels (e.g. 4000
        mcg-ours candidates of a 640x428 photo hold ~140M). ``select`` the useful rows first.
        """
        hw = self.height * self.width
        if not self.rles:
            return sp.csr_matrix((0, hw), dtype=np.float32)
        h, w = self.height, self.width
        indptr, indices = [np.zeros(1, np.int64)], []
        for s in range(0, len(self.rles), chunk):
            # decode() is Fortran (H, W, k): viewed as C (k, W*H), pixels run column-major. Find the
            # foreground there (no transposed copy) and convert to row-major ids y * W + x.
            block = _decode(self.rles[s:s + chunk]).T.reshape(-1, w * h)
            rows, p = np.nonzero(block)
            x, y = np.divmod(p, h)
            indices.append((y * w + x).astype(np.int32))
            indptr.append(indptr[-1][-1] + np.cumsum(np.bincount(rows, minlength=len(block))))
        ind = np.concatenate(indices)
        out = sp.csr_matrix((np.ones(len(ind), np.float32), ind, np.concatenate(indptr)), shape=(len(self), hw))
        out.has_sorted_indices = False  # column-major scan order within a row; sort_indices() if needed
        return out


def _to_str(r: dict) -> dict:
    c = r["counts"]
    return {"size": [int(v) for v in r["size"]], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


def rle_boxes(rles: list[dict]) -> np.ndarray:
    """Tight half-open boxes of RLEs; pycocotools' xywh gives x1 = x + w exactly (w = last - first + 1)."""
    if not rles:
        return np.zeros((0, 4), dtype=np.float32)
    xywh = np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)


class ProposalStore:
    """One folder of per-image candidate files (see the module docstring)."""

    def __init__(self, root_dir: str | os.PathLike):
        self.root = Path(root_dir)

    def __repr__(self) -> str:
        return f"ProposalStore({str(self.root)!r})"

    def path(self, image_id: str) -> Path:
        safe = str(image_id).replace("/", "%2F").replace("\\", "%5C")
        return self.root / f"{safe}.npz"

    def has(self, image_id: str, verify: bool = False) -> bool:
        """Whether a file exists (and, with ``verify``, reads back completely)."""
        p = self.path(image_id)
        if not p.is_file():
            return False
        if verify:
            try:
                self.load(image_id)
            except DataError:
                return False
        return True

    def ids(self) -> list[str]:
        return sorted(p.stem.replace("%2F", "/").replace("%5C", "\\") for p in self.root.glob("*.npz")
                      if not p.name.startswith("."))

    def save(self, image_id: str, masks, meta: dict | None = None) -> Path:
        """Write the candidates of one image: bool (M, H, W) masks or ``Segments``."""
        extra = {}
        if isinstance(masks, Segments):
            (h, w), rles = masks.shape, masks.rles()
            # keep the factorised form too: relabel sums over atoms instead of pixels
            extra = {"atoms": masks.atoms.astype(np.int32), "member": np.packbits(masks.member, axis=1),
                     "num_atoms": np.array([masks.member.shape[1]], np.int64)}
        else:
            masks = np.asarray(masks)
            if masks.ndim != 3:
                raise ValueError(f"candidates of {image_id}: expected bool masks (M, H, W), got shape {masks.shape}")
            h, w = masks.shape[1:]
            rles = encode_masks(masks)
        boxes, areas = rle_boxes(rles), rle_areas(rles)
        rles = [_to_str(r) for r in rles]
        encoded = [r["counts"].encode("ascii") for r in rles]
        offsets = np.cumsum([0] + [len(c) for c in encoded]).astype(np.int64)
        body = dict(meta or {}, key=str(image_id), format_version=FORMAT_VERSION)
        path = self.path(image_id)
        save_npz(path, counts=np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets=offsets,
                 boxes=np.asarray(boxes, np.float32).reshape(-1, 4), areas=np.asarray(areas, np.int64),
                 size=np.array([h, w], np.int64),
                 meta=np.frombuffer(json.dumps(body, default=str).encode(), dtype=np.uint8), **extra)
        return path

    def load(self, image_id: str) -> Candidates:
        path = self.path(image_id)
        if not path.is_file():
            raise DataError(f"no candidates for image {image_id!r}: {path} does not exist (run "
                            "`boxsup proposals` or precompute() first)")
        try:
            with np.load(path, allow_pickle=False) as z:
                counts, offsets = z["counts"].tobytes(), z["offsets"]
                boxes, areas, size = z["boxes"], z["areas"], z["size"]
                meta = json.loads(z["meta"].tobytes().decode())
                atoms = member = None
                if "atoms" in z.files:
                    atoms = z["atoms"]
                    member = np.unpackbits(z["member"], axis=1, count=int(z["num_atoms"][0])).astype(bool)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, UnicodeDecodeError) as e:
            raise DataError(f"corrupt or truncated proposal file {path}: {type(e).__name__}: {e}; delete it "
                            "and rerun precompute") from e
        m = len(offsets) - 1
        if m < 0 or offsets[-1] != len(counts) or boxes.shape != (m, 4) or areas.shape != (m,) or size.shape != (2,):
            raise DataError(f"corrupt proposal file {path}: inconsistent array sizes (offsets {offsets.shape}, "
                            f"boxes {boxes.shape}, areas {areas.shape}); delete it and rerun precompute")
        h, w = int(size[0]), int(size[1])
        rles = [{"size": [h, w], "counts": counts[offsets[i]:offsets[i + 1]].decode("ascii")} for i in range(m)]
        if atoms is not None and (atoms.shape != (h, w) or member.shape[0] != m):
            raise DataError(f"corrupt proposal file {path}: atoms {atoms.shape} / member {member.shape} do not "
                            f"match {m} candidates of a {w}x{h} image; delete it and rerun precompute")
        if meta.get("key") != str(image_id):  # a file copied or renamed onto another image's name
            raise DataError(f"proposal file {path} holds the candidates of image {meta.get('key')!r}, not "
                            f"{image_id!r}; delete it and rerun precompute")
        segments = Segments(atoms, member) if atoms is not None else None
        return Candidates(rles, boxes.astype(np.float32), areas.astype(np.int64), h, w, meta, segments)

    def remove(self, image_id: str) -> None:
        self.path(image_id).unlink(missing_ok=True)


# --- pre-computing a whole split -------------------------------------------------------------------

_WORKER: dict = {}


def _die_with_parent() -> None:
    """Linux: the pool worker gets SIGTERM when its parent dies, so a killed ``boxsup proposals``
    leaves no worker writing files behind it (elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(dataset, root: str, method: str, params: dict, pool_process: bool = True) -> None:
    """Runs once per pool process: holds the dataset and store, and keeps each pool process to one
    thread (the pool provides the parallelism; the caller's own process is left alone)."""
    if pool_process:
        cv2.setNumThreads(1)
        _die_with_parent()
    _WORKER.update(dataset=dataset, store=ProposalStore(root), method=method, params=params)


def _compute_one(index: int, key: str) -> tuple[str, int, float]:
    """Compute and save the candidates of dataset[index] under ``key`` (its entry in ``dataset.ids``,
    which is what the trainer looks up; top-level so that spawn can pickle it)."""
    ds, store, method, params = (_WORKER[k] for k in ("dataset", "store", "method", "params"))
    sample = ds[index]
    t0 = time.perf_counter()
    # image_id (the file stem) names the image for readers of per-image files such as MCG's .mat
    out = generate_segments(method, sample.image, sample.boxes, image_id=sample.image_id, **dict(params))
    dt = time.perf_counter() - t0
    store.save(key, out, {"method": method, "params": params, "seconds": round(dt, 4),
                          "image_id": sample.image_id})
    return key, len(out), dt


def dataset_ids(dataset) -> list[str]:
    ids = getattr(dataset, "ids", None)
    return [str(i) for i in ids] if ids is not None else [dataset[i].image_id for i in range(len(dataset))]


def parse_shard(shard) -> tuple[int, int]:
    """(i, n) from a tuple or an "i/n" string; raises ValueError naming the bad value."""
    if isinstance(shard, str):
        try:
            i, n = (int(v) for v in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard {shard!r}: expected 'i/n' with integers, e.g. 0/4") from None
    else:
        i, n = shard
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need n >= 1 and 0 <= i < n")
    return int(i), int(n)


def _clean_stale_temps(root: Path, older_than_s: float = 600) -> None:
    now = time.time()
    for p in root.glob(TEMP_GLOB):  # temporaries of killed runs (a live writer renames within seconds)
        try:
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
        except OSError:
            pass


def precompute(dataset, store: ProposalStore, method: str, params: dict | None = None, workers: int = 1,
               shard=(0, 1), verify: bool = True, progress: bool = True, limit: int | None = None) -> dict:
    """Compute the candidates of every image of ``dataset`` (a sequence of Samples) into ``store``.

    Resumable: images whose file exists (and reads back, with ``verify``) are skipped; damaged files
    are recomputed. A file verified by an earlier call and not written or touched since (its size,
    mtime, inode and ctime, in ``.verified-<i>of<n>.json``) is not read again. ``shard=(i, n)`` (or
    "i/n") takes the images at positions i, i+n, ...; ``workers > 1`` runs a spawn-safe process pool.
    Returns counts: total, skipped, computed, redone.
    A second process working on the same store and shard waits for the first, then skips its files.
    """
    check_method(method)
    params = dict(params or {})
    i, n = parse_shard(shard)
    with locked(store.root, f".lock-{i}of{n}"):
        return _precompute(dataset, store, method, params, workers, (i, n), verify, progress, limit)


def _signature(p: Path) -> list[int]:
    """What changes whenever a file is written, replaced or touched: size, mtime, inode and ctime
    (which no user call can set back), so an unchanged signature means unchanged bytes."""
    st = p.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _precompute(dataset, store: ProposalStore, method: str, params: dict, workers: int, shard: tuple[int, int],
                verify: bool, progress: bool, limit: int | None) -> dict:
    ids = dataset_ids(dataset)
    positions = list(range(shard[0], len(ids), shard[1]))[:limit]
    _clean_stale_temps(store.root)
    # Files verified by an earlier call and not touched since are not read again: a full read of
    # every file made each call about a second per 400 toy images (README, "Speed").
    stamp_path = store.root / f".verified-{shard[0]}of{shard[1]}.json"
    stamp = read_json(stamp_path)
    verified = stamp if isinstance(stamp, dict) else {}
    todo, skipped, redone = [], 0, 0
    for pos in positions:
        p = store.path(ids[pos])
        if p.is_file():
            if not verify or verified.get(p.name) == _signature(p) or store.has(ids[pos], verify=True):
                skipped += 1
                continue
            p.unlink(missing_ok=True)  # damaged: redo it
            redone += 1
        todo.append(pos)
    bar = tqdm(total=len(todo), desc=f"proposals {method}", disable=not progress or not todo,
               mininterval=1, unit="img")
    if workers <= 1 or len(todo) <= 1:
        _init_worker(dataset, str(store.root), method, params, pool_process=False)
        for pos in todo:
            _compute_one(pos, ids[pos])
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker,
                                 initargs=(dataset, str(store.root), method, params)) as pool:
            futures = [pool.submit(_compute_one, pos, ids[pos]) for pos in todo]
            try:
                for fut in as_completed(futures):
                    fut.result()  # a worker's error surfaces here; finished files stay for the rerun
                    bar.update()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    bar.close()
    if verify:  # every file of these positions now reads back (verified above or just written)
        now = {p.name: _signature(p) for p in (store.path(ids[pos]) for pos in positions) if p.is_file()}
        if now != {k: verified.get(k) for k in now}:
            write_json(stamp_path, {**verified, **now})
    return {"total": len(positions), "skipped": skipped, "computed": len(todo), "redone": redone}


def store_quality(dataset, store, shard: tuple[int, int] = (0, 1), limit: int | None = None) -> dict:
    """ABO, recall@0.5/0.7 and candidates per image of stored candidates vs true instance masks."""
    best, counts = [], []
    ids = dataset_ids(dataset)
    for pos in list(range(shard[0], len(dataset), shard[1]))[:limit]:
        s = dataset[pos]
        if s.mask is None and s.instances is None:
            continue
        c = store.load(ids[pos])
        best.append(best_overlaps(c.rles, instance_masks(s), ignore_region(s)))
        counts.append(len(c))
    return summarize(best, counts)


def _slug(name: str) -> str:
    """A folder name for a dataset given by name or path."""
    p = Path(name)
    if p.exists() or os.sep in name:
        digest = hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]
        return f"{p.resolve().name}-{digest}"
    return name


def store_dir(cache_dir, dataset_name: str, split: str | None, method: str, params: dict | None = None) -> Path:
    """``<cache>/<dataset>/<split>/<method>[-<params hash>]``: non-default parameters get their own folder."""
    leaf = method
    if params:
        leaf += "-" + hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return Path(cache_dir) / _slug(dataset_name) / str(split or "all").replace("/", "_") / leaf


def cache_root(data_root=None, cache_dir=None) -> Path:
    """Where candidate stores live: ``cache_dir`` if given, else ``<data_root>/proposals``."""
    return Path(cache_dir) if cache_dir else default_data_root(data_root) / "proposals"


def proposals_for(dataset_name: str, split: str | None, method: str, data_root=None, cache_dir=None, *,
                  dataset=None, params: dict | None = None, workers: int = 1, progress: bool = True
                  ) -> ProposalStore:
    """A ready store for a dataset split: computes whatever is missing, then returns it.

    ``cache_dir`` defaults to ``<data_root>/proposals``; ``dataset`` (already opened) saves re-opening it.
    For ``mcg`` the official files are looked for in ``params['mcg_dir']``, else ``$BOXSUP_MCG_DIR``,
    else ``<data_root>/MCG``.
    """
    check_method(method)
    root = default_data_root(data_root)
    params = dict(params or {})
    if method == "mcg" and "mcg_dir" not in params:
        mcg_dir = Path(os.environ.get("BOXSUP_MCG_DIR") or root / "MCG")
        if not mcg_dir.is_dir():
            raise DataError(f"method 'mcg' reads the officially released pre-computed MCG proposals, looked for "
                            f"{mcg_dir} (one <image_id>.mat per image), which does not exist. Download them from "
                            "the MCG project page (e.g. the PASCAL VOC 2012 / SBD proposal archives) and unpack "
                            "them there, or point to them with `boxsup proposals --param mcg_dir=/path/to/MCG` or "
                            "$BOXSUP_MCG_DIR, or compute our MCG-style candidates instead: method 'mcg-ours' "
                            "(`--method mcg-ours`, Config proposals='mcg-ours').")
        params["mcg_dir"] = str(mcg_dir)
        key_params = {}  # where the files live does not change the candidates
    else:
        key_params = params
    store = ProposalStore(store_dir(cache_root(root, cache_dir), dataset_name, split, method, key_params))
    if dataset is None:
        dataset = load_dataset(dataset_name, split, data_root)
    precompute(dataset, store, method, params, workers=workers, progress=progress)
    return store
