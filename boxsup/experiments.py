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
