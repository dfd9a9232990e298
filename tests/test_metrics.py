import numpy as np
import pytest
import torch

from boxsup.metrics import ConfusionMatrix, Trimap, boundary_band


def test_hand_computed_case():
    t = np.array([[0, 0, 1, 1], [0, 0, 1, 255], [2, 2, 2, 2]])
    p = np.array([[0, 1, 1, 1], [0, 0, 0, 2], [2, 2, 1, 2]])
    cm = ConfusionMatrix(3)
    cm.update(t, p)
    # class 0: tp 3 (gt 4, pred 4: three 0s in gt + the (1,2) pixel) -> 3 / (4 + 4 - 3)
    # class 1: gt 3 pixels, predicted 1 at 4 valid pixels, tp 2 -> 2 / (3 + 4 - 2)
    # class 2: gt 4 pixels, predicted 2 at 3 valid pixels (the 255 pixel is dropped), tp 3 -> 3 / 4
    np.testing.assert_allclose(cm.iou, [3 / 5, 2 / 5, 3 / 4])
    assert cm.mean_iou == pytest.approx((3 / 5 + 2 / 5 + 3 / 4) / 3)
    assert cm.pixel_accuracy == pytest.approx(8 / 11)
    assert cm.mean_accuracy == pytest.approx((3 / 4 + 2 / 3 + 3 / 4) / 3)


def test_accumulates_over_images_not_per_image_mean():
    cm = ConfusionMatrix(2)
    cm.update(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1]))
    cm.update(np.array([1, 0]), np.array([0, 0]))
    assert cm.iou[1] == pytest.approx(4 / 5)
    assert cm.iou[0] == pytest.approx(1 / 2)


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, (2, 16, 16))
    t[0, :3] = 255
    p = rng.integers(0, 4, (2, 16, 16))
    a, b = ConfusionMatrix(4), ConfusionMatrix(4)
    a.update(t, p)
    b.update(torch.from_numpy(t), torch.from_numpy(p))
    np.testing.assert_array_equal(a.mat, b.mat)


def test_permuting_classes_permutes_ious():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 1000)
    p = np.where(rng.random(1000) < 0.6, t, rng.integers(0, 5, 1000))
    perm = rng.permutation(5)
    a, b = ConfusionMatrix(5), ConfusionMatrix(5)
    a.update(t, p)
    b.update(perm[t], perm[p])
    np.testing.assert_allclose(b.iou[perm], a.iou)
    assert a.mean_iou == pytest.approx(b.mean_iou)


def test_bad_input_is_named():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="ground truth holds class 7"):
        cm.update(np.array([7]), np.array([0]))
    with pytest.raises(ValueError, match="pixels"):
        cm.update(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError):
        ConfusionMatrix(1)


def test_absent_class_is_nan_and_skipped():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1]), np.array([0, 1]))
    assert np.isnan(cm.iou[2])
    assert cm.mean_iou == 1.0


def test_boundary_band_widths():
    t = np.zeros((20, 20), np.uint8)
    t[:, 10:] = 1
    b1 = boundary_band(t, 1)
    assert b1[:, 9:11].all() and b1.sum() == 40
    b3 = boundary_band(t, 3)
    assert b3[:, 7:13].all() and b3.sum() == 120


def test_trimap_perfect_interior_bad_boundary():
    t = np.zeros((32, 32), np.uint8)
    t[8:24, 8:24] = 1
    p = t.copy()
    ring = boundary_band(t, 2)
    p[ring] = 0  # errors only near the contour
    tm = Trimap(2, widths=(2, 6))
    tm.update(t, p)
    df = tm.table("x")
    assert list(df.columns) == ["band_width", "region", "method", "mIoU"]
    inner = df[(df.region == "interior") & (df.band_width == 2)].mIoU.item()
    outer = df[(df.region == "boundary") & (df.band_width == 2)].mIoU.item()
    assert inner == 1.0 and outer < 0.7
