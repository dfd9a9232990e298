"""The results layer: the verdict rule and the seed aggregation on hand-made numbers (every branch,
"within noise" included), the notebook parameters, the drawing functions on plain data, and every
data function on faked runs with one and with three seeds (no training here)."""
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from boxsup import figures, paper, report, results  # noqa: E402
from boxsup.crf import CRFParams  # noqa: E402
from boxsup import paper_figures as pf  # noqa: E402
from boxsup.config import Config  # noqa: E402
from boxsup.data import DataError  # noqa: E402
from boxsup.data.sample import Sample  # noqa: E402
from boxsup.experiments import claim_verdict, describe_claim, mean_sd, seed_configs  # noqa: E402
from fixtures import write_voc  # noqa: E402

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

    monkeypatch.setattr(results, "train_run", no_training)
    with pytest.raises(ValueError, match=match):
        call(Config())


# --- seeds and the verdict rule ----------------------------------------------------------------------
def test_seed_configs_start_at_the_notebook_seed_and_keep_the_first_run():
    cfg = Config(seed=4)
    cs = seed_configs(cfg, 3)
    assert [c.seed for c in cs] == [4, 5, 6] and cs[0] is cfg
    assert len({c.key() for c in cs}) == 3 and cs[1].name == cfg.name
    named = cfg.replace(name="toy-context-finetune")
    assert {c.name for c in seed_configs(named, 2)} == {"toy-context-finetune"}
    for bad in (0, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seeds="):
            seed_configs(cfg, bad)


def test_mean_sd_of_hand_made_seeds():
    assert mean_sd([60.0, 62.0, 64.0]) == (62.0, 2.0, 3)
    m, sd, n = mean_sd([50.0, None, float("nan")])
    assert (m, n) == (50.0, 1) and math.isnan(sd)
    assert mean_sd([])[2] == 0


@pytest.mark.parametrize("a, b, margin, expected", [
    ([60.0, 61.0, 62.0], [65.0, 66.0, 67.0], 0.0, "holds"),            # d = 5, SE = 0.82
    ([60.0, 61.0, 62.0], [55.0, 56.0, 57.0], 0.0, "does not hold"),    # d = -5
    ([60.0, 64.0, 62.0], [61.0, 65.0, 63.0], 0.0, "within noise"),     # d = 1 < 2 SE = 3.27
    ([60.0, 61.0, 62.0], [59.0, 60.0, 61.0], -1.8, "within noise"),    # d - m = +0.8 < 1.63
    ([60.0, 61.0, 62.0], [61.0, 62.0, 63.0], -1.8, "holds"),           # d - m = 2.8 >= 1.63
    ([60.0], [60.5], 0.0, "holds"),                                      # one seed: the sign decides
    ([60.0], [59.5], 0.0, "does not hold"),
    ([60.0, 62.0], [60.0], 0.0, "does not hold"),                        # a one-seed row: no spread
])
def test_claim_verdict_rule(a, b, margin, expected):
    verdict, nums = claim_verdict(a, b, margin)
    assert verdict == expected
    assert nums["d"] == pytest.approx(np.mean(b) - np.mean(a)) and nums["margin"] == margin
    if len(a) > 1 and len(b) > 1:
        assert nums["se"] == pytest.approx(math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)))
    else:
        assert math.isnan(nums["se"])


def test_claim_verdict_needs_both_rows_and_says_how_it_was_decided():
    with pytest.raises(ValueError, match="both sides"):
        claim_verdict([], [1.0])
    v, nums = claim_verdict([60.0, 64.0, 62.0], [61.0, 65.0, 63.0])
    assert describe_claim("b > a", v, nums, 2.3) == "b > a: d = +1.0 (2 SE 3.3, paper +2.3): within noise"
    v, nums = claim_verdict([60.0], [59.0], -1.8)
    assert describe_claim("near", v, nums) == "near: d = -1.0 (1 seed: noise not measured, needs > -1.8): holds"
    assert "2 SE" in paper.VERDICT_RULE and "within noise" in paper.VERDICT_RULE


def _per_seed(values: dict, col: str = "+CRF") -> pd.DataFrame:
    """Per-seed rows: {row name (or tuple): [one score per seed]}."""
    keys = [k for k, v in values.items() for _ in v]
    index = pd.MultiIndex.from_tuples(keys) if isinstance(keys[0], tuple) else pd.Index(keys)
    return pd.DataFrame({col: [x for v in values.values() for x in v]}, index=index)


def test_table1_verdict_judges_the_papers_claims_on_seeds():
    t = _per_seed({("VOC", "mask"): [60.0, 61.0, 62.0], ("VOC", "box"): [50.0, 51.0, 52.0],
                   ("VOC", "semi: some masks + boxes"): [60.5, 59.0, 61.5],
                   ("VOC+COCO", "semi: VOC masks + COCO boxes"): [64.0, 65.0, 66.0]})
    assert paper.table1_verdict(t, "+CRF") == (
        "box within the paper's gap of mask: d = -10.0 (2 SE 1.6, needs > -1.8, paper -1.8): does not hold; "
        "semi within the paper's gap of mask: d = -0.7 (2 SE 1.9, needs > -0.3, paper -0.3): within noise; "
        "extra boxes beat VOC masks: d = +4.0 (2 SE 1.6, paper +4.4): holds")
    assert paper.table1_verdict(t.iloc[[3]], "+CRF") == "no claim has both of its rows here"


def test_table2_verdict_pairs_of_the_ordering():
    names = [r[0] for r in paper.TABLE2_ROWS]
    t = _per_seed(dict(zip(names, [[40.0], [50.0], [45.0], [55.0], [56.0]])), "FCN")
    lines = paper.table2_verdict(t, "FCN").split("; ")
    assert [ln.rsplit(": ", 1)[1] for ln in lines] == ["holds", "does not hold", "holds", "holds"]
    assert lines[1].startswith("CRF-box > GrabCut: d = -5.0 (1 seed: noise not measured, paper +3.3)")


def test_table3_table4_table5_verdicts():
    t3 = _per_seed({"MCG (ours)": [44.6, 45.0, 44.0], "SS": [45.1, 46.0, 44.5], "GOP": [38.3, 38.0, 37.0]})
    assert paper.table3_verdict(t3, "+CRF", ["MCG (ours)", "SS", "GOP"]) == (
        "MCG (ours) > SS: d = -0.7 (2 SE 1.0): within noise; MCG (ours) > GOP: d = +6.8 (2 SE 1.0): holds")
    t3d = _per_seed({"MCG (ours)": [44.6, 45.0, 44.0], "MCG dedup": [40.0, 41.0, 39.0]})
    assert paper.table3_verdict(t3d, "+CRF", ["MCG (ours)"], "MCG dedup") == (
        "near-duplicates removed > as stored (MCG (ours)): d = -4.5 (2 SE 1.3): does not hold")
    keys = [r[:3] + (" ".join(f"{s:g}" for s in r[4]),) for r in paper.TABLE4_ROWS]
    t4 = _per_seed(dict(zip(keys, [[66.0], [60.0], [62.0], [65.0], [70.0], [71.0], [72.0]])), "FCN")
    v4 = paper.table4_verdict(t4, "FCN")
    assert v4.startswith("BoxSup box > WSSL box: d = +2.0 (1 seed: noise not measured, paper +4.2): holds; ")
    assert v4.endswith("BoxSup+ > BoxSup (scales): d = +1.0 (1 seed: noise not measured, paper +2.1): holds")
    assert paper.table4_verdict(t4, "+CRF") == paper.NO_TEST_LABELS  # no scores: server submissions
    t5 = _per_seed({"baseline": [30.0, 31.0], "pre-train on boxes + fine-tune": [33.5, 34.5]})
    assert paper.table5_verdict(t5, "+CRF") == (
        "box pre-training + fine-tune > baseline: d = +3.5 (2 SE 1.4, paper +4.8): holds")


def test_headline_joins_multi_index_rows_and_skips_missing_scores():
    idx = pd.MultiIndex.from_tuples([("a", "1"), ("b", "2")])
    assert paper.headline(pd.DataFrame({"x": [1.0, np.nan]}, index=idx), "x") == {"a / 1": 1.0}
    assert paper.headline(pd.DataFrame({"x": [2.0]}, index=["r"]), "x") == {"r": 2.0}


def test_aggregate_means_numbers_and_keeps_the_first_of_the_rest():
    vals = [{"m": "x", "seed": 0, "+CRF": 60.0, "label IoU": 50.0, "submission": "a", "run": "r0"},
            {"m": "x", "seed": 1, "+CRF": 64.0, "label IoU": 52.0, "submission": "b", "run": "r1"}]
    row = paper.aggregate(vals, {"m": "x"})
    assert row == {"m": "x", "+CRF": 62.0, "+CRF sd": pytest.approx(2 ** 1.5), "label IoU": 51.0,
                   "submission": "a", "run": "r0"}
    assert "+CRF sd" not in paper.aggregate(vals[:1], {"m": "x"})


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


class _Split(list):
    """A faked dataset split: samples and class names."""

    classes = ("background", "disc")


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
            figures.pick_quality_curve(curves), figures.pick_quality_curve(curves, {"ceiling k=5": 70.0, "Eo-only k=1": None}),
            figures.trimap_plot(trimap),
            figures.qualitative([s.image for s in samples], [s.mask for s in samples], {"box": [label, label]})]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    plt.close("all")


# --- every data function on faked runs, with one and with three seeds --------------------------------
@pytest.fixture
def fake_runs(monkeypatch, tmp_path):
    """``train_run`` returns the folder a config trains into (no training); each protocol's score is a
    fixed function of the run and its seed; label quality and CRF searches return fixed numbers."""
    def train_run(cfg, progress=True):
        return tmp_path / "runs" / cfg.run_name()

    def score(out) -> float:
        return 40 + int(out.name.rsplit("-", 1)[1], 16) % 2000 / 100

    def crf_scores(out, split=None, scales=(1.0,), *, use_crf=True, progress=True):
        base = score(out) + (len(scales) > 1) + (split == "test")
        return {"FCN": base, **({"+CRF (DeepLab defaults)": base - 3, "+CRF": base + 1} if use_crf else {})}

    tuned = {"best": {"pos_xy_std": 0.67, "bi_xy_std": 27.1, "bi_w": 4}, "split": "crfval", "images": 100,
             "no_crf_mIoU": 0.5, "defaults_mIoU": 0.48, "best_mIoU": 0.52}
    pool = {"abo": 0.78, "recall50": 0.95, "recall70": 0.7, "mean_candidates": 900.0, "eo_k1": 0.66, "eo_k5": 0.62,
            "oracle_k1": 0.73, "oracle_k5": 0.68, "boxes": 405, "images": 200}
    for name, fn in (("train_run", train_run), ("crf_scores", crf_scores), ("tune_crf", lambda out: tuned),
                     ("tuned_crf", lambda out: CRFParams()),
                     ("box_mask_quality", lambda c, method, n: {"rect": 0.5, "grabcut": 0.69, "crfbox": 0.77}[method]),
                     ("pool_quality", lambda c, n, t=None: pool if t is None else {**pool, "mean_candidates": 500.0}),
                     ("run_pick_quality", lambda out, n: {"miou": 0.6, "boxes": 405, "fallbacks": 0}),
                     ("dedup_effect", lambda c, run, t, n: {"as stored": {**pool, "net_k1": 0.6},
                                                            "dedup": {**pool, "mean_candidates": 500.0}}),
                     ("class_iou", lambda c, out, progress=True: {"background": 90.0, "disc": score(out)}),
                     ("table2_strip", lambda c, by_row: {"rows": list(by_row)})):
        for module in (paper, results):  # results holds the shared machinery (runs, CRF columns)
            if hasattr(module, name):
                monkeypatch.setattr(module, name, fn)
    monkeypatch.setattr(pf, "crf_scores", crf_scores)
    return tmp_path


@pytest.mark.parametrize("seeds", [1, 3])
def test_tables_on_faked_runs(fake_runs, seeds, tmp_path):
    cfg = paper.params_config(**NOTEBOOK_PARAMS)
    results = {"table1": paper.table1(cfg, seeds=seeds), "table2": paper.table2(cfg, seeds),
               "table3": paper.table3(cfg, 200, seeds), "table4": paper.table4(cfg, seeds=seeds),
               "table5": paper.table5(cfg, seeds)}
    rows = {"table1": 5, "table2": 6, "table3": 4, "table4": 7, "table5": 2}
    for name, res in results.items():
        assert len(res.table) == rows[name] and len(res.data["per_seed"]) == rows[name] * seeds, name
        means = [c for c in res.table.columns if not c.endswith(" sd")]
        assert means[:3] == ["FCN", "+CRF (DeepLab defaults)", "+CRF"], name
        if seeds > 1:  # each score's spread beside it
            assert list(res.table.columns[:6]) == [c for m in means[:3] for c in (m, m + " sd")], name
        assert ("+CRF sd" in res.table) == (seeds > 1) and "paper" in res.table, name
        assert set(res.data["per_seed"]["seed"]) == set(range(seeds)), name
        assert res.headline == paper.headline(res.table, "+CRF") and res.verdict, name
        assert len(res.data["crf"]) == len(res.runs) and res.records["verdict_rule"] == paper.VERDICT_RULE, name
        m = _metrics(res, tmp_path)
        assert len(m["per_seed"]) == rows[name] * seeds and len(m["crf"]) == len(res.runs), name
        sds = res.table["+CRF sd"].dropna() if seeds > 1 else []
        assert all(v >= 0 for v in sds)
        if seeds > 1:
            assert "(2 SE" in res.verdict
        else:
            assert "(1 seed: noise not measured" in res.verdict
    t2 = results["table2"].table
    assert t2.loc["rectangles", "label IoU"] == pytest.approx(50.0) and np.isnan(t2.loc["GrabCut", "ceiling k=1"])
    assert t2.loc["ours (top-5 sampling)", "label IoU"] == pytest.approx(60.0)
    assert t2.loc["ours (top-5 sampling)", "ceiling k=5"] == pytest.approx(68.0)
    t3 = results["table3"]
    assert t3.table.loc["GOP (ours)", "ABO"] == pytest.approx(78.0)
    assert list(t3.data["dedup"].columns)[:2] == ["candidates / image", "ABO"] and len(t3.data["dedup"]) == 6
    assert t3.data["dedup"]["network k=1"].iloc[0] == pytest.approx(60.0)
    trained_dedup = t3.table.loc["MCG (ours), near-duplicates removed (IoU > 0.9)", "run"]
    assert "-dedup0.9-" in trained_dedup and "near-duplicates removed > as stored (MCG (ours))" in t3.verdict
    # the trained row's pool columns describe the pool it trained on
    assert t3.table.loc["MCG (ours), near-duplicates removed (IoU > 0.9)", "candidates / image"] == 500.0
    assert t3.table.loc["MCG (ours)", "candidates / image"] == 900.0
    t1 = results["table1"]  # per class: the VOC-only rows, each class the mean over the row's seeds
    assert list(t1.data["per_class"].columns) == ["VOC / mask", "VOC / box", "VOC / semi: some masks + boxes"]
    assert list(t1.data["per_class"].index) == ["background", "disc"]
    box_seeds = t1.data["per_seed"].loc[("VOC", "box"), "FCN"]
    assert t1.data["per_class"].loc["disc", "VOC / box"] == pytest.approx(box_seeds.mean())
    assert results["table2"].data["strip"]["rows"] == [r[0] for r in paper.TABLE2_ROWS]
    # a run needed by two tables is the same folder (Table 1's box row is Table 2's "ours")
    assert set(results["table1"].runs) & set(results["table2"].runs)
    assert len(results["table2"].runs) == 6 * seeds  # the mask row is Table 1's mask run


def test_use_crf_false_has_only_the_plain_network(fake_runs):
    cfg = paper.params_config(**{**NOTEBOOK_PARAMS, "use_crf": False})
    res = paper.table2(cfg, 2)
    assert "+CRF" not in res.table and "+CRF sd" not in res.table and "FCN sd" in res.table and res.data["crf"].empty
    assert paper.score_column(cfg) == "FCN" and res.headline == paper.headline(res.table, "FCN")


def test_figures_on_faked_runs(fake_runs, monkeypatch):
    cfg = paper.params_config(**NOTEBOOK_PARAMS)
    pick = {1: 49.8, 5: 47.0, 15: 50.2}
    log = [{"epoch": e, "pick_mIoU": v / 100} for e, v in pick.items()]
    monkeypatch.setattr(pf, "use_run", lambda used, c, progress: results.train_run(c))
    monkeypatch.setattr(pf, "read_log", lambda out: log)
    monkeypatch.setattr(pf, "snapshot_epochs", lambda out, wanted: sorted({e for e in wanted if e in pick} | {max(pick)}))
    monkeypatch.setattr(pf, "load_snapshot", lambda out, e: {i: np.zeros((4, 4), np.uint8) for i in range(4)})
    monkeypatch.setattr(pf, "load_dataset", lambda *a, **k: _Split(_sample(i) for i in range(8)))
    monkeypatch.setattr(pf, "pool_quality", lambda c, n: {"eo_k1": 0.66, "eo_k5": 0.62, "oracle_k1": 0.73,
                                                          "oracle_k5": None})
    monkeypatch.setattr(pf, "run_pick_quality", lambda out, n: {"miou": 0.6 if "k5" in out.name else 0.64})
    res = pf.fig3(cfg, [1, 5, 20])
    assert len(res.data["samples"]) == 4 and list(res.data["labels"]) == [1, 5, 15]
    assert res.data["classes"] == _Split.classes
    assert res.data["levels"]["final picks k=5"] == pytest.approx(60.0) and np.isnan(res.data["levels"]["ceiling k=5"])
    assert "final picks k=1 64.0 vs Eo-only 66.0 and ceiling 73.0" in res.verdict
    monkeypatch.setattr(pf, "predict_run", lambda out, idx, crf=None: [np.zeros((16, 16), np.uint8) for _ in idx])
    monkeypatch.setattr(pf, "crf_params", lambda c, out: None)
    res = pf.fig5(cfg, [0, 1, 2, 3, 4, 5, 100])
    assert len(res.data["images"]) == 6 and set(res.headline) == {"box", "mask", "semi"}
    assert res.data["classes"] == _Split.classes


def _metrics(res: paper.Result, tmp_path: Path) -> dict:
    report.write_metrics(tmp_path / "m.json", res)
    return json.loads((tmp_path / "m.json").read_text())


def test_tables_on_a_voc_folder_keep_what_the_folder_can_give(fake_runs, tmp_path):
    folder = tmp_path / "horses"
    write_voc(folder, {f"h{i}": [(13, (4, 4, 30, 24))] for i in range(4)}, {"train": ["h0", "h1"], "val": ["h2", "h3"]})
    cfg = paper.params_config(**{**NOTEBOOK_PARAMS, "dataset": str(folder)})
    t1 = paper.table1(cfg)  # the toy's extra set has other classes: its rows are left out, and said so
    assert [r[1] for r in t1.table.index] == ["mask", "box", "semi: some masks + boxes"]
    assert "horses has no extra set" in t1.verdict
    assert all(r.startswith("horses-") for r in (Path(u).name for u in t1.runs))
    with pytest.raises(ValueError, match="Table 5 trains on PASCAL-Context"):
        paper.table5(cfg)
    with pytest.raises(DataError, match="test"):  # no test list: said before any training
        paper.table4(cfg)


def test_pick_curves_average_the_seeds_logs_epoch_by_epoch(tmp_path):
    from boxsup.runs import write_log

    folder = {}
    for run, ious in (("k5-a", [0.5, 0.6]), ("k5-b", [0.7, None]), ("k1-a", [0.4, 0.45])):
        folder[run] = tmp_path / run
        folder[run].mkdir()
        write_log(folder[run], [{"epoch": e + 1, "pick_mIoU": v} for e, v in enumerate(ious)])
    per_seed = pd.DataFrame({"masks": ["ours k5", "ours k5", "ours k1"], "run": ["k5-a", "k5-b", "k1-a"]}).set_index("masks")
    curves = paper.pick_curves(per_seed, folder, {"ours k5": "BoxSup k=5", "ours k1": "BoxSup k=1"})
    assert list(curves.columns) == ["BoxSup k=5", "BoxSup k=1"] and list(curves.index) == [1, 2]
    np.testing.assert_allclose(curves["BoxSup k=5"], [60.0, 60.0])  # epoch 2: the one seed that has it
    np.testing.assert_allclose(curves["BoxSup k=1"], [40.0, 45.0])


def test_describe_data_names_a_folders_source_without_quoting_it(tmp_path):
    """A committed real-photo page must carry nothing of the data's own files, SOURCE.txt included."""
    from boxsup.results import describe_data

    folder = tmp_path / "horses"
    write_voc(folder, {f"h{i}": [(13, (4, 4, 30, 24))] for i in range(4)}, {"train": ["h0", "h1"], "val": ["h2", "h3"]})
    (folder / "SOURCE.txt").write_text("Some Horse Database (Someone et al.), licence text\n")
    cfg = paper.params_config(**{**NOTEBOOK_PARAMS, "dataset": str(folder)})
    text = describe_data(cfg)
    assert "folder horses (its source: SOURCE.txt in that folder)" in text and "Some Horse" not in text
    assert "train: 2 images, val: 2 images" in text
