"""The committed reports must come from the committed notebooks, and must render in a real browser."""
import hashlib
import json
import re
import shutil
import time
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
    from boxsup import report
    from boxsup.report import NOTEBOOKS

    m = _manifest()
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    own = {page for page, r in m["reports"].items() if report.own_page(r["params"])}
    assert notebooks == own, "the report set differs from the notebook set"
    assert notebooks <= {n for n, _, _ in NOTEBOOKS}, "a notebook is missing from report.NOTEBOOKS"
    for page, r in m["reports"].items():  # pages on a VOC-layout folder (make reports-real) too
        name = r["notebook"]
        assert page == report.page_name(name, r["params"])
        sha = hashlib.sha256((ROOT / "notebooks" / f"{name}.ipynb").read_bytes()).hexdigest()[:16]
        assert r["notebook_sha"] == sha, f"reports/{page}.html is stale: notebooks/{name}.ipynb changed since"
        assert (REPORTS / f"{page}.html").is_file()
        assert (REPORTS / f"{page}.metrics.json").is_file()
    assert m["profile"] == "toy" and "dirty" not in m["commit"]
    index = (REPORTS / "index.html").read_text()
    assert m["commit"] in index
    for page in m["reports"]:
        assert f'href="{page}.html"' in index


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


# A word (e.g. a number) of a monospace output line that the browser broke across two lines: the
# verdict lines must wrap at spaces only (report.PAGE_CSS), or scroll.
WRAPPED_WORDS_JS = """() => {
  const bad = [];
  for (const pre of document.querySelectorAll('pre')) {
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const r = document.createRange();
        r.setStart(node, m.index);
        r.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top)));
        if (tops.size > 1) bad.push(m[0].slice(0, 40));
      }
    }
  }
  return bad;
}"""
# a Python dict printed as it is ({'key': ...}) instead of a table or a sentence
RAW_DICT = re.compile(r"\{['\"][^'\"\n]{1,80}['\"]: ")


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
            wrapped = page.evaluate(WRAPPED_WORDS_JS)
            text = page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                                 ".map(e => e.innerText).join('\\n')")
            raw_dicts = RAW_DICT.findall(text)
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=False)
            if broken or missing or errors or wrapped or raw_dicts:
                problems.append(f"{name}: broken images {broken}, missing links {missing}, console {errors}, "
                                f"words wrapped mid-word in monospace lines {wrapped[:5]}, raw dicts {raw_dicts[:3]}")
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


def test_index_lists_a_page_on_a_voc_folder_after_its_notebook(tmp_path):
    from boxsup.report import page_name, results_rows, write_index

    horse = {"dataset": "../shared/realdata/weizmann_horse"}
    assert page_name("table2", horse) == "table2-weizmann_horse" and page_name("table2", {"seeds": 3}) == "table2"
    assert page_name("table2", {**horse, "pretrained": False}) == "table2-weizmann_horse-scratch"
    manifest = {"profile": "toy", "commit": "abc1234", "date": "2026-01-01 00:00 UTC", "reports": {
        "table2-weizmann_horse": {"notebook": "table2", "seconds": 600.0, "headline": {"GrabCut": 61.0},
                                  "verdict": "v-horse", "params": horse, "commit": "def5678",
                                  "date": "2026-02-02 00:00 UTC", "runs": {"h": 60.0}},
        "table1": {"notebook": "table1", "seconds": 60.0, "headline": {}, "verdict": "v1", "params": {}, "runs": {}},
        "table2": {"notebook": "table2", "seconds": 120.0, "headline": {"GrabCut": 64.5}, "verdict": "v2",
                   "params": {}, "runs": {"a": 30.0}}}}
    page = write_index(manifest, tmp_path).read_text()
    order = [page.index(f'href="{p}.html"') for p in ("table1", "table2", "table2-weizmann_horse")]
    assert order == sorted(order) and "Table 2: masks estimated from boxes, on weizmann_horse" in page
    assert "built 2026-02-02 00:00 UTC from commit <code>def5678</code>" in page
    assert "in 3.0 minutes of notebook time" in page and "share\n1 training runs" in page  # the toy pages only
    rows = results_rows(manifest, tmp_path)
    assert [r["report"] for r in rows] == ["Table 2: masks estimated from boxes",
                                           "Table 2: masks estimated from boxes, on weizmann_horse"]


def test_index_links_the_results_tables(tmp_path):
    from boxsup.report import write_index

    manifest = {"profile": "toy", "commit": "abc1234", "date": "2026-01-01 00:00 UTC", "reports": {
        "table1": {"seconds": 3.0, "headline": {"VOC / mask": 66.5}, "verdict": "v1", "runs": {}}}}
    page = write_index(manifest, tmp_path).read_text()
    assert 'href="results.md"' in page and 'href="results.csv"' in page and "word-break:normal" in page


def test_results_md_and_csv_from_the_manifest_and_metrics(tmp_path):
    """One row per headline number; the paper's number from the report's table where it has the row."""
    import csv

    from boxsup.report import write_results

    manifest = {"profile": "toy", "commit": "abc1234", "date": "2026-01-01 00:00 UTC", "reports": {
        "table1": {"seconds": 3.0, "headline": {"VOC / mask": 66.54321, "VOC / box": 44.5}, "verdict": "box - mask = -22.0",
                   "runs": {}},
        "fig3": {"seconds": 1.0, "headline": {"pick IoU epoch 1": 49.75}, "verdict": "picks | barely change", "runs": {}}}}
    (tmp_path / "table1.metrics.json").write_text(json.dumps({"score_column": "+CRF", "table": [
        {"data": "VOC", "supervision": "mask", "FCN": 60.0, "FCN sd": 9.0, "+CRF": 66.54321, "+CRF sd": 1.26,
         "paper": 63.8},
        {"data": "VOC", "supervision": "box", "FCN": 40.0, "+CRF": 44.5, "paper": None}]}))
    md, path = write_results(manifest, tmp_path)
    rows = list(csv.DictReader(path.open()))
    assert [(r["report"], r["row"], r["ours"], r["sd"], r["paper"]) for r in rows] == [
        ("Table 1: supervision", "VOC / mask", "66.5", "1.3", "63.8"),
        ("Table 1: supervision", "VOC / box", "44.5", "", ""),
        ("Figure 3: estimated masks across epochs", "pick IoU epoch 1", "49.8", "", "")]
    assert rows[0]["verdict"] == rows[1]["verdict"] == "box - mask = -22.0"
    text = md.read_text()
    assert "| Table 1: supervision | VOC / mask | 66.5 ± 1.3 | 63.8 | box - mask = -22.0 |" in text
    assert "|  | VOC / box | 44.5 | – |  |" in text  # the verdict once per report; no ± for one seed
    assert "picks \\| barely change" in text  # a '|' in a verdict does not break the table


def test_rendered_pages_wrap_at_spaces_show_dashes_and_no_progress_bars(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    from boxsup.report import render_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1: 100%|#####| 8/8 [00:01<00:00]\n"),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "text/plain": "WIDGET-BAR 0%|          | 0/8"}),
        nbformat.v4.new_output("stream", name="stdout", text="verdict: box - mask = -23.4 (paper: -1.8); CRF-box over lam 0.3-30\n"),
        nbformat.v4.new_output("display_data", data={"text/html": "<table><tr><td>NaN</td><td>62.0</td></tr></table>",
                                                     "text/plain": "table"})]
    nb.cells = [cell]
    src = tmp_path / "x.ipynb"
    nbformat.write(nb, str(src))
    render_html(src, tmp_path / "x.html")
    page = (tmp_path / "x.html").read_text()
    assert "<td>&ndash;</td>" in page and "<td>NaN</td>" not in page
    assert "100%|" not in page and "WIDGET-BAR" not in page and "verdict: box - mask" in page
    assert "word-break: normal !important" in page
    # a hyphenated word stays on one line (browsers break after hyphens); tags are left alone
    assert '<span style="white-space:nowrap">CRF-box</span>' in page and '<span style="white-space:nowrap">0.3-30</span>' in page
    assert 'class="jp-OutputArea' in page


def test_build_reports_prints_a_line_per_notebook_and_writes_the_results(tmp_path, monkeypatch, capsys):
    """``boxsup report`` needs no ``papermill --log-output``: one stdout line per notebook, with its time."""
    from boxsup import report

    def fake_execute(name, params, out_dir, kernel):
        (out_dir / f"{name}.metrics.json").write_text(json.dumps({"headline": {"VOC / mask": 60.0}, "verdict": "v",
                                                                  "runs": [], "table": []}))
        return out_dir / f"{name}.ipynb", {"headline": {"VOC / mask": 60.0}, "verdict": "v", "runs": []}, 2.0

    monkeypatch.setattr(report, "check_kernel", lambda kernel: None)
    monkeypatch.setattr(report, "execute", fake_execute)
    monkeypatch.setattr(report, "render_html", lambda executed, html_path: html_path.write_text("<html></html>"))
    index = report.build_reports(["table1"], {"profile": "toy"}, tmp_path)
    out = capsys.readouterr().out
    assert "[1/1] table1: executing" in out and re.search(r"\[1/1\] table1: 2 s -> ", out)
    assert index == tmp_path / "index.html"
    assert "| Table 1: supervision | VOC / mask | 60.0 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.csv").read_text().startswith("report,row,ours,sd,paper,verdict\n")


def test_execute_passes_each_notebook_only_the_parameters_it_declares(tmp_path, monkeypatch):
    """``boxsup report --seeds 1`` reaches the tables; the figures, which have no ``seeds``, get none."""
    pm = pytest.importorskip("papermill")
    from boxsup import report

    seen = {}

    def fake_execute_notebook(src, out, parameters, **kw):
        seen[Path(src).stem] = parameters
        Path(out).write_text("{}")

    monkeypatch.setattr(pm, "execute_notebook", fake_execute_notebook)
    for name in ("table2", "fig3"):
        report.execute(name, {"profile": "toy", "seeds": 1}, tmp_path)
    assert seen["table2"]["seeds"] == 1 and seen["table2"]["profile"] == "toy"
    assert "seeds" not in seen["fig3"] and seen["fig3"]["profile"] == "toy"
    # a VOC-layout folder goes to every notebook that trains; the data page has no such parameter
    horse = {"profile": "toy", "dataset": "../shared/realdata/weizmann_horse"}
    executed, _, _ = report.execute("table2", horse, tmp_path)
    assert seen["table2"]["dataset"] == horse["dataset"] and executed.name == "table2-weizmann_horse.ipynb"
    assert seen["table2"]["metrics_path"].endswith("table2-weizmann_horse.metrics.json")
    with pytest.raises(ValueError, match="no dataset parameter"):
        report.execute("data", horse, tmp_path)
    with pytest.raises(ValueError, match="no pretrained parameter"):  # fig3 has no start parameter
        report.execute("fig3", {"profile": "toy", "pretrained": False}, tmp_path)
    # --no-photos reaches Table 2 (same page name); a notebook that would draw photos anyway refuses it
    report.execute("table2", {**horse, "photos": False}, tmp_path)
    assert seen["table2"]["photos"] is False
    with pytest.raises(ValueError, match="no photos parameter"):
        report.execute("fig3", {"profile": "toy", "photos": False}, tmp_path)


def test_report_command_turns_its_flags_into_notebook_parameters(tmp_path, monkeypatch):
    """`make reports-real`'s command line: a folder, random weights, no photos, into reports/."""
    from boxsup import cli

    seen = {}
    monkeypatch.setattr(cli, "build_reports", lambda names, params, out, kernel: seen.update(
        names=names, params=params, out=out) or out / "index.html")
    folder = tmp_path / "horses"
    folder.mkdir()
    assert cli.main(["report", "--only", "table2", "--dataset", str(folder), "--scratch", "--no-photos",
                     "--grabcut-start", "--seeds", "2", "--out", str(tmp_path / "out")]) == 0
    assert seen["names"] == ["table2"] and seen["out"] == tmp_path / "out"
    assert seen["params"] == {"profile": "toy", "seeds": 2, "dataset": str(folder), "pretrained": False, "photos": False,
                              "grabcut_start": True}
    cli.main(["report", "--only", "table2", "--out", str(tmp_path / "out")])
    assert seen["params"] == {"profile": "toy"}  # photos are drawn unless --no-photos


def test_evaluations_record_their_wall_time_and_the_index_sums_it(tmp_path):
    """``cached_eval`` stores how long each evaluation took, once; ``evaluation_seconds`` sums a
    run's evaluations (older caches without a time count 0); the index shows the sum per page."""
    from boxsup import runs
    from boxsup.report import write_index

    run = tmp_path / "run"
    run.mkdir()
    (run / runs.CHECKPOINT).write_bytes(b"weights")
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return {"mIoU": 0.5}

    first = runs.cached_eval(run, "val", "s1", slow)
    again = runs.cached_eval(run, "val", "s1", slow)
    assert len(calls) == 1 and again == first and first["compute_seconds"] >= 0.05
    (run / "eval-val-old.json").write_text(json.dumps({"mIoU": 0.4}))   # cached before times were kept
    assert runs.evaluation_seconds(run) == pytest.approx(first["compute_seconds"])

    manifest = {"profile": "toy", "commit": "abc1234", "date": "2026-01-01 00:00 UTC", "reports": {
        "table1": {"seconds": 3.0, "headline": {}, "verdict": "v1", "runs": {"a": 60.0, "b": 120.0},
                   "evaluations": {"a": 30.0, "b": 60.0}},
        "table2": {"seconds": 4.0, "headline": {}, "verdict": "v2", "runs": {"b": 120.0},
                   "evaluations": {"b": 120.0}},
        "table3": {"seconds": 1.0, "headline": {}, "verdict": "v3", "runs": {"c": 6.0}}}}
    page = write_index(manifest, tmp_path).read_text()
    assert "3.0 min (2 runs)</td><td>1.5 min</td></tr>" in page    # table1: 30 + 60 s
    assert "2.0 min (1 run)</td><td>2.0 min</td></tr>" in page     # table2: b as it was when table2 rendered
    assert "0.1 min (1 run)</td><td>&ndash;</td></tr>" in page     # rendered before times were kept
    # the header counts each run once, with its fullest record (b: 120 s, not 60 + 120)
    assert "3.1 minutes to train and 2.5 to evaluate" in page
