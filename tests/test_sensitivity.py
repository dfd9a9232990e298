"""The sensitivity result: its rows, its pool-only curve with the literal Eo / N reading, and its
verdict, on faked runs and hand-made numbers (no training here)."""
import json

import numpy as np
import pandas as pd
import pytest

from boxsup import report, results, sensitivity
from boxsup.config import Config


def test_rows_span_two_decades_both_k_the_er_norm_and_the_paper_schedule():
    rows = sensitivity.sensitivity_rows(Config())
    lams = sorted({ch["lam"] for _, ch in rows if "lam" in ch})
    assert lams == [0.3, 3.0, 30.0] and max(lams) / min(lams) == pytest.approx(100)
    assert all(ch["supervision"] == "box" for _, ch in rows)
    assert [ix["k"] for ix, ch in rows if "lam" in ch] == ["k=1", "k=5"] * 3
    assert [ch["k"] for _, ch in rows if ch.get("er_norm") == "box"] == [1, 5]
    sched = [ch for ix, ch in rows if ix["setting"].startswith("paper schedule")]
    assert sched == [dict(supervision="box", k=5, epochs=45, passes=1, lr=1e-3, lr_step=15)]
    # at paper scale the paper's schedule is the default run: no extra row
    assert not [ix for ix, _ in sensitivity.sensitivity_rows(Config(profile="paper"))
                if ix["setting"].startswith("paper schedule")]


@pytest.fixture
def fake_runs(monkeypatch, tmp_path):
    """Scores rise with lam and fall with k; the pool's ceiling and Eo-only picks depend on lam."""
    def train_run(cfg, progress=True):
        return tmp_path / "runs" / cfg.run_name()

    cfgs = {}

    def use_run(used, cfg, progress):
        out = train_run(cfg)
        cfgs[out] = cfg
        used.append(str(out))
        return out

    def crf_scores(out, split=None, scales=(1.0,), *, use_crf=True, progress=True):
        c = cfgs[out]
        base = 40 + 2 * np.log10(c.lam) - c.k + c.seed
        return {"FCN": base, **({"+CRF (DeepLab defaults)": base - 3, "+CRF": base + 1} if use_crf else {})}

    def pool_quality(c, n=None, dedup_iou=None):
        return {"mean_candidates": 300.0, "eo_k1": 0.66, "eo_k5": 0.62,
                "oracle_k1": 0.70 + 0.01 * np.log10(c.lam), "oracle_k5": 0.65 + 0.01 * np.log10(c.lam)}

    monkeypatch.setattr(results, "use_run", use_run)
    monkeypatch.setattr(results, "tune_crf", lambda out: {"best": {"bi_w": 4}, "split": "crfval", "images": 100,
                                                        "no_crf_mIoU": 0.5, "defaults_mIoU": 0.48, "best_mIoU": 0.52})
    monkeypatch.setattr(sensitivity, "crf_scores", crf_scores)
    monkeypatch.setattr(sensitivity, "pool_quality", pool_quality)
    monkeypatch.setattr(sensitivity, "run_pick_quality", lambda out, n: {"miou": 0.5 + cfgs[out].lam / 100})
    return tmp_path


@pytest.mark.parametrize("seeds", [1, 2])
def test_sensitivity_on_faked_runs(fake_runs, seeds, tmp_path):
    res = sensitivity.sensitivity(Config(use_crf=True), seeds=seeds)
    assert len(res.table) == 9 and len(res.data["per_seed"]) == 9 * seeds
    assert res.table.loc[("lam 30", "k=1"), "final picks"] == pytest.approx(80.0)
    assert res.table.loc[("lam 0.3", "k=5"), "ceiling"] == pytest.approx(100 * (0.65 + 0.01 * np.log10(0.3)))
    assert res.table.loc[("lam 3", "k=1"), "Eo-only"] == pytest.approx(66.0)  # the row's own k
    pool = res.data["pool"]
    assert 900.0 in pool.index and 3.0 in pool.index and res.data["literal_lam"] == 900.0  # 3 x 300 candidates
    assert pool.loc[0.3, "ceiling k=1"] == pytest.approx(100 * (0.70 + 0.01 * np.log10(0.3)))
    assert "lam ≈ 900" in res.verdict and "k=5: over lam 0.3-30" in res.verdict
    assert res.headline["lam 3 / k=5"] == pytest.approx(res.table.loc[("lam 3", "k=5"), "+CRF"])
    report.write_metrics(tmp_path / "m.json", res)
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["literal_lam"] == 900.0 and len(m["pool"]) == len(pool) and len(m["per_seed"]) == 9 * seeds


def test_verdict_reports_the_ranges_and_keeps_the_papers_lam():
    idx = pd.MultiIndex.from_tuples([("lam 0.3", "k=1"), ("lam 3", "k=1"), ("lam 30", "k=1"), ("Er / box area, lam 3", "k=1")])
    t = pd.DataFrame({"+CRF": [50.0, 55.0, 52.0, 99.0], "final picks": [60.0, 66.0, 70.0, 10.0]}, index=idx)
    v = sensitivity.sensitivity_verdict(t, "+CRF", 912.0)
    assert v == ("k=1: over lam 0.3-30 the final picks span 60.0-70.0 and +CRF 50.0-55.0 (highest at lam 3; "
                 "the paper's lam 3 is kept); the literal Eo / N reading weighs Er like lam ≈ 912 "
                 "(3 x the mean number of candidates)")


def test_sensitivity_plot_marks_the_papers_lam_and_keeps_the_legend_off_the_data():
    import matplotlib

    matplotlib.use("Agg")
    from boxsup import figures

    idx = pd.MultiIndex.from_tuples([(f"lam {lam:g}", k) for lam in (0.3, 3, 30) for k in ("k=1", "k=5")] +
                                    [("Er / box area, lam 3", "k=1")])
    t = pd.DataFrame({"+CRF": np.arange(7.0) + 40, "final picks": np.arange(7.0) + 60}, index=idx)
    pool = pd.DataFrame({c: [70.0, 71.0, 69.0] for c in ("ceiling k=1", "ceiling k=5", "Eo-only k=1", "Eo-only k=5")},
                        index=pd.Index([0.3, 3.0, 900.0], name="lam"))
    fig = figures.sensitivity_plot(t, pool, "+CRF", 3.0, 900.0)
    left, right = fig.axes[:2]
    assert [len(line.get_xdata()) for line in left.lines if len(line.get_xdata()) > 2] == [3, 3, 3, 3]
    assert any(list(line.get_xdata()) == [3.0, 3.0] for line in left.lines)  # the paper's lam
    assert any(list(line.get_xdata()) == [900.0, 900.0] for line in right.lines)  # the literal reading
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    for ax in (left, right):
        assert not legend.overlaps(ax.get_window_extent())
