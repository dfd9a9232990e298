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
- Masks: instance masks come from the polygon / RLE segmentations (pycocotools); the class mask is
  painted large-to-small so small objects stay on top. ``masks="optional"`` gives ``mask=None``
  for an image when a kept annotation has no segmentation; ``"required"`` raises DataError then;
  ``"none"`` never decodes masks (fast, boxes only).
"""
from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from .sample import IGNORE, VOC_CLASSES, DataError, Sample, check_boxes, check_mask_size, read_image

COCO_HELP = ("Download the images (e.g. train2014.zip, val2014.zip or train2017.zip, val2017.zip) and "
             "the matching annotations_trainval20XX.zip from https://cocodataset.org/#download and "
             "unpack them so that <data_root>/coco/<split>/*.jpg and "
             "<data_root>/coco/annotations/instances_<split>.json exist.")

# COCO category name -> VOC class name, for the 20 shared classes whose names differ.
COCO_TO_VOC = {"airplane": "aeroplane", "motorcycle": "motorbike", "couch": "sofa",
               "dining table": "diningtable", "potted plant": "pottedplant", "tv": "tvmonitor",
               "tvmonitor": "tvmonitor"}


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}. " + COCO_HELP)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"cannot parse COCO json {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path} is not a COCO instances file (needs 'images' and 'categories' lists)")
    return data


def _category_map(categories: list[dict], classes, where: Path) -> tuple[tuple[str, ...], dict[int, int]]:
    """(class names with background first, {category_id: class index}) for the ``classes`` rule."""
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


def ann_to_mask(segm, height: int, width: int, where: str) -> np.ndarray:
    """Decode one COCO segmentation (polygons, uncompressed or compressed RLE) to an HxW bool mask.

    Same as ``COCO.annToMask`` but without building a COCO index, and with errors naming the file.
    """
    try:
        if isinstance(segm, list):  # polygons: a list of [x0, y0, x1, y1, ...] rings
            rings = [p for p in segm if len(p) >= 6]  # a ring of < 3 points encloses nothing
            if not rings:
                return np.zeros((height, width), dtype=bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
        elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
            rle = mask_utils.frPyObjects(segm, *segm["size"])  # uncompressed RLE (crowd)
        elif isinstance(segm, dict) and "counts" in segm:
            rle = dict(segm)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        else:
            raise DataError(f"{where}: segmentation is neither polygons nor RLE")
        with warnings.catch_warnings():  # pycocotools' cython __array__ predates numpy 2: harmless
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except DataError:
        raise
    except Exception as e:  # pycocotools raises bare TypeError/ValueError/IndexError
        raise DataError(f"{where}: cannot decode segmentation: {e}") from e


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
        self.clipped = 0
        images = {}
        for im in data["images"]:
            try:
                images[im["id"]] = (str(im["file_name"]), int(im["height"]), int(im["width"]))
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{self.ann_file}: image entry {im!r} lacks id/file_name/height/width") from e
        known_cats = {c["id"] for c in data["categories"]}
        per_image: dict[int, list[dict]] = {i: [] for i in images}
        for ann in data.get("annotations", []):
            where = f"{self.ann_file} annotation {ann.get('id')}"
            if ann.get("image_id") not in images:
                raise DataError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
            if ann.get("category_id") not in known_cats:
                raise DataError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
            if ann["category_id"] not in cat_map:
                self.skipped["other_class"] += 1
                continue
            if ann.get("iscrowd", 0):
                self.skipped["crowd"] += 1  # not a box; its pixels may still be painted ignore
                per_image[ann["image_id"]].append({**ann, "_crowd": True})
                continue
            _, h, w = images[ann["image_id"]]
            box = self._box(ann, h, w, where)
            if box is not None:
                per_image[ann["image_id"]].append({**ann, "_box": box, "_crowd": False})
        self._images = images
        self._anns = per_image
        self.ids = []
        for image_id in sorted(images):
            if skip_empty and not any(not a["_crowd"] for a in per_image[image_id]):
                self.skipped["images_without_boxes"] += 1
                continue
            self.ids.append(image_id)

    def _box(self, ann: dict, h: int, w: int, where: str) -> np.ndarray | None:
        try:
            x, y, bw, bh = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: 'bbox' must be [x, y, w, h], got {ann.get('bbox')!r}") from e
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
