"""Relative paths resolve against the project root, whatever the working folder (a notebook kernel
started by JupyterLab or nbconvert works in notebooks/)."""
import json
import os
import uuid
from pathlib import Path

import pytest

from boxsup.config import Config
from boxsup.data import default_data_root
from boxsup.data import paths

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_is_the_checkout():
    assert paths.project_root() == ROOT
    assert (ROOT / "pyproject.toml").is_file()


def test_config_paths_resolve_against_the_root_from_another_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Config(runs_dir="runs", data_root="data", proposals_dir="data/proposals")
    assert c.runs_dir == str(ROOT / "runs")
    assert c.data_root == str(ROOT / "data") and c.proposals_dir == str(ROOT / "data" / "proposals")
    assert Config().runs_dir == str(ROOT / "runs") and Config().data_root is None
    assert Config(runs_dir=str(tmp_path / "r")).runs_dir == str(tmp_path / "r")  # absolute: kept
    # where files live is not part of a run's identity: the hash is the one of the unresolved config
    assert c.key() == Config().key() == Config(runs_dir=str(tmp_path / "r")).key()
    assert Config.from_dict(c.to_dict()) == c


def test_default_data_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOXSUP_DATA", raising=False)
    assert default_data_root(None) == ROOT / "data"
    assert default_data_root("elsewhere") == ROOT / "elsewhere"
    monkeypatch.setenv("BOXSUP_DATA", str(tmp_path / "d"))
    assert default_data_root(None) == tmp_path / "d"
    assert default_data_root(tmp_path / "x") == tmp_path / "x"


def test_write_metrics_resolves_against_the_root(tmp_path, monkeypatch):
    import pandas as pd

    from boxsup.paper import Result
    from boxsup.report import write_metrics

    root = tmp_path / "project"
    monkeypatch.setattr(paths, "project_root", lambda: root)
    monkeypatch.chdir(tmp_path)
    write_metrics("out/metrics.json", Result(pd.DataFrame(), {"a": 1.0}, "ok", [str(root / "runs" / "toy-x")]))
    m = json.loads((root / "out" / "metrics.json").read_text())
    assert m["runs"] == ["runs/toy-x"] and m["verdict"] == "ok"  # run folders recorded relative to the root


NOTEBOOK = """
import json, os
from boxsup import runs
from boxsup.config import Config
from boxsup.data import default_data_root
from boxsup.paper import Result
from boxsup.report import write_metrics
import pandas as pd
cfg = Config(runs_dir="runs")
write_metrics(metrics_path, Result(pd.DataFrame(), {"x": 1.0}, "ok", [str(runs.run_dir(cfg))]))
print(json.dumps({"cwd": os.getcwd(), "runs_dir": cfg.runs_dir, "data_root": str(default_data_root(None))}))
"""


@pytest.mark.slow
def test_a_notebook_run_from_notebooks_folder_writes_nothing_there(tmp_path, monkeypatch):
    """What JupyterLab and nbconvert do: the kernel's working folder is notebooks/."""
    pm = pytest.importorskip("papermill")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.delenv("BOXSUP_DATA", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell('metrics_path = "metrics.json"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(NOTEBOOK)]
    src = tmp_path / "paths.ipynb"
    nbformat.write(nb, str(src))
    notebooks = ROOT / "notebooks"
    before = {p for p in notebooks.rglob("*")}
    rel = f"runs/.test-paths-{uuid.uuid4().hex[:8]}.json"  # relative: must land in the root's runs/
    had_runs = (ROOT / "runs").is_dir()
    try:
        out = pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), parameters={"metrics_path": rel},
                                  cwd=str(notebooks), kernel_name="python3", progress_bar=False)
        text = "".join(o.get("text", "") for o in out.cells[-1].outputs if o.output_type == "stream")
        seen = json.loads(text.strip().splitlines()[-1])
        assert Path(seen["cwd"]) == notebooks
        assert seen["runs_dir"] == str(ROOT / "runs") and seen["data_root"] == str(ROOT / "data")
        m = json.loads((ROOT / rel).read_text())
        assert m["runs"][0].startswith("runs/")  # the root's run cache, as the index reads it
    finally:
        (ROOT / rel).unlink(missing_ok=True)
        if not had_runs and not any((ROOT / "runs").iterdir()):
            (ROOT / "runs").rmdir()
    created = {p for p in notebooks.rglob("*")} - before
    assert not created, f"created under notebooks/: {sorted(map(str, created))}"
    assert not (notebooks / "metrics.json").exists() and not (notebooks / "runs").exists()


def test_from_root_expands_user(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert paths.from_root("~/d") == Path("/home/someone/d")
    assert paths.from_root("/abs") == Path("/abs")
    assert os.path.isabs(paths.from_root("rel"))
