"""pyproject.toml is the source of truth; environment.yml, env/ and the Makefile must agree with it."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_lists_every_core_dependency():
    core = {_name(r) for r in _pyproject()["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
            assert any(r.startswith("-e .[crf,notebooks,dev]") for r in dep["pip"])
        else:
            names.add(_name(dep.split("=")[0]))
    assert env["channels"] == ["conda-forge"]
    assert core <= names, f"missing from environment.yml: {core - names}"


def test_torch_pins_agree_everywhere():
    pins = dict(ln.split("==") for ln in (ROOT / "env/requirements-torch.txt").read_text().split())
    deps = {_name(r): r for r in _pyproject()["dependencies"]}
    for pkg, ver in pins.items():
        assert f"<={ver}" in deps[pkg], f"pyproject's {deps[pkg]} does not admit {pkg}=={ver}"
    env = (ROOT / "environment.yml").read_text()
    assert all(f"{p}=={v}" in env for p, v in pins.items())
    frozen = (ROOT / "env/requirements.txt").read_text()
    assert all(f"{p}=={v}" in frozen for p, v in pins.items())


def test_frozen_requirements_cover_all_extras():
    frozen = {_name(ln) for ln in (ROOT / "env/requirements.txt").read_text().splitlines()
              if ln and not ln.startswith("#")}
    proj = _pyproject()
    wanted = {_name(r) for r in proj["dependencies"]}
    for extra in ("crf", "notebooks", "dev"):
        wanted |= {_name(r) for r in proj["optional-dependencies"][extra]}
    assert wanted <= frozen, f"not pinned in env/requirements.txt: {wanted - frozen}"


def test_makefile_and_ci_use_the_same_install():
    mk = (ROOT / "Makefile").read_text()
    assert "env/requirements-torch.txt" in mk and ".[crf,notebooks,dev]" in mk
    assert "ipykernel install" in mk and "--name boxsup" in mk
    assert "make test" in (ROOT / ".ci/run").read_text()
    assert "make test" in (ROOT / "README.md").read_text() and "make reports" in (ROOT / "README.md").read_text()
