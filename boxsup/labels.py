"""The training images of a run and the label map each one trains on.

Every supervision the paper uses differs only in where a training image's label map comes from:

- ``mask``: the ground-truth mask, fixed.
- ``box``: BoxSup's picks, re-estimated at every epoch by ``relabel.relabel_epoch``.
- ``semi``: masks for a subset of the images, BoxSup for the rest.
- ``rect`` / ``grabcut`` / ``crfbox``: masks made once from the boxes (Table 2's baselines), fixed.
- ``extra``: a second set (COCO at paper scale) added with boxes (BoxSup) or with masks.

``TrainingImages`` holds the sources, one ``Item`` per training image, the candidate stores of the
box-supervised images and the current label maps and picks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .config import Config
from .data import load_dataset
from .data.sample import Sample
from .proposals.boxmasks import box_masks_to_label
from .proposals.dedup import dedup
from .proposals.segments import Segments
from .proposals.store import ProposalStore, proposals_for

# Decode every training image once and keep it in memory when the set is small: at most this many
# pixels, counting every image at VOC size (500 x 375), i.e. about 6 GB of RGB. The toy sets fit.
IN_MEMORY_PIXELS = 2e9


def split_spec(spec: str, split: str) -> tuple[str, str]:
    """``"toy:extra"`` names a dataset and its split in one string; a path is never split."""
    if ":" in spec and not Path(spec).exists():
        name, split = spec.split(":", 1)
        return name, split
    return spec, split


@dataclass
class Item:
    """One training image: where it comes from and how its label map is obtained."""

    source: int   # index into ``TrainingImages.sources``
    index: int    # index into that dataset
    kind: str     # "mask" | "box" | "fixed"


class TrainingImages:
    """The training images of ``cfg``, their candidates and their current label maps."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        masks_needed = "required" if cfg.supervision in ("mask", "semi") else "optional"
        train = load_dataset(*split_spec(cfg.dataset, cfg.train_split), cfg.data_root, masks=masks_needed)
        self.sources = [train]
        self.specs = [split_spec(cfg.dataset, cfg.train_split)]
        self.classes = tuple(train.classes)
        kind = {"mask": "mask", "box": "box", "semi": "box"}.get(cfg.supervision, "fixed")
        self.items = [Item(0, i, kind) for i in range(len(train))]
        if cfg.supervision == "semi":
            n = len(train)
            count = int(round(cfg.semi_masks * n)) if cfg.semi_masks < 1 else int(cfg.semi_masks)
            keep = np.random.default_rng(cfg.seed).permutation(n)[:min(count, n)]
            for i in keep:
                self.items[i].kind = "mask"
        if cfg.extra != "none":
            spec = split_spec(cfg.extra_dataset, "extra")
            extra = load_dataset(*spec, cfg.data_root, masks="required" if cfg.extra == "masks" else "optional")
            if tuple(extra.classes) != self.classes:
                raise ValueError(f"extra dataset {cfg.extra_dataset!r} has classes {extra.classes}, "
                                 f"the train set {self.classes}: they must match")
            self.sources.append(extra)
            self.specs.append(spec)
            self.items += [Item(1, i, "mask" if cfg.extra == "masks" else "box") for i in range(len(extra))]
        in_memory = sum(len(s) for s in self.sources) * 500 * 375 < IN_MEMORY_PIXELS
        self._samples: dict[int, Sample] | None = {} if in_memory else None
        self._candidates: dict[int, tuple] = {}
        self.labels: list[np.ndarray | None] = [None] * len(self.items)
        self.picks: dict[int, np.ndarray] = {}     # item -> chosen candidate per box (-1: fallback)
        self.fallbacks: dict[int, list] = {}      # item -> per-box fallback masks (made once)
        self.stores: dict[int, ProposalStore] = {}

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, i: int) -> Sample:
        if self._samples is not None and i in self._samples:
            return self._samples[i]
        it = self.items[i]
        s = self.sources[it.source][it.index]
        if self._samples is not None:
            self._samples[i] = s
        return s

    def box_items(self) -> list[int]:
        """The items whose labels BoxSup re-estimates."""
        return [i for i, it in enumerate(self.items) if it.kind == "box"]

    def init_fixed_labels(self, progress: bool = True) -> None:
        """Label maps that never change: true masks, and the box-derived baselines' masks."""
        for i, it in enumerate(tqdm(self.items, desc="fixed labels", disable=not progress, mininterval=2)):
            if it.kind == "mask":
                self.labels[i] = self.sample(i).mask
            elif it.kind == "fixed":
                self.labels[i] = box_masks_to_label(self.sample(i), self.cfg.supervision)

    def prepare_candidates(self) -> None:
        """Open (computing what is missing) the candidate store of every box-supervised source."""
        cfg = self.cfg
        for src in sorted({it.source for it in self.items if it.kind == "box"}):
            name, split = self.specs[src]
            self.stores[src] = proposals_for(name, split, cfg.proposals, cfg.data_root, cfg.proposals_dir,
                                             dataset=self.sources[src], workers=max(cfg.workers, 1))

    def candidates(self, i: int) -> tuple[Segments | sp.csr_matrix, np.ndarray]:
        """(incidence, tight boxes) of item i's candidates; kept in memory for small datasets when
        they are unions of atoms (pixel matrices would be too big)."""
        if i in self._candidates:
            return self._candidates[i]
        it = self.items[i]
        cand = dedup(self.stores[it.source].load(self.sources[it.source].ids[it.index]), self.cfg.dedup_iou)
        out = (cand.incidence(), cand.boxes)
        if self._samples is not None and isinstance(out[0], Segments):
            self._candidates[i] = out
        return out
