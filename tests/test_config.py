import pytest

from boxsup.config import Config


def test_profile_defaults_fill_none_fields():
    c = Config()
    assert (c.dataset, c.arch, c.epochs, c.passes, c.crop, c.pretrained) == ("toy", "toyfcn", 15, 3, 64, True)
    p = Config(profile="paper")
    assert (p.arch, p.epochs, p.lr_step, p.batch_size, p.lr) == ("deeplab-largefov", 45, 15, 20, 1e-3)


@pytest.mark.parametrize("field,value,allowed", [
    ("profile", "huge", "toy, paper"),
    ("supervision", "boxes", "mask, box, semi"),
    ("extra", "coco", "none, boxes, masks"),
    ("proposals", "edgeboxes", "mcg-ours"),
    ("arch", "resnet", "toyfcn"),
])
def test_bad_choice_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as e:
        Config(**{field: value})
    assert field in str(e.value) and repr(value) in str(e.value) and allowed in str(e.value)


@pytest.mark.parametrize("kw", [{"k": 0}, {"epochs": -1}, {"lr": 0}, {"lam": -1}, {"batch_size": 2.5},
                                {"eval_scales": (1.0, -0.8)}, {"device": "tpu"}, {"semi_masks": 0},
                                {"dedup_iou": 0}, {"dedup_iou": 1.5}])
def test_bad_numbers_rejected(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        Config(**kw)


def test_key_ignores_where_but_not_what():
    a = Config(supervision="box")
    assert a.key() == Config(supervision="box", device="cpu", runs_dir="/x", use_crf=True).key()
    assert a.key() != Config(supervision="box", k=1).key()
    assert a.key() != Config(supervision="box", seed=1).key()
    # k and lam do not affect a mask-supervised run
    assert Config(k=1).key() == Config(k=5).key()
    assert a.run_name().startswith("toy-box-k5-")
    # near-duplicate suppression: its own runs; unset it leaves every earlier hash as it was
    d = Config(supervision="box", dedup_iou=0.9)
    assert d.key() != a.key() and d.run_name().startswith("toy-box-k5-dedup0.9-")
    assert Config(dedup_iou=0.9).key() == Config().key()  # a mask run has no pool


def test_a_new_toy_body_recipe_is_another_run_and_another_body_file(monkeypatch):
    """Runs from the pre-trained toy body are keyed by its recipe, so a changed recipe never reuses
    them; a run from random weights does not depend on it."""
    from boxsup import config, models

    box, scratch = Config(supervision="box"), Config(supervision="box", pretrained=False)
    before = box.key(), scratch.key(), models.toy_pretrained_path().name
    monkeypatch.setattr(config, "TOY_BODY_RECIPE", config.TOY_BODY_RECIPE + 1)
    monkeypatch.setattr(models, "TOY_BODY_RECIPE", config.TOY_BODY_RECIPE)
    assert box.key() != before[0] and scratch.key() == before[1]
    assert models.toy_pretrained_path().name != before[2]


def test_round_trip_and_unknown_fields():
    c = Config(supervision="semi", eval_scales=(0.8, 1, 1.2))
    assert Config.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown config field"):
        Config.from_dict({"supervison": "box"})


def test_cli_reports_bad_parameters_without_a_traceback(capsys):
    from boxsup.cli import main

    with pytest.raises(SystemExit) as e:  # a choice argparse knows: the subcommand's own usage
        main(["train", "--supervision", "nonsense"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: boxsup train" in err and "'nonsense'" in err and "mask" in err
    assert main(["train", "--k", "0"]) == 2  # a value only Config can judge: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("boxsup train: error: k=0") and "Traceback" not in err


def test_cli_booleans_are_strict(capsys):
    from boxsup.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--pretrained", "ture"])  # was silently False
    assert "unrecognized arguments: ture" in capsys.readouterr().err


def test_loader_workers_are_not_part_of_the_run_identity():
    # runs are bit-identical for any number of loader workers (tests/test_train.py checks it)
    assert Config(workers=0).key() == Config(workers=2).key()


def test_path_fields_are_not_part_of_the_run_identity():
    from boxsup.config import NOT_IN_KEY, PATH_FIELDS

    assert set(PATH_FIELDS) <= NOT_IN_KEY  # resolving them against the project root changes no hash


def test_a_fine_tune_run_key_does_not_depend_on_where_the_checkout_lies():
    a = Config(supervision="mask", init_from="/work/a/runs/toy-extra-box-k5-0123456789")
    b = Config(supervision="mask", init_from="/tmp/b/runs/toy-extra-box-k5-0123456789")
    c = Config(supervision="mask", init_from="/tmp/b/runs/toy-extra-box-k5-9999999999")
    assert a.key() == b.key() != c.key()


def test_a_folder_dataset_is_read_against_the_project_root_and_keyed_by_its_name(tmp_path):
    from boxsup.data.paths import project_root

    rel = Config(dataset="../shared/realdata/weizmann_horse", supervision="box")
    assert rel.dataset == str(project_root() / "../shared/realdata/weizmann_horse")
    assert rel.name == "weizmann_horse-box-k5"
    moved = Config(dataset=str(tmp_path / "elsewhere" / "weizmann_horse"), supervision="box")
    other = Config(dataset=str(tmp_path / "zebras"), supervision="box")
    assert rel.key() == moved.key() != other.key()  # a folder's copy elsewhere is the same run
    assert Config(dataset="toy").dataset == "toy" and Config().key() == Config(dataset="toy").key()
