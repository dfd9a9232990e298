"""PASCAL VOC layout: VOC 2012 segmentation, VOC 2007 boxes, and any folder laid out the same way.

A VOC-layout folder holds ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml`` (boxes),
``SegmentationClass/<id>.png`` (palette PNG of class indices, 255 = ignore) and optionally
``SegmentationObject/<id>.png`` (instance ids in XML object order) and ``ImageSets/<task>/<split>.txt``.
The toy benchmark, ``../shared/realdata/*`` and the real VOC devkit are all read by this one class.

Annotations are parsed with defusedxml (no DTDs or entities) and strictly: any parser failure, a
malformed or non-finite coordinate, a namespaced tag or box data outside a plain ``<object>`` (an
object that would otherwise vanish) is a DataError naming the file. Masks are checked by content
(PNG, VOC colour map for palette files, values in range) and SegmentationObject files must hold
instance ids consistent with the XML objects and the class mask.
"""
from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import defusedxml.ElementTree as DET
import numpy as np
from defusedxml import DefusedXmlException

from .sample import (VOC_CLASSES, DataError, Sample, check_boxes, check_class_values, check_mask_size,
                     parse_float, read_image, read_label_png, read_split_file)

VOC_HELP = ("Download VOCtrainval_11-May-2012.tar from the PASCAL VOC site and unpack it so that "
            "<data_root>/VOCdevkit/VOC2012/JPEGImages exists (see README, 'Real datasets').")

# tags that only make sense inside an <object>: finding one elsewhere means an object was renamed
# or namespaced and would otherwise vanish, leaving its pixels to train as background
_BOX_TAGS = frozenset(("bndbox", "xmin", "ymin", "xmax", "ymax"))
_COORDS = ("xmin", "ymin", "xmax", "ymax")


def read_xml(path: Path) -> ET.Element:
    """Root of an XML file parsed with defusedxml (no DTDs, entities or external references);
    every parser failure, including an unknown or multi-byte declared encoding, is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        return DET.fromstring(path.read_bytes(), forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, LookupError, ValueError, UnicodeError, RecursionError) as e:
        raise DataError(f"cannot parse annotation {path}: {type(e).__name__}: {e}") from e


def _one(parent: ET.Element, tag: str, path: Path, what: str) -> ET.Element | None:
    """The single child ``tag`` of ``parent`` (None if absent); two of them is ambiguous: DataError."""
    found = parent.findall(tag)
    if len(found) > 1:
        raise DataError(f"{path}: {what} has {len(found)} <{tag}> elements; expected one")
    return found[0] if found else None


def read_voc_objects(path: Path) -> list[tuple[str, bool, list[float]]]:
    """(name, difficult, half-open box) of every ``<object>`` of a VOC annotation, checked strictly:
    the root must be ``<annotation>``, no tag may carry a namespace, box tags may only appear inside
    an ``<object>``, each object has one name and one ``<bndbox>`` of four finite numbers, and
    ``<difficult>`` is 0 or 1."""
    path = Path(path)
    root = read_xml(path)
    stack = [(root, False)]
    while stack:  # iterative walk: a deeply nested file must not hit the recursion limit
        el, in_obj = stack.pop()
        tag = el.tag if isinstance(el.tag, str) else ""
        if "{" in tag:
            raise DataError(f"{path}: namespaced tag {tag!r}; VOC annotations use plain tags")
        if tag in _BOX_TAGS and not in_obj:
            raise DataError(f"{path}: <{tag}> outside any <object> (a renamed or misplaced object tag?)")
        stack.extend((c, in_obj or tag == "object") for c in el)
    if root.tag != "annotation":
        raise DataError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    out = []
    for k, obj in enumerate(root.iter("object")):
        what = f"object {k}"
        name_el = _one(obj, "name", path, what)
        name = (name_el.text or "").strip() if name_el is not None else ""
        what = f"object {k} ({name!r})"
        diff_el = _one(obj, "difficult", path, what)
        diff_text = (diff_el.text or "").strip() if diff_el is not None else "0"
        if diff_text not in ("0", "1"):
            raise DataError(f"{path}: {what} has <difficult>{diff_text}</difficult>; expected 0 or 1")
        bb = _one(obj, "bndbox", path, what)
        if bb is None:
            raise DataError(f"{path}: object {name!r} has no <bndbox>")
        vals = []
        for c in _COORDS:
            el = _one(bb, c, path, f"{what} <bndbox>")
            if el is None:
                raise DataError(f"{path}: object {name!r} has a malformed <bndbox>: no <{c}>")
            vals.append(parse_float(el.text, str(path), f"{what} <{c}>"))
        x0, y0, x1, y1 = vals
        out.append((name, diff_text == "1", [x0 - 1, y0 - 1, x1, y1]))  # VOC is 1-based inclusive
    return out


def parse_voc_xml(path: Path, classes: tuple[str, ...], skip_difficult: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Boxes (half-open pixels), class ids and 'difficult' flags of one VOC annotation file."""
    index = {c: i for i, c in enumerate(classes)}
    boxes, labels, difficult = [], [], []
    for name, diff, box in read_voc_objects(path):
        if name not in index or index[name] == 0:
            raise DataError(f"{path}: unknown class name {name!r}; known: {', '.join(classes[1:])}")
        if diff and skip_difficult:
            continue
        boxes.append(box)
        labels.append(index[name])
        difficult.append(diff)
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64),
            difficult)


def read_instances(path: Path, image: np.ndarray, labels: np.ndarray, mask: np.ndarray,
                   palette: np.ndarray | str | None = "voc") -> np.ndarray:
    """(N, H, W) bool instance masks from a SegmentationObject PNG (ids 1..N in XML object order).

    The file must hold instance ids, not class ids: every value is 0, 255 or 1..N, and the pixels
    of instance k carry, in the class mask, mostly the class of object k. A class map saved under
    SegmentationObject (or one whose objects were reordered) fails here instead of giving empty or
    swapped instances.
    """
    obj = read_label_png(path, palette)
    check_mask_size(obj, image, str(path))
    n = len(labels)
    counts = np.bincount(obj.ravel(), minlength=256)
    stray = np.flatnonzero(counts[n + 1:255]) + n + 1
    if stray.size:
        raise DataError(f"{path}: instance id {int(stray[0])} but the annotation has {n} objects "
                        "(a class map saved as SegmentationObject, or objects lost from the XML?)")
    flat_obj, flat_cls = obj.ravel(), mask.ravel()
    for k in range(n):
        if not counts[k + 1]:
            continue  # an object may be fully occluded or unsegmented
        cls = flat_cls[flat_obj == k + 1]
        cls = cls[cls != 255]
        if cls.size and np.bincount(cls).argmax() != labels[k]:
            raise DataError(f"{path}: instance {k + 1} is mostly class {int(np.bincount(cls).argmax())} in the "
                            f"class mask but object {k + 1} of the annotation is class {int(labels[k])}")
    return np.stack([obj == k + 1 for k in range(n)]) if n else np.zeros((0,) + obj.shape, dtype=bool)


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

    Every annotation of the split is parsed (strictly, see ``read_voc_objects``) when the dataset is
    opened. An image with no usable object (none in its XML, or only difficult ones with
    ``skip_difficult``) and no mask would train as all background, so ``empty`` decides: "skip"
    (default) drops it, counted in ``self.skipped`` by reason with one warning per split; "error"
    raises DataError; "keep" keeps it (test images, which carry no supervision). An image with
    zero objects but a mask is kept: the mask is its ground truth.
    palette: the colour map palette-mode masks must use (None: the VOC colour map).
    """

    def __init__(self, root: Path | str, split: str | None = "train", *, classes: tuple[str, ...] | None = None,
                 image_set: str = "Segmentation", mask_dir: str = "SegmentationClass",
                 masks: str = "required", skip_difficult: bool = False, help_text: str = VOC_HELP,
                 empty: str = "skip", palette: np.ndarray | None = None):
        self.root = Path(root)
        if not (self.root / "JPEGImages").is_dir():
            raise DataError(f"no VOC-layout dataset at {self.root} (looked for {self.root / 'JPEGImages'}). "
                            + help_text)
        if masks not in ("required", "optional", "none"):
            raise ValueError(f"masks={masks!r}; allowed: 'required', 'optional', 'none'")
        if empty not in ("skip", "error", "keep"):
            raise ValueError(f"empty={empty!r}; allowed: 'skip', 'error', 'keep'")
        self.classes = classes or read_classes_file(self.root) or VOC_CLASSES
        self.mask_dir, self.masks, self.skip_difficult = mask_dir, masks, skip_difficult
        self.palette = "voc" if palette is None else palette
        if split is None:
            ids = sorted(p.stem for p in (self.root / "JPEGImages").glob("*.jpg"))
        elif split.endswith(".txt"):
            ids = read_split_file(Path(split) if Path(split).is_absolute() else self.root / split)
        else:
            f = self.root / "ImageSets" / image_set / f"{split}.txt"
            if not f.is_file() and (self.root / f"{split}.txt").is_file():
                f = self.root / f"{split}.txt"  # realdata-style: train.txt at the top
            ids = read_split_file(f)
        self.split = split
        self._ann: dict[str, tuple[np.ndarray, np.ndarray, list[bool]]] = {}
        self.skipped: Counter = Counter()
        self.skipped_ids: list[str] = []
        self.ids = []
        for image_id in ids:
            xml = self.root / "Annotations" / f"{image_id}.xml"
            ann = parse_voc_xml(xml, self.classes, skip_difficult)
            if not len(ann[1]) and empty != "keep" and not self._has_mask(image_id):
                reason = "only_difficult_objects" if skip_difficult and read_voc_objects(xml) else "no_objects"
                if empty == "error":
                    raise DataError(f"{xml}: no usable object ({reason}) and no mask: the image would "
                                    "train as all background")
                self.skipped[reason] += 1
                self.skipped_ids.append(image_id)
                continue
            self._ann[image_id] = ann
            self.ids.append(image_id)
        if self.skipped:
            warnings.warn(f"{self.root} split {split!r}: skipped {sum(self.skipped.values())} of {len(ids)} "
                          f"images without objects or mask ({dict(self.skipped)}; ids in .skipped_ids)",
                          stacklevel=2)

    def _has_mask(self, image_id: str) -> bool:
        return self.masks == "required" or (self.masks == "optional" and self.mask_path(image_id).is_file())

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
        boxes, labels, difficult = self._ann[image_id]
        boxes, labels = clip_border_pixel(boxes, h, w), labels.copy()  # the cache stays as parsed
        check_boxes(boxes, labels, h, w, str(xml), self.num_classes)
        mask = instances = None
        if self.masks != "none":
            mp = self.mask_path(image_id)
            if mp.is_file() or self.masks == "required":
                mask = read_label_png(mp, self.palette)
                check_mask_size(mask, image, str(mp))
                check_class_values(mask, self.num_classes, str(mp))
            op = self.root / "SegmentationObject" / f"{image_id}.png"
            if mask is not None and op.is_file() and not self.skip_difficult:
                instances = read_instances(op, image, labels, mask, self.palette)
        return Sample(image=image, boxes=boxes, labels=labels, image_id=image_id, mask=mask,
                      instances=instances, meta={"difficult": list(difficult), "source": str(self.root)})
