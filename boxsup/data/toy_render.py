"""Rendering of one toy image (shapes, textures, clutter, occlusion): see ``synthetic`` for the
benchmark it makes. A benchmark version is a ``Look`` (``LOOKS``): version 7's rendering is kept
as it was (every image byte-identical for a given random stream, tested), version 8 adds to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .sample import IGNORE

THINGS = ("disc", "triangle", "star", "ring", "crescent", "cross")
STUFF = ("sand", "water", "brick", "foliage")


@dataclass(frozen=True)
class Look:
    """What a benchmark version adds to the v7 rendering (all off = v7, byte-identical). Version 8
    was calibrated on statistics that involve no training (``benchmarks/calibration.py``)."""
    shadow: float = 0.0        # darkening of a soft shadow each object casts beside itself
    shadow_offset: float = 0.25  # the shadow's shift, in object radii
    unique_in_box: float = 0.0   # chance that an in-box distractor wears colours found nowhere else
    drift: float = 0.0         # amplitude of a smooth colour drift across the image (grey levels)
    drift_cell: int = 28       # its scale in pixels (about a box): the ground is not one colour
    background_contrast: tuple[float, float] = (0.1, 0.35)  # of the background's textures
    ring_inner: tuple[float, float] = (0.5, 0.65)  # a ring's hole, in radii
    noise: float = 4.0         # sensor noise (grey levels)


# --- shapes: a boolean mask of each shape in unit coordinates (u, v) in [-1, 1]^2 -----------------

def _shape(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator,
           ring_inner: tuple[float, float] = Look.ring_inner) -> np.ndarray:
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
        return (r <= 1) & (r >= rng.uniform(*ring_inner))
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


def _place(kind: str, cy: float, cx: float, ry: float, rx: float, angle: float, yy, xx, rng,
           ring_inner: tuple[float, float] = Look.ring_inner) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    return _shape(kind, u, v, rng, ring_inner)


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


# v8 (measured with benchmarks/calibration.py; the README has the table): every statistic inside the
# range of the real sets. v7's CRF-in-box masks were as good as the best candidate, because its
# ground was one colour everywhere; in photos the ground drifts, so a colour CRF keeps some of it.
LOOKS = {7: Look(), 8: Look(shadow=0.45, unique_in_box=0.7, drift=40.0, drift_cell=16, noise=2.0,
                            background_contrast=(0.05, 0.25), ring_inner=(0.4, 0.55))}


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


def _background(rng, yy, xx, palette, contrast: tuple[float, float]) -> np.ndarray:
    h, w = yy.shape
    img = np.empty((h, w, 3), np.float32)
    _paint(img, np.ones((h, w), bool), int(rng.choice(BACKGROUND_FAMILIES)), yy, xx, rng, rng.uniform(*contrast), palette)
    # a few large low-contrast patches of other textures: clutter without object shapes
    for _ in range(rng.integers(1, 4)):
        patch = _smooth_noise(rng, h, w, int(rng.integers(14, 30))) > rng.uniform(0.55, 0.7)
        _paint(img, patch, int(rng.choice(BACKGROUND_FAMILIES)), yy, xx, rng, rng.uniform(*contrast), palette)
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


def _shadows(img: np.ndarray, masks: list[np.ndarray], look: Look, rng) -> np.ndarray:
    """Darken the ground under each object's mask shifted by a fraction of its size, softly."""
    h, w = img.shape[:2]
    dark = np.zeros((h, w), np.float32)
    for m in masks:
        ys, xs = np.nonzero(m)
        r = max(np.ptp(ys), np.ptp(xs)) / 2
        ang = rng.uniform(0, 2 * np.pi)
        dy, dx = look.shadow_offset * r * np.sin(ang), look.shadow_offset * r * np.cos(ang)
        shifted = cv2.warpAffine(m.astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]), (w, h))
        dark = np.maximum(dark, cv2.GaussianBlur(shifted, (0, 0), max(1.0, 0.15 * r)))
    return img * (1 - look.shadow * dark)[..., None]


def render(rng: np.random.Generator, spec: Any, context: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """One image: (RGB uint8, class map with 255 borders, instance map with 255 borders, labels).
    ``spec``: a ``synthetic.ToySpec`` (its version, size, max_objects and border are read)."""
    s = spec.size
    look = LOOKS[spec.version]
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
        img = _background(rng, yy, xx, palette, look.background_contrast)
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
                       yy, xx, rng, look.ring_inner)
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
        # v8: some things in a box look like nothing outside it (a cart behind a horse)
        own = look.unique_in_box and d >= n_free and rng.random() < look.unique_in_box
        _paint(img, m, fam, yy, xx, rng, rng.uniform(*CLUTTER_CONTRAST), None if own else palette)
        label[m] = 0
    inst = np.zeros((s, s), np.uint8)
    labels: list[int] = []
    if look.shadow:  # v8: soft shadows beside the objects, darker ground inside their boxes
        img = _shadows(img, [m for _, m in objects], look, rng)
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
    if look.drift:  # v8: colour that drifts across the image, as light and depth do in photos
        img += np.stack([_smooth_noise(rng, s, s, look.drift_cell) - 0.5 for _ in range(3)], -1) * 2 * look.drift
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0, look.noise, img.shape).astype(np.float32)
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
