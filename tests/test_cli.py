"""The command line as a user meets it: help for every flag, the subcommand's usage on a typo,
--dry-run, reuse of a finished run and --force, readable tables, errors that say what to do."""
import csv
import json
import re
from dataclasses import fields

import pytest

from boxsup import runs
from boxsup.cli import main
from boxsup.config import FIELD_HELP, Config
from boxsup.data.synthetic import ToySpec, ensure_toy

TINY = ToySpec(train=8, extra=6, val=4, test=4, context_train=4, context_val=3, imagenet=40)


def _flat(text: str) -> str:
    return " ".join(text.split())  # argparse wraps help lines


def test_every_config_field_has_help_choices_and_default(capsys):
    assert set(FIELD_HELP) == {f.name for f in fields(Config)}
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    out = _flat(capsys.readouterr().out)
    assert e.value.code == 0
    for f in fields(Config):
        assert f"--{f.name.replace('_', '-')}" in out and _flat(FIELD_HELP[f.name]) in out, f.name
    assert "--profile {toy,paper}" in out and "{mask,box,semi,rect,grabcut,crfbox}" in out
    assert "(default: toy: 15; paper: 45)" in out  # epochs: the profiles' values
    assert "(default: 5)" in out and "--pretrained, --no-pretrained" in out
    assert "--force" in out and "--dry-run" in out


@pytest.mark.parametrize("argv,bad", [(["train", "--epoch", "3"], "--epoch"),      # no prefix matching
                                      (["train", "--pretrained", "ture"], "ture"),  # booleans take no value
                                      (["evaluate", "x", "--scale", "1"], "--scale")])
def test_a_typo_prints_the_subcommand_usage(capsys, argv, bad):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"usage: boxsup {argv[0]}" in err and bad in err


def test_a_mistyped_dataset_path_says_it_does_not_exist(capsys, tmp_path):
    assert main(["train", "--dataset", str(tmp_path / "nope"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nope" in err


def test_missing_mcg_files_say_how_to_point_at_them(tmp_path, monkeypatch):
    from boxsup.data import DataError
    from boxsup.proposals.store import proposals_for

    monkeypatch.delenv("BOXSUP_MCG_DIR", raising=False)
    with pytest.raises(DataError) as e:
        proposals_for("toy", "train", "mcg", data_root=tmp_path)
    msg = str(e.value)
    assert "--param mcg_dir=" in msg and "$BOXSUP_MCG_DIR" in msg and "mcg-ours" in msg and str(tmp_path / "MCG") in msg


# --- on a tiny benchmark ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(ensure_toy(tmp_path_factory.mktemp("toy"), TINY))


def _train(data_root, runs_dir, *extra) -> list[str]:
    return ["train", "--data-root", data_root, "--runs-dir", str(runs_dir), "--epochs", "1", "--batch-size", "4",
            "--crop", "48", "--device", "cpu", "--no-pretrained", *extra]


@pytest.mark.slow
def test_dry_run_train_reuse_and_force(data_root, tmp_path, capsys):
    argv = _train(data_root, tmp_path / "runs")
    assert main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    cfg = Config(**json.loads(out[:out.index("\n}") + 2]))  # the resolved config, as JSON
    folder = runs.run_dir(cfg)
    assert f"run folder: {folder}" in out and "state: not started" in out
    assert "pre-training: none (random weights)" in out and "1 of 1 epochs to run" in out
    assert not folder.exists()  # a dry run creates nothing
    assert "expected time: not known yet" in out  # no finished run to measure the rate from

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"val mIoU \d+\.\d\d%", out) and "reusing" not in out
    rows = list(csv.DictReader((folder / "scalars.csv").open()))  # per-run scalars, from the log
    assert len(rows) == 1 and list(rows[0])[:3] == ["epoch", "loss", "lr"] and rows[0]["epoch"] == "1"
    assert float(rows[0]["loss"]) > 0
    if _has_tensorboard():
        assert list((folder / "tb").glob("events.out.tfevents.*"))
        assert not list(folder.glob(".tb*"))  # no temporary event folder left behind

    assert main(argv + ["--dry-run"]) == 0
    assert "state: finished" in capsys.readouterr().out
    assert main(argv + ["--seed", "1", "--dry-run"]) == 0  # another seed: timed from the finished run
    secs = sum(json.loads(ln)["seconds"] for ln in (folder / "log.jsonl").read_text().splitlines())
    assert f"expected ≈ {secs / 60:.1f} min (from 1 finished run alike)" in capsys.readouterr().out
    stamp = (folder / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert f"reusing finished run {folder}" in capsys.readouterr().out
    assert (folder / "metrics.json").stat().st_mtime_ns == stamp

    assert main(argv + ["--force"]) == 0
    out = capsys.readouterr().out
    assert "--force: deleted" in out and "reusing" not in out
    assert (folder / "metrics.json").stat().st_mtime_ns != stamp
    assert not list(folder.parent.glob(f".{folder.name}*"))  # the renamed-away copy is gone


def _has_tensorboard() -> bool:
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
def test_dry_run_counts_candidates_to_compute(data_root, tmp_path, capsys):
    argv = _train(data_root, tmp_path / "runs", "--supervision", "box", "--proposals-dir", str(tmp_path / "p"))
    assert main(argv + ["--dry-run"]) == 0
    assert "candidates: mcg-ours on toy/train: 8 of 8 images to compute" in capsys.readouterr().out


def test_scalars_csv_follows_the_log(tmp_path):
    log = [{"epoch": 1, "loss": 1.5, "lr": 0.01, "seconds": 2.0, "relabel_images": 8, "pick_mIoU": 0.5},
           {"epoch": 2, "loss": 1.2, "lr": 0.01, "seconds": 2.1, "relabel_images": 8, "pick_mIoU": None}]
    runs.write_log(tmp_path, log)
    rows = list(csv.DictReader((tmp_path / "scalars.csv").open()))
    assert list(rows[0]) == ["epoch", "loss", "lr", "pick_mIoU", "seconds", "relabel_images"]
    assert [r["loss"] for r in rows] == ["1.5", "1.2"] and rows[1]["pick_mIoU"] == ""
    runs.write_log(tmp_path, log[:1])  # rewritten whole, as the log is
    assert len(list(csv.DictReader((tmp_path / "scalars.csv").open()))) == 1
    if _has_tensorboard():
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(tmp_path / "tb"))
        acc.Reload()
        assert [e.value for e in acc.Scalars("loss")] == [1.5] and "epoch" not in acc.Tags()["scalars"]


@pytest.mark.slow
def test_data_prints_a_rounded_table(data_root, capsys):
    assert main(["data", "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert "toy/train" in out and "objects/image" in out and "{" not in out
    assert not re.search(r"\d\.\d{4,}", out)  # no 17-digit floats



def test_data_names_the_version_of_a_pinned_root_and_refuses_an_unknown_one(tmp_path, capsys):
    from dataclasses import asdict, replace

    root = ensure_toy(tmp_path / "v7", replace(TINY, version=7))
    assert asdict(TINY)["version"] != 7 and main(["data", "--data-root", str(root)]) == 0
    assert "embedded benchmark version 7" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["data", "--data-root", str(root), "--toy-version", "99"])
    assert e.value.code == 2 and "invalid choice: 99" in capsys.readouterr().err

@pytest.mark.slow
def test_proposals_quality_prints_seconds_per_image(data_root, tmp_path, capsys):
    argv = ["proposals", "--dataset", "toy", "--split", "val", "--method", "rect", "--data-root", data_root,
            "--out", str(tmp_path / "p"), "--quality", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"ABO \d+\.\d%", out) and re.search(r"\d+\.\d{3} s / image", out)
