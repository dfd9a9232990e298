"""Training loop: resume after a kill ends exactly where an uninterrupted run does; supervision
modes get their labels from the right place; a mask image is never relabeled."""
import json

import numpy as np
import pytest
import torch

from boxsup import runs
from boxsup.config import Config
from boxsup.data.synthetic import ToySpec, ensure_toy
from boxsup.experiments import train_run
from boxsup.labels import TrainingImages
from boxsup.models import build_model
from boxsup.relabel import relabel_epoch
from boxsup.runs import load_model
from boxsup.train import fit, init_from_run

pytestmark = pytest.mark.slow

TINY = ToySpec(train=8, extra=6, val=4, test=4, context_train=4, context_val=3, imagenet=40)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(ensure_toy(tmp_path_factory.mktemp("toy"), TINY))


def _cfg(data_root, runs, **kw):
    base = dict(data_root=data_root, runs_dir=str(runs), epochs=3, lr_step=2, batch_size=4, crop=48,
                device="cpu", proposals_dir=str(runs.parent / "proposals"))
    base.update(kw)
    return Config(**base)


def _weights(run_dir):
    return torch.load(run_dir / "last.pth", map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("supervision", ["mask", "box"])
def test_resume_after_kill_matches_uninterrupted(data_root, tmp_path, supervision):
    a = train_run(_cfg(data_root, tmp_path / "a" / "runs", supervision=supervision), progress=False)
    cfg_b = _cfg(data_root, tmp_path / "b" / "runs", supervision=supervision)
    b = fit(cfg_b, progress=False, stop_after=1)           # "killed" after the first epoch
    assert not (b / "metrics.json").exists()
    assert len((b / "log.jsonl").read_text().splitlines()) == 1
    (b / "log.jsonl").write_text("")                        # killed between checkpoint and log
    b = train_run(cfg_b, progress=False)                     # started again: resumes at epoch 2
    assert len((b / "log.jsonl").read_text().splitlines()) == 3
    wa, wb = _weights(a), _weights(b)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["mIoU"] == mb["mIoU"]
    if supervision == "box":
        log = [json.loads(ln) for ln in (a / "log.jsonl").read_text().splitlines()]
        assert all(r["relabel_images"] == 8 for r in log)
        assert all(0 <= r["pick_mIoU"] <= 1 for r in log)
        assert list((a / "snapshots").glob("epoch_*.npz"))


def test_finished_run_is_reused_not_retrained(data_root, tmp_path):
    cfg = _cfg(data_root, tmp_path / "runs", epochs=1)
    out = train_run(cfg, progress=False)
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert train_run(cfg, progress=False) == out
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    model, cfg2 = load_model(out)
    assert cfg2 == cfg and model(torch.zeros(1, 3, 32, 32)).shape == (1, 7, 32, 32)


def test_semi_keeps_masks_and_relabels_only_box_images(data_root, tmp_path):
    cfg = _cfg(data_root, tmp_path / "runs", supervision="semi", semi_masks=0.5)
    tr = TrainingImages(cfg)
    kinds = [it.kind for it in tr.items]
    assert kinds.count("mask") == 4 and kinds.count("box") == 4
    tr.init_fixed_labels(progress=False)
    tr.prepare_candidates()
    stats = relabel_epoch(build_model("toyfcn", 7), tr, torch.device("cpu"), epoch=0, progress=False)
    assert stats["relabel_images"] == 4
    for i, it in enumerate(tr.items):
        s = tr.sample(i)
        if it.kind == "mask":
            assert np.array_equal(tr.labels[i], s.mask)      # ground truth, never relabeled
            assert i not in tr.picks
        else:
            assert not (tr.labels[i] == 255).any()            # estimated labels have no ignore
            assert set(np.unique(tr.labels[i])) <= {0} | set(s.labels.tolist())


@pytest.mark.parametrize("supervision", ["rect", "grabcut"])
def test_fixed_box_masks_are_used_unchanged(data_root, tmp_path, supervision):
    tr = TrainingImages(_cfg(data_root, tmp_path / "runs", supervision=supervision))
    tr.init_fixed_labels(progress=False)
    s = tr.sample(0)
    lab = tr.labels[0]
    assert lab.shape == s.size and not (lab == 255).any()
    if supervision == "rect":
        for b, c in zip(s.boxes.astype(int), s.labels):
            assert (lab[b[1]:b[3], b[0]:b[2]] > 0).all()


def test_extra_boxes_are_added_as_box_items(data_root, tmp_path):
    tr = TrainingImages(_cfg(data_root, tmp_path / "runs", supervision="mask", extra="boxes"))
    assert [it.kind for it in tr.items].count("box") == 6
    assert [it.kind for it in tr.items].count("mask") == 8


def test_ddp_under_torchrun_on_cpu(data_root, tmp_path):
    """Two gloo ranks: each relabels its shard, the labels are gathered, rank 0 writes the run."""
    import subprocess
    import sys

    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "boxsup.cli", "train", "--supervision", "box", "--data-root", data_root, "--runs-dir", str(runs),
           "--proposals-dir", str(tmp_path / "proposals"), "--epochs", "2", "--lr-step", "2", "--batch-size", "2",
           "--crop", "48", "--device", "cpu"]
    # candidates first, in one process, so the two ranks do not both compute them
    cfg = _cfg(data_root, runs, supervision="box", epochs=2, batch_size=2,
               proposals_dir=str(tmp_path / "proposals"))
    TrainingImages(cfg).prepare_candidates()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[:3000] + res.stderr[-3000:]
    (run,) = runs.iterdir()
    log = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(r["relabel_images"] == 8 for r in log)   # both shards counted
    assert (run / "metrics.json").is_file()


def test_pretrain_on_extra_boxes_then_finetune_with_a_new_classifier(data_root, tmp_path):
    """Table 5's path: box-supervised pre-training on the extra set, then a new classifier for the
    context label set, fine-tuned on its masks."""
    pre = train_run(_cfg(data_root, tmp_path / "runs", supervision="box", train_split="extra", epochs=1),
                    progress=False)
    body = {k: v for k, v in _weights(pre).items() if "classifier" not in k}
    model = build_model("toyfcn", 11)
    init_from_run(model, pre, 11)
    assert model.classifier.out_channels == 11
    for k, v in model.state_dict().items():
        if k in body:
            assert torch.equal(v, body[k]), k
    ft = train_run(_cfg(data_root, tmp_path / "runs", dataset="toy-context", supervision="mask",
                        init_from=str(pre), epochs=1), progress=False)
    m = json.loads((ft / "metrics.json").read_text())
    assert len(m["per_class_iou"]) == 11


def test_checkpoints_refuse_pickled_code_and_name_damaged_files(data_root, tmp_path):
    """A crafted last.pth must not run code when a run is evaluated or resumed; a damaged one is a
    clear error naming the file."""
    import pickle

    from boxsup.data.sample import DataError

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    cfg = _cfg(data_root, tmp_path / "runs", epochs=1)
    folder = runs.create(cfg)
    (folder / "last.pth").write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(DataError, match="last.pth"):
        load_model(folder)
    with pytest.raises(DataError, match="last.pth"):
        fit(cfg, progress=False)
    assert not marker.exists()
    (folder / "last.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="damaged"):
        runs.load_checkpoint(folder)


def test_building_a_model_never_trains_one(tmp_path):
    """The toy body's pre-training is its own step: a missing file is an error that says how to
    make it, not a silent two-minute training inside build_model."""
    with pytest.raises(FileNotFoundError, match="boxsup pretrain"):
        build_model("toyfcn", 7, pretrained=True, data_root=str(tmp_path))
    assert not list(tmp_path.rglob("*.pth"))


def test_run_records_its_start_and_a_split_path_never_nests_the_run_folder(data_root, tmp_path):
    out = train_run(_cfg(data_root, tmp_path / "runs", epochs=1), progress=False)
    start = runs.read_metrics(out)["start"]
    assert start["weights"] == "toy ImageNet body" and 0 <= start["heldout_accuracy"] <= 1
    cfg = _cfg(data_root, tmp_path / "runs", train_split=str(tmp_path / "lists" / "mine.txt"))
    assert runs.run_dir(cfg).parent == tmp_path / "runs" and "mine" in runs.run_dir(cfg).name


def test_missing_imagenet_weights_stop_the_run(monkeypatch):
    """No silent substitution: a run that asks for ImageNet weights and cannot have them stops and
    says where to put them."""
    import torch.hub

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth.*TORCH_HOME"):
        build_model("deeplab-largefov", 21, pretrained=True)


def test_two_processes_training_the_same_run_take_turns(data_root, tmp_path):
    """The run folder is locked: the second process waits, then finds the run finished; the log has
    one line per epoch."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "boxsup.cli", "train", "--data-root", data_root, "--runs-dir", str(tmp_path / "runs"),
           "--epochs", "2", "--lr-step", "2", "--batch-size", "4", "--crop", "48", "--device", "cpu"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    (run,) = (tmp_path / "runs").iterdir()
    assert len(runs.read_log(run)) == 2


def test_loader_workers_do_not_change_the_weights(data_root, tmp_path):
    """0 and 2 loader workers train bit-identical networks on the CPU (so workers is not in the key)."""
    w0 = fit(_cfg(data_root, tmp_path / "w0", epochs=1, workers=0), progress=False)
    w2 = fit(_cfg(data_root, tmp_path / "w2", epochs=1, workers=2), progress=False)
    a, b = _weights(w0), _weights(w2)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_whose_tensors_changed_on_disk_is_refused(tmp_path):
    from boxsup.data.sample import DataError

    folder = tmp_path / "run"
    folder.mkdir()
    runs.save_checkpoint(folder, {"model": {"w": torch.ones(3)}, "epoch": 1, "log": [], "picks": {0: np.array([1, -1])}})
    state = runs.load_checkpoint(folder)
    assert state["epoch"] == 1 and np.array_equal(state["picks"][0], [1, -1])
    raw = torch.load(folder / "last.pth", weights_only=True)
    raw["model"]["w"][1] = 1.0000001  # a flipped bit in the data that the zip container does not notice
    torch.save(raw, folder / "last.pth")
    with pytest.raises(DataError, match="damaged"):
        runs.load_checkpoint(folder)


def test_garbled_result_files_are_recomputed_not_served(data_root, tmp_path):
    """A garbled metrics.json or evaluation cache counts as missing: recomputed from the checkpoint,
    without retraining; a garbled config.json is an error that names the file."""
    from boxsup.data.sample import DataError
    from boxsup.evaluate import evaluate_run

    cfg = _cfg(data_root, tmp_path / "runs", epochs=1)
    out = train_run(cfg, progress=False)
    good = runs.read_metrics(out)
    ckpt_stamp = (out / "last.pth").stat().st_mtime_ns
    (out / "metrics.json").write_text('{"mIoU": 0.9')               # truncated
    assert train_run(cfg, progress=False) == out
    assert runs.read_metrics(out)["mIoU"] == good["mIoU"]
    assert (out / "last.pth").stat().st_mtime_ns == ckpt_stamp        # not retrained
    first = evaluate_run(out, max_images=2, progress=False)
    (cache,) = out.glob("eval-*.json")
    cache.write_text("not json")
    assert evaluate_run(out, max_images=2, progress=False)["mIoU"] == first["mIoU"]
    (out / "config.json").write_text("{")
    with pytest.raises(DataError, match="config.json"):
        load_model(out)


def test_precision_bf16_is_the_toy_default_and_fp32_a_choice(data_root, tmp_path):
    """The toy profile trains in bf16 autocast (its key says so); 'auto' stays fp32 on the CPU; the
    paper profile's default is 'auto' (bf16 on CUDA)."""
    from boxsup.relabel import autocast

    with autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), "auto"):
        assert not torch.is_autocast_enabled("cpu")
    assert Config().precision == "bf16" and Config(profile="paper").precision == "auto"
    fp32, bf16 = (_cfg(data_root, tmp_path / "runs", epochs=1, precision=p) for p in ("fp32", None))
    assert bf16.precision == "bf16" and fp32.key() != bf16.key()
    out = fit(bf16, progress=False)
    assert np.isfinite(runs.read_log(out)[0]["loss"])


def test_dedup_iou_trains_on_the_pool_without_near_duplicates(data_root, tmp_path):
    from boxsup.proposals.dedup import near_duplicates

    plain = TrainingImages(_cfg(data_root, tmp_path / "runs", supervision="box"))
    plain.prepare_candidates()
    thin = TrainingImages(_cfg(data_root, tmp_path / "runs", supervision="box", dedup_iou=0.5))
    thin.prepare_candidates()
    stored = plain.stores[0].load(plain.sources[0].ids[0])
    keep = near_duplicates(stored, 0.5)
    (_, boxes_all), (_, boxes) = plain.candidates(0), thin.candidates(0)
    assert 0 < keep.sum() < len(keep)  # the tiny benchmark's first image has near-twins at IoU 0.5
    assert len(boxes_all) == len(keep) and np.array_equal(boxes, boxes_all[keep])
    # a relabel with the thinner pool picks indices into it, and its run is a different folder
    model = build_model("toyfcn", len(thin.classes))
    relabel_epoch(model, thin, torch.device("cpu"), 0, progress=False)
    assert all((p < len(thin.candidates(i)[1])).all() for i, p in thin.picks.items())
    assert runs.run_dir(thin.cfg) != runs.run_dir(plain.cfg)
