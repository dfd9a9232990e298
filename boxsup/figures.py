"""Matplotlib figures for the notebooks. Drawing only: every function takes data (tables, samples,
label maps) as ``paper`` / ``paper_figures`` return it and gives back a figure; none reads a file.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.sample import Sample, voc_palette

PALETTE = voc_palette()


def colorize(label: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(label, dtype=np.uint8)]


def draw_boxes(ax, boxes: np.ndarray, labels: np.ndarray, classes: Sequence[str] | None = None) -> None:
    for b, lab in zip(boxes, labels):
        x0, y0, x1, y1 = b
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor=PALETTE[lab] / 255, linewidth=1.5))
        if classes is not None:
            ax.text(x0, y0 - 1, classes[lab], color="white", fontsize=6, va="bottom",
                    bbox=dict(facecolor=PALETTE[lab] / 255, pad=0.5, linewidth=0))


def _no_ticks(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def _truth(mask: np.ndarray | None, image: np.ndarray) -> np.ndarray:
    """The coloured true mask, or black where an image has none."""
    return colorize(mask) if mask is not None else np.zeros_like(image)


def sample_grid(samples: Sequence[Sample], classes: Sequence[str] | None = None, title: str = "",
                mask_title: str = "mask (white = 255 ignore)"):
    """Images with their boxes (top) and class masks (bottom)."""
    n = len(samples)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0), squeeze=False)
    for col, s in enumerate(samples):
        axes[0, col].imshow(s.image)
        draw_boxes(axes[0, col], s.boxes, s.labels, classes)
        if s.mask is not None:
            axes[1, col].imshow(colorize(s.mask))
        axes[0, col].set_title(s.image_id, fontsize=7)
    _no_ticks(axes)
    axes[1, 0].set_ylabel(mask_title, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def fill_bars(per_dataset: dict[str, dict[str, float]], title: str = "mean box fill per class"):
    """Bar chart of box fill per class for one or more datasets (lower = harder for boxes)."""
    ax = pd.DataFrame(per_dataset).plot.bar(figsize=(7, 3), rot=30)
    ax.set_ylabel("object pixels / box pixels")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def score_bars(table: pd.DataFrame, columns: Sequence[str], height: float = 3.0, xlabel: str = "mIoU (%)"):
    """Horizontal bars of a table's score columns (e.g. ours and the paper's), rows top to bottom."""
    ax = table[list(columns)].plot.barh(figsize=(7, height), legend=len(columns) > 1)
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    ax.figure.tight_layout()
    return ax.figure


# --- Figure 3 ---------------------------------------------------------------------------------------
def estimated_masks(samples: Sequence[Sample], labels: dict[int, Sequence[np.ndarray]]):
    """Rows: training images; columns: image with boxes, true mask, BoxSup's label at each epoch
    (``labels``: {epoch: one label map per sample})."""
    epochs = list(labels)
    ncol = 2 + len(epochs)
    fig, axes = plt.subplots(len(samples), ncol, figsize=(1.7 * ncol, 1.8 * len(samples)), squeeze=False)
    for r, s in enumerate(samples):
        axes[r, 0].imshow(s.image)
        draw_boxes(axes[r, 0], s.boxes, s.labels)
        axes[r, 1].imshow(_truth(s.mask, s.image))
        for c, e in enumerate(epochs):
            axes[r, 2 + c].imshow(colorize(labels[e][r]))
    for c, t in enumerate(["image + boxes", "ground truth"] + [f"epoch {e}" for e in epochs]):
        axes[0, c].set_title(t, fontsize=8)
    _no_ticks(axes)
    fig.tight_layout()
    return fig


def pick_quality_curve(curves: pd.DataFrame, levels: dict[str, float] | None = None):
    """Mean IoU (%) of the picked candidates with the true masks per epoch (index), one line per
    column (run); ``levels`` ({name: %}) are drawn as horizontal lines (the ceiling, Eo-only picks,
    the final picks): solid for "ceiling", dashed for the rest, k=5 and k=1 in the curves' colours."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colours = {}
    for name in curves:
        pts = curves[name].dropna()
        if len(pts):
            (line,) = ax.plot(pts.index, pts.values, marker=".", label=name + " (log)")
            colours["k=5" if "k=5" in name else "k=1"] = line.get_color()
    for name, v in (levels or {}).items():
        if v is not None and np.isfinite(v):
            ax.axhline(v, color=colours.get("k=5" if "k=5" in name else "k=1", "grey"),
                       linestyle="-" if name.startswith("ceiling") else ":" if name.startswith("Eo") else "--",
                       linewidth=1, label=f"{name}: {v:.1f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("picks' mean IoU with truth (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


# --- Figure 4 ---------------------------------------------------------------------------------------
def trimap_plot(df: pd.DataFrame):
    """mIoU vs band width, boundary (left) and interior (right), one line per method; ``df`` has
    tidy rows (band_width, region, method, mIoU as a fraction)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=False)
    for ax, region in zip(axes, ("boundary", "interior")):
        for method, g in df[df.region == region].groupby("method", sort=False):
            ax.plot(g.band_width, 100 * g.mIoU, marker="o", label=method)
        ax.set_title(f"{region} (within / beyond the band)", fontsize=9)
        ax.set_xlabel("band width (pixels)")
        ax.set_ylabel("mIoU (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- Figure 5 ---------------------------------------------------------------------------------------
def qualitative(images: Sequence[np.ndarray], truths: Sequence[np.ndarray | None],
                predictions: dict[str, Sequence[np.ndarray]]):
    """Rows: images; columns: image, ground truth, then each method's predicted label map."""
    ncol = 2 + len(predictions)
    fig, axes = plt.subplots(len(images), ncol, figsize=(1.7 * ncol, 1.8 * len(images)), squeeze=False)
    for r, (image, truth) in enumerate(zip(images, truths)):
        axes[r, 0].imshow(image)
        axes[r, 1].imshow(_truth(truth, image))
        for c, labels in enumerate(predictions.values()):
            axes[r, 2 + c].imshow(colorize(labels[r]))
    for c, t in enumerate(["image", "ground truth"] + list(predictions)):
        axes[0, c].set_title(t, fontsize=8)
    _no_ticks(axes)
    fig.tight_layout()
    return fig
