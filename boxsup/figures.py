"""Matplotlib figures used by the notebooks (so that notebooks hold no drawing logic)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.sample import voc_palette

PALETTE = voc_palette()


def colorize(label: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(label, dtype=np.uint8)]


def draw_boxes(ax, boxes: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | None = None) -> None:
    for b, lab in zip(boxes, labels):
        x0, y0, x1, y1 = b
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor=PALETTE[lab] / 255, linewidth=1.5))
        if classes is not None:
            ax.text(x0, y0 - 1, classes[lab], color="white", fontsize=6, va="bottom",
                    bbox=dict(facecolor=PALETTE[lab] / 255, pad=0.5, linewidth=0))


def sample_grid(dataset, indices, title: str = "", mask_title: str = "mask (white = 255 ignore)"):
    """Image with its boxes, and its class mask, for a few samples of a dataset."""
    indices = [i for i in indices if i < len(dataset)]  # small (test) datasets have fewer images
    n = len(indices)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0), squeeze=False)
    for col, i in enumerate(indices):
        s = dataset[i]
        axes[0, col].imshow(s.image)
        draw_boxes(axes[0, col], s.boxes, s.labels, dataset.classes)
        if s.mask is not None:
            axes[1, col].imshow(colorize(s.mask))
        axes[0, col].set_title(s.image_id, fontsize=7)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel(mask_title, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def label_row(images: list[np.ndarray], titles: list[str], size: float = 1.9):
    """A row of pictures (images or label maps, which are colourised)."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.3), squeeze=False)
    for ax, im, t in zip(axes[0], images, titles):
        ax.imshow(im if im.ndim == 3 else colorize(im))
        ax.set_title(t, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def fill_bars(per_dataset: dict[str, dict[str, float]], title: str = "mean box fill per class"):
    """Bar chart of box fill per class for one or more datasets (lower = harder for boxes)."""
    df = pd.DataFrame(per_dataset)
    ax = df.plot.bar(figsize=(7, 3), rot=30)
    ax.set_ylabel("object pixels / box pixels")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure
