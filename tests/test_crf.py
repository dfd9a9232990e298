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

    monkeypatch.setattr(crf_mod, "dense_crf_many", boom)
    again = search_crf_params(ims, probs, targets, 2, grid, cache, progress=False)
    assert again["cached"] and again["best"] == r["best"]
    with pytest.raises(AssertionError):  # another grid is another search
        search_crf_params(ims, probs, targets, 2, {"bi_w": (3,)}, cache, progress=False)


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
