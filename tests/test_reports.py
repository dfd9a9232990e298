"""The committed reports must come from the committed notebooks, and must render in a real browser."""
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"


def _manifest() -> dict:
    path = REPORTS / "manifest.json"
    if not path.is_file():
        pytest.fail("reports/manifest.json is missing: run `make reports` and commit reports/")
    return json.loads(path.read_text())


def test_every_notebook_has_a_report_from_its_current_version():
    from boxsup.report import NOTEBOOKS

    m = _manifest()
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks == set(m["reports"]), "the report set differs from the notebook set"
    assert notebooks <= {n for n, _, _ in NOTEBOOKS}, "a notebook is missing from report.NOTEBOOKS"
    for name, r in m["reports"].items():
        sha = hashlib.sha256((ROOT / "notebooks" / f"{name}.ipynb").read_bytes()).hexdigest()[:16]
        assert r["notebook_sha"] == sha, f"reports/{name}.html is stale: notebooks/{name}.ipynb changed since"
        assert (REPORTS / f"{name}.html").is_file()
        assert (REPORTS / f"{name}.metrics.json").is_file()
    assert m["profile"] == "toy" and "dirty" not in m["commit"]
    index = (REPORTS / "index.html").read_text()
    assert m["commit"] in index
    for name in notebooks:
        assert f'href="{name}.html"' in index


def test_every_report_records_headline_verdict_and_runs():
    """What ``report.write_metrics`` writes for a ``paper.Result``; the index reads nothing else."""
    for name in _manifest()["reports"]:
        m = json.loads((REPORTS / f"{name}.metrics.json").read_text())
        assert {"headline", "verdict", "runs"} <= set(m), name
        assert isinstance(m["verdict"], str) and m["verdict"], name
        assert all(r.startswith("runs/") for r in m["runs"]), name  # relative to the project root
        assert (name == "data") == (not m["runs"]), name


def test_reports_fetch_nothing_from_other_hosts():
    for page in REPORTS.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?://", text), page.name


def test_reports_render_in_a_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium); browser check skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    pages = ["index.html"] + sorted(p.name for p in REPORTS.glob("*.html") if p.name != "index.html")
    problems = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
        for name in pages:
            errors.clear()
            page.goto((REPORTS / name).as_uri(), wait_until="load")
            broken = page.evaluate("""() => Array.from(document.images)
                .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))""")
            links = page.evaluate("""() => Array.from(document.querySelectorAll('a[href]'))
                .map(a => a.getAttribute('href')).filter(h => !h.startsWith('http') && !h.startsWith('#'))""")
            missing = [h for h in links if not (REPORTS / h.split("#")[0]).is_file()]
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=False)
            if broken or missing or errors:
                problems.append(f"{name}: broken images {broken}, missing links {missing}, console {errors}")
        browser.close()
    assert not problems, "\n".join(problems)
    assert len(list(tmp_path.glob("*.png"))) == len(pages)


def test_index_shows_training_time_of_the_runs_each_report_uses(tmp_path):
    from boxsup.report import write_index

    manifest = {"profile": "toy", "commit": "abc1234", "date": "2026-01-01 00:00 UTC", "reports": {
        "table1": {"seconds": 3.0, "headline": {"mask": 66.5}, "verdict": "v1", "runs": {"a": 60.0, "b": 120.0}},
        "table2": {"seconds": 4.0, "headline": {}, "verdict": "v2", "runs": {"b": 120.0}}}}
    page = write_index(manifest, tmp_path).read_text()
    assert "3.0 min (2 runs)" in page and "2.0 min (1 run)" in page
    assert "share\n2 training runs, which took 3.0 minutes to train" in page
