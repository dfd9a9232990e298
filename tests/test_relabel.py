import numpy as np
import pytest

from boxsup import relabel as rl
from boxsup.proposals.segments import Segments


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _logp_from_labels(label, num_classes, confidence=0.9):
    p = np.full((num_classes,) + label.shape, (1 - confidence) / (num_classes - 1), np.float32)
    for c in range(num_classes):
        p[c][label == c] = confidence
    return np.log(p)


def test_eo_uses_the_tight_box_not_pixels():
    h = w = 40
    m = _disc(h, w, 20, 20, 10)  # fills ~78% of its box
    box = np.array([[10, 10, 31, 31]], np.float32)
    cand = rl.masks_to_sparse(m[None])
    from boxsup.data.boxes import tight_box
    _, eo, _ = rl.costs(np.log(np.full((2, h, w), 0.5, np.float32)), box, np.array([1]), cand,
                        tight_box(m)[None])
    assert eo[0, 0] == pytest.approx(0.0)  # box vs tight box: 1 - IoU = 0 ...
    pixel_iou = m.sum() / (21 * 21)
    assert pixel_iou < 0.8  # ... whereas box vs pixels would have charged 1 - 0.7


@pytest.mark.parametrize("er_norm", ["image", "box"])
def test_vectorised_costs_equal_naive_loop(er_norm):
    rng = np.random.default_rng(0)
    h, w, c = 30, 36, 4
    logp = np.log(rng.dirichlet(np.ones(c), size=(h, w)).transpose(2, 0, 1).astype(np.float32))
    masks = rng.random((25, h, w)) < 0.05
    masks[3] = _disc(h, w, 15, 18, 7)
    masks[4] = False
    masks[4, 2:9, 30:35] = True  # partly outside every box
    boxes = np.array([[8, 8, 26, 23], [0, 0, 12.5, 10.2], [20, 2, 36, 30]], np.float32)
    labels = np.array([1, 3, 2])
    from boxsup.data.boxes import tight_box
    cb = np.stack([tight_box(m) for m in masks])
    fast, _, _ = rl.costs(logp, boxes, labels, rl.masks_to_sparse(masks), cb, lam=3.0, er_norm=er_norm)
    slow = rl.costs_naive(logp, boxes, labels, masks, lam=3.0, er_norm=er_norm)
    ok = masks.reshape(25, -1).any(1)
    np.testing.assert_allclose(fast[ok], slow[ok], rtol=1e-4, atol=1e-4)


def test_pick_samples_only_among_k_lowest():
    cost = np.array([[5.0], [1.0], [3.0], [2.0], [4.0], [0.5]])
    elig = np.ones_like(cost, bool)
    rng = np.random.default_rng(0)
    seen = {int(rl.pick(cost, elig, 3, rng).index[0]) for _ in range(200)}
    assert seen == {5, 1, 3}  # the three LOWEST, never the highest
    assert {int(rl.pick(cost, elig, 1, rng).index[0]) for _ in range(20)} == {5}


def test_ineligible_candidates_never_picked_and_fallback_counted():
    cost = np.array([[0.1, 0.1], [0.2, 0.3]])
    elig = np.array([[False, False], [True, False]])
    p = rl.pick(cost, elig, 5, np.random.default_rng(0))
    assert p.index.tolist() == [1, -1] and p.fallback == 1


def test_network_agreement_beats_better_overlap_when_lambda_er_says_so():
    h = w = 48
    box = np.array([[8, 8, 40, 40]], np.float32)
    # A: a square that fills the box (perfect Eo); B: the disc the network believes in
    a = np.zeros((h, w), bool)
    a[8:40, 8:40] = True
    b = _disc(h, w, 24, 24, 14)
    masks = np.stack([a, b])
    from boxsup.data.boxes import tight_box
    cb = np.stack([tight_box(m) for m in masks])
    net_label = b.astype(np.int64)
    logp = _logp_from_labels(net_label, 2, 0.95)
    cand = rl.masks_to_sparse(masks)
    cost, eo, er = rl.costs(logp, box, np.array([1]), cand, cb, lam=3.0)
    assert eo[0, 0] < eo[1, 0]          # A overlaps the box better ...
    assert cost[1, 0] < cost[0, 0]      # ... but B agrees with the network and wins
    cost0, _, _ = rl.costs(logp, box, np.array([1]), cand, cb, lam=0.0)
    assert cost0[0, 0] < cost0[1, 0]    # with lambda = 0 only the overlap matters


def test_er_normalisation_by_image_or_box():
    h = w = 40
    m = _disc(h, w, 20, 20, 8)
    box = np.array([[10, 10, 30, 30]], np.float32)
    logp = _logp_from_labels(m.astype(np.int64), 2, 0.8)
    cand = rl.masks_to_sparse(m[None])
    from boxsup.data.boxes import tight_box
    _, _, er_img = rl.costs(logp, box, np.array([1]), cand, tight_box(m)[None], er_norm="image")
    _, _, er_box = rl.costs(logp, box, np.array([1]), cand, tight_box(m)[None], er_norm="box")
    expected_sum = -np.log(0.8) * 400  # every pixel of the box is labelled as the network says
    assert er_img[0, 0] == pytest.approx(expected_sum / 1600, rel=1e-5)
    assert er_box[0, 0] == pytest.approx(expected_sum / 400, rel=1e-5)
    with pytest.raises(ValueError, match="er_norm"):
        rl.costs(logp, box, np.array([1]), cand, tight_box(m)[None], er_norm="pixels")


def test_paint_large_to_small_and_background_elsewhere():
    h = w = 20
    big = np.zeros((h, w), bool)
    big[2:18, 2:18] = True
    small = np.zeros((h, w), bool)
    small[8:12, 8:12] = True
    cand = rl.masks_to_sparse(np.stack([small, big]))
    boxes = np.array([[8, 8, 12, 12], [2, 2, 18, 18]], np.float32)
    out = rl.paint((h, w), boxes, np.array([3, 1]), np.array([0, 1]), cand)
    assert (out[small] == 3).all() and (out[big & ~small] == 1).all() and (out[~big] == 0).all()
    fb = [None, big]
    out2 = rl.paint((h, w), boxes, np.array([3, 1]), np.array([0, -1]), cand, fb)
    assert (out2[big & ~small] == 1).all() and (out2[small] == 3).all()


def test_select_with_no_candidates_falls_back():
    p = rl.select(np.zeros((2, 8, 8), np.float32), np.array([[1, 1, 5, 5]], np.float32), np.array([1]),
                  rl.masks_to_sparse(np.zeros((0, 8, 8), bool)), np.zeros((0, 4)), 5, 3.0,
                  np.random.default_rng(0))
    assert p.fallback == 1 and p.index.tolist() == [-1]


def test_pick_iou():
    m = np.zeros((2, 10, 10), bool)
    m[0, :5] = True
    m[1, :, :5] = True
    g = np.zeros((1, 10, 10), bool)
    g[0, :5] = True
    iou = rl.pick_iou(rl.masks_to_sparse(m), np.array([1]), g)
    assert iou[0] == pytest.approx(25 / 75)


def test_atom_sets_give_the_same_costs_and_pixels_as_the_pixel_matrix():
    rng = np.random.default_rng(2)
    h, w, c = 24, 30, 3
    atoms = (np.arange(h)[:, None] // 6) * 5 + (np.arange(w)[None, :] // 6)  # 4 x 5 grid of atoms
    member = rng.random((40, atoms.max() + 1)) < 0.3
    member[0] = False
    member[0, 7] = True
    masks = member[:, atoms]
    from boxsup.data.boxes import tight_box
    cb = np.stack([tight_box(m) for m in masks])
    logp = np.log(rng.dirichlet(np.ones(c), size=(h, w)).transpose(2, 0, 1).astype(np.float32))
    boxes = np.array([[3, 2, 20, 18], [10, 5, 30, 24]], np.float32)
    labels = np.array([1, 2])
    a = rl.costs(logp, boxes, labels, rl.masks_to_sparse(masks), cb)[0]
    sets = Segments(atoms.astype(np.int32), member)
    b = rl.costs(logp, boxes, labels, sets, cb)[0]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    for i in (0, 5, 39):
        assert set(rl.candidate_pixels(sets, i)) == set(np.flatnonzero(masks[i]))
    out = rl.paint((h, w), boxes, labels, np.array([0, 5]), sets)
    ref = rl.paint((h, w), boxes, labels, np.array([0, 5]), rl.masks_to_sparse(masks))
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("er_norm", ["image", "box"])
@pytest.mark.parametrize("kind", ["segments", "sparse"])
def test_device_costs_give_the_same_picks_as_the_numpy_path(er_norm, kind):
    """The torch selection (what a GPU relabel runs) agrees with the CPU path on a fixed network:
    same costs to float64 rounding, the same picks at k=1 and k=5."""
    import torch

    from boxsup.data.boxes import tight_box

    rng = np.random.default_rng(3)
    h, w, c = 30, 40, 5
    atoms = ((np.arange(h)[:, None] // 5) * 8 + (np.arange(w)[None, :] // 5)).astype(np.int32)
    member = rng.random((60, atoms.max() + 1)) < 0.2
    member[~member.any(1), 0] = True
    masks = member[:, atoms]
    cand = Segments(atoms, member) if kind == "segments" else rl.masks_to_sparse(masks)
    cb = np.stack([tight_box(m) for m in masks])
    logp = np.log(rng.dirichlet(np.ones(c), size=(h, w)).transpose(2, 0, 1).astype(np.float32))
    boxes = np.array([[3, 2, 20, 18], [10, 5, 38.5, 27], [0, 0, 40, 30]], np.float32)
    labels = np.array([1, 4, 2])
    ref = rl.costs(logp, boxes, labels, cand, cb, lam=3.0, er_norm=er_norm)
    got = rl.costs(torch.from_numpy(logp), boxes, labels, cand, cb, lam=3.0, er_norm=er_norm)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    for k in (1, 5):
        pa = rl.select(logp, boxes, labels, cand, cb, k, 3.0, np.random.default_rng(0), er_norm)
        pb = rl.select(torch.from_numpy(logp), boxes, labels, cand, cb, k, 3.0, np.random.default_rng(0), er_norm)
        assert np.array_equal(pa.index, pb.index)


def test_pick_iou_leaves_the_ignore_rim_out_like_the_label_metric():
    from boxsup.label_quality import label_ious

    g = np.zeros((1, 4, 4), bool)
    g[0, 1:3, 1:3] = True                         # 4 object pixels
    ignore = np.zeros((4, 4), bool)
    ignore[0, :] = True                           # a 255 rim on the top row
    cand = np.zeros((1, 4, 4), bool)
    cand[0, 0:3, 1:3] = True                      # the object plus 2 rim pixels
    plain = rl.pick_iou(rl.masks_to_sparse(cand), np.array([0]), g)
    fair = rl.pick_iou(rl.masks_to_sparse(cand), np.array([0]), g, ignore)
    assert plain[0] == pytest.approx(4 / 6) and fair[0] == pytest.approx(1.0)
    assert fair[0] == pytest.approx(label_ious(cand, g, ignore)[0])
