import json

import numpy as np
import pytest

from boxsup.data import VOCLayout, load_dataset
from boxsup.data.synthetic import CONTEXT_CLASSES, TOY_CLASSES, ToySpec, ensure_toy, render

SMALL = ToySpec(train=6, extra=6, val=4, test=4, context_train=4, context_val=3, imagenet=40)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return ensure_toy(tmp_path_factory.mktemp("toy"), SMALL)


def test_deterministic_from_seed():
    a = render(np.random.default_rng(3), SMALL)
    b = render(np.random.default_rng(3), SMALL)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    c = render(np.random.default_rng(4), SMALL)
    assert not np.array_equal(a[0], c[0])


def test_written_in_voc_layout_and_read_back(toy):
    root = toy / "VOCdevkit" / "TOY"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "ImageSets/Segmentation"):
        assert (root / sub).is_dir(), sub
    ds = VOCLayout(root, "train")
    assert len(ds) == 6 and ds.classes == TOY_CLASSES
    for s in ds:
        h, w = s.size
        assert s.mask.shape == (h, w) and s.image.dtype == np.uint8
        assert set(np.unique(s.mask)) <= set(range(len(TOY_CLASSES))) | {255}
        assert (s.mask == 255).any(), "VOC-style 255 border missing"
        assert len(s.boxes) == len(s.labels) == len(s.instances) >= 1
        for b, lab, inst in zip(s.boxes, s.labels, s.instances):
            assert 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h
            ys, xs = np.nonzero(inst)
            # the box is tight to the object (its rim band of 255 included)
            assert b[0] <= xs.min() and xs.max() < b[2] and b[1] <= ys.min() and ys.max() < b[3]
            assert (s.mask[inst] == lab).all()


def test_objects_fill_only_part_of_their_boxes(toy):
    ds = VOCLayout(toy / "VOCdevkit" / "TOY", "train")
    fills = []
    for s in ds:
        for b, inst in zip(s.boxes, s.instances):
            fills.append(inst.sum() / ((b[2] - b[0]) * (b[3] - b[1])))
    assert np.mean(fills) < 0.7


def test_extra_is_coco_json_with_rle(toy):
    ann = json.loads((toy / "toy_coco/annotations/instances_extra.json").read_text())
    assert len(ann["images"]) == 6 and ann["annotations"]
    a = ann["annotations"][0]
    assert set(a) >= {"bbox", "segmentation", "category_id", "iscrowd", "area"}
    assert isinstance(a["segmentation"]["counts"], str)
    assert [c["name"] for c in ann["categories"]] == list(TOY_CLASSES[1:])


def test_context_variant_has_labelled_stuff(toy):
    ds = VOCLayout(toy / "VOCdevkit" / "TOYCTX", "train", mask_dir="SegmentationClassContext",
                   image_set="SegmentationContext")
    assert ds.classes == CONTEXT_CLASSES
    labels = np.concatenate([np.unique(s.mask) for s in ds])
    assert (labels > len(TOY_CLASSES) - 1).any() and (labels < 255).any()


def test_generation_is_cached_and_regenerated_on_spec_change(toy):
    marker = toy / "toy.json"
    before = marker.stat().st_mtime_ns
    ensure_toy(toy, SMALL)
    assert marker.stat().st_mtime_ns == before
    ensure_toy(toy, ToySpec(train=3, extra=2, val=2, test=2, context_train=2, context_val=2, imagenet=40))
    assert len(VOCLayout(toy / "VOCdevkit" / "TOY", "train")) == 3
    assert not list(toy.glob(".toy-tmp-*"))


def test_load_dataset_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        load_dataset("nope", "train", tmp_path)


def test_two_processes_generating_one_root_both_get_the_benchmark(tmp_path):
    """The data root is locked while the benchmark is generated: the second process waits for the
    first one's benchmark instead of failing on its half-made folders."""
    import subprocess
    import sys

    code = ("import sys; from boxsup.data.synthetic import ToySpec, ensure_toy; from boxsup.data import load_dataset; "
            "ensure_toy(sys.argv[1], ToySpec(train=6, extra=4, val=3, test=3, context_train=3, context_val=2, "
            "imagenet=12)); print(len(load_dataset('toy', 'train', sys.argv[1])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["6", "6"]


# --- the CRF hold-out split ------------------------------------------------------------------------
# the generator as it was before the crfval split existed (benchmark version 7): today's code asked for
# version 7 must write the same files, so v7 stays reproducible by its version number
BEFORE_CRFVAL = "4f2116e"
HOLDOUT = ToySpec(version=7, train=5, extra=3, val=3, test=2, context_train=2, context_val=2, imagenet=12, crfval=4,
                  context_crfval=3)


def _old_generator(tmp_path):
    """The generator module at ``BEFORE_CRFVAL``, imported as a sibling of today's (same imports)."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    try:
        src = subprocess.run(["git", "show", f"{BEFORE_CRFVAL}:boxsup/data/synthetic.py"], cwd=repo, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {BEFORE_CRFVAL} is not available")
    path = tmp_path / "synthetic_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("boxsup.data._synthetic_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "toy.json" and not p.name.startswith(".lock")}


def test_version_7_with_its_crfval_split_is_byte_identical_to_the_generator_before(tmp_path):
    old = _old_generator(tmp_path)
    from dataclasses import asdict
    before_spec = old.ToySpec(**{k: v for k, v in asdict(HOLDOUT).items() if k not in ("crfval", "context_crfval", "version")})
    before = _files(old.ensure_toy(tmp_path / "before", before_spec))
    now = _files(ensure_toy(tmp_path / "now", HOLDOUT))
    added = set(now) - set(before)
    assert added and all("crfval" in f for f in added)
    assert not set(before) - set(now)
    assert all(now[f] == before[f] for f in before), [f for f in before if now[f] != before[f]]
    assert len(load_dataset("toy", "crfval", tmp_path / "now")) == 4
    assert len(load_dataset("toy-context", "crfval", tmp_path / "now")) == 3
    val = {s.image_id for s in load_dataset("toy", "val", tmp_path / "now")}
    assert val and not val & {s.image_id for s in load_dataset("toy", "crfval", tmp_path / "now")}


def test_crfval_is_added_to_a_benchmark_made_before_it(tmp_path):
    import shutil

    made = ensure_toy(tmp_path / "fresh", HOLDOUT)
    old = tmp_path / "old"
    shutil.copytree(made, old)
    marker = json.loads((old / "toy.json").read_text())
    marker.pop("crfval")  # what a benchmark generated before the hold-out split looks like
    (old / "toy.json").write_text(json.dumps(marker))
    for p in old.rglob("*crfval*"):
        p.unlink()
    ensure_toy(old, HOLDOUT)
    assert _files(old) == _files(made)
    assert json.loads((old / "toy.json").read_text())["crfval"] == {"crfval": 4, "context_crfval": 3}


# --- benchmark versions ------------------------------------------------------------------------------

def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="version 99"):
        ToySpec(version=99)


def test_version_8_renders_other_images_than_version_7():
    v7, v8 = (render(np.random.default_rng(5), ToySpec(version=v)) for v in (7, 8))
    assert not np.array_equal(v7[0], v8[0])


def test_a_root_asked_for_an_old_version_stays_pinned_to_it(tmp_path):
    from boxsup.config import Config
    from boxsup.data.synthetic import VERSION, _present, toy_version
    from boxsup.models import toy_pretrained_path

    small = {k: v for k, v in vars(SMALL).items() if k != "version"}
    old, new = tmp_path / "v7", tmp_path / "v8"
    ensure_toy(old, ToySpec(version=7, **small))
    ensure_toy(new, ToySpec(version=VERSION, **small))
    marker = (old / "toy.json").read_text()
    assert json.loads(marker)["pinned"] and json.loads(marker)["spec"]["version"] == 7
    ensure_toy(old)  # no spec: the pinned version is kept, not replaced by the default
    assert (old / "toy.json").read_text() == marker
    assert len(load_dataset("toy", "train", old)) == 6
    assert (toy_version(old), toy_version(new), toy_version(tmp_path / "none")) == (7, VERSION, VERSION)
    assert "-v7-" in toy_pretrained_path(old).name
    assert Config(data_root=str(old)).key() != Config(data_root=str(new)).key()
    # a benchmark of an older version that nobody pinned is replaced by the default one
    unpinned = json.loads(marker)
    unpinned["pinned"] = False
    (old / "toy.json").write_text(json.dumps(unpinned))
    assert not _present(old, None) and toy_version(old) == VERSION


def test_a_root_pinned_to_a_version_this_code_does_not_know_is_refused_not_overwritten(tmp_path):
    from boxsup.data.synthetic import toy_version

    (tmp_path / "toy.json").write_text(json.dumps({"spec": {"version": 99}, "pinned": True}))
    with pytest.raises(ValueError, match="version 99 is pinned"):
        toy_version(tmp_path)
    with pytest.raises(ValueError, match="version 99 is pinned"):
        ensure_toy(tmp_path)
    assert json.loads((tmp_path / "toy.json").read_text())["spec"] == {"version": 99}


def test_a_root_pinned_to_another_spec_never_shares_a_run_key(tmp_path):
    """Runs of every data root share one runs/ folder: a benchmark made with smaller images (or any
    field changed from its version's defaults) must key its runs apart; the same spec elsewhere not."""
    from dataclasses import replace

    from boxsup.config import Config
    from boxsup.data.synthetic import toy_spec_changes

    a, b, small_images = tmp_path / "a", tmp_path / "b", tmp_path / "small"
    ensure_toy(a, SMALL)
    ensure_toy(b, SMALL)
    ensure_toy(small_images, replace(SMALL, size=80))
    assert toy_spec_changes(small_images)["size"] == 80 and "size" not in toy_spec_changes(a)
    assert toy_spec_changes(tmp_path / "none") == {}  # the default benchmark changes nothing
    key = lambda root, **kw: Config(data_root=str(root), **kw).key()  # noqa: E731
    assert key(a) == key(b) != key(small_images)
    assert key(a, supervision="box") != key(small_images, supervision="box")
