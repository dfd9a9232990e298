import importlib.util
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from boxsup.data import load_dataset
from boxsup.data.sample import Sample, voc_palette
from boxsup.data.transforms import image_to_tensor
from boxsup.evaluate import evaluate, per_class_table, write_voc_submission
from boxsup.models import Segmenter, toy_fcn
from boxsup.predict import predict_batch, predict_dataset, predict_probs, resolve_device

DATA = Path(__file__).resolve().parents[1] / "data"
HAVE_CRF = importlib.util.find_spec("pydensecrf") is not None


def tiny_model(c=7, seed=0):
    torch.manual_seed(seed)
    return toy_fcn(c, width=4).eval()


def strided_net(c=7, seed=0):
    """Stride-4 conv net with random (asymmetric) kernels, outputs at the input size."""
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU())
    return Segmenter(features, nn.Conv2d(8, c, 1), output_stride=4).eval()


def conv1x1(c=5, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(3, c, 1)


class RuleModel(nn.Module):
    """Class = 1 where the red channel is bright, else 0; records the input sizes it sees."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        red = x[:, :1] * 10
        return torch.cat([-red, red], 1)


def smooth_image(h, w):
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(3 * xx), np.cos(2 * yy), np.sin(2 * (xx + yy))], -1)
    return ((img + 1) * 127.5).astype(np.uint8)


def test_single_scale_is_softmax_of_the_model():
    model = strided_net()
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)  # multiple of 8: no pad
    with torch.no_grad():
        ref = torch.softmax(model(image_to_tensor(img)[None]), 1)[0].numpy()
    got = predict_probs(model, img, scales=(1.0,))
    assert got.dtype == np.float32 and got.shape == (7, 48, 64)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_multiscale_is_identity_for_a_scale_equivariant_model():
    model, img = conv1x1(), smooth_image(60, 84)
    one = predict_probs(model, img)
    many = predict_probs(model, img, scales=(0.8, 1.0, 1.2))
    np.testing.assert_allclose(many, one, atol=0.02)


def test_flip_averaging_is_symmetric_on_a_symmetric_image():
    model = strided_net()
    half = np.random.default_rng(1).integers(0, 255, (40, 24, 3), dtype=np.uint8)
    img = np.concatenate([half, half[:, ::-1]], 1)  # 40 x 48, mirror-symmetric
    p = predict_probs(model, img, flip=True)
    np.testing.assert_allclose(p, p[:, :, ::-1], atol=1e-5)
    assert not np.allclose(predict_probs(model, img), p[:, :, ::-1], atol=1e-3)  # model is not symmetric


def test_odd_sizes_are_padded_and_never_shifted():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (101, 77, 3), dtype=np.uint8)
    truth = (img[..., 0] > 0.485 * 255).astype(np.int64)  # the rule: red above its ImageNet mean
    model = RuleModel()
    for flip in (False, True):
        p = predict_probs(model, img, flip=flip, pad_to=8)
        assert p.shape == (2, 101, 77)
        np.testing.assert_array_equal(p.argmax(0), truth)
    assert model.seen[0] == (104, 80)


def test_dataset_batches_same_sizes_and_streams_every_image(tmp_path):
    rng = np.random.default_rng(3)
    sizes = [(32, 40), (40, 32), (32, 40), (33, 41), (32, 40)]
    data = [Sample(image=rng.integers(0, 255, (*s, 3), dtype=np.uint8), boxes=np.zeros((0, 4), np.float32),
                   labels=np.zeros(0, np.int64), image_id=f"im{i}") for i, s in enumerate(sizes)]
    model = strided_net()
    out = dict((s.image_id, p) for s, p in predict_dataset(model, data, batch_size=2, device="cpu",
                                                             progress=False))
    assert sorted(out) == [f"im{i}" for i in range(5)]
    for s in data:
        np.testing.assert_allclose(out[s.image_id], predict_probs(model, s.image), atol=1e-5)
    assert not list(tmp_path.iterdir())
    list(predict_dataset(model, data, max_images=2, save_dir=tmp_path, progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["im0.npz", "im1.npz"]


def test_bad_arguments_are_named():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="positive"):
        predict_probs(conv1x1(), img, scales=(1.0, 0))
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="same size"):
        predict_batch(conv1x1(), [img, np.zeros((8, 16, 3), np.uint8)])
    assert resolve_device("auto").type in ("cpu", "cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_channels_last_matches_cpu():
    import copy

    model = strided_net()
    img = smooth_image(75, 101)
    cpu = predict_probs(model, img, scales=(0.8, 1.0), flip=True, device="cpu")
    gpu = predict_probs(copy.deepcopy(model), img, scales=(0.8, 1.0), flip=True, device="cuda")
    assert np.abs(cpu - gpu).max() < 0.05  # bf16 autocast
    assert (cpu.argmax(0) == gpu.argmax(0)).mean() > 0.97


@pytest.fixture(scope="module")
def toy_val():
    return load_dataset("toy", "val", DATA)


@pytest.mark.parametrize("crf", [False, True])
def test_evaluate_on_toy_val(toy_val, crf):
    if crf and not HAVE_CRF:
        pytest.skip("pydensecrf not installed")
    from boxsup.crf import CRFParams

    r = evaluate(tiny_model(), toy_val, len(toy_val.classes), max_images=3, device="cpu", workers=2 if crf else 1,
                 crf=CRFParams(iterations=2) if crf else None, trimap_widths=(2, 8), progress=False)
    assert {"mIoU", "pixel_acc", "mean_acc", "per_class_iou", "num_images", "seconds", "trimap"} <= set(r)
    assert r["num_images"] == 3 and 0 <= r["mIoU"] <= 1 and 0 <= r["pixel_acc"] <= 1
    assert list(r["per_class_iou"]) == list(toy_val.classes)
    assert len(r["trimap"]) == 4
    table = per_class_table({"random": r, "again": r})
    assert list(table.index) == ["random", "again"] and table.columns[-1] == "mIoU"


def test_per_class_table_uses_voc_order():
    from boxsup.data.sample import VOC_CLASSES

    iou = {c: 0.5 for c in reversed(VOC_CLASSES)}
    t = per_class_table({"m": {"per_class_iou": iou, "mIoU": 0.5}})
    assert list(t.columns) == list(VOC_CLASSES) + ["mIoU"] and t.loc["m", "cat"] == 50.0


def test_trimap_records_have_both_regions_per_width(toy_val):
    r = evaluate(tiny_model(), toy_val, len(toy_val.classes), trimap_widths=(1, 4, 8), max_images=2,
                 device="cpu", progress=False)
    df = pd.DataFrame(r["trimap"])
    assert list(df.columns) == ["band_width", "region", "method", "mIoU"]
    assert len(df) == 6 and set(df.region) == {"boundary", "interior"}


def test_voc_submission_layout(toy_val, tmp_path):
    tgz = write_voc_submission(tiny_model(), toy_val, tmp_path, max_images=3, device="cpu", progress=False)
    ids = toy_val.ids[:3]
    png_dir = tmp_path / "results/VOC2012/Segmentation/comp6_test_cls"
    assert sorted(p.name for p in png_dir.iterdir()) == sorted(f"{i}.png" for i in ids)
    with Image.open(png_dir / f"{ids[0]}.png") as im:
        assert im.mode == "P" and im.size == (112, 112)
        pal = np.array(im.getpalette()[:3 * 8]).reshape(-1, 3)
        np.testing.assert_array_equal(pal, voc_palette()[:8])
        assert np.asarray(im).max() < 7
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
    assert sorted(n for n in names if n.endswith(".png")) == sorted(
        f"results/VOC2012/Segmentation/comp6_test_cls/{i}.png" for i in ids)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _fake_run(tmp_path):
    """A run folder holding an untrained toy network, as `boxsup train` leaves a finished one."""
    from boxsup import runs
    from boxsup.config import Config

    cfg = Config(data_root=str(DATA), runs_dir=str(tmp_path / "runs"), device="cpu")
    folder = runs.create(cfg)
    torch.manual_seed(0)
    runs.save_checkpoint(folder, {"model": toy_fcn(7).state_dict(), "epoch": 1, "log": []})
    return folder


def test_cli_evaluate_writes_a_cached_strict_json(toy_val, tmp_path, capsys):
    import json

    from boxsup.cli import main

    run = _fake_run(tmp_path)
    args = ["evaluate", str(run), "--scales", "0.8", "1", "1.2", "--max-images", "2", "--device", "cpu",
            "--trimap", "1", "40"]
    assert main(args) == 0
    (path,) = run.glob("eval-val-*.json")
    assert path.name == "eval-val-s0.8-1-1.2_n2_trimap1-40.json"
    res = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert res["num_images"] == 2 and res["scales"] == [0.8, 1.0, 1.2] and res["split"] == "val"
    assert "mIoU" in capsys.readouterr().out
    stamp = path.stat().st_mtime_ns
    assert main(args) == 0 and path.stat().st_mtime_ns == stamp      # served from the cache
    assert main(["evaluate", str(run), "--max-images", "1", "--split", "val",
                 "--submission", str(tmp_path / "sub")]) == 0
    assert (tmp_path / "sub/results.tgz").is_file()


def test_evaluation_cache_follows_the_checkpoint(toy_val, tmp_path):
    from boxsup import runs
    from boxsup.evaluate import evaluate_run

    run = _fake_run(tmp_path)
    a = evaluate_run(run, max_images=2, device="cpu", progress=False)
    assert evaluate_run(run, max_images=2, device="cpu", progress=False) == a
    torch.manual_seed(1)
    runs.save_checkpoint(run, {"model": toy_fcn(7).state_dict(), "epoch": 2, "log": []})  # retrained
    b = evaluate_run(run, max_images=2, device="cpu", progress=False)
    assert b["checkpoint"] != a["checkpoint"] and b["mIoU"] != a["mIoU"]
