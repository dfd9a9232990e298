"""Segmentation metrics: a bincount confusion matrix (VOC devkit definitions) and trimap analysis.

IoU of class c = TP / (TP + FP + FN) over all pixels of the dataset whose ground truth is not 255,
as the VOC devkit computes it (accumulated over the whole set, not averaged per image); mean IoU
averages over classes that appear in the ground truth or the predictions (the devkit averages over
all classes; with every class present, as in VOC val, the two agree; see ``mean_iou``).
"""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from .data.sample import IGNORE


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor, without importing torch here
        a = a.detach().cpu().numpy()
    return np.asarray(a)


class ConfusionMatrix:
    """Accumulates an (n, n) matrix, rows = ground truth, columns = prediction; 255 is ignored."""

    def __init__(self, num_classes: int):
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes}; need at least 2 (background and one class)")
        self.n = num_classes
        self.mat = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target, pred) -> None:
        t = _as_numpy(target).reshape(-1).astype(np.int64)
        p = _as_numpy(pred).reshape(-1).astype(np.int64)
        if t.shape != p.shape:
            raise ValueError(f"target has {t.size} pixels but prediction has {p.size}")
        keep = t != IGNORE
        t, p = t[keep], p[keep]
        if t.size and (t.max() >= self.n or t.min() < 0):
            raise ValueError(f"ground truth holds class {int(t.max())}, outside 0..{self.n - 1} (255 = ignore)")
        if p.size and (p.max() >= self.n or p.min() < 0):
            raise ValueError(f"prediction holds class {int(p.max())}, outside 0..{self.n - 1}")
        self.mat += np.bincount(self.n * t + p, minlength=self.n * self.n).reshape(self.n, self.n)

    def merge(self, other: "ConfusionMatrix") -> None:
        self.mat += other.mat

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both ground truth and predictions."""
        tp = np.diag(self.mat).astype(np.float64)
        denom = self.mat.sum(0) + self.mat.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    @property
    def pixel_accuracy(self) -> float:
        total = self.mat.sum()
        return float(np.diag(self.mat).sum() / total) if total else float("nan")

    @property
    def mean_accuracy(self) -> float:
        rows = self.mat.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.diag(self.mat) / rows
        return float(np.nanmean(np.where(rows > 0, acc, np.nan))) if (rows > 0).any() else float("nan")

    @property
    def mean_iou(self) -> float:
        iou = self.iou
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def summary(self, class_names: tuple[str, ...] | None = None) -> dict:
        names = class_names or tuple(str(i) for i in range(self.n))
        return {"mIoU": self.mean_iou, "pixel_acc": self.pixel_accuracy, "mean_acc": self.mean_accuracy,
                "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, self.iou)}}


def boundary_band(target: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` px (chessboard distance) of a class boundary of the ground truth.

    A boundary is any pair of 4-neighbours with different labels, void (255) included: VOC's void
    band itself sits on object contours, so its rim counts as the contour (as in the trimap
    analyses of Kohli et al. and DeepLab).
    """
    t = np.asarray(target)
    edges = np.zeros(t.shape, dtype=bool)
    dx = t[:, 1:] != t[:, :-1]
    dy = t[1:, :] != t[:-1, :]
    edges[:, 1:] |= dx
    edges[:, :-1] |= dx
    edges[1:, :] |= dy
    edges[:-1, :] |= dy
    if width <= 0:
        return np.zeros_like(edges)
    k = np.ones((2 * width - 1, 2 * width - 1), np.uint8)
    return cv2.dilate(edges.astype(np.uint8), k) > 0


class Trimap:
    """Confusion matrices inside ("boundary") and outside ("interior") bands of several widths."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32, 40)):
        if not widths or min(widths) < 1:
            raise ValueError(f"widths={widths}; need positive band widths in pixels")
        self.widths = tuple(widths)
        self.n = num_classes
        self.boundary = {w: ConfusionMatrix(num_classes) for w in self.widths}
        self.interior = {w: ConfusionMatrix(num_classes) for w in self.widths}

    def update(self, target, pred) -> None:
        t, p = _as_numpy(target), _as_numpy(pred)
        for w in self.widths:
            band = boundary_band(t, w)
            tb = np.where(band, t, IGNORE)
            ti = np.where(band, IGNORE, t)
            self.boundary[w].update(tb, p)
            self.interior[w].update(ti, p)

    def table(self, method: str = "") -> pd.DataFrame:
        """Tidy rows (band width, region, method, mIoU) ready for plotting."""
        rows = []
        for w in self.widths:
            rows.append({"band_width": w, "region": "boundary", "method": method, "mIoU": self.boundary[w].mean_iou})
            rows.append({"band_width": w, "region": "interior", "method": method, "mIoU": self.interior[w].mean_iou})
        return pd.DataFrame(rows)
