"""The pictures of the report pages: legends never over data, row names as the reader reads them, the
class-colour key in the palette's colours, the per-class bars and Table 2's strip of training labels
on hand-made data; and the data functions behind them on tiny real runs (slow)."""
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from boxsup import evaluate, figures, paper  # noqa: E402
from boxsup import paper_figures as pf  # noqa: E402
from boxsup.config import Config  # noqa: E402
from boxsup.data.sample import Sample  # noqa: E402
from boxsup.data.synthetic import ToySpec, ensure_toy  # noqa: E402

CLASSES = ("background", "disc", "triangle", "star", "ring")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend(fig):
    return fig.legends[0] if fig.legends else fig.axes[0].get_legend()


def _inside(fig, box) -> bool:
    return fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


def _sample(i: int, cls: int, mask: bool = True) -> Sample:
    img = np.full((16, 16, 3), 40 * i % 256, np.uint8)
    m = np.zeros((16, 16), np.uint8)
    m[4:10, 4:10] = cls
    m[0, 0] = 255
    return Sample(img, np.array([[4, 4, 10, 10]], np.float32), np.array([cls]), f"im{i}", m if mask else None)


# --- score charts -------------------------------------------------------------------------------------
def test_score_bars_legend_is_off_the_bars_and_rows_are_named():
    idx = pd.MultiIndex.from_tuples([("VOC", "mask"), ("VOC", "box"), ("VOC+COCO", "semi: VOC masks + COCO boxes")],
                                    names=["data", "supervision"])
    # bars reaching the right edge: a legend inside the axes would have to cover one
    table = pd.DataFrame({"+CRF": [99.0, 98.0, 97.0], "paper": [98.5, 99.5, np.nan], "run": ["a", "b", "c"]},
                         index=idx)
    labels = paper.series_labels(Config(), "+CRF")
    fig = figures.score_bars(table, ["+CRF", "paper"], labels=labels)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = _legend(fig)
    box = legend.get_window_extent()
    bars = [p for p in ax.patches if p.get_width() > 0]  # pandas draws a missing value as width 0
    assert len(bars) == 5 and _inside(fig, box)
    assert not any(box.overlaps(b.get_window_extent()) for b in bars)
    assert [t.get_text() for t in legend.get_texts()] == ["ours (toy), +CRF", "paper (VOC)"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "VOC / mask", "VOC / box", "VOC+COCO / semi: VOC masks + COCO boxes"]
    assert fig.get_figwidth() == 7


def test_series_labels_name_the_benchmark_of_the_profile():
    assert paper.series_labels(Config(), "FCN") == {"FCN": "ours (toy), FCN", "paper": "paper (VOC)"}
    assert paper.series_labels(Config(profile="paper"), "+CRF")["+CRF"] == "ours (VOC), +CRF"


def test_score_bars_with_one_series_has_no_legend():
    fig = figures.score_bars(pd.DataFrame({"FCN": [50.0, 60.0]}, index=["a", "b"]), ["FCN"])
    assert not fig.legends and fig.axes[0].get_legend() is None


# --- the class-colour key -----------------------------------------------------------------------------
def _key(fig) -> tuple[list[str], np.ndarray]:
    legend = _legend(fig)
    names = [t.get_text() for t in legend.get_texts()]
    return names, np.array([h.get_facecolor()[:3] for h in legend.legend_handles])


def test_class_key_names_exactly_the_classes_in_the_label_maps_in_palette_colours():
    samples = [_sample(0, 1), _sample(1, 3)]
    estimated = np.zeros((16, 16), np.uint8)
    estimated[1:3, 1:3] = 4
    fig = figures.estimated_masks(samples, {1: [estimated, estimated], 5: [samples[0].mask, estimated]}, CLASSES)
    names, colours = _key(fig)
    assert names == ["background", "disc", "star", "ring"]  # 255 is no class; triangle is absent
    assert np.allclose(colours, figures.PALETTE[[0, 1, 3, 4]] / 255)
    fig.canvas.draw()  # under the grid, over no picture
    box = _legend(fig).get_window_extent()
    assert _inside(fig, box) and not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)

    preds = {"box": [np.full((16, 16), 2, np.uint8)] * 2, "mask": [samples[1].mask, samples[1].mask]}
    fig = figures.qualitative([s.image for s in samples], [None, samples[1].mask], preds, CLASSES)
    names, colours = _key(fig)
    assert names == ["background", "triangle", "star"]
    assert np.allclose(colours, figures.PALETTE[[0, 2, 3]] / 255)


def test_without_class_names_there_is_no_key():
    s = _sample(0, 1)
    assert not figures.qualitative([s.image], [s.mask], {"box": [s.mask]}).legends
    assert not figures.estimated_masks([s], {1: [s.mask]}).legends


# --- per-class bars and Table 2's strip --------------------------------------------------------------
def test_per_class_bars_one_bar_per_class_and_row():
    df = pd.DataFrame({"VOC / mask": [90.0, 70.0, 60.0, 50.0], "VOC / box": [88.0, 65.0, np.nan, 40.0],
                       "VOC / semi: some masks + boxes": [89.0, 68.0, 55.0, 45.0]}, index=list(CLASSES[:4]))
    fig = figures.per_class_bars(df)
    fig.canvas.draw()
    (ax,) = fig.axes
    assert len(ax.patches) == 12 and [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES[:4])
    legend = _legend(fig)
    assert [t.get_text() for t in legend.get_texts()] == list(df.columns)
    box = legend.get_window_extent()
    assert _inside(fig, box) and not any(box.overlaps(p.get_window_extent()) for p in ax.patches
                                         if np.isfinite(p.get_width()))
    assert figures.per_class_bars(pd.DataFrame()).axes  # no row selected: a figure that says so


def test_trimap_fill_and_pick_charts_keep_their_legends_off_the_axes():
    rows = [(w, region, method, 0.5 + 0.01 * w) for w in (1, 2, 4) for region in ("boundary", "interior")
            for method in ("masks only", "masks + extra boxes")]
    fig = figures.trimap_plot(pd.DataFrame(rows, columns=["band_width", "region", "method", "mIoU"]))
    fill = figures.fill_bars({"toy": {"disc": 0.8, "ring": 0.3}, "horses": {"disc": 0.5, "ring": 0.4}})
    curves = pd.DataFrame({"BoxSup (k=5)": [50.0, 52, 55], "BoxSup w/o sampling (k=1)": [51.0, 53, 56]}, index=[1, 2, 3])
    picks = figures.pick_quality_curve(curves, {"final picks k=5": 55.0, "ceiling k=5": 68.0, "Eo-only k=1": 60.0})
    for f in (fig, fill, picks):
        f.canvas.draw()
        box = _legend(f).get_window_extent()
        assert _inside(f, box) and not any(box.overlaps(ax.get_window_extent()) for ax in f.axes)


# every row of Table 2 but the true masks' (the strip's ground-truth column)
STRIP_ROWS = [name for name, ch, _ in paper.TABLE2_ROWS if ch["supervision"] != "mask"]


def test_label_strip_one_column_per_row_of_table_2():
    samples = [_sample(0, 1), _sample(1, 2, mask=False)]
    labels = {name: [s.mask if s.mask is not None else np.zeros((16, 16), np.uint8) for s in samples]
              for name in STRIP_ROWS}
    fig = figures.label_strip(samples, labels, CLASSES)
    assert len(fig.axes) == 2 * (2 + len(STRIP_ROWS))
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes[:2 + len(STRIP_ROWS)]]
    assert titles == ["image + boxes", "ground truth"] + STRIP_ROWS
    assert _key(fig)[0] == ["background", "disc", "triangle"]  # the second image's box is a triangle


def test_label_strip_without_photos_draws_nothing_and_says_so(capsys):
    """A page committed to git for data that may not be copied (``--no-photos``) holds no figure of it."""
    import matplotlib.pyplot as plt

    samples = [_sample(0, 1), _sample(1, 2)]
    labels = {name: [s.mask for s in samples] for name in STRIP_ROWS}
    before = plt.get_fignums()
    assert figures.label_strip(samples, labels, CLASSES, photos=False) is None
    assert plt.get_fignums() == before
    assert f"Not drawn (photos=False): 2 training images" in capsys.readouterr().out


# --- the data functions on tiny real runs ------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figures")
    root = ensure_toy(tmp / "toy", ToySpec(train=8, extra=6, val=4, test=4, context_train=4, context_val=3,
                                          imagenet=40, crfval=4, context_crfval=3))
    return Config(data_root=str(root), runs_dir=str(tmp / "runs"), proposals_dir=str(tmp / "proposals"), epochs=1,
                  passes=1, batch_size=4, crop=48, device="cpu", use_crf=False)


@pytest.mark.slow
def test_table1_per_class_and_table2_strip_on_tiny_runs(tiny_cfg):
    t1 = paper.table1(tiny_cfg, extra="none", progress=False)
    pc = t1.data["per_class"]
    assert list(pc.columns) == ["VOC / mask", "VOC / box", "VOC / semi: some masks + boxes"]
    assert tuple(pc.index) == ("background", "disc", "triangle", "star", "ring", "crescent", "cross")
    ious = pc.stack().dropna()  # NaN: a class in neither the truth nor the predictions of the tiny val split
    assert len(ious) >= 3 and ((ious >= 0) & (ious <= 100)).all()
    # the table's own evaluation (cached), so the per-class IoUs agree with the headline column
    box_run = next(r for r in t1.runs if "-box-" in r)
    ev = evaluate.evaluate_run(box_run, progress=False)
    assert np.nanmean(pc["VOC / box"]) == pytest.approx(100 * ev["mIoU"])
    assert t1.table.loc[("VOC", "box"), "FCN"] == pytest.approx(100 * ev["mIoU"])

    t2 = paper.table2(tiny_cfg, progress=False)
    strip = t2.data["strip"]
    assert len(strip["samples"]) == 4 and strip["classes"][0] == "background"
    assert list(strip["labels"]) == STRIP_ROWS
    for name, maps in strip["labels"].items():
        assert [m.shape for m in maps] == [s.size for s in strip["samples"]], name
        assert all(set(np.unique(m)) <= {0} | set(s.labels.tolist()) for m, s in zip(maps, strip["samples"])), name
    assert box_run in t2.runs  # Table 1's box row is Table 2's "ours": not trained again
    assert len(figures.label_strip(**strip).axes) == 4 * 7
    # BoxSup's picks per epoch (from the logs) and the lines the pool allows, drawn together
    assert list(t2.data["curves"].columns) == ["BoxSup k=1", "BoxSup k=5"] and list(t2.data["curves"].index) == [1]
    assert set(t2.data["levels"]) == {"ceiling k=5", "ceiling k=1", "Eo-only k=5", "Eo-only k=1"}
    assert 0 < t2.data["curves"].iloc[0, 0] <= 100 and all(0 < v <= 100 for v in t2.data["levels"].values())
    figures.pick_quality_curve(t2.data["curves"], t2.data["levels"])

    f3 = pf.fig3(tiny_cfg, [1], progress=False)
    f5 = pf.fig5(tiny_cfg, [0, 1], progress=False)
    assert f3.data["classes"] == f5.data["classes"] == strip["classes"]
    assert set(f3.runs) <= set(t2.runs) and set(f5.runs) <= set(t1.runs)


@pytest.mark.slow
def test_table2_grabcut_start_rows_start_from_the_same_seeds_grabcut_network(tiny_cfg):
    from boxsup.runs import read_config

    t2 = paper.table2(tiny_cfg, seeds=2, progress=False, grabcut_start=True)
    per = t2.data["per_seed"]
    assert list(t2.table.index)[-2:] == [n for n, _ in paper.TABLE2_GRABCUT_START]
    runs = {Path(r).name: Path(r) for r in t2.runs}
    for name, _ in paper.TABLE2_GRABCUT_START:
        for _, r in per.loc[[name]].iterrows():
            grabcut = per.loc[["GrabCut"]].set_index("seed").loc[r["seed"], "run"]
            assert Path(read_config(runs[r["run"]]).init_from).name == grabcut
    assert list(t2.data["curves"].columns) == ["BoxSup k=1", "BoxSup k=5", "BoxSup k=1, GrabCut start",
                                               "BoxSup k=5, GrabCut start"]
    assert "GrabCut start: ours k=1 > GrabCut" in t2.verdict
    figures.pick_quality_curve(t2.data["curves"], t2.data["levels"])
    assert "GrabCut start" not in paper.table2(tiny_cfg, seeds=2, progress=False).verdict  # off by default
