"""Sensitivity to what the paper leaves open, as one result (``notebooks/sensitivity.ipynb``).

The paper fixes lam = 3 in cost = Eo + lam * Er but does not say what Er is divided by, and it says
Eo is "normalised by the number of candidates". Those choices set the effective weight of the two
terms, so this result trains BoxSup (k = 1 and k = 5) across that weight and reports, per setting,
the final picks' quality and the val mIoU next to what the pool and the cost allow at that setting
(Eo-only picks and the oracle ceiling, ``label_quality.pool_quality``):
- lam over two decades around the paper's 3 (``LAMS``), Er divided by the image area (the default);
- Er divided by the box area instead (``er_norm="box"``) at lam = 3;
- the toy run on the paper's schedule shape: one pass per relabel, lr 1e-3 divided by 10 every
  third of the run, 45 relabels (``paper_schedule``); at paper scale that is the default run.
The literal reading "Eo / N" (N candidates of the image) gives the same picks as lam = 3 N; the
pool-only curve (no training) runs to that weight. The headline setting stays the paper's lam = 3:
nothing here is chosen by val mIoU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULTS, Config
from .evaluate import crf_scores
from .label_quality import QUALITY_IMAGES, pool_quality, run_pick_quality
from .results import Result, make_result, score_column, seeded_rows

PAPER_LAM = 3.0
LAMS = (0.3, 3.0, 30.0)                                   # trained, k = 1 and k = 5
POOL_LAMS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # the pool-only curve (no training)


def paper_schedule(cfg: Config) -> dict:
    """Config changes that give a toy run the paper's schedule shape: one pass per relabel, as many
    relabels as the toy run has passes (toy: 15 x 3 = 45, the paper's count, so the same SGD steps),
    the paper's lr 1e-3 divided by 10 every third of the run. Empty at paper scale (the default)."""
    if cfg.profile == "paper":
        return {}
    relabels = cfg.epochs * cfg.passes
    return dict(epochs=relabels, passes=1, lr=DEFAULTS["paper"]["lr"], lr_step=max(1, relabels // 3))


def sensitivity_rows(cfg: Config, lams: tuple[float, ...] = LAMS) -> list[tuple[dict, dict]]:
    """``(index, Config changes)`` of every trained row: (setting, k)."""
    rows = [({"setting": f"lam {lam:g}", "k": f"k={k}"}, dict(supervision="box", k=k, lam=lam))
            for lam in lams for k in (1, 5)]
    rows += [({"setting": f"Er / box area, lam {PAPER_LAM:g}", "k": f"k={k}"},
              dict(supervision="box", k=k, er_norm="box")) for k in (1, 5)]
    if paper_schedule(cfg):
        rows.append(({"setting": f"paper schedule shape, lam {PAPER_LAM:g}", "k": "k=5"},
                     dict(supervision="box", k=5, **paper_schedule(cfg))))
    return rows


def _pct(v) -> float:
    return 100 * v if v is not None and np.isfinite(v) else np.nan


def sensitivity(cfg: Config, seeds: int = 1, lams: tuple[float, ...] = LAMS, pool_lams: tuple[float, ...] = POOL_LAMS,
                quality_images: int = QUALITY_IMAGES, progress: bool = True) -> Result:
    """The trained rows (scores, final picks, Eo-only and ceiling at the row's own k, lam and Er
    normalisation, on the first ``quality_images`` training images) and, in ``data["pool"]``, the
    Eo-only picks and the ceiling across ``pool_lams`` plus the literal Eo / N reading."""
    if any(not (lam >= 0) for lam in (*lams, *pool_lams)):
        raise ValueError(f"lams={lams!r}, pool_lams={pool_lams!r}: every lam must be >= 0")
    n = int(quality_images)
    used: list[str] = []

    def measure(out: Path, c: Config) -> dict:
        q = pool_quality(c, n)
        picks = run_pick_quality(out, n)["miou"]
        return {**crf_scores(out, use_crf=cfg.use_crf, progress=progress), "final picks": _pct(picks),
                "Eo-only": _pct(q[f"eo_k{c.k}"]), "ceiling": _pct(q[f"oracle_k{c.k}"])}

    table, per_seed = seeded_rows(used, cfg, sensitivity_rows(cfg, tuple(lams)), seeds, progress, measure)
    box = cfg.replace(supervision="box")
    candidates = pool_quality(box, n)["mean_candidates"]
    literal = PAPER_LAM * candidates  # Eo / N + lam Er picks as Eo + lam N Er
    pool = pd.DataFrame([{"lam": lam, **{f"{what} k={k}": _pct(pool_quality(box.replace(lam=lam), n)[f"{key}_k{k}"])
                                         for what, key in (("ceiling", "oracle"), ("Eo-only", "eo")) for k in (1, 5)}}
                         for lam in sorted({*pool_lams, PAPER_LAM, round(literal, 1)})]).set_index("lam")
    verdict = sensitivity_verdict(table, score_column(cfg), literal)
    res = make_result(table, per_seed, used, cfg, verdict, pool=pool, literal_lam=literal)
    res.records.update({"pool": pool.reset_index().to_dict("records"), "literal_lam": literal,
                        "mean_candidates": candidates})
    return res


def sensitivity_verdict(table: pd.DataFrame, col: str, literal_lam: float) -> str:
    """What moves with the weight: per k, the range of the final picks and of ``col`` over the lam
    rows, and where the paper's lam = 3 falls in it. No claim of the paper is judged here."""
    lines = []
    for k in (1, 5):
        rows = table[[s.startswith("lam ") and kk == f"k={k}" for s, kk in table.index]]
        if rows.empty:
            continue
        lam = [float(s.split()[1]) for s, _ in rows.index]
        best = lam[int(np.nanargmax(rows[col].to_numpy()))]
        lines.append(f"k={k}: over lam {min(lam):g}-{max(lam):g} the final picks span {rows['final picks'].min():.1f}-"
                     f"{rows['final picks'].max():.1f} and {col} {rows[col].min():.1f}-{rows[col].max():.1f} "
                     f"(highest at lam {best:g}; the paper's lam {PAPER_LAM:g} is kept)")
    lines.append(f"the literal Eo / N reading weighs Er like lam ≈ {literal_lam:.0f} (3 x the mean number of candidates)")
    return "; ".join(lines)

