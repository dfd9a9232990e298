"""The toy network's image-level pre-training, rounds with several passes, and the table rows."""
import json

import numpy as np
import pytest
import torch

from boxsup.config import Config
from boxsup.data.synthetic import THINGS, ToySpec, ensure_toy

TINY = ToySpec(train=8, extra=6, val=4, test=4, context_train=4, context_val=3, imagenet=40)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(ensure_toy(tmp_path_factory.mktemp("toy"), TINY))


def test_toy_imagenet_is_class_folders_with_one_label_each(data_root):
    from boxsup.pretrain import load_toy_imagenet

    images, labels = load_toy_imagenet(data_root)
    assert images.shape[1:] == (112, 112, 3) and images.dtype == np.uint8
    assert len(images) == len(labels) and 30 <= len(labels) <= 40  # empty renders are skipped
    assert set(labels) <= set(range(len(THINGS)))


@pytest.mark.slow
def test_pretrained_toyfcn_is_cached_and_loaded(data_root):
    from boxsup.models import build_model
    from boxsup.pretrain import pretrain_toyfcn, pretrained_path

    path = pretrain_toyfcn(data_root, progress=False)
    assert path == pretrained_path(data_root) and path.is_file()
    stamp = path.stat().st_mtime_ns
    state = torch.load(path, weights_only=False)
    assert 0.0 <= state["heldout_accuracy"] <= 1.0
    a = build_model("toyfcn", 7, pretrained=True, data_root=data_root)
    b = build_model("toyfcn", 11, pretrained=True, data_root=data_root)  # another label set: same body
    assert path.stat().st_mtime_ns == stamp  # trained once, then read
    for k, v in state["features"].items():
        assert torch.equal(a.features.state_dict()[k], v) and torch.equal(b.features.state_dict()[k], v)
    fresh = build_model("toyfcn", 7, pretrained=False)
    assert not torch.equal(fresh.features[0].weight, a.features[0].weight)


def test_missing_class_folder_is_a_clear_error(tmp_path):
    from boxsup.data.sample import DataError
    from boxsup.pretrain import load_toy_imagenet

    root = ensure_toy(tmp_path / "toy", ToySpec(train=2, extra=2, val=2, test=2, context_train=2, context_val=2,
                                                imagenet=6))
    import shutil
    shutil.rmtree(root / "toy_imagenet" / "train" / "star")
    with pytest.raises(DataError, match="star"):
        load_toy_imagenet(root)


@pytest.mark.slow
def test_passes_train_longer_between_relabels(data_root, tmp_path):
    from boxsup.train import fit

    cfg = Config(data_root=data_root, runs_dir=str(tmp_path / "runs"), supervision="box", epochs=2, passes=2,
                 lr_step=5, batch_size=4, crop=48, device="cpu", proposals_dir=str(tmp_path / "prop"))
    out = fit(cfg, progress=False)
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]          # one log line and one relabel per round
    assert all(r["relabel_images"] == 8 for r in log)
    assert cfg.key() != cfg.replace(passes=1).key()
    with pytest.raises(ValueError, match="passes=0"):
        Config(passes=0)


def test_table1_row_selection_and_bad_values():
    from boxsup.tables import TABLE1_ROWS, table1_rows

    assert table1_rows() == TABLE1_ROWS
    assert [r[1] for r in table1_rows("box")] == ["box"]
    assert [r[2] for r in table1_rows("mask", "boxes")] == [dict(supervision="mask", extra="boxes")]
    assert {r[2].get("extra", "none") for r in table1_rows("mask")} == {"none", "masks", "boxes"}
    custom = table1_rows("box", "boxes")  # not a paper row: run as its own row, no paper number
    assert custom[0][2] == dict(supervision="box", extra="boxes") and custom[0][3] is None
    with pytest.raises(ValueError, match="supervision='boxes'.*all, mask, box, semi"):
        table1_rows("boxes")
    with pytest.raises(ValueError, match="extra='coco'"):
        table1_rows("mask", "coco")


def test_context_configs_pretrain_on_the_extra_boxes():
    from boxsup.tables import context_configs

    cs = context_configs(Config())
    assert cs["baseline"].dataset == "toy-context" and cs["baseline"].supervision == "mask"
    assert (cs["pretrain"].dataset, cs["pretrain"].train_split, cs["pretrain"].supervision) == ("toy", "extra", "box")
    paper = context_configs(Config(profile="paper"))
    assert paper["pretrain"].dataset == "coco80" and paper["baseline"].dataset == "context"


def test_verdicts_name_the_broken_pair():
    import pandas as pd

    from boxsup.tables import gain_verdict, table2_verdict

    t = pd.DataFrame({"FCN": [40.0, 50.0, 45.0, 55.0, 56.0]}, index=["r", "g", "c", "k1", "k5"])
    v = table2_verdict(t, "FCN")
    assert v == "does not hold: GrabCut (50.0) < CRF-box (45.0)"
    t5 = pd.DataFrame({"FCN": [30.0, 33.5]}, index=["baseline", "pre"])
    assert gain_verdict(t5, "FCN", "baseline", "pre", 4.8).startswith("pre beats baseline by +3.5")


def test_pick_trend_needs_more_than_two_points_to_call_a_trend():
    from boxsup.experiments import pick_trend

    head, verdict = pick_trend({1: 49.8, 5: 47.0, 15: 50.2}, [1, 5, 20])
    assert head == {"pick IoU epoch 1": 49.8, "pick IoU epoch 5": 47.0} and "get worse" in verdict
    assert "improve over" in pick_trend({1: 40.0, 5: 50.0}, [1, 5])[1]
    assert "barely change" in pick_trend({1: 40.0, 5: 41.0}, [1, 5])[1]
    with pytest.raises(ValueError, match="no pick quality"):
        pick_trend({1: 40.0}, [3])


@pytest.mark.slow
def test_table4_at_paper_scale_writes_one_server_tarball_per_row(data_root, tmp_path, monkeypatch):
    """VOC 2012 test has no labels: every Table 4 row must become an evaluation-server tarball."""
    import re
    import shutil
    import tarfile

    from boxsup import tables
    from boxsup.train import fit

    voc = tmp_path / "voc" / "VOCdevkit" / "VOC2012"  # a VOC 2012 test split made of toy test images
    toy = __import__("pathlib").Path(data_root) / "VOCdevkit" / "TOY"
    ids = (toy / "ImageSets/Segmentation/test.txt").read_text().split()
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/test.txt").write_text("\n".join(ids) + "\n")
    shutil.copytree(toy / "JPEGImages", voc / "JPEGImages")
    (voc / "Annotations").mkdir()
    for i in ids:  # the test release has annotation files too; give the objects VOC class names
        xml = (toy / "Annotations" / f"{i}.xml").read_text()
        (voc / "Annotations" / f"{i}.xml").write_text(re.sub(r"<name>\w+</name>", "<name>person</name>", xml))
    trained = fit(Config(data_root=data_root, runs_dir=str(tmp_path / "runs"), epochs=1, passes=1, batch_size=4,
                         crop=48, device="cpu"), progress=False)
    monkeypatch.setattr(tables, "run", lambda cfg, progress=True: {"run_dir": str(trained)})
    cfg = Config(profile="paper", data_root=str(tmp_path / "voc"), device="cpu", use_crf=False)
    table = tables.table4(cfg, progress=False, out_dir=tmp_path / "sub")
    assert len(table) == len(tables.TABLE4_ROWS) and "FCN" not in table
    for tgz in set(table["submission"]):
        with tarfile.open(tgz) as tar:
            pngs = [n for n in tar.getnames() if n.endswith(".png")]
        assert sorted(p.split("/")[-1][:-4] for p in pngs) == sorted(ids)
        assert all(p.startswith("results/VOC2012/Segmentation/comp6_test_cls/") for p in pngs)
