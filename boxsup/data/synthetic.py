"""The embedded synthetic benchmark: small images where box supervision is genuinely hard.

Objects fill only part of their box (discs, triangles, stars, rings with holes, crescents, thin
crosses); class identity is carried by shape AND a class-typical texture, never by colour (colours
are random per object); backgrounds are cluttered textures with unlabelled distractor shapes drawn in
the same texture families; objects occlude each other and vary in size, aspect and rotation.

It is written to disk in the real formats and read back by the real loaders:
``<root>/VOCdevkit/TOY`` (VOC devkit layout: train/val/test with masks, and ``crfval``: held-out
images the dense CRF's parameters are chosen on), ``<root>/toy_coco``
(COCO instances json with RLE for the boxes-only ``extra`` split, which plays COCO) and
``<root>/VOCdevkit/TOYCTX`` (the PASCAL-Context layout: labelled stuff regions behind the objects)
and ``<root>/toy_imagenet`` (ImageNet's folder-per-class layout, one object per image, class labels
only: the toy network is pre-trained on it the way VGG-16 is pre-trained on ImageNet).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..atomic import locked, read_json, write_json, write_text
from .boxes import tight_box
from .paths import from_root
from .sample import IGNORE, write_jpeg, write_palette_png
from .toy_render import LOOKS, STUFF, THINGS, render

TOY_CLASSES = ("background",) + THINGS
CONTEXT_CLASSES = ("background",) + THINGS + STUFF
VERSION = 8  # the default version; bump (and add a Look) when the generator changes
VERSIONS = tuple(LOOKS)  # every version stays reproducible: ToySpec(version=7) is v7, byte for byte


@dataclass(frozen=True)
class ToySpec:
    version: int = VERSION
    seed: int = 0
    size: int = 112
    train: int = 400
    extra: int = 400
    val: int = 160
    test: int = 160
    context_train: int = 240
    context_val: int = 120
    imagenet: int = 1200  # one object per image, class label only: plays ImageNet for pre-training
    max_objects: int = 3
    border: int = 1  # width of the 255 band around object boundaries, as in VOC's label maps
    # held-out images for choosing the dense CRF's parameters (never scored): drawn from their own
    # random streams after everything else, so adding them changed no other image (no VERSION bump)
    crfval: int = 100
    context_crfval: int = 60

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ValueError(f"toy benchmark version {self.version}: unknown; known: {', '.join(map(str, VERSIONS))}")


# the CRF hold-out splits' own streams: np.random.default_rng([seed, stream])
CRFVAL_STREAMS = {"TOY": 1012, "TOYCTX": 1013}
CRFVAL_FIELDS = ("crfval", "context_crfval")


def _boxes_from_instances(inst: np.ndarray, n: int) -> list[np.ndarray]:
    # the band of 255 on an object's rim belongs to the object for its box (VOC boxes are tight
    # to the whole object), so grow each instance by the band before taking its tight box
    out = []
    for k in range(1, n + 1):
        m = inst == k
        grown = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        m = m | (grown & (inst == IGNORE))
        out.append(tight_box(m))
    return out


def _voc_xml(image_id: str, size: int, boxes, labels, classes) -> str:
    objs = "".join(
        f"<object><name>{classes[lab]}</name><difficult>0</difficult><truncated>0</truncated>"
        f"<bndbox><xmin>{int(b[0]) + 1}</xmin><ymin>{int(b[1]) + 1}</ymin>"
        f"<xmax>{int(b[2])}</xmax><ymax>{int(b[3])}</ymax></bndbox></object>"
        for b, lab in zip(boxes, labels))
    return (f"<annotation><folder>TOY</folder><filename>{image_id}.jpg</filename><size><width>{size}"
            f"</width><height>{size}</height><depth>3</depth></size><segmented>1</segmented>{objs}</annotation>")


def _write_voc_split(root: Path, split: str, n: int, rng, spec: ToySpec, context: bool,
                     classes: tuple[str, ...], mask_dir: str, image_set: str) -> list[str]:
    ids = []
    for i in tqdm(range(n), desc=f"toy {root.name}/{split}", leave=False, mininterval=1):
        image_id = f"{split}_{i:05d}"
        img, label, inst, labels = render(rng, spec, context)
        boxes = _boxes_from_instances(inst, len(labels))
        write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", img)
        write_palette_png(root / mask_dir / f"{image_id}.png", label)
        write_palette_png(root / "SegmentationObject" / f"{image_id}.png", inst)
        xml = _voc_xml(image_id, spec.size, boxes, labels, classes)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
        ids.append(image_id)
    sets = root / "ImageSets" / image_set
    sets.mkdir(parents=True, exist_ok=True)
    (sets / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return ids


def _write_coco_split(root: Path, split: str, n: int, rng, spec: ToySpec) -> None:
    images, anns = [], []
    for i in tqdm(range(n), desc=f"toy coco/{split}", leave=False, mininterval=1):
        img, label, inst, labels = render(rng, spec)
        fname = f"{split}_{i:06d}.jpg"
        write_jpeg(root / "images" / split / fname, img)
        images.append({"id": i + 1, "file_name": fname, "height": spec.size, "width": spec.size})
        for k, (box, lab) in enumerate(zip(_boxes_from_instances(inst, len(labels)), labels)):
            m = np.asfortranarray((inst == k + 1).astype(np.uint8))
            rle = mask_utils.encode(m)
            rle["counts"] = rle["counts"].decode("ascii")
            x0, y0, x1, y1 = (float(v) for v in box)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(lab),
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(m.sum()),
                         "iscrowd": 0, "segmentation": rle})
    cats = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(THINGS)]
    path = root / "annotations" / f"instances_{split}.json"
    write_text(path, json.dumps({"images": images, "annotations": anns, "categories": cats}))


def _write_imagenet_split(root: Path, n: int, rng, spec: ToySpec) -> None:
    """ImageNet's training layout, ``<root>/train/<class>/<id>.jpg``: one object per image and its
    class name, nothing else (no box, no mask), like the labels VGG-16 was pre-trained with."""
    single = ToySpec(**{**asdict(spec), "max_objects": 1})
    for name in THINGS:  # every class has its folder, even in a tiny benchmark
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(n), desc="toy imagenet", leave=False, mininterval=1):
        img, _, _, labels = render(rng, single)
        if labels:
            write_jpeg(root / "train" / THINGS[labels[0] - 1] / f"in_{i:05d}.jpg", img)


def default_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` argument, else ``$BOXSUP_DATA``, else ``<project root>/data``; a relative
    path is read against the project root, whatever the working folder (``data.paths``)."""
    return from_root(data_root or os.environ.get("BOXSUP_DATA") or "data")


def ensure_toy(data_root: str | os.PathLike | None = None, spec: ToySpec | None = None) -> Path:
    """Generate the toy benchmark under ``data_root`` unless an identical one is already there.

    ``spec=None`` accepts a benchmark of the default version, or one a spec asked for explicitly
    (``boxsup data --toy-version 7``: the root is then pinned to that version), and generates the
    default ``ToySpec()`` otherwise (an older unpinned benchmark is replaced by the current one).
    Generation happens in a temporary folder that is renamed into place at the end, so a killed
    generation never leaves a half-written benchmark behind; candidate segments and the pre-trained
    body cached for an older benchmark are removed. A second process asking for the same root waits
    for the first one's benchmark. Returns the root.
    """
    root = default_data_root(data_root)
    if _present(root, spec) and _crfval_present(root, spec):
        return root
    with locked(root, ".lock-toy"):
        if not _present(root, spec):
            _generate(root, spec or ToySpec(), pinned=spec is not None)
        elif not _crfval_present(root, spec):  # a benchmark made before the CRF hold-out existed
            _add_crfval(root, spec or _found_spec(root))
    return root


def toy_version(data_root: str | os.PathLike | None = None) -> int:
    """The benchmark version ``ensure_toy(data_root)`` gives: the pinned one, else the default.
    Runs and the pre-trained body are keyed by it, so two versions never share a cache entry."""
    root = default_data_root(data_root)
    marker = read_json(root / "toy.json")
    if not (isinstance(marker, dict) and marker.get("pinned")):
        return VERSION
    version = marker.get("spec", {}).get("version")
    if version not in VERSIONS:  # pinned by newer code: never overwrite it with this code's default
        raise ValueError(f"{root / 'toy.json'}: toy benchmark version {version!r} is pinned there, and this "
                         f"code knows versions {', '.join(map(str, VERSIONS))}; use another data root")
    return version


def toy_spec_changes(data_root: str | os.PathLike | None = None) -> dict:
    """The fields of a pinned benchmark's spec that differ from its version's defaults (a smaller
    image size, fewer images, ...); empty for the default benchmark. Run keys include them: runs
    share one ``runs/`` folder whatever root they were trained on."""
    root = default_data_root(data_root)
    marker = read_json(root / "toy.json")
    if not (isinstance(marker, dict) and marker.get("pinned")):
        return {}
    found = marker.get("spec", {})
    default = asdict(ToySpec(version=toy_version(root)))
    return {k: found[k] for k in sorted(default) if k in found and found[k] != default[k]}


def _core(stamp: dict) -> dict:
    return {k: v for k, v in stamp.items() if k not in CRFVAL_FIELDS}


def _found_spec(root: Path) -> ToySpec:
    found = read_json(root / "toy.json")["spec"]
    return ToySpec(**{k: v for k, v in found.items() if k in ToySpec.__dataclass_fields__})


def _present(root: Path, spec: ToySpec | None) -> bool:
    """Whether ``root`` holds a complete benchmark of ``spec`` (or, with ``spec=None``, of the default
    version or a pinned one; the CRF hold-out splits are checked by ``_crfval_present``)."""
    marker = read_json(root / "toy.json")
    found = marker.get("spec", {}) if isinstance(marker, dict) else {}
    if spec is None:
        return found.get("version") == toy_version(root)
    return _core(found) == _core(asdict(spec))


def _crfval_present(root: Path, spec: ToySpec | None) -> bool:
    found = read_json(root / "toy.json")
    got = found.get("crfval") if isinstance(found, dict) else None
    return got is not None and (spec is None or got == {k: getattr(spec, k) for k in CRFVAL_FIELDS})


def _write_crfval(root: Path, spec: ToySpec) -> None:
    """The ``crfval`` splits of TOY and TOYCTX under ``root`` (a benchmark folder or the work folder)."""
    for tree, n, context, classes, mask_dir, image_set in (
            ("TOY", spec.crfval, False, TOY_CLASSES, "SegmentationClass", "Segmentation"),
            ("TOYCTX", spec.context_crfval, True, CONTEXT_CLASSES, "SegmentationClassContext", "SegmentationContext")):
        rng = np.random.default_rng([spec.seed, CRFVAL_STREAMS[tree]])
        _write_voc_split(root / "VOCdevkit" / tree, "crfval", n, rng, spec, context, classes, mask_dir, image_set)


def _add_crfval(root: Path, spec: ToySpec) -> None:
    """Add the CRF hold-out splits to an existing benchmark: new files only (``crfval_*``, the split
    lists written after their images), then the marker."""
    _write_crfval(root, spec)
    marker = read_json(root / "toy.json")
    write_json(root / "toy.json", {**marker, "crfval": {k: getattr(spec, k) for k in CRFVAL_FIELDS}})


def _generate(root: Path, spec: ToySpec, pinned: bool = False) -> None:
    marker = root / "toy.json"
    stamp = asdict(spec)
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".toy-tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    voc = work / "VOCdevkit" / "TOY"
    for split in ("train", "val", "test"):
        _write_voc_split(voc, split, getattr(spec, split), rng, spec, False, TOY_CLASSES,
                         "SegmentationClass", "Segmentation")
    (voc / "ImageSets" / "Segmentation" / "trainval.txt").write_text(
        (voc / "ImageSets/Segmentation/train.txt").read_text() + (voc / "ImageSets/Segmentation/val.txt").read_text())
    (voc / "classes.txt").write_text("\n".join(TOY_CLASSES) + "\n")
    _write_coco_split(work / "toy_coco", "extra", spec.extra, rng, spec)
    ctx = work / "VOCdevkit" / "TOYCTX"
    for split, n in (("train", spec.context_train), ("val", spec.context_val)):
        _write_voc_split(ctx, split, n, rng, spec, True, CONTEXT_CLASSES, "SegmentationClassContext",
                         "SegmentationContext")
    (ctx / "classes.txt").write_text("\n".join(CONTEXT_CLASSES) + "\n")
    _write_imagenet_split(work / "toy_imagenet", spec.imagenet, rng, spec)
    _write_crfval(work, spec)  # last, from its own streams: the splits above do not depend on it
    for stale in (root / "proposals").glob("toy*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in (root / "pretrained").glob("toy*"):
        stale.unlink()
    for sub in ("VOCdevkit/TOY", "VOCdevkit/TOYCTX", "toy_coco", "toy_imagenet"):
        dst = root / sub
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(work / sub, dst)
    shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    write_json(marker, {"spec": stamp, "pinned": pinned, "seconds": round(seconds, 2),
                        "crfval": {k: getattr(spec, k) for k in CRFVAL_FIELDS}})
