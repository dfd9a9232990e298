"""Notebooks: stored thin and without outputs (one result call, no verdict logic), and smoke tests:
each runs through papermill with parameters on a tiny benchmark and writes its metrics.json; a bad
parameter fails in the first cell with the allowed values."""
import json
import re
from pathlib import Path

import pytest

from boxsup.data.synthetic import ToySpec, ensure_toy

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
RESULT_CALL = re.compile(r"^res = (paper|paper_figures|sensitivity)\.\w+\(cfg\b", re.M)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_thin_and_stored_without_outputs(name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "the first code cell holds the parameters"
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "outputs are not stripped"
    body = "\n".join("".join(c["source"]) for c in code[1:])
    assert len(RESULT_CALL.findall(body)) == 1, "one call of the results layer per notebook"
    assert not re.search(r"\b(verdict|headline)\s*=", body), "verdicts are computed in boxsup.paper"
    assert "".join(code[-1]["source"]) == "report.write_metrics(metrics_path, res)"


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n != "data"])
def test_every_notebook_that_trains_takes_a_dataset(name):
    code = [c for c in json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
            if c["cell_type"] == "code"]
    assert re.search(r"^dataset = None\b", "".join(code[0]["source"]), re.M)
    assert "dataset=dataset" in "".join(code[1]["source"])  # into the Config, like every parameter


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return str(ensure_toy(tmp_path_factory.mktemp("toy"), ToySpec(train=8, extra=6, val=4, test=4,
                                                                     context_train=4, context_val=3, imagenet=40,
                                                                     crfval=4, context_crfval=3)))


def _run(name, tmp_path, **params):
    pm = pytest.importorskip("papermill")
    from boxsup.report import check_kernel

    check_kernel("boxsup")  # installed by `make install`; a missing kernel is a failure, not a skip
    metrics = tmp_path / f"{name}.metrics.json"
    pm.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                        parameters={**params, "metrics_path": str(metrics)}, kernel_name="boxsup",
                        cwd=str(ROOT), progress_bar=False)
    return json.loads(metrics.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_parameters(name, tiny_root, tmp_path):
    pm = pytest.importorskip("papermill")
    # one seed per row keeps the smoke run short; the default three are test_table2_runs_three_seeds...
    quick = {"seeds": 1} if "seeds" in pm.inspect_notebook(str(ROOT / "notebooks" / f"{name}.ipynb")) else {}
    m = _run(name, tmp_path, data_root=tiny_root, runs_dir=str(tmp_path / "runs"), epochs=1, **quick)
    assert m["headline"], f"{name} wrote no headline numbers"
    if name != "data":  # every result notebook says which training runs it used
        assert m["runs"] and all((tmp_path / "runs" / Path(r).name).is_dir() for r in m["runs"])


@pytest.mark.slow
def test_bad_parameter_fails_early_with_allowed_values(tiny_root, tmp_path):
    pm = pytest.importorskip("papermill")
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run("data", tmp_path, data_root=tiny_root, profile="huge")
    assert "profile='huge'" in str(e.value) and "toy, paper" in str(e.value)
    assert e.value.exec_count <= 3  # parameters, injected parameters, then the validation cell


@pytest.mark.slow
def test_table1_runs_one_row_when_asked(tiny_root, tmp_path):
    m = _run("table1", tmp_path, data_root=tiny_root, runs_dir=str(tmp_path / "runs"), epochs=1,
             supervision="box", extra="none", use_crf=False)
    assert list(m["headline"]) == ["VOC / box"]
    assert [r["supervision"] for r in m["table"]] == ["box"]


@pytest.mark.slow
def test_table1_bad_supervision_lists_the_allowed_values(tiny_root, tmp_path):
    pm = pytest.importorskip("papermill")
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run("table1", tmp_path, data_root=tiny_root, supervision="boxes")
    assert "supervision='boxes'" in str(e.value) and "all, mask, box, semi" in str(e.value)
    assert e.value.exec_count <= 3


@pytest.mark.slow
def test_table2_runs_three_seeds_with_error_bars(tiny_root, tmp_path):
    m = _run("table2", tmp_path, data_root=tiny_root, runs_dir=str(tmp_path / "runs"), epochs=1, seeds=3)
    assert len(m["runs"]) == 18 and len(m["per_seed"]) == 18 and len(m["crf"]) == 18
    assert all("+CRF sd" in r and "label IoU" in r for r in m["table"])
    assert {r["seed"] for r in m["per_seed"]} == {0, 1, 2} and "2 SE" in m["verdict_rule"]


@pytest.fixture(scope="module")
def voc_folder(tmp_path_factory):
    """A VOC-layout folder of 12 photos-to-be (8 train, 4 val), one horse each."""
    from fixtures import write_voc

    root = tmp_path_factory.mktemp("voc") / "horses"
    scenes = {f"h{i}": [(13, (4 + i, 6, 40 + i % 3, 34))] for i in range(12)}
    write_voc(root, scenes, {"train": [f"h{i}" for i in range(8)], "val": [f"h{i}" for i in range(8, 12)]},
              h=48, w=56)
    return str(root)


@pytest.mark.slow
def test_table2_trains_on_a_voc_folder(voc_folder, tiny_root, tmp_path):
    # data_root still holds the toy ImageNet the toy body is pre-trained on
    m = _run("table2", tmp_path, data_root=tiny_root, dataset=voc_folder, runs_dir=str(tmp_path / "runs"),
             epochs=1, seeds=1)
    assert len(m["runs"]) == 6 and all(Path(r).name.startswith("horses-") for r in m["runs"])
    assert set(m["headline"]) == {r["masks"] for r in m["table"]}
    run = json.loads((tmp_path / "runs" / Path(m["runs"][0]).name / "config.json").read_text())
    assert run["dataset"] == voc_folder
