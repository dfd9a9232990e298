"""PASCAL VOC layout: VOC 2012 segmentation, VOC 2007 boxes, and any folder laid out the same way.

A VOC-layout folder holds ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml`` (boxes),
``SegmentationClass/<id>.png`` (palette PNG of class indices, 255 = ignore) and optionally
``SegmentationObject/<id>.png`` (instance ids in XML object order) and ``ImageSets/<task>/<split>.txt``.
The toy benchmark, ``../shared/realdata/*`` and the real VOC devkit are all read by this one class.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .sample import (VOC_CLASSES, DataError, Sample, check_boxes, check_mask_size, read_image,
                     read_label_png, read_split_file)

VOC_HELP = ("Download VOCtrainval_11-May-2012.tar from the PASCAL VOC site and unpack it so that "
            "<data_root>/VOCdevkit/VOC2012/JPEGImages exists (see README, 'Real datasets').")


def parse_voc_xml(path: Path, classes: tuple[str, ...], skip_difficult: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Boxes (half-open pixels), class ids and 'difficult' flags of one VOC annotation file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DataError(f"cannot parse annotation {path}: {e}") from e
    index = {c: i for i, c in enumerate(classes)}
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index or index[name] == 0:
            raise DataError(f"{path}: unknown class name {name!r}; known: {', '.join(classes[1:])}")
        diff = (obj.findtext("difficult") or "0").strip() == "1"
        if diff and skip_difficult:
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(f"{path}: object {name!r} has no <bndbox>")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as e:
            raise DataError(f"{path}: object {name!r} has a malformed <bndbox>") from e
        boxes.append([x0 - 1, y0 - 1, x1, y1])  # VOC is 1-based inclusive
        labels.append(index[name])
        difficult.append(diff)
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64),
            difficult)


def clip_border_pixel(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """VOC XML boxes sometimes reach one pixel past the border: pull those back in, and only those,
    so a box further outside still fails ``check_boxes``."""
    limit = np.array([width, height, width, height], dtype=np.float32)
    return np.where(boxes <= limit + 1, np.minimum(boxes, limit), boxes).astype(np.float32)


def read_classes_file(root: Path) -> tuple[str, ...] | None:
    """A folder may name its own classes in ``classes.txt`` (background first); VOC's otherwise."""
    f = Path(root) / "classes.txt"
    if f.is_file():
        return tuple(ln.strip() for ln in f.read_text().splitlines() if ln.strip())
    return None


class VOCLayout:
    """A sequence of Samples from a VOC-layout folder.

    split: a name under ``ImageSets/<image_set>/`` or an explicit ``.txt`` path; ``None`` takes every
    image in ``JPEGImages``. masks: "required" (missing mask file is an error), "optional" (None when
    absent) or "none" (boxes only, e.g. VOC 2007 or boxes-only supervision).
    """

    def __init__(self, root: Path | str, split: str | None = "train", *, classes: tuple[str, ...] | None = None,
                 image_set: str = "Segmentation", mask_dir: str = "SegmentationClass",
                 masks: str = "required", skip_difficult: bool = False, help_text: str = VOC_HELP):
        self.root = Path(root)
        if not (self.root / "JPEGImages").is_dir():
            raise DataError(f"no VOC-layout dataset at {self.root} (looked for {self.root / 'JPEGImages'}). "
                            + help_text)
        if masks not in ("required", "optional", "none"):
            raise ValueError(f"masks={masks!r}; allowed: 'required', 'optional', 'none'")
        self.classes = classes or read_classes_file(self.root) or VOC_CLASSES
        self.mask_dir, self.masks, self.skip_difficult = mask_dir, masks, skip_difficult
        if split is None:
            self.ids = sorted(p.stem for p in (self.root / "JPEGImages").glob("*.jpg"))
        elif split.endswith(".txt"):
            self.ids = read_split_file(Path(split) if Path(split).is_absolute() else self.root / split)
        else:
            f = self.root / "ImageSets" / image_set / f"{split}.txt"
            if not f.is_file() and (self.root / f"{split}.txt").is_file():
                f = self.root / f"{split}.txt"  # realdata-style: train.txt at the top
            self.ids = read_split_file(f)
        self.split = split

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.ids)

    def mask_path(self, image_id: str) -> Path:
        return self.root / self.mask_dir / f"{image_id}.png"

    def __getitem__(self, i: int) -> Sample:
        image_id = self.ids[i]
        image = read_image(self.root / "JPEGImages" / f"{image_id}.jpg")
        h, w = image.shape[:2]
        xml = self.root / "Annotations" / f"{image_id}.xml"
        boxes, labels, difficult = parse_voc_xml(xml, self.classes, self.skip_difficult)
        boxes = clip_border_pixel(boxes, h, w)
        check_boxes(boxes, labels, h, w, str(xml), self.num_classes)
        mask = instances = None
        if self.masks != "none":
            mp = self.mask_path(image_id)
            if mp.is_file() or self.masks == "required":
                mask = read_label_png(mp)
                check_mask_size(mask, image, str(mp))
                bad = (mask >= self.num_classes) & (mask != 255)
                if bad.any():
                    raise DataError(f"{mp}: class index {int(mask[bad].max())} >= {self.num_classes} classes")
            op = self.root / "SegmentationObject" / f"{image_id}.png"
            if mask is not None and op.is_file() and not self.skip_difficult:
                obj = read_label_png(op)
                check_mask_size(obj, image, str(op))
                instances = np.stack([obj == k + 1 for k in range(len(boxes))]) if len(boxes) else \
                    np.zeros((0, h, w), dtype=bool)
        return Sample(image=image, boxes=boxes, labels=labels, image_id=image_id, mask=mask,
                      instances=instances, meta={"difficult": difficult, "source": str(self.root)})
