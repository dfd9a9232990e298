"""COCO instances json (and any json in that format, e.g. the toy ``extra`` split) as Samples.

Rules, in the order they are applied to each annotation:

- Classes. ``classes="voc"`` keeps the 20 VOC categories (COCO names are mapped: airplane ->
  aeroplane, motorcycle -> motorbike, couch -> sofa, dining table -> diningtable, potted plant ->
  pottedplant, tv -> tvmonitor); annotations of the other 60 categories are dropped from the boxes
  and left unpainted, so their pixels are background (as in VOC, where they are unlabelled).
  ``classes="all"`` keeps every category of the file in category-id order as ids 1..K (1..80 for
  COCO). A tuple of names (background first) maps category names to their index in the tuple.
- Crowd (``iscrowd=1``) annotations of kept classes are never boxes (counted under ``"crowd"``);
  with ``crowd="ignore"`` their pixels are 255 in the class mask (painted first, so a real instance
  overlapping them wins), with ``crowd="background"`` they are left as background. Annotations of
  dropped categories are counted under ``"other_class"``.
- Boxes: COCO ``[x, y, w, h]`` -> half-open ``(x, y, x + w, y + h)``, clipped to the image (size
  from the json). A box with no area left is skipped and counted in ``self.skipped`` under
  ``"zero_area"`` (or ``"outside_image"`` when it had area but none inside the image). Boxes that
  overhang the image and were clipped are kept and counted in ``self.clipped``.
- Images with no kept (non-crowd) annotation are skipped when ``skip_empty`` is set (the default,
  as for training) and counted under ``"images_without_boxes"``.
- Schema: checked before anything is used, each failure a DataError naming the file and the field:
  ``images``, ``categories`` and ``annotations`` are lists of objects; categories have an int
  ``id`` (unique) and a string ``name``; images an int ``id`` (unique), a string ``file_name`` and
  positive int ``height``/``width``; ``iscrowd`` is the int 0 or 1 (not a bool or string); ``bbox``
  is four finite numbers (not strings or bools). NaN/Infinity/overflowing numbers are rejected.
- Segmentations (unless ``masks="none"``) are checked before pycocotools sees them: polygon
  coordinates must be finite numbers (else DataError); an annotation with a degenerate ring (fewer
  than 3 points, an odd number of coordinates, zero area, or points far outside the image) is
  skipped, box included, and counted under ``"degenerate_polygon"`` -- never kept as an empty
  instance painted as background. RLE ``size`` must equal the image's and its counts must be
  non-negative and sum to height*width (else pycocotools decodes uninitialised memory).
- Masks: instance masks come from the polygon / RLE segmentations (pycocotools); the class mask is
  painted large-to-small so small objects stay on top. ``masks="optional"`` gives ``mask=None``
  for an image when a kept annotation has no segmentation; ``"required"`` raises DataError then;
  ``"none"`` never decodes masks (fast, boxes only).
"""
from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from .coco_masks import ann_to_mask, is_int, polygon_problem
from .sample import IGNORE, VOC_CLASSES, DataError, Sample, check_boxes, check_mask_size, is_number, read_image

COCO_HELP = ("Download the images (e.g. train2014.zip, val2014.zip or train2017.zip, val2017.zip) and "
             "the matching annotations_trainval20XX.zip from https://cocodataset.org/#download and "
             "unpack them so that <data_root>/coco/<split>/*.jpg and "
             "<data_root>/coco/annotations/instances_<split>.json exist.")

# COCO category name -> VOC class name, for the 20 shared classes whose names differ.
COCO_TO_VOC = {"airplane": "aeroplane", "motorcycle": "motorbike", "couch": "sofa",
               "dining table": "diningtable", "potted plant": "pottedplant", "tv": "tvmonitor",
               "tvmonitor": "tvmonitor"}


# the skip reasons that mean an annotation or image was lost (warned about once per split);
# "crowd" and "other_class" are routine and only counted
PROBLEM_SKIPS = ("zero_area", "outside_image", "degenerate_polygon", "images_without_boxes")


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e400 parses as inf
        raise ValueError(f"number {text} overflows")
    return v


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}. " + COCO_HELP)
    try:
        data = json.loads(path.read_bytes(), parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise DataError(f"cannot parse COCO json {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path} is not a COCO instances file (needs 'images' and 'categories' lists)")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"{path}: 'annotations' is {type(data['annotations']).__name__}, not a list")
    for key in ("images", "categories", "annotations"):
        for k, entry in enumerate(data.get(key, [])):
            if not isinstance(entry, dict):
                raise DataError(f"{path}: {key}[{k}] is {type(entry).__name__}, not an object")
    return data


def _check_categories(categories: list[dict], where: Path) -> None:
    seen: set[int] = set()
    for k, c in enumerate(categories):
        if not is_int(c.get("id")) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise DataError(f"{where}: categories[{k}] needs an int 'id' and a non-empty string 'name', "
                            f"got id={c.get('id')!r} name={c.get('name')!r}")
        if c["id"] in seen:  # the later entry would silently rename the class of every annotation
            raise DataError(f"{where}: category id {c['id']} appears twice in 'categories'")
        seen.add(c["id"])


def _category_map(categories: list[dict], classes, where: Path) -> tuple[tuple[str, ...], dict[int, int]]:
    """(class names with background first, {category_id: class index}) for the ``classes`` rule."""
    _check_categories(categories, where)
    cats = sorted(categories, key=lambda c: c["id"])
    if isinstance(classes, str) and classes == "all":
        names = ("background",) + tuple(c["name"] for c in cats)
        return names, {c["id"]: i + 1 for i, c in enumerate(cats)}
    if isinstance(classes, str) and classes == "voc":
        names = VOC_CLASSES
    elif isinstance(classes, (tuple, list)) and len(classes) >= 2:
        names = tuple(classes)
    else:
        raise ValueError(f"classes={classes!r}; allowed: 'voc', 'all' or a tuple of names (background first)")
    index = {n: i for i, n in enumerate(names) if i > 0}
    cat_map = {}
    for c in cats:
        name = c["name"] if c["name"] in index else COCO_TO_VOC.get(c["name"])
        if name in index:
            cat_map[c["id"]] = index[name]
    if not cat_map:
        raise DataError(f"{where}: none of its categories ({', '.join(c['name'] for c in cats)}) "
                        f"is one of the requested classes {', '.join(names[1:])}")
    return names, cat_map


def _short(obj, n: int = 200) -> str:
    text = repr(obj)
    return text if len(text) <= n else text[:n] + "..."


class COCODataset:
    """A sequence of Samples from a folder of images and a COCO instances json (see module doc)."""

    def __init__(self, image_dir: Path | str, ann_file: Path | str, classes="voc", masks: str = "optional",
                 crowd: str = "ignore", skip_empty: bool = True):
        if masks not in ("required", "optional", "none"):
            raise ValueError(f"masks={masks!r}; allowed: 'required', 'optional', 'none'")
        if crowd not in ("ignore", "background"):
            raise ValueError(f"crowd={crowd!r}; allowed: 'ignore', 'background'")
        self.image_dir, self.ann_file = Path(image_dir), Path(ann_file)
        if not self.image_dir.is_dir():
            raise DataError(f"COCO image folder not found: {self.image_dir}. " + COCO_HELP)
        data = _load_json(self.ann_file)
        self.classes, cat_map = _category_map(data["categories"], classes, self.ann_file)
        self._cat_map = cat_map
        self.masks, self.crowd = masks, crowd
        self.skipped: Counter = Counter()
        self.degenerate: list[str] = []  # which annotations "degenerate_polygon" counts, and why
        self.clipped = 0
        images = {}
        for k, im in enumerate(data["images"]):
            if not (is_int(im.get("id")) and isinstance(im.get("file_name"), str) and im["file_name"]
                    and all(is_int(im.get(f)) and im[f] > 0 for f in ("height", "width"))):
                raise DataError(f"{self.ann_file}: images[{k}] needs an int 'id', a 'file_name' and positive "
                                f"int 'height'/'width', got {_short(im)}")
            if im["id"] in images:
                raise DataError(f"{self.ann_file}: image id {im['id']} appears twice in 'images'")
            images[im["id"]] = (im["file_name"], im["height"], im["width"])
        per_image: dict[int, list[dict]] = {i: [] for i in images}
        cat_ids = {c["id"] for c in data["categories"]}
        for ann in data.get("annotations", []):
            where = f"{self.ann_file} annotation {ann.get('id')!r}"
            if not is_int(ann.get("image_id")) or ann["image_id"] not in images:
                raise DataError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
            if not is_int(ann.get("category_id")) or ann["category_id"] not in cat_ids:
                raise DataError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
            crowd = ann.get("iscrowd", 0)
            if not (is_int(crowd) and crowd in (0, 1)):  # "0" or false must not pass as a crowd flag
                raise DataError(f"{where}: 'iscrowd' must be the int 0 or 1, got {crowd!r}")
            if ann["category_id"] not in cat_map:
                self.skipped["other_class"] += 1
                continue
            _, h, w = images[ann["image_id"]]
            if crowd:
                if masks == "none" or self._segmentation_ok(ann, h, w, where):
                    self.skipped["crowd"] += 1  # not a box; its pixels may still be painted ignore
                    per_image[ann["image_id"]].append({**ann, "_crowd": True})
                continue
            box = self._box(ann, h, w, where)
            if box is not None and (masks == "none" or self._segmentation_ok(ann, h, w, where)):
                per_image[ann["image_id"]].append({**ann, "_box": box, "_crowd": False})
        self._images = images
        self._anns = per_image
        self.ids = []
        for image_id in sorted(images):
            if skip_empty and not any(not a["_crowd"] for a in per_image[image_id]):
                self.skipped["images_without_boxes"] += 1
                continue
            self.ids.append(image_id)
        problems = {k: self.skipped[k] for k in PROBLEM_SKIPS if self.skipped.get(k)}
        if problems:  # one line per split, so lost annotations are seen without flooding the log
            warnings.warn(f"{self.ann_file}: skipped {problems} (see .skipped)", stacklevel=2)

    def _segmentation_ok(self, ann: dict, h: int, w: int, where: str) -> bool:
        """Type-check a segmentation; False (counted) for a degenerate polygon, so the annotation is
        dropped whole rather than kept as a box whose pixels would be painted background."""
        segm = ann.get("segmentation")
        if segm is None or (isinstance(segm, list) and not segm):
            return True  # no mask: handled by masks="optional"/"required" when the image is read
        if isinstance(segm, dict):
            return True  # RLE: checked in full (size, counts) right before decoding
        if not isinstance(segm, list):
            raise DataError(f"{where}: segmentation is {type(segm).__name__}, neither polygons nor RLE")
        problem = polygon_problem(segm, h, w, where)
        if problem:
            self.skipped["degenerate_polygon"] += 1
            self.degenerate.append(f"{where}: {problem}")
            return False
        return True

    def _box(self, ann: dict, h: int, w: int, where: str) -> np.ndarray | None:
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_number, bbox))):
            raise DataError(f"{where}: 'bbox' must be [x, y, w, h] of finite numbers, got {bbox!r}")
        x, y, bw, bh = (float(v) for v in bbox)
        if bw <= 0 or bh <= 0:
            self.skipped["zero_area"] += 1
            return None
        box = np.array([max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)], dtype=np.float32)
        if box[2] <= box[0] or box[3] <= box[1]:
            self.skipped["outside_image"] += 1
            return None
        if x < 0 or y < 0 or x + bw > w or y + bh > h:
            self.clipped += 1  # kept, but counted so a user can see how often COCO boxes overhang
        return box

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        image_id = self.ids[i]
        file_name, h, w = self._images[image_id]
        path = self.image_dir / file_name
        image = read_image(path)
        if image.shape[:2] != (h, w):
            raise DataError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but {self.ann_file} "
                            f"says {w}x{h}")
        anns = self._anns[image_id]
        objs = [a for a in anns if not a["_crowd"]]
        boxes = np.array([a["_box"] for a in objs], dtype=np.float32).reshape(-1, 4)
        labels = np.array([self._cat_map[a["category_id"]] for a in objs], dtype=np.int64)
        check_boxes(boxes, labels, h, w, f"{self.ann_file} image {image_id}", self.num_classes)
        mask = instances = None
        if self.masks != "none":
            mask, instances = self._masks(image, image_id, anns, objs, labels)
        return Sample(image=image, boxes=boxes, labels=labels, image_id=str(Path(file_name).stem),
                      mask=mask, instances=instances,
                      meta={"source": str(self.ann_file), "coco_id": image_id,
                            "ann_ids": [a.get("id") for a in objs]})

    def _masks(self, image, image_id, anns, objs, labels) -> tuple[np.ndarray | None, np.ndarray | None]:
        h, w = image.shape[:2]
        where = f"{self.ann_file} image {image_id}"
        if any(not a.get("segmentation") for a in objs):
            if self.masks == "required":
                raise DataError(f"{where}: an annotation has no segmentation and masks='required'")
            return None, None
        inst = []
        for a in objs:
            m = ann_to_mask(a["segmentation"], h, w, f"{where} annotation {a.get('id')}")
            check_mask_size(m, image, f"{where} annotation {a.get('id')}")
            inst.append(m)
        mask = np.zeros((h, w), dtype=np.uint8)
        if self.crowd == "ignore":
            for a in anns:
                if a["_crowd"] and a.get("segmentation"):
                    m = ann_to_mask(a["segmentation"], h, w, f"{where} crowd annotation {a.get('id')}")
                    check_mask_size(m, image, f"{where} crowd annotation {a.get('id')}")
                    mask[m] = IGNORE
        # large first, so a small object lying on a large one stays visible in the class map
        for k in sorted(range(len(inst)), key=lambda k: -int(inst[k].sum())):
            mask[inst[k]] = labels[k]
        instances = np.stack(inst) if inst else np.zeros((0, h, w), dtype=bool)
        return mask, instances


def coco_split(root: Path | str, split: str, classes="voc", masks: str = "optional",
               skip_empty: bool | None = None) -> COCODataset:
    """A standard COCO split: ``<root>/coco/<split>/`` images + ``<root>/coco/annotations/instances_<split>.json``.

    ``root`` may also be the ``coco`` folder itself. Images without boxes are skipped for
    ``train*`` splits and kept otherwise, unless ``skip_empty`` says.
    """
    root = Path(root)
    tried = []
    for base in (root / "coco", root):
        ann = base / "annotations" / f"instances_{split}.json"
        tried.append(ann)
        if ann.is_file():
            return COCODataset(base / split, ann, classes=classes, masks=masks,
                               skip_empty=split.startswith("train") if skip_empty is None else skip_empty)
    raise DataError(f"no COCO split {split!r} under {root} (looked for {' and '.join(map(str, tried))}). "
                    + COCO_HELP)
