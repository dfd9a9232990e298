"""The embedded synthetic benchmark: small images where box supervision is genuinely hard.

Objects fill only part of their box (discs, triangles, stars, rings with holes, crescents, thin
crosses); class identity is carried by shape AND a class-typical texture, never by colour (colours
are random per object); backgrounds are cluttered textures with unlabelled distractor shapes drawn in
the same texture families; objects occlude each other and vary in size, aspect and rotation.

It is written to disk in the real formats and read back by the real loaders:
``<root>/VOCdevkit/TOY`` (VOC devkit layout: train/val/test with masks), ``<root>/toy_coco``
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
from .sample import IGNORE, write_jpeg, write_palette_png

THINGS = ("disc", "triangle", "star", "ring", "crescent", "cross")
STUFF = ("sand", "water", "brick", "foliage")
TOY_CLASSES = ("background",) + THINGS
CONTEXT_CLASSES = ("background",) + THINGS + STUFF
VERSION = 7  # bump when the generator changes so cached data is regenerated


@dataclass(frozen=True)
class ToySpec:
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


# --- shapes: a boolean mask of each shape in unit coordinates (u, v) in [-1, 1]^2 -----------------

def _shape(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = np.hypot(u, v)
    if kind in ("disc", "ellipse"):
        return r <= 1
    if kind == "triangle":
        return (v <= 1) & (v >= -1) & (np.abs(u) <= (v + 1) / 2)
    if kind == "star":
        t = np.arctan2(v, u) + np.pi / 2
        inner = rng.uniform(0.35, 0.45)
        k = (np.mod(t, 2 * np.pi / 5) / (2 * np.pi / 5))  # 0..1 within one spike
        rad = inner + (1 - inner) * np.abs(1 - 2 * k) ** 1.6
        return r <= rad
    if kind == "ring":
        return (r <= 1) & (r >= rng.uniform(0.5, 0.65))
    if kind == "crescent":
        off, rr = rng.uniform(0.35, 0.55), rng.uniform(0.8, 0.95)
        return (r <= 1) & (np.hypot(u - off, v + 0.1) > rr)
    if kind == "cross":
        w = rng.uniform(0.16, 0.26)
        return ((np.abs(u) <= w) | (np.abs(v) <= w)) & (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if kind == "square":
        return (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if kind == "bar":
        return (np.abs(u) <= 1) & (np.abs(v) <= 0.3)
    if kind == "blob":
        t = np.arctan2(v, u)
        a = rng.uniform(0.1, 0.3, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        rad = 0.75 + sum(a[i] * np.sin((i + 2) * t + ph[i]) for i in range(3))
        return r <= rad
    raise ValueError(kind)


DISTRACTORS = ("square", "ellipse", "bar", "blob")


def _place(kind: str, cy: float, cx: float, ry: float, rx: float, angle: float, yy, xx, rng) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    return _shape(kind, u, v, rng)


# --- textures: a field t in [0, 1]; colour = mix of two random colours by t ---------------------

def _smooth_noise(rng, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.random((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    big = cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[cell:cell + h, cell:cell + w], 0, 1)


def _texture(family: int, yy, xx, rng) -> np.ndarray:
    h, w = yy.shape
    if family == 0:    # near-horizontal stripes
        a, p = rng.uniform(-0.35, 0.35), rng.uniform(4, 6)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(a) * yy + np.sin(a) * xx) / p)
    if family == 1:    # checkerboard
        p = rng.uniform(4, 7)
        return ((np.floor(yy / p) + np.floor(xx / p)) % 2).astype(np.float32)
    if family == 2:    # dots
        p = rng.uniform(5, 7)
        return (np.hypot((yy % p) - p / 2, (xx % p) - p / 2) < p / 3.2).astype(np.float32)
    if family == 3:    # diagonal stripes
        a, p = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0), rng.uniform(3, 5)
        return (np.sin(2 * np.pi * (np.cos(a) * yy + np.sin(a) * xx) / p) > 0).astype(np.float32)
    if family == 4:    # blotches
        return (_smooth_noise(rng, h, w, 5) > 0.5).astype(np.float32)
    if family == 5:    # grid lines
        p = rng.uniform(5, 8)
        return (((yy % p) < 1.5) | ((xx % p) < 1.5)).astype(np.float32)
    if family == 6:    # plain with a little shading
        return _smooth_noise(rng, h, w, 24) * 0.3
    if family == 7:    # fine noise
        return rng.random((h, w)).astype(np.float32)
    if family == 8:    # wavy lines
        p, a = rng.uniform(6, 10), rng.uniform(2, 5)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (yy + a * np.sin(2 * np.pi * xx / rng.uniform(15, 30))) / p)
    if family == 9:    # large speckles
        return (_smooth_noise(rng, h, w, 3) > 0.6).astype(np.float32)
    if family == 10:   # bricks (context stuff only)
        p = rng.uniform(6, 9)
        row = np.floor(yy / p)
        return (((yy % p) < 1.5) | (((xx + (row % 2) * p) % (2 * p)) < 1.5)).astype(np.float32)
    raise ValueError(family)


# Object classes wear families 0-5 (class c -> family c). Backgrounds and most distractors wear the
# other families; a share of distractors wear a class family on a non-class shape, so that texture
# alone never settles the class and shape has to be learned too.
BACKGROUND_FAMILIES = (6, 7, 8, 9)
CONFUSER_SHARE = 0.2


PALETTE_SHARE = 0.8  # share of regions whose base colour comes from the image's small palette
OBJECT_CONTRAST = (0.45, 0.85)   # lightness difference of an object's two texture colours
CLUTTER_CONTRAST = (0.3, 0.8)
IN_BOX_CLUTTER = 1.0   # chance, per object, of one more distractor centred inside its box
OBJECT_LOOKS_LIKE_SURROUNDINGS = 0.8  # chance that an object's base colour is its surroundings'
SHADING = 0.3          # amplitude of a smooth multiplicative illumination field


def _colours(rng, contrast: float, palette: np.ndarray | None = None, base: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    # a base colour, and a second colour that differs mostly in lightness (as real textures do).
    # Most base colours come from a palette shared by the whole image, so objects and background
    # overlap in colour (as in photos), and colour models such as GrabCut's cannot separate them
    # for free; texture and shape still tell them apart.
    if base is not None:
        c0 = np.clip(base + rng.normal(0, 6, 3), 0, 255)
    elif palette is not None and rng.random() < PALETTE_SHARE:
        c0 = np.clip(palette[rng.integers(len(palette))] + rng.normal(0, 12, 3), 0, 255)
    else:
        c0 = rng.uniform(0, 255, 3)
    direction = np.ones(3) + 0.5 * rng.normal(size=3)
    direction *= rng.choice([-1, 1])
    c1 = c0 + contrast * 255 * direction / np.linalg.norm(direction) * np.sqrt(3) / 2
    if c1.min() < 0 or c1.max() > 255:  # keep the contrast: move the pair inside the cube instead
        shift = np.clip(-c1.min(), 0, None) - np.clip(c1.max() - 255, 0, None)
        c0, c1 = np.clip(c0 + shift, 0, 255), np.clip(c1 + shift, 0, 255)
    return c0.astype(np.float32), c1.astype(np.float32)


def _paint(img: np.ndarray, mask: np.ndarray, family: int, yy, xx, rng, contrast: float,
           palette: np.ndarray | None = None, base: np.ndarray | None = None) -> None:
    t = _texture(family, yy, xx, rng)
    c0, c1 = _colours(rng, contrast, palette, base)
    col = c0 + t[..., None] * (c1 - c0)
    img[mask] = col[mask]


def _background(rng, yy, xx, palette) -> np.ndarray:
    h, w = yy.shape
    img = np.empty((h, w, 3), np.float32)
    _paint(img, np.ones((h, w), bool), int(rng.choice(BACKGROUND_FAMILIES)), yy, xx, rng, rng.uniform(0.1, 0.35), palette)
    # a few large low-contrast patches of other textures: clutter without object shapes
    for _ in range(rng.integers(1, 4)):
        patch = _smooth_noise(rng, h, w, int(rng.integers(14, 30))) > rng.uniform(0.55, 0.7)
        _paint(img, patch, int(rng.choice(BACKGROUND_FAMILIES)), yy, xx, rng, rng.uniform(0.1, 0.35), palette)
    return img


def _stuff_map(rng, yy, xx, n_stuff: int) -> np.ndarray:
    """Voronoi cells with wobbly borders, each a stuff class (or unlabelled 0)."""
    h, w = yy.shape
    k = int(rng.integers(2, 5))
    seeds = rng.uniform(0, [h, w], size=(k, 2))
    wob_y = (_smooth_noise(rng, h, w, 16) - 0.5) * 20
    wob_x = (_smooth_noise(rng, h, w, 16) - 0.5) * 20
    d = (yy[None] + wob_y - seeds[:, 0, None, None]) ** 2 + (xx[None] + wob_x - seeds[:, 1, None, None]) ** 2
    cell = d.argmin(0)
    classes = rng.integers(0, n_stuff + 1, size=k)  # 0 = unlabelled stuff
    return classes[cell]


def render(rng: np.random.Generator, spec: ToySpec, context: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """One image: (RGB uint8, class map with 255 borders, instance map with 255 borders, labels)."""
    s = spec.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    label = np.zeros((s, s), np.uint8)
    palette = rng.uniform(30, 225, (int(rng.integers(2, 4)), 3))
    if context:
        stuff = _stuff_map(rng, yy, xx, len(STUFF))
        img = np.empty((s, s, 3), np.float32)
        for k in np.unique(stuff):
            # each stuff class has its own texture family, so it can be recognised
            fam = 7 if k == 0 else (6, 8, 9, 10)[int(k) - 1]  # stuff classes wear their own families
            _paint(img, stuff == k, fam, yy, xx, rng, rng.uniform(0.2, 0.5), palette)
            if k > 0:
                label[stuff == k] = len(THINGS) + k
    else:
        img = _background(rng, yy, xx, palette)
    # Object geometry first, so that clutter can be placed where the boxes are (as in photos,
    # where the box around an object also holds other things that look like it).
    objects: list[tuple[int, np.ndarray]] = []
    taken = np.zeros((s, s), np.int32)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        c = int(rng.integers(len(THINGS)))
        for _try in range(10):
            r = rng.uniform(0.12, 0.3) * s
            ry, rx = r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3)
            cy, cx = rng.uniform(0.2 * s, 0.8 * s), rng.uniform(0.2 * s, 0.8 * s)
            m = _place(THINGS[c], cy, cx, ry, rx, rng.uniform(-0.5, 0.5) + (c == 5) * rng.uniform(0, 0.8),
                       yy, xx, rng)
            # keep each earlier object mostly visible (occlusion, not obliteration)
            ok = m.sum() >= 40 and all(((taken == j + 1) & ~m).sum() >= 0.6 * (taken == j + 1).sum()
                                       for j in range(len(objects)))
            if ok:
                break
        else:
            continue
        objects.append((c, m))
        taken[m] = len(objects)
    n_free = int(rng.integers(1, 4))
    in_box = [j for j in range(len(objects)) if rng.random() < IN_BOX_CLUTTER]
    for d in range(n_free + len(in_box)):  # unlabelled distractors in the same texture families
        kind = DISTRACTORS[rng.integers(len(DISTRACTORS))]
        r = rng.uniform(0.06, 0.2) * s
        if d >= n_free:  # centred inside an object's box
            ys, xs = np.nonzero(objects[in_box[d - n_free]][1])
            cy, cx = rng.uniform(ys.min(), ys.max() + 1), rng.uniform(xs.min(), xs.max() + 1)
        else:
            cy, cx = rng.uniform(0, s), rng.uniform(0, s)
        m = _place(kind, cy, cx, r * rng.uniform(0.6, 1.4), r, rng.uniform(0, np.pi), yy, xx, rng)
        fam = int(rng.integers(0, 6)) if rng.random() < CONFUSER_SHARE else int(rng.choice(BACKGROUND_FAMILIES))
        _paint(img, m, fam, yy, xx, rng, rng.uniform(*CLUTTER_CONTRAST), palette)
        label[m] = 0
    inst = np.zeros((s, s), np.uint8)
    labels: list[int] = []
    for c, m in objects:
        base = None
        if rng.random() < OBJECT_LOOKS_LIKE_SURROUNDINGS:
            # one of the object's two colours is the colour just outside it (a brown horse on
            # brown ground): colour models such as GrabCut's and the CRF's cut such objects apart
            ring = (cv2.dilate(m.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & ~m
            ys, xs = np.nonzero(ring)
            k = int(rng.integers(len(ys)))
            base = img[ys[k], xs[k]].copy()
        _paint(img, m, c, yy, xx, rng, rng.uniform(*OBJECT_CONTRAST), palette, base)
        labels.append(c + 1)
        inst[m] = len(labels)
        label[m] = c + 1
    if SHADING:  # smooth illumination across the image: colour alone stops being a clean cue
        img *= (1 - SHADING / 2 + SHADING * _smooth_noise(rng, s, s, 40))[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    if spec.border:
        edges = np.zeros((s, s), bool)
        for a in (label, inst):
            edges[:, 1:] |= a[:, 1:] != a[:, :-1]
            edges[1:, :] |= a[1:, :] != a[:-1, :]
        band = cv2.dilate(edges.astype(np.uint8), np.ones((spec.border + 1,) * 2, np.uint8)) > 0
        label = label.copy()
        label[band] = IGNORE
        inst = inst.copy()
        inst[band & (inst > 0)] = IGNORE
    return np.clip(img, 0, 255).astype(np.uint8), label, inst, labels


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
    """``data_root`` argument, else ``$BOXSUP_DATA``, else ``./data``."""
    return Path(data_root or os.environ.get("BOXSUP_DATA") or "data").expanduser()


def ensure_toy(data_root: str | os.PathLike | None = None, spec: ToySpec | None = None) -> Path:
    """Generate the toy benchmark under ``data_root`` unless an identical one is already there.

    ``spec=None`` accepts any benchmark of the current generator version already present (tests
    generate small ones) and generates the default ``ToySpec()`` otherwise. Generation happens in a
    temporary folder that is renamed into place at the end, so a killed generation never leaves a
    half-written benchmark behind; candidate segments cached for an older benchmark are removed.
    A second process asking for the same root waits for the first one's benchmark. Returns the root.
    """
    root = default_data_root(data_root)
    if _present(root, spec):
        return root
    with locked(root, ".lock-toy"):
        if not _present(root, spec):
            _generate(root, spec or ToySpec())
    return root


def _present(root: Path, spec: ToySpec | None) -> bool:
    """Whether ``root`` holds a complete benchmark of this version (and of ``spec``, if given)."""
    found = read_json(root / "toy.json")
    found = found.get("spec", {}) if isinstance(found, dict) else {}
    return found.get("version") == VERSION and (spec is None or found == {"version": VERSION, **asdict(spec)})


def _generate(root: Path, spec: ToySpec) -> None:
    marker = root / "toy.json"
    stamp = {"version": VERSION, **asdict(spec)}
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
    write_json(marker, {"spec": stamp, "seconds": round(seconds, 2)})
