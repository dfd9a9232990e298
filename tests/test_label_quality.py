"""The one label-quality metric (255 ignored), the oracle ceiling against a brute-force loop over
candidates, Eo-only picks, and near-duplicate suppression."""
import numpy as np
import pytest

from boxsup import label_quality as lq
from boxsup.data.boxes import tight_box
from boxsup.proposals.dedup import near_duplicates
from boxsup.proposals.quality import encode_masks
from boxsup.proposals.segments import Segments
from boxsup.proposals.store import Candidates
from boxsup.relabel import costs_naive, masks_to_sparse, pick


def test_label_iou_by_hand_with_255_pixels():
    truth = np.zeros((1, 4, 4), bool)
    truth[0, 1:3, 1:3] = True                      # 4 object pixels
    ignore = np.zeros((4, 4), bool)
    ignore[0, :] = True                            # the top row is 255 in the ground truth
    label = np.zeros((1, 4, 4), bool)
    label[0, 0:2, 1:4] = True                      # 6 pixels, 3 of them on the 255 row
    # outside the ignore row: label = {(1,1),(1,2),(1,3)}, truth = {(1,1),(1,2),(2,1),(2,2)}
    # intersection 2, union 3 + 4 - 2 = 5
    assert lq.label_ious(label, truth, ignore)[0] == pytest.approx(2 / 5)
    # counting the 255 row would give 2 / (6 + 4 - 2) = 0.25
    assert lq.label_ious(label, truth)[0] == pytest.approx(2 / 8)
    assert np.isnan(lq.label_ious(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4), bool), ignore)[0])


def _scene(seed: int = 0, m: int = 40):
    """A 24x24 image with two boxes, their true masks, a class map with 255 rims, and candidates
    as unions of 4x4-pixel atoms (so both incidence kinds can be built)."""
    rng = np.random.default_rng(seed)
    h = w = 24
    mask = np.zeros((h, w), np.uint8)
    inst = np.zeros((2, h, w), bool)
    inst[0, 3:12, 4:10] = True
    inst[1, 12:22, 10:20] = True
    inst[1, 15:19, 13:17] = False                  # a ring: the box holds background
    mask[inst[0]] = 1
    mask[inst[1]] = 2
    mask[3, 4:10] = 255                            # rims the truth does not label
    mask[21, 10:20] = 255
    inst &= (mask != 255)[None]
    boxes = np.array([tight_box(inst[0] | (mask == 255) & (np.arange(h)[:, None] < 12)),
                      [10, 12, 20, 22]], np.float32)
    atoms = (np.arange(h)[:, None] // 4) * (w // 4) + np.arange(w)[None, :] // 4
    member = rng.random((m, atoms.max() + 1)) < 0.12
    member[0] = False
    member[0, [7, 8, 13, 14]] = True               # one candidate close to object 0
    member = member[member.any(1)]
    return mask, inst, boxes, np.array([1, 2]), Segments(atoms.astype(np.int32), member)


@pytest.mark.parametrize("kind", ["segments", "sparse"])
def test_candidate_ious_match_the_metric_on_decoded_masks(kind):
    mask, inst, boxes, labels, seg = _scene()
    cand = seg if kind == "segments" else masks_to_sparse(seg.masks())
    got = lq.candidate_ious(cand, inst, mask == 255)
    want = np.stack([lq.label_ious(np.repeat(m[None], 2, 0), inst, mask == 255) for m in seg.masks()])
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle_ceiling_matches_a_brute_force_loop_over_candidates(seed):
    mask, inst, boxes, labels, seg = _scene(seed)
    masks = seg.masks()
    logp = lq.oracle_logp(mask, 3)
    assert np.allclose(np.exp(logp).sum(0), 1) and np.exp(logp[1, 5, 5]) == pytest.approx(lq.ORACLE_P)
    cost, eo, _ = lq.costs(logp, boxes, labels, seg, seg.boxes(), 3.0, "image")
    iou = lq.candidate_ious(seg, inst, mask == 255)
    naive_cost = costs_naive(logp, boxes, labels, masks, 3.0, "image")
    for k in (1, 5):
        fast = lq.expected_pick_iou(cost, eo < 1, iou, k)
        for j in range(len(boxes)):
            # brute force: every candidate's cost and IoU by loops, the k cheapest eligible ones
            rows = []
            for i, m in enumerate(masks):
                tb = np.array(tight_box(m), np.float32)
                overlap = max(0, min(tb[2], boxes[j, 2]) - max(tb[0], boxes[j, 0])) * \
                    max(0, min(tb[3], boxes[j, 3]) - max(tb[1], boxes[j, 1]))
                if overlap > 0 and m.any():
                    valid = mask != 255
                    inter = (m & inst[j] & valid).sum()
                    union = ((m | inst[j]) & valid).sum()
                    rows.append((naive_cost[i, j], i, inter / union))
            rows.sort(key=lambda r: (round(r[0], 9), r[1]))
            assert fast[j] == pytest.approx(np.mean([r[2] for r in rows[:k]]), abs=1e-9)
        if k == 1:  # the arg-min is what relabel.pick draws with k = 1
            p = pick(cost, eo < 1, 1, np.random.default_rng(0))
            np.testing.assert_allclose(fast, [iou[i, j] for j, i in enumerate(p.index)])


def test_top5_expectation_is_the_mean_of_the_uniform_draw():
    mask, inst, boxes, labels, seg = _scene(3)
    cost, eo, _ = lq.costs(lq.oracle_logp(mask, 3), boxes, labels, seg, seg.boxes(), 3.0, "image")
    iou = lq.candidate_ious(seg, inst, mask == 255)
    exact = lq.expected_pick_iou(cost, eo < 1, iou, 5)
    rng = np.random.default_rng(0)
    draws = np.array([[iou[i, j] for j, i in enumerate(pick(cost, eo < 1, 5, rng).index)] for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(0), exact, atol=0.02)


def test_eo_only_picks_ignore_the_network():
    mask, inst, boxes, labels, seg = _scene(4)
    a = lq.costs(lq.oracle_logp(mask, 3), boxes, labels, seg, seg.boxes(), 0.0, "image")[0]
    b = lq.costs(np.log(np.full((3,) + mask.shape, 1 / 3, np.float32)), boxes, labels, seg, seg.boxes(), 0.0,
                 "image")[0]
    np.testing.assert_allclose(a, b)


def _candidates(masks: np.ndarray) -> Candidates:
    rles = encode_masks(masks)
    return Candidates(rles, np.stack([tight_box(m) for m in masks]).astype(np.float32),
                      masks.reshape(len(masks), -1).sum(1), masks.shape[1], masks.shape[2])


def test_near_duplicates_keep_the_better_ranked_twin():
    base = np.zeros((20, 20), bool)
    base[2:12, 2:12] = True                        # 100 px
    twin = base.copy()
    twin[11, 2:7] = False                          # IoU 95 / 100 with base
    other = np.zeros((20, 20), bool)
    other[10:18, 10:18] = True
    loose = base.copy()
    loose[2:12, 12:14] = True                      # IoU 100 / 120 < 0.9
    cand = _candidates(np.stack([base, other, twin, loose]))
    assert near_duplicates(cand, 0.9).tolist() == [True, True, False, True]
    assert near_duplicates(cand, 0.8).tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(cand, 0.0)


def test_pairwise_iou_from_atoms_equals_the_rle_one(tmp_path):
    from boxsup.proposals.dedup import pairwise_iou
    from boxsup.proposals.segments import Segments
    from boxsup.proposals.store import ProposalStore

    rng = np.random.default_rng(0)
    atoms = ((np.arange(24)[:, None] // 4) * 8 + np.arange(30)[None, :] // 4).astype(np.int32)
    member = rng.random((40, atoms.max() + 1)) < 0.15
    member[~member.any(1), 0] = True
    st = ProposalStore(tmp_path)
    st.save("a", Segments(atoms, member))
    cand = st.load("a")
    by_atoms = pairwise_iou(cand)
    cand.segments = None
    np.testing.assert_allclose(by_atoms, pairwise_iou(cand), rtol=0, atol=1e-12)
