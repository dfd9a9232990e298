"""Datasets: one Sample type for every source, and ``load_dataset`` to open any of them by name.

Names: ``toy`` (train/val/test/trainval with masks, ``extra`` boxes-only COCO json),
``toy-context``, ``voc2012`` (train/val/trainval/test), ``voc2012-aug`` (SBD's 10,582 train_aug),
``voc2007`` (boxes, trainval/test), ``coco`` / ``coco80`` (split = train2014, val2017, ...),
``context`` (PASCAL-Context 59 + background), or a path to any VOC-layout folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from .coco import COCODataset, coco_split
from .context import PascalContext
from .sample import IGNORE, VOC_CLASSES, DataError, Sample, read_image, read_label_png, tight_box
from .synthetic import CONTEXT_CLASSES, TOY_CLASSES, default_data_root, ensure_toy
from .sbd import VOCAug
from .voc import VOCLayout

__all__ = ["IGNORE", "VOC_CLASSES", "DataError", "Sample", "VOCLayout", "load_dataset", "ensure_toy",
           "default_data_root", "read_image", "read_label_png", "tight_box", "TOY_CLASSES",
           "CONTEXT_CLASSES", "DATASET_NAMES"]

# the names load_dataset knows; any other dataset is a path to a VOC-layout folder
DATASET_NAMES = ("toy", "toy-context", "voc2012", "voc2012-aug", "voc2007", "coco", "coco80", "context")


def load_dataset(name: str, split: str, data_root: str | os.PathLike | None = None, *,
                 masks: str | None = None):
    """Open a dataset split as a sequence of Samples (see the module docstring for names).

    ``masks`` overrides whether masks are read ("required", "optional", "none"); the default is
    what the split has. The toy benchmark is generated on first use. Annotations are read strictly:
    a malformed file raises DataError naming it, and an image that would silently train as all
    background (no usable object, no mask) is skipped and counted in the dataset's ``skipped``.
    """
    root = default_data_root(data_root)
    if name in ("toy", "toy-context"):
        ensure_toy(root)
        if name == "toy" and split == "extra":
            return COCODataset(root / "toy_coco/images/extra", root / "toy_coco/annotations/instances_extra.json",
                               classes=TOY_CLASSES, masks=masks or "optional")
        if name == "toy":
            return VOCLayout(root / "VOCdevkit/TOY", split, masks=masks or "required")
        return VOCLayout(root / "VOCdevkit/TOYCTX", split, mask_dir="SegmentationClassContext",
                         image_set="SegmentationContext", masks=masks or "required")
    if name == "voc2012":  # test images carry no supervision: keep those without objects too
        return VOCLayout(root / "VOCdevkit/VOC2012", split, masks=masks or ("none" if split == "test" else "required"),
                         empty="keep" if split == "test" else "skip")
    if name == "voc2012-aug":
        return VOCAug(root, split, masks=masks or "required")
    if name == "voc2007":
        return VOCLayout(root / "VOCdevkit/VOC2007", split, image_set="Main", masks=masks or "none")
    if name in ("coco", "coco80"):
        return coco_split(root, split, classes="voc" if name == "coco" else "all", masks=masks or "optional")
    if name == "context":
        return PascalContext(root, split)
    path = Path(name)
    if path.is_dir():
        return VOCLayout(path, split, masks=masks or "optional")
    looks_like_path = os.sep in name or name.startswith((".", "~"))  # a mistyped folder, not a name
    raise DataError((f"dataset path {name!r} does not exist (looked for the folder {path.expanduser().resolve()}); "
                     if looks_like_path else f"unknown dataset {name!r}: ") + "expected one of "
                    f"{', '.join(DATASET_NAMES)}, or a path to a VOC-layout folder")
