"""The results layer: verdict functions on hand-made numbers (every branch), the notebook parameters,
the drawing functions on plain data, and the data functions rebuilding the committed reports'
metrics from the same runs (evaluation faked with the committed numbers, so no training here)."""
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from boxsup import figures, paper, report  # noqa: E402
from boxsup import paper_figures as pf  # noqa: E402
from boxsup.config import Config  # noqa: E402
from boxsup.data.sample import Sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
NOTEBOOK_PARAMS = dict(profile="toy", data_root=None, device="auto", seed=0, epochs=None, use_crf=True, runs_dir="runs")


# --- notebook parameters and row selection -----------------------------------------------------------
def test_params_config_drops_none_and_validates():
    cfg = paper.params_config(**NOTEBOOK_PARAMS)
    assert cfg.epochs == 15 and cfg.data_root is None and cfg.use_crf  # None: the profile's default
    assert cfg.key() == Config(use_crf=True).key()
    assert paper.params_config(profile="toy", epochs=2).epochs == 2
    with pytest.raises(ValueError, match="profile='huge'.*toy, paper"):
        paper.params_config(profile="huge")
    with pytest.raises(ValueError, match="epochs=0"):
        paper.params_config(epochs=0)


def test_table1_row_selection_and_bad_values():
    assert paper.table1_rows() == paper.TABLE1_ROWS
    assert [r[1] for r in paper.table1_rows("box")] == ["box"]
    assert [r[2] for r in paper.table1_rows("mask", "boxes")] == [dict(supervision="mask", extra="boxes")]
    assert {r[2].get("extra", "none") for r in paper.table1_rows("mask")} == {"none", "masks", "boxes"}
    custom = paper.table1_rows("box", "boxes")  # not a paper row: run as its own row, no paper number
    assert custom[0][2] == dict(supervision="box", extra="boxes") and custom[0][3] is None
    with pytest.raises(ValueError, match="supervision='boxes'.*all, mask, box, semi"):
        paper.table1_rows("boxes")
    with pytest.raises(ValueError, match="extra='coco'"):
        paper.table1_rows("mask", "coco")


def test_context_configs_box_pretrain_on_the_extra_boxes():
    cs = paper.context_configs(Config())
    assert cs["baseline"].dataset == "toy-context" and cs["baseline"].supervision == "mask"
    pre = cs["box_pretrain"]
    assert (pre.dataset, pre.train_split, pre.supervision) == ("toy", "extra", "box")
    big = paper.context_configs(Config(profile="paper"))
    assert big["box_pretrain"].dataset == "coco80" and big["baseline"].dataset == "context"


def test_table3_rows_use_the_released_mcg_only_at_paper_scale():
    assert [m for _, m, _ in paper.table3_rows(Config())] == ["mcg-ours", "ss", "gop-ours"]
    assert paper.table3_rows(Config(profile="paper"))[0][:2] == ("MCG", "mcg")


@pytest.mark.parametrize("call, match", [
    (lambda cfg: paper.table3(cfg, quality_images=0), "quality_images=0"),
    (lambda cfg: pf.fig3(cfg, shown_epochs=[0, 5]), "shown_epochs=.*count from 1"),
    (lambda cfg: pf.fig4(cfg, band_widths=[]), "band_widths="),
    (lambda cfg: pf.fig5(cfg, images=[-1]), "images=.*>= 0"),
])
def test_bad_result_parameters_fail_before_any_training(call, match, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("trained before checking its parameters")

    monkeypatch.setattr(paper, "train_run", no_training)
    with pytest.raises(ValueError, match=match):
        call(Config())


# --- verdicts ----------------------------------------------------------------------------------------
def test_ordering_verdict_strict_and_within_half_a_point():
    names = ["a", "b", "c"]
    assert paper.ordering_verdict([1.0, 2.0, 2.4], names, [True, False]) == "ordering holds"  # 2.0 <= 2.4 + 0.5
    assert paper.ordering_verdict([1.0, 2.0, 1.6], names, [True, False]) == "ordering holds"  # within 0.5
    assert paper.ordering_verdict([1.0, 2.0, 1.4], names, [True, False]) == "does not hold: b (2.0) <= c (1.4)"
    assert (paper.ordering_verdict([2.0, 2.0, 1.0], names, [True, True])
            == "does not hold: a (2.0) < b (2.0); b (2.0) < c (1.0)")


def test_table1_verdict_reports_each_comparison_it_has_rows_for():
    idx = pd.MultiIndex.from_tuples([("VOC", "mask"), ("VOC", "box"), ("VOC", "semi: some masks + boxes"),
                                     ("VOC+COCO", "mask"), ("VOC+COCO", "semi: VOC masks + COCO boxes")],
                                    names=["data", "supervision"])
    t = pd.DataFrame({"FCN": [60.0, 50.0, 55.0, 65.0, 62.5]}, index=idx)
    assert paper.table1_verdict(t, "FCN") == ("box - mask = -10.0 (paper: -1.8); semi - mask = -5.0 (paper: -0.3); "
                                              "extra boxes change mask by +2.5 (paper: +4.4)")
    assert paper.table1_verdict(t.iloc[[1]], "FCN") == "single row"
    assert paper.table1_verdict(t.iloc[[0, 2]], "FCN") == "semi - mask = -5.0 (paper: -0.3)"


def test_table2_verdict_names_the_broken_pair():
    t = pd.DataFrame({"FCN": [40.0, 50.0, 45.0, 55.0, 56.0]}, index=["r", "g", "c", "k1", "k5"])
    assert paper.table2_verdict(t, "FCN") == "does not hold: GrabCut (50.0) < CRF-box (45.0)"
    t["FCN"] = [40.0, 45.0, 50.0, 55.0, 54.6]
    assert paper.table2_verdict(t, "FCN") == "ordering holds"


def test_table3_verdict_names_the_best_method():
    t = pd.DataFrame({"+CRF": [44.6, 45.1, 38.3]}, index=["MCG (ours)", "SS", "GOP"])
    assert paper.table3_verdict(t, "+CRF") == "best: SS (45.1); MCG (ours) 44.6, SS 45.1, GOP 38.3 (paper: MCG best)"


def _table4(values: list[float | None]) -> pd.DataFrame:
    keys = [r[:3] + (" ".join(f"{s:g}" for s in r[4]),) for r in paper.TABLE4_ROWS]
    idx = pd.MultiIndex.from_tuples(keys, names=["method", "sup", "data", "test scales"])
    return pd.DataFrame({"FCN": values}, index=idx)


def test_table4_verdict_pairs_and_paper_scale():
    t = _table4([66.0, 60.0, 62.0, 65.0, 70.0, 71.0, 72.0])
    assert paper.table4_verdict(t, "FCN") == (
        "BoxSup box vs WSSL box: +2.0 (paper +4.2); BoxSup semi vs DeepLab mask: -1.0 (paper -0.2); "
        "BoxSup semi V+C vs WSSL mask V+C: +1.0 (paper +0.6); BoxSup+ vs BoxSup (scales): +1.0 (paper +2.1)")
    assert paper.table4_verdict(t.iloc[:3], "FCN") == "BoxSup box vs WSSL box: +2.0 (paper +4.2)"
    assert paper.table4_verdict(t, "+CRF") == paper.NO_TEST_LABELS  # no scores: server submissions


def test_gain_verdicts_beat_and_do_not_beat():
    t = pd.DataFrame({"FCN": [30.0, 33.5]}, index=["baseline", "pre-train on boxes + fine-tune"])
    assert paper.table5_verdict(t, "FCN") == "pre-train on boxes + fine-tune beats baseline by +3.5 points (paper: +4.8)"
    t["FCN"] = [30.0, 29.0]
    assert paper.table5_verdict(t, "FCN").startswith("pre-train on boxes + fine-tune does not beat baseline by -1.0")
    assert paper.gain_verdict(t, "FCN", "baseline", "pre-train on boxes + fine-tune", 1.0).endswith("(paper: +1.0)")


def test_headline_joins_multi_index_rows_and_skips_missing_scores():
    idx = pd.MultiIndex.from_tuples([("a", "1"), ("b", "2")])
    assert paper.headline(pd.DataFrame({"x": [1.0, np.nan]}, index=idx), "x") == {"a / 1": 1.0}
    assert paper.headline(pd.DataFrame({"x": [2.0]}, index=["r"]), "x") == {"r": 2.0}


def test_fig3_verdict_needs_more_than_two_points_to_call_a_trend():
    head, verdict = pf.fig3_verdict({1: 49.8, 5: 47.0, 15: 50.2}, [1, 5, 20])
    assert head == {"pick IoU epoch 1": 49.8, "pick IoU epoch 5": 47.0} and "get worse" in verdict
    assert verdict == "picks get worse over training: mean IoU 49.8 -> 47.0 at epochs 1, 5 (paper: improve)"
    assert "improve over" in pf.fig3_verdict({1: 40.0, 5: 50.0}, [1, 5])[1]
    assert "barely change" in pf.fig3_verdict({1: 40.0, 5: 41.0}, [1, 5])[1]
    with pytest.raises(ValueError, match="no pick quality"):
        pf.fig3_verdict({1: 40.0}, [3])


def test_fig4_verdict_compares_interior_and_boundary_gains():
    gain = pd.DataFrame({"boundary": [-1.0, 0.5], "interior": [2.0, 0.2]}, index=pd.Index([4, 8], name="band_width"))
    head, verdict = pf.fig4_verdict(gain, 4)
    assert head == {"interior gain (w=4)": 2.0, "boundary gain (w=4)": -1.0}
    assert verdict == ("at band width 4: extra boxes change interior mIoU by +2.0 and boundary mIoU by -1.0; "
                       "interior gains more (as in the paper)")
    assert pf.fig4_verdict(gain, 8)[1].endswith("interior does not gain more (unlike the paper)")


def test_fig5_and_data_verdicts():
    assert pf.fig5_verdict({"box": 44.58, "mask": 67.96}) == "val mIoU box 44.6, mask 68.0"
    assert pf.dataset_verdict(pd.DataFrame()) == "benchmark generated"


def test_write_metrics_records_the_result_and_its_runs(tmp_path):
    res = paper.Result(pd.DataFrame(), {"a": 1.0}, "v", ["runs/x-1", "runs/y-2"],
                       {"table": [{"paper": float("nan"), "FCN": np.float64(2.5)}]})
    report.write_metrics(tmp_path / "m.json", res)
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "headline": {"a": 1.0}, "verdict": "v", "runs": ["runs/x-1", "runs/y-2"],
        "table": [{"paper": None, "FCN": 2.5}]}


# --- drawing takes data ------------------------------------------------------------------------------
def _sample(i: int, mask: bool = True) -> Sample:
    img = np.full((16, 16, 3), 30 * i % 256, np.uint8)
    m = np.zeros((16, 16), np.uint8)
    m[4:10, 4:10] = 1
    return Sample(img, np.array([[4, 4, 10, 10]], np.float32), np.array([1]), f"im{i}", m if mask else None)


def test_figures_draw_plain_data():
    import matplotlib.pyplot as plt

    samples = [_sample(0), _sample(1, mask=False)]
    label = np.zeros((16, 16), np.uint8)
    table = pd.DataFrame({"FCN": [50.0, 60.0], "paper": [55.0, np.nan]}, index=["a", "b"])
    trimap = pd.DataFrame({"band_width": [1, 1, 2, 2], "region": ["boundary", "interior"] * 2,
                           "method": ["m"] * 4, "mIoU": [0.4, 0.6, 0.5, 0.7]})
    curves = pd.DataFrame({"k5": [49.8, 47.0], "k1": [50.0, np.nan]}, index=pd.Index([1, 2], name="epoch"))
    figs = [figures.sample_grid(samples, ("background", "disc"), "toy"),
            figures.fill_bars({"toy": {"disc": 0.7, "star": 0.3}}),
            figures.score_bars(table, ["FCN", "paper"]), figures.score_bars(table, ["FCN"], height=2.5),
            figures.estimated_masks(samples, {1: [label, label], 5: [label, label]}),
            figures.pick_quality_curve(curves), figures.trimap_plot(trimap),
            figures.qualitative([s.image for s in samples], [s.mask for s in samples], {"box": [label, label]})]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    plt.close("all")


# --- the data functions rebuild the committed metrics from the same runs ----------------------------
def _committed(name: str) -> dict:
    path = REPORTS / f"{name}.metrics.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return json.loads(path.read_text())


def _close(a, b, path="") -> None:
    """Equal JSON, floats to 1e-9 relative (a score that went through "/ 100 then * 100" here)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), b)
        for k in a:
            _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _null_nan(obj):
    """The committed files may hold NaN where the results layer now writes null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _null_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_null_nan(v) for v in obj]
    return obj


@pytest.fixture
def fake_runs(monkeypatch):
    """``train_run`` returns the folder a config trains into (no training); evaluations return the
    committed tables' scores of that folder under the requested protocol."""
    scores: dict[tuple, float] = {}
    for name in ("table1", "table2", "table3", "table4", "table5"):
        for row in json.loads((REPORTS / f"{name}.metrics.json").read_text())["table"] if \
                (REPORTS / f"{name}.metrics.json").is_file() else []:
            split, scales = ("test", row["test scales"]) if name == "table4" else ("val", "1")
            for col in ("FCN", "+CRF"):
                key = (row["run"], split, scales, col)
                assert scores.setdefault(key, row[col]) == row[col], f"two committed values for {key}"
    extra = {}

    def train_run(cfg, progress=True):
        return Path(cfg.runs_dir) / cfg.run_name()

    def evaluate_run(run_dir, split=None, scales=(1.0,), *, crf=None, trimap_widths=None, progress=True):
        if trimap_widths:
            return extra["trimap"](Path(run_dir).name, crf)
        key = (Path(run_dir).name, split or "val", " ".join(f"{s:g}" for s in scales), "+CRF" if crf else "FCN")
        return {"mIoU": scores[key] / 100}

    monkeypatch.setattr(paper, "train_run", train_run)
    for mod in (paper, pf):
        monkeypatch.setattr(mod, "evaluate_run", evaluate_run)
    return extra


def _metrics(res: paper.Result, tmp_path: Path) -> dict:
    report.write_metrics(tmp_path / "m.json", res)
    return json.loads((tmp_path / "m.json").read_text())


def test_tables_rebuild_the_committed_metrics(fake_runs, monkeypatch, tmp_path):
    t2 = {r["run"]: r["training-mask IoU vs truth"] for r in _committed("table2")["table"]}
    t3 = {r["proposals"]: r for r in _committed("table3")["table"]}
    picks = {r["run"]: r["final pick IoU"] for r in t3.values()}  # BoxSup's last picks, k=1 from Table 2
    monkeypatch.setattr(paper, "final_pick_quality", lambda out: picks[out.name] if out.name in picks else t2[out.name] / 100)
    monkeypatch.setattr(paper, "box_mask_quality", lambda c, method: t2[c.run_name()] / 100)
    by_method = {"mcg-ours": "MCG (ours)", "ss": "Selective Search (ours)", "gop-ours": "GOP (ours)"}
    monkeypatch.setattr(paper, "proposal_quality", lambda c, max_images: {
        "abo": t3[by_method[c.proposals]]["ABO"], "recall50": t3[by_method[c.proposals]]["recall@0.5"],
        "recall70": t3[by_method[c.proposals]]["recall@0.7"],
        "mean_candidates": t3[by_method[c.proposals]]["candidates / image"]})
    cfg = paper.params_config(**NOTEBOOK_PARAMS)
    for name, res in (("table1", paper.table1(cfg)), ("table2", paper.table2(cfg)),
                      ("table3", paper.table3(cfg, 200)), ("table4", paper.table4(cfg)),
                      ("table5", paper.table5(cfg))):
        _close(_metrics(res, tmp_path), _null_nan(_committed(name)), name)


def test_figures_rebuild_the_committed_metrics(fake_runs, monkeypatch, tmp_path):
    cfg = paper.params_config(**NOTEBOOK_PARAMS)
    # Figure 3: the box run's log as committed
    pick = {int(e): v for e, v in _committed("fig3")["pick_iou"].items()}
    log = [{"epoch": e, "pick_mIoU": v / 100} for e, v in pick.items()]
    monkeypatch.setattr(pf, "read_log", lambda out: log)
    monkeypatch.setattr(pf, "snapshot_epochs", lambda out, wanted: sorted({e for e in wanted if e in pick} | {max(pick)}))
    monkeypatch.setattr(pf, "load_snapshot", lambda out, e: {i: np.zeros((4, 4), np.uint8) for i in range(4)})
    monkeypatch.setattr(pf, "load_dataset", lambda *a, **k: [_sample(i) for i in range(8)])
    res = pf.fig3(cfg, [1, 5, 20])
    assert len(res.data["samples"]) == 4 and list(res.data["labels"]) == [1, 5, 15]
    _close(_metrics(res, tmp_path), _committed("fig3"), "fig3")
    # Figure 4: trimap mIoUs whose differences are the committed gains
    gain = {g["band_width"]: g for g in _committed("fig4")["gain"]}

    def trimap(run, crf):
        plus = "extra-boxes" in run
        return {"trimap": [{"band_width": w, "region": r, "method": "", "mIoU": 0.5 + (g[r] / 100 if plus else 0)}
                           for w, g in gain.items() for r in ("boundary", "interior")]}
    fake_runs["trimap"] = trimap
    _close(_metrics(pf.fig4(cfg, [1, 2, 4, 8, 12, 16]), tmp_path), _committed("fig4"), "fig4")
    # Figure 5: predictions are drawn, scores are the runs' val +CRF
    monkeypatch.setattr(pf, "predict_run", lambda out, idx, crf=None: [np.zeros((16, 16), np.uint8) for _ in idx])
    res = pf.fig5(cfg, [0, 1, 2, 3, 4, 5, 100])
    assert len(res.data["images"]) == 6 and all(len(p) == 6 for p in res.data["predictions"].values())
    _close(_metrics(res, tmp_path), _committed("fig5"), "fig5")
