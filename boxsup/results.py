"""The machinery every result shares: the ``Result`` a data function returns, the notebook
parameters as a Config, the seeded rows of a table (trained or reused through
``experiments.train_run``, scored, averaged over seeds), and the evaluation protocol's columns.

The protocol (``evaluate.crf_scores``): "FCN" is the plain network (scales (1.0,), no CRF); with
``cfg.use_crf`` also "+CRF (DeepLab defaults)" (DeepLab's VOC parameters unchanged) and "+CRF", the
dense CRF with parameters chosen for each trained network on held-out images it is never scored on.
The headline column is ``score_column(cfg)``; the chosen parameters go to ``Result.data["crf"]``.
A table row is a set of Config changes trained with ``seeds`` seeds (``cfg.seed``, ``cfg.seed + 1``,
...); the table shows the mean (and "<column> sd" with more than one seed), ``data["per_seed"]`` the
per-seed values. Runs are cached by their config hash, so a run several results need trains once.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import Config
from .crf import CRFParams
from .data import DATASET_NAMES, load_dataset
from .data.synthetic import toy_version
from .evaluate import CRF_DEFAULTS, CRF_TUNED, FCN, crf_scores, tune_crf, tuned_crf
from .experiments import VERDICT_RULE, check_seeds, mean_sd, row_name, seed_configs, train_run
from .runs import read_metrics

SCORES = (FCN, CRF_DEFAULTS, CRF_TUNED)


@dataclass
class Result:
    """One table or figure of the paper, as computed here."""

    table: pd.DataFrame
    headline: dict[str, float]
    verdict: str
    runs: list[str] = field(default_factory=list)           # run folders used, in order of first use
    records: dict[str, Any] = field(default_factory=dict)   # extra JSON written to metrics.json
    data: dict[str, Any] = field(default_factory=dict)      # what the figures draw (not recorded)


def params_config(**params) -> Config:
    """The notebook parameters as a validated Config (bad values fail here, before any compute);
    a None parameter means the profile's default."""
    return Config(**{k: v for k, v in params.items() if v is not None})


def score_column(cfg: Config) -> str:
    """The headline column: the tuned CRF ("+CRF") when ``use_crf``, else the plain network."""
    return CRF_TUNED if cfg.use_crf else FCN


def series_labels(cfg: Config, col: str) -> dict[str, str]:
    """Legend names of a score chart's series ({column: name}): ours, on the benchmark this profile
    trains on, in the headline column ``col``; and the paper's numbers (VOC)."""
    return {col: f"ours ({'VOC' if cfg.profile == 'paper' else 'toy'}), {col}", "paper": "paper (VOC)"}


def headline(table: pd.DataFrame, col: str) -> dict[str, float]:
    """{row name: score} for the report index (multi-index rows joined with ' / ')."""
    out = {}
    for k, v in table[col].items():
        if v is not None and np.isfinite(v):
            out[row_name(k)] = float(v)
    return out



def crf_params(cfg: Config, run_dir: str | Path) -> CRFParams | None:
    """The dense CRF of the "+CRF" protocol for one trained network (tuned on its hold-out images),
    or None without ``use_crf``."""
    return tuned_crf(run_dir) if cfg.use_crf else None


def use_run(used: list[str], cfg: Config, progress: bool) -> Path:
    """``train_run``, recording the run folder in ``used`` (once, in order of first use)."""
    out = train_run(cfg, progress)
    if str(out) not in used:
        used.append(str(out))
    return out


def seeded_rows(used: list[str], cfg: Config, rows: Sequence[tuple[dict, dict]], seeds: int, progress: bool,
                measure: Callable[[Path, Config], dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every row (``(index fields, Config changes)``) with ``seeds`` seeds and ``measure`` each
    run; returns (table: mean over seeds, plus "<col> sd" columns when seeds > 1; per-seed rows). A
    change may be a function of the seed's config (e.g. ``init_from``: a run of the same seed)."""
    check_seeds(seeds)
    keys = list(rows[0][0]) if rows else []
    per_seed, table = [], []
    for index, change in rows:
        vals = []
        late = {k: f for k, f in change.items() if callable(f)}
        for c in seed_configs(cfg.replace(**{k: v for k, v in change.items() if k not in late}), seeds):
            c = c.replace(**{k: f(c) for k, f in late.items()}) if late else c
            out = use_run(used, c, progress)
            vals.append({**index, "seed": c.seed, **measure(out, c), "run": out.name})
        per_seed += vals
        table.append(aggregate(vals, index))
    return pd.DataFrame(table).set_index(keys), pd.DataFrame(per_seed).set_index(keys)


def aggregate(vals: list[dict], index: dict) -> dict:
    """One table row from a row's per-seed values: the index, the mean of each number (and "<score>
    sd" with more than one seed), the first seed's value of anything else (a submission's path)."""
    row = dict(index)
    for k in (k for k in vals[0] if k not in index and k not in ("seed", "run")):
        if not all(isinstance(v[k], (int, float)) for v in vals):
            row[k] = vals[0][k]
            continue
        row[k], sd, _ = mean_sd(v[k] for v in vals)
        if len(vals) > 1 and k in SCORES:
            row[f"{k} sd"] = sd
    return {**row, "run": vals[0]["run"]}


def crf_details(used: Sequence[str], cfg: Config) -> pd.DataFrame:
    """Per run: the CRF parameters chosen on its hold-out images and their hold-out mIoU (%) with no
    CRF, DeepLab's defaults and the chosen setting (empty without ``use_crf``)."""
    rows = []
    for out in used if cfg.use_crf else []:
        t = tune_crf(out)
        rows.append({"run": Path(out).name, **{k: v for k, v in t["best"].items()},
                     "hold-out": f"{t['split']} ({t['images']} images)", "hold-out FCN": 100 * t["no_crf_mIoU"],
                     "hold-out defaults": 100 * t["defaults_mIoU"] if t["defaults_mIoU"] is not None else None,
                     "hold-out tuned": 100 * t["best_mIoU"]})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def make_result(table: pd.DataFrame, per_seed: pd.DataFrame, used: list[str], cfg: Config, verdict: str,
                **extra) -> Result:
    crf = crf_details(used, cfg)
    col = score_column(cfg)
    records = {"table": table.reset_index().to_dict("records"), "per_seed": per_seed.reset_index().to_dict("records"),
               "crf": crf.reset_index().to_dict("records"), "verdict_rule": VERDICT_RULE, "score_column": col}
    return Result(table, headline(table, col) if col in table else {}, verdict, used, records,
                  data={"per_seed": per_seed, "crf": crf, **extra})


def score_fn(cfg: Config, split: str | None = None, scales: tuple[float, ...] = (1.0,),
            progress: bool = True) -> Callable[[Path, Config], dict]:
    return lambda out, c: crf_scores(out, split, scales, use_crf=cfg.use_crf, progress=progress)


def describe_data(cfg: Config, run: str | Path | None = None) -> str:
    """What a result was computed from, in a few lines: the dataset (a folder by its name, pointing
    to its SOURCE.txt), the sizes of its splits, and the network's start as ``run``
    recorded it."""
    train = load_dataset(cfg.dataset, cfg.train_split, cfg.data_root, masks="optional")
    ev = load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root, masks="optional")
    if cfg.dataset in DATASET_NAMES:
        what = f"{cfg.dataset}" + (f" (embedded synthetic benchmark, version {toy_version(cfg.data_root)})" if cfg.dataset == "toy" else "")
    else:
        # named, not quoted: a committed page (make reports-real) carries nothing of the data's files
        has = (Path(cfg.dataset) / "SOURCE.txt").is_file()
        what = (f"the VOC-layout folder {Path(cfg.dataset).name} "
                f"({'its source: SOURCE.txt in that folder' if has else 'no SOURCE.txt'})")
    lines = [f"data: {what}; {cfg.train_split}: {len(train)} images, {cfg.eval_split}: {len(ev)} images, "
             f"{len(train.classes)} classes"]
    start = (read_metrics(run) or {}).get("start") if run is not None else None
    if start:
        extra = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in start.items()
                          if k not in ("weights", "file") and isinstance(v, (int, float, str)))
        lines.append(f"network start: {start['weights']}" + (f" ({extra})" if extra else ""))
    return "\n".join(lines)
