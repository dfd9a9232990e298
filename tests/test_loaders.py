"""Every dataset loader on tiny fixtures written in the real on-disk formats, plus bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from boxsup.data import DataError, VOCLayout, load_dataset, tight_box
from boxsup.data.coco import COCODataset, coco_split
from boxsup.data.context import CONTEXT59_CLASSES, PascalContext
from boxsup.data.sample import VOC_CLASSES, write_jpeg, write_palette_png
from boxsup.data.sbd import VOCAug
from boxsup.data.synthetic import CONTEXT_CLASSES, TOY_CLASSES, ToySpec, ensure_toy
from fixtures import (context_labels_txt, voc_xml, write_coco, write_list, write_sbd_mats,
                      write_voc)

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
PERSON, DOG, CAT, HORSE, CAR = (VOC_CLASSES.index(n) for n in ("person", "dog", "cat", "horse", "car"))


def check_sample(s, num_classes: int, masks: bool = True) -> None:
    """Invariants every loader's Sample must satisfy."""
    h, w = s.image.shape[:2]
    assert s.image.dtype == np.uint8 and s.image.shape[2] == 3
    assert s.boxes.dtype == np.float32 and s.boxes.shape == (len(s.labels), 4)
    if len(s.boxes):
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()
        assert (s.boxes[:, :2] >= 0).all() and (s.boxes[:, 2] <= w).all() and (s.boxes[:, 3] <= h).all()
        assert s.labels.min() >= 1 and s.labels.max() < num_classes
    if masks:
        assert s.mask is not None and s.mask.shape == (h, w) and s.mask.dtype == np.uint8
        vals = np.unique(s.mask)
        assert ((vals < num_classes) | (vals == 255)).all()
    if s.instances is not None:
        assert s.instances.shape == (len(s.boxes), h, w) and s.instances.dtype == bool


# --- VOC layout -------------------------------------------------------------------------------

@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2012"
    scenes = {"img1": [(PERSON, (2, 3, 30, 28)), (DOG, (20, 10, 38, 30))], "img2": [(CAT, (5, 5, 15, 15))]}
    truth = write_voc(root, scenes, {"train": ["img1"], "val": ["img2"]})
    return root, scenes, truth


def test_voc_layout_reads_boxes_masks_instances(voc):
    root, scenes, truth = voc
    ds = VOCLayout(root, "train")
    assert ds.ids == ["img1"] and ds.num_classes == 21
    s = ds[0]
    check_sample(s, 21)
    np.testing.assert_array_equal(s.boxes, np.array([b for _, b in scenes["img1"]], np.float32))
    np.testing.assert_array_equal(s.labels, [PERSON, DOG])
    np.testing.assert_array_equal(s.mask, truth["img1"][1])
    np.testing.assert_array_equal(s.instances[1], truth["img1"][2] == 2)
    assert VOCLayout(root, "val", masks="none")[0].mask is None


def test_voc2007_main_trainval_boxes_only(tmp_path):
    voc07 = tmp_path / "VOCdevkit" / "VOC2007"
    write_voc(voc07, {"000005": [(CAR, (1, 2, 20, 30))], "000007": [(HORSE, (3, 3, 39, 31))]},
              {"trainval": ["000005", "000007"]}, image_set="Main", mask_dir=None)
    ds = load_dataset("voc2007", "trainval", tmp_path)
    assert len(ds) == 2
    s = ds[1]
    check_sample(s, 21, masks=False)
    assert s.mask is None and s.labels.tolist() == [HORSE]
    np.testing.assert_array_equal(s.boxes[0], [3, 3, 39, 31])


def test_voc_layout_split_file_at_top(tmp_path):
    root = tmp_path / "horses"
    write_voc(root, {"h1": [(HORSE, (1, 1, 20, 20))], "h2": [(HORSE, (2, 2, 30, 30))]}, {})
    write_list(root / "train.txt", ["h2"])  # realdata style: no ImageSets folder
    assert VOCLayout(root, "train").ids == ["h2"]
    assert VOCLayout(root, None).ids == ["h1", "h2"]


@pytest.mark.parametrize("box, problem", [((30, 20, 50, 30), "outside"), ((10, 10, 10, 20), "zero")])
def test_voc_bad_box_names_file(voc, box, problem):
    root, _, _ = voc
    xml = root / "Annotations" / "img2.xml"
    # write the XML directly: 1-based inclusive, xmax 50 > width 40 / xmin == xmax + 1
    x0, y0, x1, y1 = box
    xml.write_text(voc_xml("img2", 32, 40, [("cat", (x0, y0, x1, y1))]))
    with pytest.raises(DataError, match=problem) as e:
        VOCLayout(root, "val")[0]
    assert str(xml) in str(e.value)


def test_voc_unknown_class_name(voc):
    root, _, _ = voc
    xml = root / "Annotations" / "img2.xml"
    xml.write_text(voc_xml("img2", 32, 40, [("unicorn", (1, 1, 5, 5))]))
    with pytest.raises(DataError, match="unknown class name 'unicorn'") as e:
        VOCLayout(root, "val")[0]
    assert str(xml) in str(e.value)


def test_voc_corrupt_jpeg(voc):
    root, _, _ = voc
    jpg = root / "JPEGImages" / "img2.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])  # truncated
    with pytest.raises(DataError, match="cannot read image") as e:
        VOCLayout(root, "val")[0]
    assert str(jpg) in str(e.value)


def test_voc_mask_size_and_class_range(voc):
    root, _, _ = voc
    png = root / "SegmentationClass" / "img2.png"
    write_palette_png(png, np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="mask is 10x10 but the image is 40x32"):
        VOCLayout(root, "val")[0]
    bad = np.zeros((32, 40), np.uint8)
    bad[0, 0] = 30
    write_palette_png(png, bad)
    with pytest.raises(DataError, match="class index 30"):
        VOCLayout(root, "val")[0]


def test_missing_roots_name_the_path(tmp_path):
    nowhere = tmp_path / "nowhere"
    for make in (lambda: VOCLayout(nowhere, "train"), lambda: VOCAug(nowhere, "train_aug"),
                 lambda: PascalContext(nowhere, "train"), lambda: coco_split(nowhere, "train2014"),
                 lambda: COCODataset(nowhere / "images", nowhere / "a.json"),
                 lambda: load_dataset("voc2012-aug", "train_aug", nowhere)):
        with pytest.raises(DataError) as e:
            make()
        assert str(nowhere) in str(e.value)
    with pytest.raises(DataError, match="cocodataset.org"):
        coco_split(nowhere, "val2017")
    with pytest.raises(DataError, match="SBD|benchmark"):
        VOCAug(nowhere, "train_aug")


# --- COCO -------------------------------------------------------------------------------------

@pytest.fixture
def coco(tmp_path):
    return write_coco(tmp_path)


def test_coco_voc_classes(coco):
    ds = COCODataset(coco["image_dir"], coco["ann_file"], classes="voc")
    assert ds.classes == VOC_CLASSES and ds.num_classes == 21
    assert ds.ids == [1, 3]  # image 2 holds only a laptop: skipped and counted
    assert ds.skipped == {"zero_area": 1, "outside_image": 1, "crowd": 1, "other_class": 2,
                          "images_without_boxes": 1}
    assert ds.clipped == 1
    s = ds[0]
    check_sample(s, 21)
    np.testing.assert_array_equal(s.boxes, [[20, 15, 30, 25], [5, 5, 45, 35]])
    np.testing.assert_array_equal(s.labels, [DOG, PERSON])
    # RLE decoded exactly; the dog (small, listed first) is painted over the person
    np.testing.assert_array_equal(s.instances[0], coco["dog"])
    assert (s.mask[coco["dog"]] == DOG).all()
    assert (s.mask == PERSON).sum() > 500
    # the crowd is ignore where no instance covers it, and never a box
    assert (s.mask[coco["crowd"] & ~s.instances.any(0)] == 255).all()
    # the laptop (not a VOC class) is never painted
    assert set(np.unique(s.mask).tolist()) <= {0, DOG, PERSON, 255}
    # the polygon's tight box sits within its COCO box
    tb = tight_box(s.instances[1])
    assert (tb[:2] >= s.boxes[1, :2]).all() and (tb[2:] <= s.boxes[1, 2:]).all()
    s3 = ds[1]
    np.testing.assert_array_equal(s3.boxes, [[40, 30, 50, 40]])  # clipped to the 50x40 image
    assert s3.labels.tolist() == [VOC_CLASSES.index("aeroplane")]
    assert s.image_id == "a" and s.meta["coco_id"] == 1


def test_coco_all_classes_and_tuple(coco):
    ds = COCODataset(coco["image_dir"], coco["ann_file"], classes="all", skip_empty=False, crowd="background")
    assert ds.classes == ("background", "person", "airplane", "dog", "laptop")
    assert len(ds) == 3
    s = ds[0]
    assert s.labels.tolist() == [3, 1, 4]
    assert 255 not in s.mask and (s.mask == 4).any()
    ds = COCODataset(coco["image_dir"], coco["ann_file"], classes=("background", "dog"), masks="none")
    assert ds.ids == [1] and ds[0].mask is None and ds[0].labels.tolist() == [1]


def test_coco_masks_required_vs_optional(coco):
    data = coco["data"]
    data["annotations"][1]["segmentation"] = []
    coco["ann_file"].write_text(json.dumps(data))
    assert COCODataset(coco["image_dir"], coco["ann_file"], masks="optional")[0].mask is None
    with pytest.raises(DataError, match="no segmentation"):
        COCODataset(coco["image_dir"], coco["ann_file"], masks="required")[0]


def test_coco_split_layout(tmp_path, coco):
    base = tmp_path / "root" / "coco"
    (base / "annotations").mkdir(parents=True)
    coco["image_dir"].rename(base / "val2017")
    coco["ann_file"].rename(base / "annotations" / "instances_val2017.json")
    ds = coco_split(tmp_path / "root", "val2017")
    assert len(ds) == 3  # not a train split: images without boxes are kept
    assert len(load_dataset("coco80", "val2017", tmp_path / "root")[0].labels) == 3  # laptop kept too


def test_coco_bad_json(coco):
    text = coco["ann_file"].read_text()
    coco["ann_file"].write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="cannot parse COCO json") as e:
        COCODataset(coco["image_dir"], coco["ann_file"])
    assert str(coco["ann_file"]) in str(e.value)
    coco["ann_file"].write_text(json.dumps({"annotations": []}))
    with pytest.raises(DataError, match="not a COCO instances file"):
        COCODataset(coco["image_dir"], coco["ann_file"])


def test_coco_corrupt_jpeg_and_size_mismatch(coco):
    (coco["image_dir"] / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = COCODataset(coco["image_dir"], coco["ann_file"])
    with pytest.raises(DataError, match="cannot read image .*a.jpg"):
        ds[0]
    write_jpeg(coco["image_dir"] / "c.jpg", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(DataError, match="20x20 but .* says 50x40"):
        ds[1]


def test_coco_rle_size_mismatch(coco):
    data = coco["data"]
    data["annotations"][0]["segmentation"] = {"size": [10, 10], "counts": [5, 10, 85]}
    coco["ann_file"].write_text(json.dumps(data))
    with pytest.raises(DataError, match="mask is 10x10"):
        COCODataset(coco["image_dir"], coco["ann_file"])[0]


def test_coco_unknown_category(coco):
    data = coco["data"]
    data["annotations"][0]["category_id"] = 999
    coco["ann_file"].write_text(json.dumps(data))
    with pytest.raises(DataError, match="category_id 999"):
        COCODataset(coco["image_dir"], coco["ann_file"])


# --- VOC + SBD --------------------------------------------------------------------------------

def _sbd_root(tmp_path, with_mats=True, with_aug=False):
    """VOC train [v1], val [v2]; SBD train [s1, v2], val [s2, v1]; train_aug = {s1, s2, v1}."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    scenes = {"v1": [(DOG, (2, 2, 20, 20))], "v2": [(CAT, (4, 4, 30, 30))],
              "s1": [(PERSON, (1, 1, 15, 30)), (PERSON, (20, 2, 39, 28))], "s2": [(HORSE, (3, 5, 37, 29))]}
    truth = write_voc(voc, scenes, {"train": ["v1"], "val": ["v2"]})
    for sid in ("s1", "s2"):  # SBD-only images have no VOC masks
        (voc / "SegmentationClass" / f"{sid}.png").unlink()
        (voc / "SegmentationObject" / f"{sid}.png").unlink()
    dataset = tmp_path / "benchmark_RELEASE" / "dataset"
    if with_mats:
        for sid in ("s1", "s2", "v1", "v2"):
            _, cls, inst = truth[sid]
            n = len(scenes[sid])
            # SBD numbers instances in its own order: reverse them to test the matching
            rev = np.where(inst > 0, n + 1 - inst.astype(int), 0).astype(np.uint8)
            write_sbd_mats(dataset, sid, cls, rev, [lab for lab, _ in scenes[sid]][::-1])
        write_list(dataset / "train.txt", ["s1", "v2"])
        write_list(dataset / "val.txt", ["s2", "v1"])
    if with_aug:
        for sid in scenes:
            write_palette_png(voc / "SegmentationClassAug" / f"{sid}.png", truth[sid][1])
    return truth, scenes


def test_sbd_mat_convention(tmp_path):
    truth, scenes = _sbd_root(tmp_path)
    ds = load_dataset("voc2012-aug", "train_aug", tmp_path)
    assert isinstance(ds, VOCAug) and ds.ids == ["s1", "s2", "v1"]
    by_id = {ds.ids[i]: ds[i] for i in range(len(ds))}
    for sid, s in by_id.items():
        check_sample(s, 21)
        np.testing.assert_array_equal(s.mask, truth[sid][1])
    assert by_id["s1"].meta["mask_source"].endswith("cls/s1.mat")
    assert by_id["v1"].meta["mask_source"].endswith("SegmentationClass/v1.png")
    # SBD instances reordered to follow the XML boxes
    np.testing.assert_array_equal(by_id["s1"].instances[0], truth["s1"][2] == 1)
    np.testing.assert_array_equal(by_id["s1"].instances[1], truth["s1"][2] == 2)
    np.testing.assert_array_equal(by_id["s1"].labels, [PERSON, PERSON])
    val = VOCAug(tmp_path, "val")
    assert val.ids == ["v2"] and val[0].labels.tolist() == [CAT]


def test_sbd_boxes_from_instances_without_xml(tmp_path):
    truth, _ = _sbd_root(tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/Annotations/s2.xml").unlink()
    ds = VOCAug(tmp_path, "train_aug")
    s = ds[ds.ids.index("s2")]
    np.testing.assert_array_equal(s.boxes[0], tight_box(truth["s2"][2] == 1))
    assert s.labels.tolist() == [HORSE]


def test_sbd_aug_png_convention(tmp_path):
    truth, _ = _sbd_root(tmp_path, with_mats=False, with_aug=True)
    ds = VOCAug(tmp_path, "train_aug")  # no train_aug.txt: png names stand in for SBD's lists
    assert ds.ids == ["s1", "s2", "v1"]
    s = ds[0]
    check_sample(s, 21)
    assert s.meta["mask_source"].endswith("SegmentationClassAug/s1.png") and s.instances is None
    write_list(tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt", ["s2"])
    assert VOCAug(tmp_path, "train_aug").ids == ["s2"]


def test_sbd_bad_inputs(tmp_path):
    _sbd_root(tmp_path)
    dataset = tmp_path / "benchmark_RELEASE" / "dataset"
    ds = VOCAug(tmp_path, "train_aug")
    mat = dataset / "cls" / "s1.mat"
    mat.write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(DataError, match="cannot read SBD .mat") as e:
        ds[0]
    assert str(mat) in str(e.value)
    scipy.io.savemat(mat, {"GTcls": {"Segmentation": np.zeros((8, 8), np.uint8)}})
    with pytest.raises(DataError, match="mask is 8x8"):
        ds[0]
    seg = np.zeros((32, 40), np.uint8)
    seg[3, 3] = 40
    scipy.io.savemat(mat, {"GTcls": {"Segmentation": seg}})
    with pytest.raises(DataError, match="class index 40"):
        ds[0]
    scipy.io.savemat(mat, {"Other": np.zeros(3)})
    with pytest.raises(DataError, match="no struct 'GTcls'"):
        ds[0]
    mat.unlink()
    assert VOCAug(tmp_path, "train_aug", masks="optional")[0].mask is None
    with pytest.raises(DataError, match="no class mask for s1"):
        ds[0]


def test_sbd_missing_sbd_names_paths(tmp_path):
    write_voc(tmp_path / "VOCdevkit" / "VOC2012", {"v1": [(DOG, (2, 2, 20, 20))]}, {"train": ["v1"], "val": []})
    with pytest.raises(DataError, match="SegmentationClassAug") as e:
        VOCAug(tmp_path, "train_aug")
    assert "benchmark_RELEASE" in str(e.value)
    assert len(VOCAug(tmp_path, "train")) == 1  # VOC's own splits need no SBD


# --- PASCAL-Context ---------------------------------------------------------------------------

def _context_voc(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2010"
    write_voc(voc, {"2008_000001": [(DOG, (2, 2, 20, 20))], "2008_000002": [(CAT, (5, 5, 30, 25))]},
              {}, mask_dir=None)
    # a dining table in the XML becomes Context's "table"; a non-VOC name is ignored
    (voc / "Annotations" / "2008_000002.xml").write_text(voc_xml(
        "2008_000002", 32, 40, [("cat", (5, 5, 30, 25)), ("diningtable", (0, 20, 40, 32)), ("lamp", (1, 1, 4, 4))]))
    return voc


def test_context_png_layout(tmp_path):
    voc = _context_voc(tmp_path)
    lab = np.zeros((32, 40), np.uint8)
    lab[:10] = CONTEXT59_CLASSES.index("sky")
    lab[10:, :5] = 255
    for i in ("2008_000001", "2008_000002"):
        write_palette_png(voc / "SegmentationClassContext" / f"{i}.png", lab)
    write_list(voc / "ImageSets" / "SegmentationContext" / "train.txt", ["2008_000001"])
    write_list(voc / "ImageSets" / "SegmentationContext" / "val.txt", ["2008_000002"])
    ds = load_dataset("context", "val", tmp_path)
    assert ds.num_classes == 60 and ds.ids == ["2008_000002"]
    s = ds[0]
    check_sample(s, 60)
    np.testing.assert_array_equal(s.mask, lab)
    assert [ds.classes[k] for k in s.labels] == ["cat", "table"]
    (voc / "Annotations" / "2008_000001.xml").unlink()
    assert len(PascalContext(tmp_path, "train")[0].boxes) == 0  # no XML: no boxes
    lab[0, 0] = 70
    write_palette_png(voc / "SegmentationClassContext" / "2008_000001.png", lab)
    with pytest.raises(DataError, match="class index 70"):
        PascalContext(tmp_path, "train")[0]


def test_context_mat_layout(tmp_path):
    _context_voc(tmp_path)
    pc = tmp_path / "PASCAL-Context"
    index = context_labels_txt(pc / "labels.txt", CONTEXT59_CLASSES[1:])
    lm = np.full((32, 40), index["accordion"], np.uint16)  # not one of the 59: background
    lm[:8] = index["sky"]
    lm[8:16] = index["diningtable"]
    lm[16:20] = index["zebra"]
    lm[20:] = index["cat"]
    for i in ("2008_000001", "2008_000002"):
        (pc / "trainval").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(pc / "trainval" / f"{i}.mat", {"LabelMap": lm})
    ds = PascalContext(tmp_path, "trainval")  # no split list: every .mat
    assert ds.ids == ["2008_000001", "2008_000002"]
    s = ds[1]
    check_sample(s, 60)
    names = CONTEXT59_CLASSES
    assert s.mask[0, 0] == names.index("sky") and s.mask[10, 0] == names.index("table")
    assert s.mask[17, 0] == 0 and s.mask[25, 0] == names.index("cat")
    write_list(pc / "val.txt", ["2008_000002"])
    assert PascalContext(tmp_path, "val").ids == ["2008_000002"]
    with pytest.raises(DataError, match="no PASCAL-Context split 'train'"):
        PascalContext(tmp_path, "train")
    lm[0, 0] = 999
    scipy.io.savemat(pc / "trainval" / "2008_000001.mat", {"LabelMap": lm})
    with pytest.raises(DataError, match="class index 999"):
        ds[0]
    lm[0, 0] = 1
    scipy.io.savemat(pc / "trainval" / "2008_000001.mat", {"LabelMap": lm[:5]})
    with pytest.raises(DataError, match="mask is 40x5"):
        ds[0]
    (pc / "labels.txt").write_text("1: accordion\n2: sky\n")
    with pytest.raises(DataError, match="no entry for the Context classes aeroplane"):
        PascalContext(tmp_path, "trainval")


# --- the embedded toy benchmark, small ----------------------------------------------------------

@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return ensure_toy(root, ToySpec(train=4, extra=6, val=2, test=2, context_train=2, context_val=2, imagenet=40))


def test_toy_extra_split_loads_as_coco(toy_root):
    # exactly what load_dataset("toy", "extra", root) opens (it would regenerate at the default size)
    ds = COCODataset(toy_root / "toy_coco/images/extra", toy_root / "toy_coco/annotations/instances_extra.json",
                     classes=TOY_CLASSES)
    assert len(ds) == 6 and ds.classes == TOY_CLASSES and not ds.skipped.get("zero_area")
    for i in range(len(ds)):
        s = ds[i]
        check_sample(s, len(TOY_CLASSES))
        for m, b in zip(s.instances, s.boxes):
            tb = tight_box(m)  # the box is the instance's tight box grown by the 255 rim
            assert (tb[:2] >= b[:2]).all() and (tb[2:] <= b[2:]).all()


def test_toy_voc_splits_load(toy_root):
    ds = VOCLayout(toy_root / "VOCdevkit/TOY", "train")
    assert ds.classes == TOY_CLASSES and len(ds) == 4
    check_sample(ds[0], len(TOY_CLASSES))
    ctx = VOCLayout(toy_root / "VOCdevkit/TOYCTX", "val", mask_dir="SegmentationClassContext",
                    image_set="SegmentationContext")
    assert ctx.classes == CONTEXT_CLASSES
    check_sample(ctx[0], len(CONTEXT_CLASSES))


# --- real photographs, when ../shared/realdata is present ---------------------------------------

@pytest.mark.parametrize("name, split, n", [("weizmann_horse", "train", 227), ("weizmann_horse", "val", 100),
                                           ("coco128_seg", "list_all", 128),
                                           ("coco128_seg", "list_voc_classes", 97)])
def test_realdata_voc_layout(name, split, n):
    root = REALDATA / name
    if not (root / "JPEGImages").is_dir():
        pytest.skip(f"real data not present at {root}")
    ds = load_dataset(str(root), split, masks="required")
    assert len(ds) == n and ds.classes == VOC_CLASSES
    n_boxes = 0
    for i in range(0, len(ds), max(1, len(ds) // 6)):
        s = ds[i]
        check_sample(s, 21)
        n_boxes += len(s.boxes)
        if name == "weizmann_horse":
            assert s.labels.tolist() == [HORSE] and set(np.unique(s.mask)) <= {0, HORSE}
        for b, lab in zip(s.boxes.astype(int), s.labels):  # each box holds pixels of its class
            assert (s.mask[b[1]:b[3], b[0]:b[2]] == lab).any()
    if split != "list_all":
        assert n_boxes > 0


# --- strictness: data never silently becomes a wrong label (issue 14) ---------------------------

def _xml_with(root: Path, image_id: str, text: str) -> Path:
    xml = root / "Annotations" / f"{image_id}.xml"
    xml.write_text(text)
    return xml


@pytest.mark.parametrize("value, field", [("nan", "xmin"), ("inf", "xmin"), ("1_2", "xmin"), ("0x10", "xmin"),
                                          ("", "xmin"), ("1e999", "xmin")])
def test_voc_strict_numbers(voc, value, field):
    root, _, _ = voc
    text = voc_xml("img2", 32, 40, [("cat", (5, 5, 15, 15))]).replace("<xmin>6</xmin>", f"<xmin>{value}</xmin>")
    xml = _xml_with(root, "img2", text)
    with pytest.raises(DataError, match=field) as e:
        VOCLayout(root, "val")[0]
    assert str(xml) in str(e.value)


def test_check_boxes_rejects_non_finite():
    from boxsup.data.sample import check_boxes
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(DataError, match="non-finite.*|.*non-finite"):
            check_boxes(np.array([[1, 1, bad, 5]]), np.array([1]), 10, 10, "here.xml")


@pytest.mark.parametrize("mutate, problem", [
    (lambda t: t.replace("<object>", "<objet>").replace("</object>", "</objet>"), "outside any <object>"),
    (lambda t: t.replace("<annotation>", '<annotation xmlns="http://x">'), "namespaced"),
    (lambda t: t.replace("<object>", "<v:object xmlns:v='urn:v'>").replace("</object>", "</v:object>"), "namespaced"),
    (lambda t: t.replace("<difficult>0</difficult>", "<difficult>yes</difficult>"), "difficult"),
    (lambda t: t.replace("<xmin>6</xmin>", "<xmin>6</xmin><xmin>7</xmin>"), "2 <xmin>"),
    (lambda t: '<?xml version="1.0" encoding="no-such-codec"?>' + t, "encoding"),
    (lambda t: '<?xml version="1.0" encoding="Shift_JIS"?>' + t, "multi-byte"),
    (lambda t: '<!DOCTYPE annotation [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
               + t.replace("<filename>", "<filename>&b;"), "DTD"),
    (lambda t: t[:len(t) // 2], "cannot parse"),
])
def test_voc_xml_structure_errors_name_the_file(voc, mutate, problem):
    root, _, _ = voc
    xml = _xml_with(root, "img2", mutate(voc_xml("img2", 32, 40, [("cat", (5, 5, 15, 15))])))
    with pytest.raises(DataError, match=problem) as e:
        VOCLayout(root, "val")[0]
    assert str(xml) in str(e.value)


def test_voc_image_without_objects_is_counted_not_background(voc):
    root, _, _ = voc
    _xml_with(root, "img2", voc_xml("img2", 32, 40, []))
    with pytest.warns(UserWarning, match="skipped 1 of 1 images"):
        ds = VOCLayout(root, "val", masks="none")
    assert len(ds) == 0 and ds.skipped == {"no_objects": 1} and ds.skipped_ids == ["img2"]
    with pytest.raises(DataError, match="no usable object") as e:
        VOCLayout(root, "val", masks="none", empty="error")
    assert "img2.xml" in str(e.value)
    assert len(VOCLayout(root, "val", masks="none", empty="keep")) == 1
    # its instance map still holds the cat: the XML lost an object, and that is an error
    with pytest.raises(DataError, match="instance id 1 but the annotation has 0 objects"):
        VOCLayout(root, "val")[0]
    # with a mask (and no instance map) the image keeps its ground truth
    (root / "SegmentationObject" / "img2.png").unlink()
    s = VOCLayout(root, "val")[0]
    assert len(s.boxes) == 0 and s.mask is not None
    # only difficult objects, skipped: the reason says so
    _xml_with(root, "img2", voc_xml("img2", 32, 40, [("cat", (5, 5, 15, 15))]).replace(
        "<difficult>0</difficult>", "<difficult>1</difficult>"))
    with pytest.warns(UserWarning):
        ds = VOCLayout(root, "val", masks="none", skip_difficult=True)
    assert ds.skipped == {"only_difficult_objects": 1}


def test_voc_mask_palette_and_content_checked(voc):
    from PIL import Image

    from boxsup.data.sample import voc_palette
    root, _, truth = voc
    png = root / "SegmentationClass" / "img1.png"
    cls = truth["img1"][1]
    pal = voc_palette()
    swapped = pal.copy()
    swapped[[DOG, PERSON]] = swapped[[PERSON, DOG]]  # another index order: dog and person swapped
    im = Image.fromarray(cls, mode="P")
    im.putpalette(swapped.ravel().tolist())
    im.save(png)
    with pytest.raises(DataError, match="palette colour of index") as e:
        VOCLayout(root, "train")[0]
    assert str(png) in str(e.value)
    # an RGB mask quantised to an adaptive palette
    Image.fromarray(pal[cls]).quantize(colors=8).save(png)
    with pytest.raises(DataError, match="palette"):
        VOCLayout(root, "train")[0]
    # a JPEG named .png
    Image.fromarray(cls, mode="L").save(png, format="JPEG")
    with pytest.raises(DataError, match="not a PNG"):
        VOCLayout(root, "train")[0]
    # 16-bit grey: 266 would wrap to class 10
    arr = cls.astype(np.uint16)
    arr[0, 0] = 266
    Image.fromarray(arr).save(png)
    with pytest.raises(DataError, match="outside 0..255"):
        VOCLayout(root, "train")[0]
    # a 32-bit TIFF (holding -246, which would wrap to 10) named .png
    arr = cls.astype(np.int32)
    arr[0, 0] = -246
    Image.fromarray(arr).save(png, format="TIFF")
    with pytest.raises(DataError, match="not a PNG"):
        VOCLayout(root, "train")[0]
    # a grey PNG of class ids is fine
    Image.fromarray(cls, mode="L").save(png)
    np.testing.assert_array_equal(VOCLayout(root, "train")[0].mask, cls)


def test_voc_segmentation_object_holding_class_ids(voc):
    root, _, truth = voc
    write_palette_png(root / "SegmentationObject" / "img1.png", truth["img1"][1])  # class ids 15, 12
    with pytest.raises(DataError, match="instance id 12 but the annotation has 2 objects") as e:
        VOCLayout(root, "train")[0]
    assert "SegmentationObject" in str(e.value)
    swapped = np.where(truth["img1"][2] == 1, 2, np.where(truth["img1"][2] == 2, 1, 0)).astype(np.uint8)
    write_palette_png(root / "SegmentationObject" / "img1.png", swapped)
    with pytest.raises(DataError, match="instance 1 is mostly class"):
        VOCLayout(root, "train")[0]


def test_decompression_bombs_are_data_errors(voc, monkeypatch):
    from PIL import Image
    root, _, _ = voc
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40x32 = 1280 pixels: > 2x the limit
    with pytest.raises(DataError, match="DecompressionBomb") as e:
        VOCLayout(root, "train")[0]
    assert "img1.jpg" in str(e.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # between 1x and 2x: PIL only warns
    with pytest.raises(DataError, match="DecompressionBomb"):
        VOCLayout(root, "train")[0]


def _coco_with(coco, change) -> COCODataset:
    data = json.loads(json.dumps(coco["data"]))
    change(data)
    coco["ann_file"].write_text(json.dumps(data))
    return COCODataset(coco["image_dir"], coco["ann_file"])


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["annotations"][0].update(iscrowd="0"), "iscrowd"),
    (lambda d: d["annotations"][0].update(iscrowd=False), "iscrowd"),
    (lambda d: d["annotations"][0].update(bbox="1234"), "bbox"),
    (lambda d: d["annotations"][0].update(bbox=[True, True, True, True]), "bbox"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "bbox"),
    (lambda d: d["categories"].append({"id": 18, "name": "horse"}), "category id 18 appears twice"),
    (lambda d: d["categories"][0].pop("name"), "categories\\[0\\]"),
    (lambda d: d.update(annotations={"a": 1}), "'annotations' is dict"),
    (lambda d: d["annotations"].append(7), "annotations\\[8\\] is int"),
    (lambda d: d["images"][0].update(height="40"), "images\\[0\\]"),
    (lambda d: d["images"][1].update(id=1), "image id 1 appears twice"),
    (lambda d: d["annotations"][1].update(segmentation=[[5, 5, float("nan"), 9, 30, 30]]), "NaN|non-finite"),
    (lambda d: d["annotations"][1].update(segmentation=[[5, 5, "9", 9, 30, 30]]), "not a finite number"),
])
def test_coco_schema_errors(coco, change, problem):
    with pytest.raises(DataError, match=problem) as e:
        _coco_with(coco, change)
    assert str(coco["ann_file"]) in str(e.value)


@pytest.mark.parametrize("ring", [[5, 5, 30, 30], [5, 5, 30, 30, 20], [5, 5, 10, 10, 20, 20],
                                  [5, 5, 1e30, 9, 30, 30]])
def test_coco_degenerate_polygon_is_counted_skip(coco, ring):
    with pytest.warns(UserWarning, match="degenerate_polygon"):
        ds = _coco_with(coco, lambda d: d["annotations"][1].update(segmentation=[ring]))
    assert ds.skipped["degenerate_polygon"] == 1 and len(ds.degenerate) == 1
    s = ds[0]
    assert s.labels.tolist() == [DOG]  # the person is gone, box and all: never a background instance


def test_coco_rle_counts_must_cover_the_image(coco):
    short = {"size": [40, 50], "counts": [5, 10, 85]}
    with pytest.raises(DataError, match="sum to 100, not height\\*width = 2000"):
        _coco_with(coco, lambda d: d["annotations"][0].update(segmentation=short))[0]
    from pycocotools import mask as mask_utils
    r = mask_utils.encode(np.asfortranarray(np.ones((40, 49), np.uint8)))
    bad = {"size": [40, 50], "counts": r["counts"].decode()}  # sums to 40*49
    with pytest.raises(DataError, match="sum to 1960"):
        _coco_with(coco, lambda d: d["annotations"][0].update(segmentation=bad))[0]
    with pytest.raises(DataError, match="mask is 5000x4000"):  # never decoded at that size
        _coco_with(coco, lambda d: d["annotations"][0].update(
            segmentation={"size": [4000, 5000], "counts": [20_000_000]}))[0]


def test_coco_nan_and_overflow_in_json(coco):
    text = json.dumps(coco["data"])
    for bad in ("NaN", "Infinity", "1e400"):
        coco["ann_file"].write_text(text.replace('"bbox": [20, 15, 10, 10]', f'"bbox": [20, 15, {bad}, 10]'))
        with pytest.raises(DataError, match="cannot parse COCO json") as e:
            COCODataset(coco["image_dir"], coco["ann_file"])
        assert str(coco["ann_file"]) in str(e.value)
