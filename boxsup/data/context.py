"""PASCAL-Context: VOC 2010 images with every pixel labelled, read as 59 classes + background (60).

Two layouts under one data root (the images are always ``<root>/VOCdevkit/VOC2010/JPEGImages``):

(a) preconverted (mmsegmentation's convention): ``VOC2010/SegmentationClassContext/<id>.png`` with
    values 0..59 (0 = background, 255 = ignore) and ``VOC2010/ImageSets/SegmentationContext/{train,val}.txt``;
(b) the official release: ``<root>/PASCAL-Context/trainval/<id>.mat`` (field ``LabelMap``: indices
    1..459 into ``<root>/PASCAL-Context/labels.txt``, lines ``"<index>: <name>"``). Those 459 classes
    are mapped by name onto ``CONTEXT59_CLASSES``; pixels of the other 400 become 0 (background),
    the standard 59-class protocol. The split list is read from the (a) location, else from
    ``<root>/PASCAL-Context/<split>.txt``; ``trainval`` without a list takes every .mat file.

Layout (a) is used whenever its folder exists. Boxes come from VOC 2010 ``Annotations/<id>.xml``
when present (VOC names mapped to Context ids, diningtable -> table; objects of any other name are
ignored); without XML the boxes are empty. No instance masks.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from .sample import (DataError, Sample, check_boxes, check_class_values, check_mask_size, read_image,
                     read_label_png, read_split_file)
from .voc import clip_border_pixel, read_voc_objects

CONTEXT59_CLASSES = (
    "background", "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book",
    "bottle", "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow",
    "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food", "grass", "ground", "horse",
    "keyboard", "light", "motorbike", "mountain", "mouse", "person", "plate", "platform", "pottedplant",
    "road", "rock", "sheep", "shelves", "sidewalk", "sign", "sky", "snow", "sofa", "table", "track",
    "train", "tree", "truck", "tvmonitor", "wall", "water", "window", "wood",
)
# other spellings of the same classes (VOC XML names, and variants seen in converted label files)
ALIASES = {"diningtable": "table", "dining table": "table", "airplane": "aeroplane",
           "motorcycle": "motorbike", "tv": "tvmonitor", "tv monitor": "tvmonitor",
           "potted plant": "pottedplant"}

CONTEXT_HELP = ("Get VOC 2010 (VOCtrainval_03-May-2010.tar, unpacked so that "
                "<data_root>/VOCdevkit/VOC2010/JPEGImages exists) and PASCAL-Context from "
                "https://cs.stanford.edu/~roozbeh/pascal-context/ : either trainval.tar.gz + labels.txt "
                "unpacked to <data_root>/PASCAL-Context/{trainval/*.mat,labels.txt}, or the converted "
                "59-class PNGs in <data_root>/VOCdevkit/VOC2010/SegmentationClassContext "
                "(mmsegmentation's tools/dataset_converters/pascal_context.py).")

_INDEX = {n: i for i, n in enumerate(CONTEXT59_CLASSES)}


def context_index(name: str) -> int | None:
    """Index of a class name in CONTEXT59_CLASSES (aliases allowed), None for any other name."""
    name = name.strip().lower()
    name = ALIASES.get(name, name)
    i = _INDEX.get(name)
    return i if i else None  # background is not a class an object or label can map to


def read_labels_txt(path: Path) -> np.ndarray:
    """Lookup table 459-index -> 59-class index from the official ``labels.txt``."""
    if not path.is_file():
        raise DataError(f"PASCAL-Context class list not found: {path}. " + CONTEXT_HELP)
    pairs = []
    for ln in path.read_text().splitlines():
        if not ln.strip():
            continue
        m = re.match(r"\s*(\d+)\s*:?\s*(.+?)\s*$", ln)
        if not m:
            raise DataError(f"{path}: cannot parse line {ln!r}; expected '<index>: <name>'")
        pairs.append((int(m.group(1)), m.group(2)))
    lut = np.zeros(max((i for i, _ in pairs), default=0) + 1, dtype=np.uint8)
    found = set()
    for i, name in pairs:
        k = context_index(name)
        if k is not None:
            lut[i] = k
            found.add(k)
    missing = [CONTEXT59_CLASSES[k] for k in range(1, len(CONTEXT59_CLASSES)) if k not in found]
    if missing:  # a silently absent class would read as background everywhere
        raise DataError(f"{path}: no entry for the Context classes {', '.join(missing)}")
    return lut


def parse_context_xml(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (half-open) and Context class ids of the objects of a VOC XML whose names map to Context
    (parsed strictly, with defusedxml, by ``voc.read_voc_objects``)."""
    boxes, labels = [], []
    for name, _, box in read_voc_objects(path):
        k = context_index(name)
        if k is None:
            continue
        boxes.append(box)
        labels.append(k)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64)


def load_label_map(path: Path, lut: np.ndarray) -> np.ndarray:
    """The ``LabelMap`` of an official PASCAL-Context .mat, mapped to the 59 classes."""
    if not path.is_file():
        raise DataError(f"PASCAL-Context label file not found: {path}")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as e:  # scipy raises several types on a corrupt file
        raise DataError(f"cannot read PASCAL-Context .mat {path}: {e}") from e
    if "LabelMap" not in mat:
        raise DataError(f"{path}: no 'LabelMap' variable")
    lm = np.asarray(mat["LabelMap"])
    if lm.ndim != 2:
        raise DataError(f"{path}: 'LabelMap' is not a 2-D map (shape {lm.shape})")
    lm = lm.astype(np.int64)
    if lm.size and (lm.min() < 0 or lm.max() >= len(lut)):
        raise DataError(f"{path}: class index {int(lm.max())} outside 0..{len(lut) - 1} of labels.txt")
    return lut[lm]


class PascalContext:
    """PASCAL-Context (59 classes + background) as a sequence of Samples; see the module docstring."""

    def __init__(self, root: Path | str, split: str = "train"):
        self.root = Path(root)
        self.voc = self.root / "VOCdevkit" / "VOC2010"
        self.png_dir = self.voc / "SegmentationClassContext"
        self.mat_dir = self.root / "PASCAL-Context" / "trainval"
        if self.png_dir.is_dir():
            self.layout, self.lut = "png", None
        elif self.mat_dir.is_dir():
            self.layout = "mat"
            self.lut = read_labels_txt(self.root / "PASCAL-Context" / "labels.txt")
        else:
            raise DataError(f"no PASCAL-Context at {self.root} (looked for {self.png_dir} and "
                            f"{self.mat_dir}). " + CONTEXT_HELP)
        if not (self.voc / "JPEGImages").is_dir():
            raise DataError(f"no VOC 2010 images at {self.voc / 'JPEGImages'}. " + CONTEXT_HELP)
        self.classes, self.split = CONTEXT59_CLASSES, split
        self.ids = self._split_ids(split)

    def _split_ids(self, split: str) -> list[str]:
        if split.endswith(".txt"):
            return read_split_file(Path(split) if Path(split).is_absolute() else self.root / split)
        lists = [self.voc / "ImageSets" / "SegmentationContext" / f"{split}.txt"]
        if self.layout == "mat":
            lists.append(self.root / "PASCAL-Context" / f"{split}.txt")
        for f in lists:
            if f.is_file():
                return read_split_file(f)
        if self.layout == "mat" and split == "trainval":
            return sorted(p.stem for p in self.mat_dir.glob("*.mat"))
        raise DataError(f"no PASCAL-Context split {split!r}: looked for {' and '.join(map(str, lists))}. "
                        + CONTEXT_HELP)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        image_id = self.ids[i]
        image = read_image(self.voc / "JPEGImages" / f"{image_id}.jpg")
        h, w = image.shape[:2]
        if self.layout == "png":
            where = self.png_dir / f"{image_id}.png"
            mask = read_label_png(where)
            check_class_values(mask, self.num_classes, str(where))
        else:
            where = self.mat_dir / f"{image_id}.mat"
            mask = load_label_map(where, self.lut)
        check_mask_size(mask, image, str(where))
        xml = self.voc / "Annotations" / f"{image_id}.xml"
        if xml.is_file():
            boxes, labels = parse_context_xml(xml)
            boxes = clip_border_pixel(boxes, h, w)
            check_boxes(boxes, labels, h, w, str(xml), self.num_classes)
        else:
            boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        return Sample(image=image, boxes=boxes, labels=labels, image_id=image_id, mask=mask,
                      meta={"source": str(where)})
