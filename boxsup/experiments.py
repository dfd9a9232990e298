"""Experiments: a run is a Config. ``train_run`` trains (or resumes, or reuses) it and scores the
finished network; runs are cached under ``runs/<name>-<hash>/`` and shared by every notebook that
needs them. Also here: training seeds (``seed_configs``), their mean and spread, and the rule that
turns two rows of seeds into a verdict (``claim_verdict``, stated in ``VERDICT_RULE``). The quality
of training labels and of the proposal pools is ``label_quality``'s.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path


from . import runs
from .config import Config
from .data import load_dataset
from .evaluate import evaluate
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


# --- seeds ---------------------------------------------------------------------------------------
def check_seeds(seeds: int) -> int:
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not allowed; it must be a positive integer (training seeds per row)")
    return seeds


def seed_configs(cfg: Config, seeds: int) -> list[Config]:
    """The training seeds of one row: ``cfg.seed``, ``cfg.seed + 1``, ... (the first is ``cfg``
    itself, so a one-seed table reuses the runs it always did)."""
    return [cfg] + [cfg.replace(seed=cfg.seed + i, name=cfg.name) for i in range(1, check_seeds(seeds))]


def mean_sd(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the finite values; sd is NaN below two values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan"), 0
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd, len(v)


VERDICT_RULE = ("A claim 'B - A > m' (m = 0, or the paper's own gap where the paper claims that B nearly "
                "matches A) is judged on the per-seed scores of the two rows: d = mean(B) - mean(A), "
                "SE = sqrt(sd(A)^2 / n(A) + sd(B)^2 / n(B)). It holds when d - m >= 2 SE, does not hold "
                "when d - m <= -2 SE, and is within noise otherwise. With fewer than two seeds in a row "
                "the spread is not measured: the sign of d - m decides, and the verdict says so.")


def claim_verdict(a: Sequence[float], b: Sequence[float], margin: float = 0.0) -> tuple[str, dict]:
    """("holds" | "does not hold" | "within noise", numbers) for the claim mean(b) - mean(a) > margin
    by ``VERDICT_RULE``; numbers: d, se (NaN when a row has one seed), margin, n_a, n_b."""
    ma, sa, na = mean_sd(a)
    mb, sb, nb = mean_sd(b)
    if not (na and nb):
        raise ValueError(f"claim_verdict needs a score on both sides, got {list(a)} and {list(b)}")
    d = mb - ma
    se = math.sqrt(sa ** 2 / na + sb ** 2 / nb) if na > 1 and nb > 1 else float("nan")
    nums = {"d": d, "se": se, "margin": float(margin), "n_a": na, "n_b": nb}
    if math.isnan(se):
        return ("holds" if d > margin else "does not hold"), nums
    if d - margin >= 2 * se:
        return "holds", nums
    if d - margin <= -2 * se:
        return "does not hold", nums
    return "within noise", nums


def describe_claim(name: str, verdict: str, nums: dict, paper: float | None = None) -> str:
    """One verdict line: 'name: d = +1.2 (2 SE 3.4, paper +2.3): within noise' (claims are joined by '; ')."""
    spread = f"2 SE {2 * nums['se']:.1f}" if math.isfinite(nums["se"]) else "1 seed: noise not measured"
    need = f", needs > {nums['margin']:+.1f}" if nums["margin"] else ""
    ref = f", paper {paper:+.1f}" if paper is not None else ""
    return f"{name}: d = {nums['d']:+.1f} ({spread}{need}{ref}): {verdict}"


def row_name(k) -> str:
    """A table row's name as the reader sees it: multi-index levels joined with ' / ' (the name
    verdicts, headlines, charts and results.md use)."""
    return " / ".join(map(str, k)) if isinstance(k, tuple) else str(k)


def claims_verdict(per_seed: "pd.DataFrame", col: str, claims: Sequence[tuple]) -> str:
    """Each claim ``(name, row A, row B, margin, paper's B - A or None)`` judged by ``VERDICT_RULE``
    on the per-seed values of ``col``; claims whose rows are missing are skipped."""
    by_row: dict[str, list[float]] = {}
    for k, v in per_seed[col].items():
        by_row.setdefault(row_name(k), []).append(v)
    lines = []
    for name, a, b, margin, paper_gap in claims:
        if a in by_row and b in by_row:
            verdict, nums = claim_verdict(by_row[a], by_row[b], margin)
            lines.append(describe_claim(name, verdict, nums, paper_gap))
    return "; ".join(lines) or "no claim has both of its rows here"
