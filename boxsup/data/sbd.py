"""PASCAL VOC 2012 + SBD: the 10,582-image ``train_aug`` set every box/weak-supervision paper trains on.

Two on-disk conventions are read, under one data root:

(a) DeepLab's: ``<root>/VOCdevkit/VOC2012/SegmentationClassAug/<id>.png`` (class-index PNGs for all
    12,031 VOC+SBD images) and ``VOC2012/ImageSets/Segmentation/train_aug.txt``;
(b) SBD's own release: ``<root>/benchmark_RELEASE/dataset/cls/<id>.mat`` (struct ``GTcls``, field
    ``Segmentation``: uint8 class map), ``inst/<id>.mat`` (struct ``GTinst``: ``Segmentation``
    instance ids 1..N, ``Categories`` their classes) and ``train.txt`` / ``val.txt``.

Per image the class mask is taken from the first that exists: ``SegmentationClassAug`` png, VOC's own
``SegmentationClass`` png (with its 255 boundary band), SBD ``cls`` mat. Boxes always come from VOC
``Annotations/<id>.xml`` (every SBD image is a VOC 2011 trainval image, so the XML exists); only if
the XML is missing are they taken as the tight boxes of SBD's instances. Instances come from VOC's
``SegmentationObject`` png (same order as the XML objects) or, failing that, from SBD ``inst``,
matched to the XML boxes by class and box IoU >= 0.5 (``None`` if some box has no match).

Split ``train_aug``: ``ImageSets/Segmentation/train_aug.txt`` when present; otherwise it is built as
(SBD train + SBD val + VOC train) minus VOC val, which gives the standard 10,582 ids (with only
``SegmentationClassAug`` and no SBD folder, the png names stand in for SBD train + val). ``val`` and
``train`` are VOC 2012's own lists; a ``.txt`` path is read as a list of ids.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .sample import (VOC_CLASSES, DataError, Sample, check_boxes, check_class_values, check_mask_size,
                     read_image, read_label_png, read_split_file, tight_box)
from .boxes import box_iou
from .voc import clip_border_pixel, parse_voc_xml, read_instances

SBD_HELP = ("Get PASCAL VOC 2012 (VOCtrainval_11-May-2012.tar, unpacked so that "
            "<data_root>/VOCdevkit/VOC2012/JPEGImages exists) and SBD: either the Berkeley release "
            "benchmark.tgz (unpacked to <data_root>/benchmark_RELEASE/dataset/{cls,inst,img}) or "
            "DeepLab's SegmentationClassAug.zip (unpacked to <data_root>/VOCdevkit/VOC2012/SegmentationClassAug).")


def load_sbd_mat(path: Path, struct: str) -> dict:
    """Fields of the 1x1 struct ``struct`` (``GTcls`` or ``GTinst``) of an SBD .mat file, as a dict."""
    if not path.is_file():
        raise DataError(f"SBD file not found: {path}")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError on garbage
        raise DataError(f"cannot read SBD .mat {path}: {e}") from e
    if struct not in mat:
        raise DataError(f"{path}: no struct {struct!r} (found {', '.join(k for k in mat if not k.startswith('__'))})")
    obj = mat[struct]
    fields = getattr(obj, "_fieldnames", None)
    if fields is None:
        raise DataError(f"{path}: {struct!r} is not a struct")
    return {f: getattr(obj, f) for f in fields}


def _segmentation(fields: dict, path: Path) -> np.ndarray:
    seg = np.asarray(fields.get("Segmentation"))
    if seg.ndim != 2:
        raise DataError(f"{path}: 'Segmentation' is not a 2-D map (shape {seg.shape})")
    if seg.size and (seg.min() < 0 or seg.max() > 255):
        raise DataError(f"{path}: 'Segmentation' has values outside 0..255")
    return seg.astype(np.uint8)


def match_instances(boxes: np.ndarray, labels: np.ndarray, inst_map: np.ndarray, inst_classes: np.ndarray
                    ) -> np.ndarray | None:
    """SBD instances reordered to follow ``boxes``: greedy by class and box IoU (>= 0.5), else None.

    SBD numbers instances in its own order, not the XML's, so they must be matched to be aligned.
    """
    masks = [inst_map == k + 1 for k in range(len(inst_classes))]
    ious = box_iou(boxes, [tight_box(m) for m in masks]) if masks else np.zeros((len(boxes), 0))
    used: set[int] = set()
    out = []
    for j, lab in enumerate(labels):
        cands = [(ious[j, k], k) for k in range(len(masks))
                 if k not in used and int(inst_classes[k]) == int(lab) and masks[k].any()]
        iou, k = max(cands, default=(0.0, -1))
        if iou < 0.5:
            return None
        used.add(k)
        out.append(masks[k])
    return np.stack(out) if out else np.zeros((0,) + inst_map.shape, dtype=bool)


class VOCAug:
    """VOC 2012 + SBD as a sequence of Samples (see the module docstring for layouts and rules)."""

    def __init__(self, root: Path | str, split: str = "train_aug", masks: str = "required"):
        if masks not in ("required", "optional", "none"):
            raise ValueError(f"masks={masks!r}; allowed: 'required', 'optional', 'none'")
        self.root = Path(root)
        self.voc = self.root / "VOCdevkit" / "VOC2012"
        self.sbd = self.root / "benchmark_RELEASE" / "dataset"
        self.aug_dir = self.voc / "SegmentationClassAug"
        if not (self.voc / "JPEGImages").is_dir():
            raise DataError(f"no PASCAL VOC 2012 at {self.voc} (looked for {self.voc / 'JPEGImages'}). " + SBD_HELP)
        self.has_sbd = (self.sbd / "cls").is_dir()
        self.has_aug = self.aug_dir.is_dir()
        if split == "train_aug" and not (self.has_sbd or self.has_aug):
            raise DataError(f"no SBD annotations for train_aug: looked for {self.aug_dir} and "
                            f"{self.sbd / 'cls'}. " + SBD_HELP)
        self.classes, self.masks, self.split = VOC_CLASSES, masks, split
        self.ids = self._split_ids(split)

    def _split_ids(self, split: str) -> list[str]:
        sets = self.voc / "ImageSets" / "Segmentation"
        if split.endswith(".txt"):
            return read_split_file(Path(split) if Path(split).is_absolute() else self.root / split)
        if split != "train_aug":
            return read_split_file(sets / f"{split}.txt")
        if (sets / "train_aug.txt").is_file():
            return read_split_file(sets / "train_aug.txt")
        if self.has_sbd:
            pool = set(read_split_file(self.sbd / "train.txt")) | set(read_split_file(self.sbd / "val.txt"))
        else:
            pool = {p.stem for p in self.aug_dir.glob("*.png")}
        pool |= set(read_split_file(sets / "train.txt"))
        return sorted(pool - set(read_split_file(sets / "val.txt")))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.ids)

    def _image(self, image_id: str) -> np.ndarray:
        p = self.voc / "JPEGImages" / f"{image_id}.jpg"
        if not p.is_file() and (self.sbd / "img" / f"{image_id}.jpg").is_file():
            p = self.sbd / "img" / f"{image_id}.jpg"  # SBD ships its own copy of the images
        return read_image(p)

    def _class_mask(self, image_id: str) -> tuple[np.ndarray | None, str]:
        """(class map, where it came from) or (None, paths tried)."""
        for p in (self.aug_dir / f"{image_id}.png", self.voc / "SegmentationClass" / f"{image_id}.png"):
            if p.is_file():
                return read_label_png(p), str(p)
        p = self.sbd / "cls" / f"{image_id}.mat"
        if p.is_file():
            return _segmentation(load_sbd_mat(p, "GTcls"), p), str(p)
        tried = [self.aug_dir / f"{image_id}.png", self.voc / "SegmentationClass" / f"{image_id}.png", p]
        return None, ", ".join(map(str, tried))

    def _sbd_instances(self, image_id: str, h: int, w: int) -> tuple[np.ndarray, np.ndarray] | None:
        p = self.sbd / "inst" / f"{image_id}.mat"
        if not p.is_file():
            return None
        fields = load_sbd_mat(p, "GTinst")
        seg = _segmentation(fields, p)
        if seg.shape != (h, w):
            raise DataError(f"{p}: instance map is {seg.shape[1]}x{seg.shape[0]} but the image is {w}x{h}")
        cats = np.atleast_1d(np.asarray(fields.get("Categories", []))).astype(np.int64).ravel()
        if seg.max() > len(cats):
            raise DataError(f"{p}: instance id {int(seg.max())} but only {len(cats)} Categories")
        return seg, cats

    def __getitem__(self, i: int) -> Sample:
        image_id = self.ids[i]
        image = self._image(image_id)
        h, w = image.shape[:2]
        xml = self.voc / "Annotations" / f"{image_id}.xml"
        # SBD's instance .mat is only needed for boxes (no XML) or for instance masks
        need_inst = self.has_sbd and (not xml.is_file() or self.masks != "none")
        sbd_inst = self._sbd_instances(image_id, h, w) if need_inst else None
        if xml.is_file() or sbd_inst is None:
            boxes, labels, difficult = parse_voc_xml(xml, self.classes)
            boxes = clip_border_pixel(boxes, h, w)
            where = str(xml)
        else:  # no XML: SBD's instances are the objects
            seg, cats = sbd_inst
            keep = [k for k in range(len(cats)) if (seg == k + 1).any()]
            boxes = np.array([tight_box(seg == k + 1) for k in keep], dtype=np.float32).reshape(-1, 4)
            labels, difficult = cats[keep], [False] * len(keep)
            where = str(self.sbd / "inst" / f"{image_id}.mat")
        check_boxes(boxes, labels, h, w, where, self.num_classes)
        mask = instances = None
        source = None
        if self.masks != "none":
            mask, source = self._class_mask(image_id)
            if mask is None and self.masks == "required":
                raise DataError(f"no class mask for {image_id}: looked for {source}. " + SBD_HELP)
            if mask is not None:
                check_mask_size(mask, image, source)
                check_class_values(mask, self.num_classes, source)
                instances = self._instances(image_id, image, boxes, labels, mask, sbd_inst)
        if not len(labels) and mask is None:  # nothing would supervise it: it would train as background
            raise DataError(f"{where}: no objects and no class mask for {image_id}")
        return Sample(image=image, boxes=boxes, labels=labels, image_id=image_id, mask=mask,
                      instances=instances, meta={"difficult": difficult, "mask_source": source,
                                                 "source": str(self.root)})

    def _instances(self, image_id, image, boxes, labels, mask, sbd_inst) -> np.ndarray | None:
        op = self.voc / "SegmentationObject" / f"{image_id}.png"
        if op.is_file():  # VOC numbers objects in XML order
            return read_instances(op, image, labels, mask)
        if sbd_inst is not None:
            return match_instances(boxes, labels, *sbd_inst)
        return None
