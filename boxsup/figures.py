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


# --- Figure 3: BoxSup's estimated masks of training images across epochs ------------------------

def snapshot_epochs(run_dir, wanted=(1, 5, 20)) -> list[int]:
    """Epochs (1-based: the labels epoch e trained on) with a saved snapshot, from ``wanted`` plus
    the last one."""
    from pathlib import Path

    have = sorted(int(p.stem.split("_")[1]) + 1 for p in (Path(run_dir) / "snapshots").glob("epoch_*.npz"))
    if not have:
        raise FileNotFoundError(f"{run_dir} has no snapshots/ (only box-supervised runs keep them)")
    return sorted({e for e in wanted if e in have} | {have[-1]})


def estimated_masks(run_dir, dataset, epochs: list[int], items: tuple[int, ...] = (0, 1, 2, 3)):
    """Rows: training images; columns: image with boxes, true mask, BoxSup's label at each epoch."""
    from pathlib import Path

    snaps = {e: np.load(Path(run_dir) / "snapshots" / f"epoch_{e - 1:03d}.npz") for e in epochs}
    items = [i for i in items if f"item_{i}" in snaps[epochs[0]]]
    ncol = 2 + len(epochs)
    fig, axes = plt.subplots(len(items), ncol, figsize=(1.7 * ncol, 1.8 * len(items)), squeeze=False)
    for r, i in enumerate(items):
        s = dataset[i]
        axes[r, 0].imshow(s.image)
        draw_boxes(axes[r, 0], s.boxes, s.labels)
        axes[r, 1].imshow(colorize(s.mask) if s.mask is not None else np.zeros_like(s.image))
        for c, e in enumerate(epochs):
            axes[r, 2 + c].imshow(colorize(snaps[e][f"item_{i}"]))
        for c, t in enumerate(["image + boxes", "ground truth"] + [f"epoch {e}" for e in epochs]):
            axes[0, c].set_title(t, fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def pick_quality_curve(logs: dict[str, list[dict]]):
    """Mean IoU of the picked candidates with the true masks, per epoch, for one or more runs."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, lines in logs.items():
        pts = [(d["epoch"], d["pick_mIoU"]) for d in lines if d.get("pick_mIoU") is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("picks' mean IoU with truth")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- Figure 4: trimap ---------------------------------------------------------------------------

def trimap_plot(df: pd.DataFrame):
    """mIoU vs band width, boundary (left) and interior (right), one line per method."""
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


# --- Figure 5: qualitative results --------------------------------------------------------------

def qualitative(dataset, predictions: dict[str, list[np.ndarray]], indices: list[int]):
    """Rows: images; columns: image, ground truth, then each method's predicted label map."""
    ncol = 2 + len(predictions)
    fig, axes = plt.subplots(len(indices), ncol, figsize=(1.7 * ncol, 1.8 * len(indices)), squeeze=False)
    for r, i in enumerate(indices):
        s = dataset[i]
        axes[r, 0].imshow(s.image)
        axes[r, 1].imshow(colorize(s.mask) if s.mask is not None else np.zeros_like(s.image))
        for c, labels in enumerate(predictions.values()):
            axes[r, 2 + c].imshow(colorize(labels[r]))
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    for c, t in enumerate(["image", "ground truth"] + list(predictions)):
        axes[0, c].set_title(t, fontsize=8)
    fig.tight_layout()
    return fig
