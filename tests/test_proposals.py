"""Candidate segments: generators, box-derived masks, the store, precompute, MCG reader, quality."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from boxsup.data.boxes import box_iou
from boxsup.data.sample import DataError, Sample, tight_box, write_jpeg, write_palette_png
from boxsup.proposals import (ProposalStore, box_masks, box_masks_to_label, fallback_mask,
                              generate, grabcut_mask, mask_iou_matrix, precompute)
from boxsup.proposals import generators, store as store_mod
from boxsup.proposals.mcg import read_mcg_mat
from boxsup.proposals.quality import best_overlaps, encode_masks, rle_areas
from boxsup.proposals.segments import Segments

REGION_METHODS = ("ss", "mcg-ours", "gop-ours")


def scene(h: int = 48, w: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy background with a disc and a square; returns image, boxes, instance masks."""
    rng = np.random.default_rng(seed)
    img = (rng.normal(90, 6, (h, w, 3))).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 20) ** 2 + (xx - 18) ** 2 <= 10 ** 2
    square = (yy >= 24) & (yy < 42) & (xx >= 38) & (xx < 58)
    img[disc] = (200, 40, 40)
    img[square] = (30, 60, 210)
    img = img.astype(np.uint8)
    masks = np.stack([disc, square])
    return img, np.stack([tight_box(m) for m in masks]), masks


class TinySet:
    """A dataset-like list of Samples (what precompute needs: len, [], ids)."""

    def __init__(self, n: int = 6):
        self.items = []
        for i in range(n):
            img, boxes, masks = scene(seed=i)
            self.items.append(Sample(image=img, boxes=boxes, labels=np.array([1, 2]), image_id=f"im{i:02d}",
                                     instances=masks))
        self.ids = [s.image_id for s in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.items[i]


# --- generators ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", REGION_METHODS)
def test_region_generators_shapes_and_quality(method):
    img, boxes, inst = scene()
    masks = generate(method, img)
    assert masks.dtype == bool and masks.ndim == 3 and masks.shape[1:] == img.shape[:2]
    assert len(masks) >= 2 and masks.reshape(len(masks), -1).any(1).all()  # no empty candidates
    # two flat-coloured objects on a plain background: some candidate must fit each closely
    assert best_overlaps(encode_masks(masks), inst).min() > 0.85


@pytest.mark.parametrize("method", REGION_METHODS)
def test_one_colour_image_gives_the_whole_image(method):
    img = np.full((20, 30, 3), 128, np.uint8)
    masks = generate(method, img)
    assert masks.shape == (1, 20, 30) and masks.all()


@pytest.mark.parametrize("method", REGION_METHODS + ("rect", "grabcut"))
def test_bad_images_raise_value_error(method):
    with pytest.raises(ValueError, match="image"):
        generate(method, np.zeros((0, 0, 3), np.uint8), boxes=np.zeros((0, 4)))
    with pytest.raises(ValueError, match="uint8"):
        generate(method, np.zeros((8, 8, 3), np.float32), boxes=np.zeros((0, 4)))


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="'nope'.*allowed"):
        generate("nope", scene()[0])


def test_box_methods_one_mask_per_box_inside_it():
    img, boxes, inst = scene()
    for method in ("rect", "grabcut"):
        m = generate(method, img, boxes=boxes)
        assert m.shape == (2,) + img.shape[:2]
        for k, b in enumerate(boxes.astype(int)):
            outside = m[k].copy()
            outside[b[1]:b[3], b[0]:b[2]] = False
            assert not outside.any()
    rect = generate("rect", img, boxes=boxes)
    assert (rect.sum((1, 2)) == (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).all()
    gc = generate("grabcut", img, boxes=boxes)
    gc_iou, rect_iou = np.diag(mask_iou_matrix(gc, inst)), np.diag(mask_iou_matrix(rect, inst))
    assert gc_iou[0] > rect_iou[0] + 0.1 and gc_iou.min() > 0.85  # the disc fills only ~72% of its box
    assert generate("grabcut", img, boxes=np.zeros((0, 4))).shape == (0,) + img.shape[:2]
    with pytest.raises(ValueError, match="boxes"):
        generate("rect", img)


def test_crfbox_masks():
    pytest.importorskip("pydensecrf.densecrf")
    img, boxes, inst = scene()
    m = generate("crfbox", img, boxes=boxes)
    assert m.shape == (2,) + img.shape[:2]
    assert np.diag(mask_iou_matrix(m, inst)).min() > 0.7


def test_grabcut_falls_back_to_rectangle_and_counts():
    flat = np.full((40, 40, 3), 77, np.uint8)
    stats = Counter()
    m = fallback_mask(flat, [5, 5, 30, 30], stats)  # one colour: nothing to separate
    assert m.sum() == 25 * 25 and stats == {"rect": 1}
    m, ok = grabcut_mask(scene()[0], [3, 3, 5, 5])  # tiny box
    assert not ok and m.sum() == 4
    img, boxes, _ = scene()
    full = box_masks(img, np.array([[0, 0, 64, 48]], np.float32), "grabcut", stats)  # box = whole image
    assert full.shape == (1, 48, 64) and full.any()


def test_box_masks_to_label_paints_small_on_top():
    img = scene()[0]
    s = Sample(image=img, boxes=np.array([[0, 0, 64, 48], [10, 10, 20, 20]], np.float32),
               labels=np.array([3, 5]), image_id="x")
    lab = box_masks_to_label(s, "rect")
    assert lab.dtype == np.uint8 and lab[15, 15] == 5 and lab[30, 40] == 3 and lab[0, 0] == 3
    s.boxes = s.boxes[::-1].copy(); s.labels = s.labels[::-1].copy()  # order of boxes does not matter
    assert (box_masks_to_label(s, "rect") == lab).all()


def test_no_overlap_box_uses_fallback():
    img, boxes, _ = scene()
    cands = generate("rect", img, boxes=boxes[:1])  # one candidate, on the disc
    far = np.array([[50, 0, 64, 10]], np.float32)
    iou = box_iou(np.stack([tight_box(c) for c in cands]), far)
    assert (iou == 0).all()
    stats = Counter()
    m = fallback_mask(img, far[0], stats)
    assert m.any() and not m[:, :50].any() and sum(stats.values()) == 1


# --- store -----------------------------------------------------------------------------------------

def test_store_round_trip_masks_boxes_areas_sparse(tmp_path):
    img, _, _ = scene()
    masks = generate("ss", img)
    st = ProposalStore(tmp_path)
    st.save("a/b", masks, {"method": "ss"})
    assert st.has("a/b") and st.path("a/b").parent == tmp_path and st.ids() == ["a/b"]
    c = st.load("a/b")
    assert (c.decode() == masks).all() and c.meta["method"] == "ss" and len(c) == len(masks)
    assert np.array_equal(c.boxes, np.stack([tight_box(m) for m in masks]))
    assert np.array_equal(c.areas, masks.sum((1, 2)))
    sp = c.sparse()
    assert sp.shape == (len(masks), masks[0].size)
    assert np.array_equal(sp.toarray().astype(bool), masks.reshape(len(masks), -1))
    # Segments are stored the same way as the masks they stand for
    seg = generators.generate_segments("gop-ours", img)
    st.save("seg", seg)
    c2 = st.load("seg")
    assert (c2.decode() == seg.masks()).all() and np.array_equal(c2.boxes, seg.boxes())
    st.save("empty", np.zeros((0, 5, 7), bool))
    e = st.load("empty")
    assert e.decode().shape == (0, 5, 7) and e.sparse().shape == (0, 35)


def test_store_write_is_atomic(tmp_path, monkeypatch):
    st = ProposalStore(tmp_path)
    masks = np.zeros((2, 6, 6), bool); masks[0, 1:3, 1:4] = True; masks[1, 4:, :] = True
    st.save("x", masks)
    before = st.path("x").read_bytes()

    def boom(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.np, "savez_compressed", boom)
    with pytest.raises(OSError):
        st.save("x", masks[:1])
    assert st.path("x").read_bytes() == before  # the old entry is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # and no temporary is left


def test_corrupt_store_file_raises_and_precompute_redoes_it(tmp_path):
    ds = TinySet(3)
    st = ProposalStore(tmp_path)
    assert precompute(ds, st, "rect", progress=False)["computed"] == 3
    p = st.path("im01")
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])  # truncated
    with pytest.raises(DataError, match="im01.npz"):
        st.load("im01")
    st.path("im02").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="im02.npz"):
        st.load("im02")
    with pytest.raises(DataError, match="does not exist"):
        st.load("missing")
    res = precompute(ds, st, "rect", progress=False)
    assert res == {"total": 3, "skipped": 1, "computed": 2, "redone": 2}
    assert len(st.load("im01")) == 2 and len(st.load("im02")) == 2


def test_precompute_reads_each_file_once_until_it_changes(tmp_path, monkeypatch):
    """A second precompute does not read files it verified before; a file touched or rewritten
    since is read (and redone when damaged)."""
    ds = TinySet(3)
    st = ProposalStore(tmp_path)
    precompute(ds, st, "rect", progress=False)
    reads = []
    orig = ProposalStore.load
    monkeypatch.setattr(ProposalStore, "load", lambda self, i: reads.append(i) or orig(self, i))
    assert precompute(ds, st, "rect", progress=False)["skipped"] == 3 and reads == []
    os.utime(st.path("im00"))  # touched: read again, still fine
    assert precompute(ds, st, "rect", progress=False)["skipped"] == 3 and reads == ["im00"]
    p = st.path("im01")
    p.write_bytes(p.read_bytes()[:-8])  # truncated
    res = precompute(ds, st, "rect", progress=False)
    assert res["redone"] == 1 and reads[1:] == ["im01"]
    reads.clear()
    assert precompute(ds, st, "rect", progress=False)["skipped"] == 3 and reads == []
    assert st.ids() == ["im00", "im01", "im02"]  # the stamp is not an entry


def test_precompute_shards_and_resume(tmp_path, monkeypatch):
    ds = TinySet(7)
    calls = []
    orig = generators.generate_segments
    monkeypatch.setattr(store_mod, "generate_segments", lambda *a, **k: calls.append(k["image_id"]) or orig(*a, **k))
    st = ProposalStore(tmp_path)
    r0 = precompute(ds, st, "rect", shard=(0, 3), progress=False)
    assert r0["total"] == 3 and sorted(calls) == ["im00", "im03", "im06"]
    r1 = precompute(ds, st, "rect", shard="1/3", progress=False)
    assert r1["computed"] == 2 and set(calls) == {"im00", "im03", "im06", "im01", "im04"}
    calls.clear()
    r = precompute(ds, st, "rect", progress=False)  # the rest only
    assert r["skipped"] == 5 and sorted(calls) == ["im02", "im05"] and st.ids() == ds.ids
    with pytest.raises(ValueError, match="shard"):
        precompute(ds, st, "rect", shard="3/3", progress=False)


def test_store_keys_follow_dataset_ids(tmp_path):
    """The trainer looks candidates up by ``dataset.ids[i]`` (COCO: integer ids), not by file stem."""
    ds = TinySet(2)
    ds.ids = [17, 42]
    st = ProposalStore(tmp_path)
    precompute(ds, st, "rect", progress=False)
    assert st.ids() == ["17", "42"] and st.load(42).meta["image_id"] == "im01"
    assert precompute(ds, st, "rect", progress=False)["skipped"] == 2


def test_precompute_parallel_workers(tmp_path):
    st = ProposalStore(tmp_path)
    res = precompute(TinySet(4), st, "gop-ours", workers=2, progress=False)
    assert res["computed"] == 4 and len(st.ids()) == 4
    assert st.load("im03").meta["method"] == "gop-ours"


def test_precompute_resumes_after_kill(tmp_path):
    """A run killed mid-way leaves only complete files; the rerun does exactly the rest."""
    test_dir = Path(__file__).parent
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(test_dir)!r})
        import boxsup.proposals.store as store
        from boxsup.proposals import ProposalStore, precompute
        from test_proposals import TinySet
        orig = store.generate_segments
        def slow(*a, **k):
            time.sleep(0.15)
            return orig(*a, **k)
        store.generate_segments = slow
        precompute(TinySet(40), ProposalStore({str(tmp_path / 'store')!r}), "rect", progress=False)
    """))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    st = ProposalStore(tmp_path / "store")
    t0 = time.time()
    while len(st.ids()) < 3 and time.time() - t0 < 60 and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = st.ids()
    assert 3 <= len(done) < 40
    res = precompute(TinySet(40), st, "rect", progress=False)
    assert res["skipped"] == len(done) and res["computed"] == 40 - len(done) and res["redone"] == 0
    assert len(st.ids()) == 40


def test_proposals_for_and_cli_on_a_voc_folder(tmp_path, capsys):
    root = tmp_path / "voc"
    ds = TinySet(3)
    for s in ds.items:
        write_jpeg(root / "JPEGImages" / f"{s.image_id}.jpg", s.image, quality=98)
        mask = np.zeros(s.size, np.uint8)
        for k, m in enumerate(s.instances):
            mask[m] = k + 1
        write_palette_png(root / "SegmentationClass" / f"{s.image_id}.png", mask)
        objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0] + 1:.0f}</xmin><ymin>{b[1] + 1:.0f}</ymin>"
                       f"<xmax>{b[2]:.0f}</xmax><ymax>{b[3]:.0f}</ymax></bndbox></object>"
                       for n, b in zip(("aeroplane", "bicycle"), s.boxes))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{s.image_id}.xml").write_text(f"<annotation>{objs}</annotation>")
    st = store_mod.proposals_for(str(root), None, "gop-ours", cache_dir=tmp_path / "cache", progress=False)
    assert sorted(st.ids()) == ds.ids
    from boxsup.cli import main

    assert main(["proposals", "--dataset", str(root), "--split", "all", "--method", "gop-ours", "--out",
                 str(tmp_path / "cache"), "--quality", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 computed, 3 already there" in out and "ABO" in out and "s / image" in out
    assert main(["proposals", "--dataset", str(root), "--split", "all", "--method", "ss", "--out",
                 str(tmp_path / "cache"), "--shard", "1/2", "--param", "max_candidates=5", "--no-progress"]) == 0
    assert "1 computed" in capsys.readouterr().out


# --- official MCG files ----------------------------------------------------------------------------

def write_mcg(path: Path, spx: np.ndarray, labels: list[list[int]], **extra) -> None:
    cells = np.empty((len(labels), 1), dtype=object)
    for i, ids in enumerate(labels):
        cells[i, 0] = np.asarray(ids, dtype=np.float64).reshape(1, -1)  # MATLAB stores doubles in rows
    scipy.io.savemat(str(path), dict(superpixels=spx, labels=cells,
                                     scores=np.linspace(1, 0, len(labels)).reshape(-1, 1), **extra))


def test_mcg_reader_unions_superpixels_and_ignores_bboxes(tmp_path):
    spx = np.ones((10, 12), np.uint16)
    spx[:, 4:8] = 2
    spx[:, 8:] = 3
    spx[6:, :] = 4
    labels = [[1], [2, 3], [1, 2, 3, 4], [3, 4]]
    bogus = np.array([[1, 1, 2, 2]] * 7, np.float64)  # de-duplicated, NOT aligned with labels
    write_mcg(tmp_path / "img1.mat", spx, labels, bboxes=bogus)
    seg = read_mcg_mat(tmp_path / "img1.mat")
    masks = seg.masks()
    want = np.stack([np.isin(spx, ids) for ids in labels])
    assert (masks == want).all()
    assert np.array_equal(seg.boxes(), np.stack([tight_box(m) for m in want]))
    img = np.zeros((10, 12, 3), np.uint8)
    out = generate("mcg", img, mcg_dir=str(tmp_path), image_id="img1")
    assert (out == want).all()
    with pytest.raises(DataError, match="superpixels are 12x10 but the image is 5x5"):
        generate("mcg", np.zeros((5, 5, 3), np.uint8), mcg_dir=str(tmp_path), image_id="img1")
    with pytest.raises(ValueError, match="mcg_dir"):
        generate("mcg", img)


def test_mcg_reader_bad_files(tmp_path):
    spx = np.ones((4, 4), np.uint16)
    write_mcg(tmp_path / "ok.mat", spx, [[1]])
    data = (tmp_path / "ok.mat").read_bytes()
    (tmp_path / "trunc.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="trunc.mat"):
        read_mcg_mat(tmp_path / "trunc.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00" * 50)
    with pytest.raises(DataError, match="junk.mat"):
        read_mcg_mat(tmp_path / "junk.mat")
    write_mcg(tmp_path / "range.mat", spx, [[1, 9]])
    with pytest.raises(DataError, match="outside 1..1"):
        read_mcg_mat(tmp_path / "range.mat")
    scipy.io.savemat(str(tmp_path / "nolabels.mat"), dict(superpixels=spx))
    with pytest.raises(DataError, match="no 'labels'"):
        read_mcg_mat(tmp_path / "nolabels.mat")
    with pytest.raises(DataError, match="not found"):
        read_mcg_mat(tmp_path / "absent.mat")


# --- IoUs and quality ------------------------------------------------------------------------------

def test_candidate_box_iou_matches_naive_loop():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, (40, 2))
    a = np.concatenate([xy, xy + rng.uniform(0, 30, (40, 2))], 1).astype(np.float32)
    a[0] = [5, 5, 5, 9]  # zero width
    b = a[rng.choice(40, 6)] + rng.normal(0, 3, (6, 4)).astype(np.float32)
    got = box_iou(a, b)

    def iou(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        ua = max(0.0, p[2] - p[0]) * max(0.0, p[3] - p[1]) + max(0.0, q[2] - q[0]) * max(0.0, q[3] - q[1])
        return iw * ih / (ua - iw * ih) if ua - iw * ih > 0 else 0.0

    want = np.array([[iou(p, q) for q in b] for p in a])
    assert got.shape == (40, 6) and np.allclose(got, want, atol=1e-6)


def test_mask_iou_with_ignore_region_matches_naive():
    rng = np.random.default_rng(0)
    c = rng.random((300, 9, 11)) > 0.5  # > 255 candidates: pycocotools' area() chunking path
    g = rng.random((3, 9, 11)) > 0.6
    ign = rng.random((9, 11)) > 0.8
    g &= ~ign
    got = mask_iou_matrix(encode_masks(c), encode_masks(g), ign)
    keep = ~ign
    want = np.array([[(ci & gi & keep).sum() / max(((ci | gi) & keep).sum(), 1) for gi in g] for ci in c])
    assert np.allclose(got, want, atol=1e-9)
    assert np.array_equal(rle_areas(encode_masks(c)), c.sum((1, 2)))


def test_segments_boxes_and_areas_match_masks():
    atoms = np.arange(20).reshape(4, 5) % 7
    member = np.random.default_rng(1).random((9, 7)) > 0.6
    member[0] = False
    seg = Segments(atoms.astype(np.int32), member)
    masks = seg.masks()
    assert np.array_equal(seg.areas(), masks.sum((1, 2)))
    assert np.array_equal(seg.boxes(), np.stack([tight_box(m) for m in masks]))
    rl = seg.rles(chunk=4)
    assert np.array_equal(rle_areas(rl), masks.sum((1, 2)))


def test_candidate_budget_and_select():
    from boxsup.proposals.segments import candidate_budget

    assert candidate_budget(None, (112, 112), 4000, 500) is None
    assert candidate_budget(123, (112, 112), 4000, 500) == 123
    assert candidate_budget(-1, (375, 500), 4000, 500) == 4000
    assert candidate_budget(-1, (1000, 1000), 4000, 500) == 4000
    assert 500 <= candidate_budget(-1, (112, 112), 4000, 500) < 1500
    img, boxes, _ = scene()
    masks = generate("ss", img)
    from boxsup.proposals import ProposalStore
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        st = ProposalStore(d)
        st.save("a", masks)
        c = st.load("a")
    keep = box_iou(c.boxes, boxes).max(1) > 0.3
    sub = c.select(keep)
    assert len(sub) == keep.sum() and (sub.decode() == masks[keep]).all()
    assert np.array_equal(sub.sparse().toarray().astype(bool), masks[keep].reshape(keep.sum(), -1))


def test_store_keeps_atoms_for_cheap_relabel_sums(tmp_path):
    from boxsup.proposals.segments import Segments
    from boxsup.proposals.store import ProposalStore
    from boxsup.relabel import candidate_pixels

    atoms = (np.arange(20)[:, None] // 5) * 4 + (np.arange(16)[None, :] // 4)
    member = np.zeros((3, 16), bool)
    member[0, [0, 1]] = True
    member[1, [5, 6, 9, 10]] = True
    member[2, 15] = True
    store = ProposalStore(tmp_path)
    store.save("img", Segments(atoms.astype(np.int32), member))
    cand = store.load("img")
    inc = cand.incidence()
    assert isinstance(inc, Segments)
    masks = cand.decode()
    for i in range(3):
        assert set(candidate_pixels(inc, i)) == set(np.flatnonzero(masks[i]))
    sub = cand.select(np.array([False, True, True]))
    assert sub.segments.member.shape == (2, 16) and len(sub) == 2


def test_swapped_proposal_files_are_detected_and_redone(tmp_path):
    """Each file names the image it belongs to: two files swapped on disk are refused, then
    recomputed, never served as the other image's candidates."""
    ds = TinySet(2)
    st = ProposalStore(tmp_path)
    precompute(ds, st, "rect", progress=False)
    a, b = st.path("im00"), st.path("im01")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(DataError, match="holds the candidates of image 'im01'"):
        st.load("im00")
    assert precompute(ds, st, "rect", progress=False)["redone"] == 2
    assert st.load("im00").meta["key"] == "im00"


class SlowSet(TinySet):
    """Each image takes seconds to read, so that a killed parent leaves its workers mid-task."""

    def __getitem__(self, i: int) -> Sample:
        time.sleep(2.5)
        return self.items[i]


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    """A worker whose parent died stops at once instead of finishing (and writing) its image."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from boxsup.proposals import ProposalStore, precompute
        from test_proposals import SlowSet
        if __name__ == "__main__":
            precompute(SlowSet(20), ProposalStore({str(tmp_path / 'store')!r}), "rect", workers=2, progress=False)
    """))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    st = ProposalStore(tmp_path / "store")
    t0 = time.time()
    while len(st.ids()) < 1 and time.time() - t0 < 120 and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # both workers are now inside their next image
    proc.kill()
    proc.wait()
    n = len(st.ids())
    time.sleep(4.0)  # a worker that outlived its parent would finish its image and write it
    assert 1 <= len(st.ids()) == n < 20
