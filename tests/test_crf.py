import importlib.util
import json
import sys

import numpy as np
import pytest

from boxsup import crf as crf_mod
from boxsup.crf import (CRFParams, crf_labels, dense_crf, dense_crf_many, dense_crf_torch, holdout_indices,
                        require_crf, search_crf_params)

HAVE_CRF = importlib.util.find_spec("pydensecrf") is not None
needs_crf = pytest.mark.skipif(not HAVE_CRF, reason="pydensecrf not installed (pip install -e .[crf])")


def two_colour_case(h=48, w=64, seed=0):
    """Left red / right blue; probabilities right in the interior, noisy within 6 px of the edge."""
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (200, 30, 30)
    image[:, w // 2:] = (30, 30, 200)
    truth = np.zeros((h, w), np.uint8)
    truth[:, w // 2:] = 1
    p1 = np.where(truth == 1, 0.7, 0.3)
    near = np.abs(np.arange(w) - w // 2 + 0.5)[None, :].repeat(h, 0) < 6
    flip = near & (rng.random((h, w)) < 0.5)
    p1 = np.where(flip, 1 - p1, p1)
    probs = np.stack([1 - p1, p1]).astype(np.float32)
    return image, probs, truth


@needs_crf
def test_crf_fixes_noisy_boundary():
    image, probs, truth = two_colour_case()
    before = (probs.argmax(0) == truth).mean()
    after = (crf_labels(image, probs) == truth).mean()
    assert before < 0.95
    assert after > 0.99 and after > before


@needs_crf
def test_dense_crf_output_is_a_distribution():
    image, probs, _ = two_colour_case()
    q = dense_crf(image, probs, iterations=3)
    assert q.shape == probs.shape and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1, atol=1e-4)


@needs_crf
def test_bad_shapes_are_named():
    image, probs, _ = two_colour_case()
    with pytest.raises(ValueError, match="probs must be"):
        dense_crf(image, probs[:, :-1])
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(image.astype(np.float32), probs)


def test_missing_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install -e \.\[crf\]"):
        require_crf()
    image, probs, _ = two_colour_case()
    with pytest.raises(ImportError, match="pydensecrf2"):
        dense_crf(image, probs)


def test_params_validate():
    assert CRFParams().as_dict() == {"iterations": 10, "pos_w": 3, "pos_xy_std": 3, "bi_w": 4,
                                     "bi_xy_std": 121, "bi_rgb_std": 5}
    with pytest.raises(ValueError, match="bi_rgb_std"):
        CRFParams(bi_rgb_std=0)
    with pytest.raises(ValueError, match="unknown CRF parameter"):
        CRFParams.from_dict({"sigma": 3})


@needs_crf
def test_many_in_parallel_matches_serial():
    cases = [two_colour_case(seed=s) for s in range(3)]
    ims, probs = [c[0] for c in cases], [c[1] for c in cases]
    serial = dense_crf_many(ims, probs, workers=1, labels=True, progress=False)
    par = dense_crf_many(ims, probs, workers=2, labels=True, progress=False)
    for a, b in zip(serial, par):
        np.testing.assert_array_equal(a, b)


def test_holdout_is_fixed_and_sorted():
    a = holdout_indices(160, 20)
    assert len(a) == 20 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, holdout_indices(160, 20))


@needs_crf
def test_search_writes_and_reuses_cache(tmp_path, monkeypatch):
    cases = [two_colour_case(h=24, w=32, seed=s) for s in range(2)]
    ims, probs, targets = ([c[i] for c in cases] for i in range(3))
    grid = {"bi_w": (0, 4), "iterations": (3,)}
    cache = tmp_path / "crf" / "search.json"
    r = search_crf_params(ims, probs, targets, 2, grid, cache, progress=False)
    assert not r["cached"] and len(r["results"]) == 2
    assert r["best"].bi_w == 4 and r["best_mIoU"] > r["no_crf_mIoU"]
    saved = json.loads(cache.read_text())
    assert saved["best"]["bi_w"] == 4 and not list(cache.parent.glob(".*"))  # no temp file left

    def boom(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(crf_mod, "grid_labels", boom)
    again = search_crf_params(ims, probs, targets, 2, grid, cache, progress=False)
    assert again["cached"] and again["best"] == r["best"]
    with pytest.raises(AssertionError):  # another grid is another search
        search_crf_params(ims, probs, targets, 2, {"bi_w": (3,)}, cache, progress=False)


@needs_crf
def test_grid_labels_match_one_pass_per_point_in_order(monkeypatch):
    cases = [two_colour_case(h=20 + 2 * s, w=28, seed=s) for s in range(5)]
    ims, probs = [c[0] for c in cases], [c[1] for c in cases]
    points = [CRFParams(iterations=3, bi_w=w, pos_xy_std=x) for w in (0, 4) for x in (1, 3)]
    class Bar:  # a progress bar that redraws on every update, as tqdm's returns True when it does
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            return True

    wanted = [dense_crf_many(ims, probs, pt, 1, labels=True, progress=False) for pt in points]
    monkeypatch.setattr(crf_mod, "tqdm", Bar)
    for workers in (1, 2):
        got = crf_mod.grid_labels(ims, probs, points, workers, progress=True)
        for labs, want in zip(got, wanted, strict=True):
            assert len(labs) == len(want) and all(np.array_equal(a, b) for a, b in zip(labs, want))


def test_torch_mean_field_fixes_the_boundary_without_pydensecrf():
    image, probs, truth = two_colour_case(h=32, w=40)
    before = (probs.argmax(0) == truth).mean()
    for stride in (1, 2):
        q = dense_crf_torch(image, probs, source_stride=stride)
        assert np.isfinite(q).all() and q.shape == probs.shape
        assert (q.argmax(0) == truth).mean() > max(0.99, before)
    chunked = dense_crf_torch(image, probs, cache_bytes=0, chunk=512)  # recompute path == cached path
    np.testing.assert_allclose(chunked, dense_crf_torch(image, probs), atol=1e-4)


@needs_crf
def test_torch_mean_field_agrees_with_pydensecrf():
    rng = np.random.default_rng(5)
    image, _, truth = two_colour_case(h=32, w=40)
    image[8:20, 5:15] = (30, 200, 30)  # a third region, labelled 2
    truth[8:20, 5:15] = 2
    logits = 2.0 * (np.arange(3)[:, None, None] == truth) + rng.normal(0, 1.0, (3, 32, 40))
    probs = np.exp(logits) / np.exp(logits).sum(0)
    ref = dense_crf(image, probs.astype(np.float32)).argmax(0)
    ours = dense_crf_torch(image, probs.astype(np.float32)).argmax(0)
    assert (ref == ours).mean() > 0.98


# --- the "+CRF" protocol: a grid with scaled kernels, searched per network on held-out images -------
def thin_stripe_case(seed=0, h=40, w=40):
    """A 2-px stripe of class 1 on a background of the same colour statistics; the network is right
    everywhere but only mildly sure. A wide smoothness kernel erases the stripe, a narrow one keeps it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 110, (h, w, 3)).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    truth[:, 19 + seed % 3:21 + seed % 3] = 1
    p1 = np.where(truth == 1, 0.62, 0.38)
    return image, np.stack([1 - p1, p1]).astype(np.float32), truth


@needs_crf
def test_search_recovers_the_best_setting_of_a_constructed_case():
    cases = [thin_stripe_case(s) for s in range(3)]
    ims, probs, targets = ([c[i] for c in cases] for i in range(3))
    grid = {"pos_xy_std": (3, 0.5), "pos_w": (3, 10), "bi_w": (0,)}
    res = search_crf_params(ims, probs, targets, 2, grid, progress=False)
    # brute force: every grid point scored by hand, the best one is what the search returns
    scores = {}
    for pos in grid["pos_xy_std"]:
        for w in grid["pos_w"]:
            p = CRFParams(pos_xy_std=pos, pos_w=w, bi_w=0)
            cm = np.zeros((2, 2))
            for im, pr, t in zip(ims, probs, targets):
                np.add.at(cm, (t.ravel(), crf_labels(im, pr, p).ravel()), 1)
            scores[p] = np.mean(np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm)))
    best = max(scores, key=scores.get)
    assert res["best"] == best and res["best"].pos_xy_std == 0.5
    assert res["best_mIoU"] == pytest.approx(scores[best]) and res["best_mIoU"] > min(scores.values()) + 0.1


@needs_crf
def test_search_keeps_the_defaults_on_a_tie():
    image, probs, truth = two_colour_case(h=16, w=16)
    probs = np.stack([np.where(truth == 0, 0.999, 0.001), np.where(truth == 1, 0.999, 0.001)]).astype(np.float32)
    res = search_crf_params([image], [probs], [truth], 2, {"bi_xy_std": (27.1, 121)}, progress=False)
    assert {r["mIoU"] for r in res["results"]} == {1.0} and res["best"] == CRFParams()


def test_scaled_grid_holds_deeplabs_point_and_kernels_scaled_to_the_image():
    g = crf_mod.scaled_grid(112)
    assert g["pos_xy_std"] == (0.67, 3.0) and g["bi_xy_std"] == (27.1, 121.0) and 4 in g["bi_w"]
    points = crf_mod._grid_points(g, CRFParams())
    assert CRFParams() in points and len(points) == 8
    assert crf_mod.scaled_grid(500)["pos_xy_std"] == (3.0,)  # VOC-sized images: DeepLab's values


def test_crf_holdout_uses_a_crfval_split_or_a_slice_of_the_eval_split(tmp_path):
    from boxsup import evaluate
    from boxsup.config import Config
    from boxsup.data.synthetic import ToySpec, ensure_toy

    root = ensure_toy(tmp_path / "toy", ToySpec(train=4, extra=2, val=12, test=2, context_train=2, context_val=2,
                                                imagenet=12, crfval=3, context_crfval=2))
    assert evaluate.crf_holdout("toy", "val", root) == ("crfval", None)
    assert evaluate.holdout_exclusion(Config(data_root=str(root)), "val") is None
    # a VOC-layout folder without one: DeepLab's slice of val, left out of every val score
    (root / "VOCdevkit/TOY/ImageSets/Segmentation/crfval.txt").unlink()
    folder = str(root / "VOCdevkit/TOY")
    split, idx = evaluate.crf_holdout(folder, "val", root)
    assert split == "val" and idx == holdout_indices(12, 3).tolist()
    cfg = Config(dataset=folder, data_root=str(root))
    assert evaluate.holdout_exclusion(cfg, "val") == idx and evaluate.holdout_exclusion(cfg, "test") is None
