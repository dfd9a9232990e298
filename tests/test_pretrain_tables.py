"""The toy network's image-level pre-training, rounds with several passes, and Table 4 at paper scale
(server submissions). The other results' tests are in test_paper.py."""
import json

import numpy as np
import pytest
import torch

from boxsup.config import Config
from boxsup.data.synthetic import THINGS, ToySpec, ensure_toy

TINY = ToySpec(train=8, extra=6, val=4, test=4, context_train=4, context_val=3, imagenet=40, crfval=4,
               context_crfval=3)


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
    from boxsup.models import build_model, toy_pretrained_path
    from boxsup.pretrain import pretrain_toyfcn

    path = pretrain_toyfcn(data_root, progress=False)
    assert path == toy_pretrained_path(data_root) and path.is_file()
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


@pytest.mark.slow
def test_table4_at_paper_scale_writes_one_server_tarball_per_row(tmp_path, monkeypatch):
    """VOC 2012 test has no labels: every Table 4 row must become an evaluation-server tarball."""
    import re
    import shutil
    import tarfile

    from boxsup import paper, results
    from boxsup.train import fit

    root = ensure_toy(tmp_path / "data", TINY)  # the run's data root also holds a VOC 2012 test split
    voc = root / "VOCdevkit" / "VOC2012"  # made of toy test images
    toy = root / "VOCdevkit" / "TOY"
    ids = (toy / "ImageSets/Segmentation/test.txt").read_text().split()
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/test.txt").write_text("\n".join(ids) + "\n")
    shutil.copytree(toy / "JPEGImages", voc / "JPEGImages")
    (voc / "Annotations").mkdir()
    for i in ids:  # the test release has annotation files too; give the objects VOC class names
        xml = (toy / "Annotations" / f"{i}.xml").read_text()
        (voc / "Annotations" / f"{i}.xml").write_text(re.sub(r"<name>\w+</name>", "<name>person</name>", xml))
    trained = fit(Config(data_root=str(root), runs_dir=str(tmp_path / "runs"), epochs=1, passes=1, batch_size=4,
                         crop=48, device="cpu"), progress=False)
    monkeypatch.setattr(results, "train_run", lambda cfg, progress=True: trained)
    cfg = Config(profile="paper", data_root=str(root), device="cpu", use_crf=False)
    res = paper.table4(cfg, out_dir=tmp_path / "sub", progress=False)
    table = res.table
    assert len(table) == len(paper.TABLE4_ROWS) and "FCN" not in table
    assert res.verdict == paper.NO_TEST_LABELS and res.headline == {} and res.runs == [str(trained)]
    for tgz in set(table["submission"]):
        with tarfile.open(tgz) as tar:
            pngs = [n for n in tar.getnames() if n.endswith(".png")]
        assert sorted(p.split("/")[-1][:-4] for p in pngs) == sorted(ids)
        assert all(p.startswith("results/VOC2012/Segmentation/comp6_test_cls/") for p in pngs)


def test_pretraining_crops_fit_a_benchmark_of_smaller_images():
    """96 px on the toy's 112-px images (the body every run starts from); the same fraction of a
    smaller side, where a fixed 96-px crop used to fail with numpy's 'high <= 0'."""
    import numpy as np

    from boxsup.pretrain import _batch, train_crop

    assert train_crop(112) == 96 and train_crop(80) == 64
    x = _batch(np.zeros((2, 80, 80, 3), np.uint8), np.random.default_rng(0))
    assert tuple(x.shape) == (2, 3, 64, 64)
