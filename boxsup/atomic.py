"""Files that are never half-written: every write goes to a temporary sibling and is renamed onto
its path, so a kill leaves either the old file or the new one. The bottom layer: imports nothing
from boxsup, and every module that writes a cache, a checkpoint or a report goes through it.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


TEMP_GLOB = ".*.tmp*"  # what temp_sibling names look like (stale ones are removed by their folder's owner)


def temp_sibling(path: Path) -> Path:
    """A fresh temporary file next to ``path`` (same folder, so the rename is atomic), named
    ``.<name>.tmp<random><suffix>``: hidden, and with the suffix tools such as papermill expect."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results must stay readable by others (web servers)
    return Path(tmp)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)`` renames ``tmp`` onto ``p`` when the block succeeds
    and removes it when the block raises."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Strict JSON (NaN and infinities become null) with numpy scalars as plain numbers."""
    write_bytes(path, json.dumps(json_safe(obj), indent=indent, default=float, allow_nan=False).encode())


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch  # local: the data layer writes JSON and images without importing torch

    with replacing(path) as tmp:
        torch.save(obj, tmp)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` through a temporary file (np.savez would append ``.npz`` to a name)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def json_safe(obj: Any) -> Any:
    """NaN and infinities (a class absent from a trimap band, say) -> None, recursively."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable (a cache then recomputes)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def cached_json(path: str | os.PathLike, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON result kept in ``path``; a missing or garbled file is recomputed."""
    out = read_json(path)
    if out is None:
        out = json_safe(compute())
        write_json(path, out)
    return out


@contextmanager
def locked(folder: str | os.PathLike, name: str = ".lock") -> Iterator[None]:
    """An exclusive lock on a folder (the file ``<folder>/<name>``) for this process; a second
    process that asks for it says so and waits until the first one is done."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process working in {folder} ...", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
