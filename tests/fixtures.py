"""Writers of tiny datasets in the exact on-disk formats the loaders read (VOC, COCO, SBD, Context).

Every scene is a few ellipses, each filling its box, on a noisy background; the writers return what
they wrote so tests can compare the loaders' output with the truth.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse
from pycocotools import mask as mask_utils

from boxsup.data.sample import VOC_CLASSES, write_jpeg, write_palette_png


def ellipse(h: int, w: int, box) -> np.ndarray:
    """Bool mask of the ellipse inscribed in the half-open box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1


def scene(h: int, w: int, objs: list[tuple[int, tuple]], seed: int = 0):
    """(image, class map, instance map) with objects (class id, box) painted in list order."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    cls = np.zeros((h, w), np.uint8)
    inst = np.zeros((h, w), np.uint8)
    for k, (lab, box) in enumerate(objs):
        m = ellipse(h, w, box)
        image[m] = (40 * lab) % 255
        cls[m], inst[m] = lab, k + 1
    return image, cls, inst


def voc_xml(image_id: str, h: int, w: int, objs: list[tuple[str, tuple]]) -> str:
    """VOC annotation XML; boxes are given half-open and written 1-based inclusive as VOC does."""
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{b[0] + 1}</xmin>"
        f"<ymin>{b[1] + 1}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b in objs)
    return (f"<annotation><filename>{image_id}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size>{body}</annotation>")


def write_voc(root: Path, scenes: dict[str, list[tuple[int, tuple]]], splits: dict[str, list[str]],
              classes=VOC_CLASSES, h: int = 32, w: int = 40, image_set: str = "Segmentation",
              mask_dir: str | None = "SegmentationClass", objects: bool = True) -> dict:
    """A VOC-layout folder: JPEGImages, Annotations, class/object PNGs, ImageSets/<image_set>/*.txt."""
    truth = {}
    for i, (image_id, objs) in enumerate(scenes.items()):
        image, cls, inst = scene(h, w, objs, seed=i)
        write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", image, quality=95)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            voc_xml(image_id, h, w, [(classes[lab], box) for lab, box in objs]))
        if mask_dir:
            write_palette_png(root / mask_dir / f"{image_id}.png", cls)
            if objects:
                write_palette_png(root / "SegmentationObject" / f"{image_id}.png", inst)
        truth[image_id] = (image, cls, inst)
    for split, ids in splits.items():
        write_list(root / "ImageSets" / image_set / f"{split}.txt", ids)
    return truth


def write_list(path: Path, ids) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


# --- COCO -------------------------------------------------------------------------------------

def polygon(box) -> list[float]:
    """An octagon inside the box as a COCO polygon ring [x0, y0, x1, y1, ...]."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    t = np.arange(8) * np.pi / 4
    return np.ravel(np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)).round(2).tolist()


def rle(mask: np.ndarray, compressed: bool = True) -> dict:
    if compressed:
        r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}
    # uncompressed RLE as COCO stores crowds: run lengths over the column-major flattening
    flat = mask.astype(np.uint8).ravel(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    return {"size": list(mask.shape), "counts": runs}


COCO_CATS = [{"id": 1, "name": "person"}, {"id": 5, "name": "airplane"}, {"id": 18, "name": "dog"},
             {"id": 73, "name": "laptop"}]


def write_coco(root: Path, h: int = 40, w: int = 50) -> dict:
    """images/ + annotations.json exercising polygons, compressed and uncompressed RLE, a crowd,
    a non-VOC category, a zero-area box, a clipped box, a box wholly outside and an empty image."""
    img_dir = root / "images"
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_jpeg(img_dir / name, rng.integers(0, 255, (h, w, 3), dtype=np.uint8), quality=95)
    big, small = (5, 5, 45, 35), (20, 15, 30, 25)
    dog = ellipse(h, w, small)
    crowd = np.zeros((h, w), bool)
    crowd[0:4, 0:10] = True
    anns = [
        # the small dog is listed first: painting must still put it on top of the big person
        {"id": 10, "image_id": 1, "category_id": 18, "bbox": [20, 15, 10, 10], "iscrowd": 0,
         "segmentation": rle(dog)},
        {"id": 11, "image_id": 1, "category_id": 1, "bbox": [5, 5, 40, 30], "iscrowd": 0,
         "segmentation": [polygon(big)]},
        {"id": 12, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 4], "iscrowd": 1,
         "segmentation": rle(crowd, compressed=False)},
        {"id": 13, "image_id": 1, "category_id": 73, "bbox": [30, 30, 10, 5], "iscrowd": 0,
         "segmentation": [polygon((30, 30, 40, 35))]},
        {"id": 14, "image_id": 1, "category_id": 5, "bbox": [3, 3, 0, 10], "iscrowd": 0,
         "segmentation": [[3, 3, 3, 13, 3, 8]]},                              # zero area
        {"id": 20, "image_id": 2, "category_id": 73, "bbox": [1, 1, 10, 10], "iscrowd": 0,
         "segmentation": [polygon((1, 1, 11, 11))]},                          # only a non-VOC class
        {"id": 30, "image_id": 3, "category_id": 5, "bbox": [40, 30, 20, 20], "iscrowd": 0,
         "segmentation": [polygon((40, 30, 50, 40))]},                        # clipped to 40,30,50,40
        {"id": 31, "image_id": 3, "category_id": 5, "bbox": [60, 0, 5, 5], "iscrowd": 0,
         "segmentation": [polygon((45, 0, 50, 5))]},                          # wholly outside
    ]
    images = [{"id": i + 1, "file_name": n, "height": h, "width": w} for i, n in enumerate(("a.jpg", "b.jpg", "c.jpg"))]
    data = {"images": images, "annotations": anns, "categories": COCO_CATS}
    ann_file = root / "annotations.json"
    ann_file.write_text(json.dumps(data))
    return {"image_dir": img_dir, "ann_file": ann_file, "dog": dog, "crowd": crowd, "data": data}


# --- SBD --------------------------------------------------------------------------------------

def _boundaries(n: int, h: int, w: int) -> np.ndarray:
    cell = np.empty((n, 1), dtype=object)  # SBD stores a cell array of sparse boundary maps
    for i in range(n):
        cell[i, 0] = scipy.sparse.csc_matrix((h, w), dtype=np.uint8)
    return cell


def write_sbd_mats(dataset: Path, image_id: str, cls: np.ndarray, inst: np.ndarray, inst_classes) -> None:
    """``cls/<id>.mat`` (struct GTcls) and ``inst/<id>.mat`` (struct GTinst) as SBD writes them."""
    h, w = cls.shape
    present = np.unique(cls[(cls > 0) & (cls < 255)]).astype(np.uint8).reshape(-1, 1)
    (dataset / "cls").mkdir(parents=True, exist_ok=True)
    (dataset / "inst").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(dataset / "cls" / f"{image_id}.mat", {"GTcls": {
        "Boundaries": _boundaries(20, h, w), "Segmentation": cls.astype(np.uint8), "CategoriesPresent": present}})
    scipy.io.savemat(dataset / "inst" / f"{image_id}.mat", {"GTinst": {
        "Segmentation": inst.astype(np.uint8), "Boundaries": _boundaries(len(inst_classes), h, w),
        "Categories": np.asarray(inst_classes, np.uint8).reshape(-1, 1)}})


# --- PASCAL-Context ---------------------------------------------------------------------------

def context_labels_txt(path: Path, names59) -> dict[str, int]:
    """A labels.txt with the 59 names among others in a shuffled 1-based order; name -> index."""
    names = ["accordion", "zebra", "unicorn"] + ["diningtable" if n == "table" else n for n in names59]
    order = np.random.default_rng(0).permutation(len(names))
    index = {names[j]: i + 1 for i, j in enumerate(order)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}: {n}\n" for n, i in sorted(index.items(), key=lambda t: t[1])))
    return index
