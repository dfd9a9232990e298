"""Matplotlib figures for the notebooks. Drawing only: every function takes data (tables, samples,
label maps) as ``paper`` / ``paper_figures`` return it and gives back a figure; none reads a file.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from .data.sample import IGNORE, Sample, voc_palette
from .experiments import row_name

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


def legend_below(fig, handles: Sequence, labels: Sequence[str], ncol: int, fontsize: float = 8) -> None:
    """A legend in a band under the axes, so it never covers data: the axes are laid out above it."""
    rows = math.ceil(len(handles) / max(ncol, 1))
    fig.tight_layout(rect=(0, min(0.5, (0.22 * rows + 0.12) / fig.get_figheight()), 1, 1))
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=fontsize,
               frameon=False)


def class_handles(label_maps: Iterable[np.ndarray | None], classes: Sequence[str]) -> list[Patch]:
    """The class-colour key: one patch in ``colorize``'s colour per class found in the label maps (or
    box label arrays), in class order; 255 (ignore) and ids beyond ``classes`` are left out."""
    present: set[int] = set()
    for m in label_maps:
        if m is not None and np.size(m):
            present |= {int(v) for v in np.unique(np.asarray(m))}
    return [Patch(facecolor=PALETTE[c] / 255, edgecolor="grey", linewidth=0.5, label=classes[c])
            for c in sorted(present) if c != IGNORE and c < len(classes)]


def _label_grid(images: Sequence[np.ndarray], truths: Sequence[np.ndarray | None],
                columns: Mapping[str, Sequence[np.ndarray]], first: Sequence[str],
                boxes: Sequence[tuple[np.ndarray, np.ndarray]] | None = None, classes: Sequence[str] | None = None):
    """Rows: images; columns: the image (with its (boxes, labels) when given), the true mask, then one
    column of label maps per ``columns`` entry (titled by its key); the class key under the grid
    when ``classes`` are given."""
    ncol = 2 + len(columns)
    fig, axes = plt.subplots(len(images), ncol, figsize=(1.7 * ncol, 1.8 * len(images) + 0.3), squeeze=False)
    for r, (image, truth) in enumerate(zip(images, truths)):
        axes[r, 0].imshow(image)
        if boxes is not None:
            draw_boxes(axes[r, 0], *boxes[r])
        axes[r, 1].imshow(_truth(truth, image))
        for c, maps in enumerate(columns.values()):
            axes[r, 2 + c].imshow(colorize(maps[r]))
    for c, t in enumerate([*first, *columns]):
        axes[0, c].set_title("\n".join(textwrap.wrap(str(t), 22)), fontsize=8)
    _no_ticks(axes)
    shown = [*truths, *(m for maps in columns.values() for m in maps), *(lab for _, lab in boxes or [])]
    handles = class_handles(shown, classes) if classes is not None else []
    if handles:
        legend_below(fig, handles, [h.get_label() for h in handles], ncol=min(len(handles), 7))
    else:
        fig.tight_layout()
    return fig


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
    ax = pd.DataFrame(per_dataset).plot.bar(figsize=(7, 3), rot=30, legend=False)
    ax.set_ylabel("object pixels / box pixels")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    if len(per_dataset) > 1:
        legend_below(ax.figure, *ax.get_legend_handles_labels(), ncol=len(per_dataset))
    else:
        ax.figure.tight_layout()
    return ax.figure


def score_bars(table: pd.DataFrame, columns: Sequence[str], height: float = 3.0, xlabel: str = "mIoU (%)",
               labels: Mapping[str, str] | None = None):
    """Horizontal bars of a table's score columns (e.g. ours and the paper's), rows top to bottom and
    named 'level / level'; the legend names each series by ``labels`` ({column: name}, e.g. from
    ``paper.series_labels``) and sits under the axes, never over a bar."""
    data = table[list(columns)].astype(float)
    data.index = [row_name(k) for k in data.index]
    data.columns = [(labels or {}).get(c, c) for c in columns]
    ax = data.plot.barh(figsize=(7, height), legend=False)
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    if len(columns) > 1:
        legend_below(ax.figure, *ax.get_legend_handles_labels(), ncol=len(columns))
    else:
        ax.figure.tight_layout()
    return ax.figure


def per_class_bars(df: pd.DataFrame, xlabel: str = "IoU (%)"):
    """Grouped horizontal bars of per-class IoU (%): classes (``df``'s rows) top to bottom, one bar
    per column (a table row, e.g. mask / box / semi), the legend under the axes."""
    n, m = df.shape
    fig, ax = plt.subplots(figsize=(7, 1.3 + n * (0.1 + 0.12 * max(m, 1))))
    if not n or not m:
        ax.text(0.5, 0.5, "no rows to show", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return fig
    width, y = 0.8 / m, np.arange(n)
    for j, col in enumerate(df.columns):
        ax.barh(y - 0.4 + width * (j + 0.5), df[col].to_numpy(dtype=float), height=width, label=row_name(col))
    ax.set_yticks(y, [str(c) for c in df.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    legend_below(fig, *ax.get_legend_handles_labels(), ncol=min(m, 3))
    return fig


# --- Figure 3 ---------------------------------------------------------------------------------------
def estimated_masks(samples: Sequence[Sample], labels: dict[int, Sequence[np.ndarray]],
                    classes: Sequence[str] | None = None):
    """Rows: training images; columns: image with boxes, true mask, BoxSup's label at each epoch
    (``labels``: {epoch: one label map per sample}); with ``classes``, the class-colour key below."""
    return label_strip(samples, {f"epoch {e}": maps for e, maps in labels.items()}, classes)


def label_strip(samples: Sequence[Sample], labels: Mapping[str, Sequence[np.ndarray]],
                classes: Sequence[str] | None = None, photos: bool = True):
    """Rows: training images; columns: image with boxes, true mask, then one column per entry of
    ``labels`` ({title: one label map per sample}, e.g. what each row of Table 2 trains on); with
    ``classes``, the class-colour key below. ``photos=False`` draws nothing and says so: a page
    meant for git must not carry images (or masks traced from them) whose terms forbid copying."""
    if not photos:
        print(f"Not drawn (photos=False): {len(samples)} training images with their masks and the "
              f"{len(labels)} label maps each row trains on; the label-quality columns measure them.")
        return None
    return _label_grid([s.image for s in samples], [s.mask for s in samples], labels,
                       ["image + boxes", "ground truth"], [(s.boxes, s.labels) for s in samples], classes)


def pick_quality_curve(curves: pd.DataFrame, levels: dict[str, float] | None = None):
    """Mean IoU (%) of the picked candidates with the true masks per epoch (index), one line per
    column (run); ``levels`` ({name: %}) are drawn as horizontal lines (the ceiling, Eo-only picks,
    the final picks): solid for "ceiling", dashed for the rest, k=5 and k=1 in the curves' colours."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colours = {}
    for name in curves:
        pts = curves[name].dropna()
        k = "k=5" if "k=5" in name else "k=1"
        if len(pts):  # a row started elsewhere (", GrabCut start"): dash-dotted, in its k's colour
            start = "start" in name
            (line,) = ax.plot(pts.index, pts.values, marker=".", linestyle="-." if start else "-",
                              color=colours.get(k) if start else None, label=name + " (log)")
            colours.setdefault(k, line.get_color())
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
    legend_below(fig, *axes[0].get_legend_handles_labels(), ncol=2)
    return fig


# --- Figure 5 ---------------------------------------------------------------------------------------
def qualitative(images: Sequence[np.ndarray], truths: Sequence[np.ndarray | None],
                predictions: dict[str, Sequence[np.ndarray]], classes: Sequence[str] | None = None):
    """Rows: images; columns: image, ground truth, then each method's predicted label map; with
    ``classes``, the class-colour key below."""
    return _label_grid(images, truths, predictions, ["image", "ground truth"], classes=classes)


# --- Sensitivity ------------------------------------------------------------------------------------
def sensitivity_plot(table: pd.DataFrame, pool: pd.DataFrame, col: str, paper_lam: float,
                     literal_lam: float | None = None):
    """Left: the trained lam rows' score (``col``) and final picks against lam, k = 1 and k = 5;
    right: the pool-only Eo-only picks and ceiling against lam (log axes). The paper's lam is a
    vertical line, the literal "Eo / N" weight a dotted one."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, marker in (("k=1", "o"), ("k=5", "s")):
        rows = [(float(s.split()[1]), r) for (s, kk), r in table.iterrows() if s.startswith("lam ") and kk == k]
        if rows:
            lam = [x for x, _ in rows]
            left.plot(lam, [r[col] for _, r in rows], marker=marker, label=f"{col}, {k}")
            left.plot(lam, [r["final picks"] for _, r in rows], marker=marker, linestyle="--", label=f"final picks, {k}")
        right.plot(pool.index, pool[f"ceiling {k}"], marker=marker, label=f"ceiling, {k}")
    right.plot(pool.index, pool["Eo-only k=1"], color="grey", linestyle=":", label="Eo-only, k=1")
    for ax, title in ((left, "trained runs"), (right, "the pool and the cost (no training)")):
        ax.set_xscale("log")
        ax.axvline(paper_lam, color="black", linewidth=0.8)
        if literal_lam is not None and ax is right:
            ax.axvline(literal_lam, color="black", linewidth=0.8, linestyle=":")
        ax.set_xlabel("lam (Er weight; vertical line: the paper's)")
        ax.set_ylabel("%")
        ax.set_title(title, fontsize=9)
    handles, labels = [], []
    for ax in (left, right):
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    legend_below(fig, handles, labels, ncol=4)
    return fig
