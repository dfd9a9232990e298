"""Where relative paths point: the project root, never the working folder of whoever calls.

A notebook opened in JupyterLab (or run by nbconvert) has ``notebooks/`` as its working folder; a
``runs_dir="runs"`` read against it would train every run again in a second cache. So relative
``data_root``, ``runs_dir``, ``proposals_dir`` and report output paths are read against the folder
that holds ``pyproject.toml`` next to the ``boxsup`` package (a source checkout, editable install).
A non-editable install has no such folder: the working folder is the root then.
"""
from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]  # boxsup/data/paths.py -> the folder above boxsup/


def project_root() -> Path:
    """The checkout holding this package (``pyproject.toml`` beside ``boxsup/``), else the cwd."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "boxsup").is_dir():
        return _CHECKOUT
    return Path.cwd()


def from_root(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded; a relative one is read against ``project_root()``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def relative_to_root(path: str | os.PathLike) -> str:
    """``path`` as results record it: relative to the project root when inside it (``runs/...``),
    else unchanged, so metrics files stay valid when the checkout moves."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(project_root().resolve())) if p.is_absolute() else str(p)
    except ValueError:
        return str(p)
