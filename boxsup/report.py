"""Reports: execute the notebooks with papermill, render HTML with nbconvert, write the index.

``build_reports()`` (``boxsup report`` / ``make reports``) runs every notebook in ``NOTEBOOKS`` at the
chosen profile, saves the executed copies under ``reports/_executed/`` (not in git), renders
``reports/<name>.html`` (code hidden, parameters shown), keeps each notebook's ``metrics.json`` as
``reports/<name>.metrics.json`` and writes ``reports/manifest.json``, ``reports/index.html`` and
``reports/results.md`` / ``results.csv`` (every headline number, from the metrics files: pasteable).
Training runs are cached in ``runs/``, so a second call only re-executes and re-renders.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import html
import json
import os
import re
import subprocess
import time
from pathlib import Path

from .atomic import read_json, replacing, write_json, write_text
from .data.paths import from_root, relative_to_root
from .experiments import row_name
from .results import Result
from .runs import evaluation_seconds, training_seconds

ROOT = Path(__file__).resolve().parents[1]

# (notebook, title, what the paper reports there); the index lists them in this order
NOTEBOOKS: list[tuple[str, str, str]] = [
    ("data", "The embedded benchmark and the real photos", "(no paper counterpart)"),
    ("table1", "Table 1: supervision", "mask 63.8, box 62.0, semi 63.5; +COCO: mask 68.1, semi 68.2"),
    ("table2", "Table 2: masks estimated from boxes", "rect 52.3 < GrabCut 55.2 < WSSL 58.5 < ours w/o sampling 59.7 < ours 62.0"),
    ("table3", "Table 3: region proposals inside BoxSup", "MCG 62.0 best; SS and GOP lower"),
    ("table4", "Table 4: test set", "box 64.6; semi 66.2; semi+COCO 71.0; +V07 73.1; BoxSup+ 75.2"),
    ("table5", "Table 5: PASCAL-Context", "baseline 35.7, BoxSup pre-training 40.5"),
    ("fig3", "Figure 3: estimated masks across epochs", "masks improve from epoch 1 to 5 to 20"),
    ("fig4", "Figure 4: boundary vs interior (trimap)", "extra boxes raise interior accuracy more than boundary"),
    ("fig5", "Figure 5: qualitative results", "box ~ mask ~ semi predictions"),
    ("sensitivity", "Sensitivity: what the paper leaves open", "lam = 3; Er's normalisation not stated"),
]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "boxsup", "notebooks"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def check_kernel(kernel: str) -> None:
    # local: jupyter, papermill and nbconvert are the optional "notebooks" extra, not needed to train
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel not in KernelSpecManager().find_kernel_specs():
        raise RuntimeError(f"Jupyter kernel {kernel!r} is not installed. `make install` installs it; by hand: "
                           f"python -m ipykernel install --sys-prefix --name {kernel}")


# parameters that change what a page is about or may show: a notebook that does not declare one
# cannot honour it, so giving it is an error (photos=False to a notebook that draws photos anyway)
PAGE_PARAMS = ("dataset", "pretrained", "photos", "grabcut_start")


def page_name(name: str, params: dict) -> str:
    """The report page of notebook ``name``: the name itself, ``<name>-<folder>`` when it ran on a
    VOC-layout folder (``dataset``), and ``-scratch`` after it when its networks started from random
    weights (``pretrained=False``), so all of them live side by side."""
    dataset = params.get("dataset")
    return (name + (f"-{Path(dataset).name}" if dataset else "")
            + ("-scratch" if params.get("pretrained") is False else ""))


def own_page(params: dict) -> bool:
    """Whether a page is one of the profile's own (no folder, the profile's start)."""
    return not params.get("dataset") and params.get("pretrained") is not False


def execute(name: str, params: dict, out_dir: Path, kernel: str = "boxsup") -> tuple[Path, dict, float]:
    """Run ``notebooks/<name>.ipynb`` with papermill; returns (executed path, metrics, seconds). The
    outputs are named by ``page_name``."""
    import papermill as pm  # local: the optional "notebooks" extra (see check_kernel)

    src = ROOT / "notebooks" / f"{name}.ipynb"
    if not src.is_file():
        raise FileNotFoundError(f"notebook {src} does not exist")
    page = page_name(name, params)
    executed = out_dir / "_executed" / f"{page}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / f"{page}.metrics.json"
    t0 = time.perf_counter()
    # a parameter only goes to the notebooks that declare it (seeds: the tables, not the figures)
    declared = set(pm.inspect_notebook(str(src)))
    given = {k: v for k, v in params.items() if k in declared}
    for k in PAGE_PARAMS:
        if params.get(k) is not None and k not in declared:
            raise ValueError(f"notebooks/{name}.ipynb has no {k} parameter: it runs with its profile's {k} only")
    with replacing(executed) as tmp:
        pm.execute_notebook(str(src), str(tmp), parameters={**given, "metrics_path": os.path.relpath(metrics_path.resolve(), ROOT)},
                            kernel_name=kernel, cwd=str(ROOT), progress_bar=False)
    seconds = time.perf_counter() - t0
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return executed, metrics, seconds


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_EXTERNAL_LINK = re.compile(r"<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.I)
# pandas writes a missing value as NaN (or <NA>); a reader expects a dash in a results table
_NAN_CELL = re.compile(r"(<td[^>]*>)\s*(?:NaN|nan|&lt;NA&gt;|None)\s*(</td>)")
# JupyterLab's CSS breaks output lines anywhere (word-break: break-all), i.e. inside numbers:
# wrap monospace lines at spaces only, and scroll a line that has none
PAGE_CSS = """<style>
pre, .jp-OutputArea-output pre, .jp-RenderedText pre {
  white-space: pre-wrap !important; word-break: normal !important; overflow-wrap: normal !important;
  word-wrap: normal !important; overflow-x: auto !important;
}
</style>
"""


def render_html(executed: Path, html_path: Path) -> None:
    """Code hidden except the parameters; figures embedded; no fetches from other hosts."""
    import nbformat  # local: the optional "notebooks" extra (see check_kernel)
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and not {"parameters", "injected-parameters"} & set(tags):
            cell.metadata.setdefault("transient", {})["remove_source"] = True
        if cell.cell_type == "code":  # progress bars and warnings (stderr) are not results
            cell.outputs = [o for o in cell.outputs if not _is_progress(o)]
    nb.metadata.pop("widgets", None)  # widget state makes nbconvert load a widget manager from the web
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    body = _EXTERNAL_LINK.sub("", _EXTERNAL_SCRIPT.sub("", body))
    body = _NAN_CELL.sub(r"\1&ndash;\2", body).replace("</head>", PAGE_CSS + "</head>", 1)
    write_text(html_path, _PRE.sub(_keep_hyphenated, body))


# Browsers break lines after a hyphen, which splits "CRF-box" or a range "0.3-30" in a verdict line;
# inside <pre> text (never inside a tag) a hyphenated word is kept on one line.
_PRE = re.compile(r"(<pre[^>]*>)(.*?)(</pre>)", re.S)
_HYPHENATED = re.compile(r"[^\s<>]*\w-[^\s<>]*")


def _keep_hyphenated(m: re.Match) -> str:
    parts = re.split(r"(<[^>]+>)", m.group(2))
    text = "".join(p if p.startswith("<") else _HYPHENATED.sub(r'<span style="white-space:nowrap">\g<0></span>', p)
                   for p in parts)
    return m.group(1) + text + m.group(3)


def _is_progress(output) -> bool:
    """tqdm's widget bars (ipywidgets in the kernel) and its stderr bars are not results."""
    if output.output_type == "stream":
        return output.name == "stderr"
    return "application/vnd.jupyter.widget-view+json" in output.get("data", {})


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) > 1.5 else f"{v:.3f}"
    return html.escape(str(v))


def pages(manifest: dict) -> list[tuple[str, str, str]]:
    """(page, title, paper) of every report page in the manifest, in the index's order: each
    notebook's own page, then the pages of that notebook on VOC-layout folders."""
    reports = manifest.get("reports", {})
    out = []
    for name, title, paper in NOTEBOOKS:
        if name in reports:
            out.append((name, title, paper))
        for page in sorted(p for p, r in reports.items() if p != name and r.get("notebook") == name):
            params = reports[page]["params"]
            on = [f"on {Path(params['dataset']).name}"] if params.get("dataset") else []
            on += ["from random weights"] if params.get("pretrained") is False else []
            out.append((page, f"{title}, {', '.join(on)}", paper))
    return out


def write_index(manifest: dict, out_dir: Path) -> Path:
    rows = []
    for name, title, paper in pages(manifest):
        m = manifest["reports"][name]
        head = m.get("headline", {})
        ours = "<br>".join(f"{html.escape(k)}: {_fmt(v)}" for k, v in head.items()) or "&ndash;"
        runs = m.get("runs", {})
        train = f"{sum(runs.values()) / 60:.1f} min ({len(runs)} run{'s' if len(runs) != 1 else ''})" if runs else "&ndash;"
        evals = m.get("evaluations")  # absent from pages rendered before evaluation times were recorded
        evaluated = f"{sum(evals.values()) / 60:.1f} min" if evals else "&ndash;"
        built = (f"<br><small>built {html.escape(m.get('date', '?'))} from commit <code>{html.escape(m.get('commit', '?'))}"
                 f"</code></small>") if not own_page(m.get("params", {})) else ""
        rows.append(f"<tr><td><a href=\"{name}.html\">{html.escape(title)}</a>{built}</td><td>{ours}</td>"
                    f"<td>{html.escape(paper)}</td><td>{html.escape(m.get('verdict', ''))}</td>"
                    f"<td>{m['seconds']:.0f} s</td><td>{train}</td><td>{evaluated}</td></tr>")
    own = [r for r in manifest.get("reports", {}).values() if own_page(r.get("params", {}))]
    all_runs = {k: v for r in own for k, v in r.get("runs", {}).items()}
    all_evals: dict[str, float] = {}
    for r in own:  # a page records what its runs had cached when it rendered: keep the fullest record
        for k, v in r.get("evaluations", {}).items():
            all_evals[k] = max(v, all_evals.get(k, 0.0))
    evaluated = (f" and {sum(all_evals.values()) / 60:.1f} to evaluate (the CRF searches and scores, pick quality)"
                 if all_evals else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>boxsup reports</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:6px;vertical-align:top;font-size:14px}}
th{{background:#f3f3f3}}code{{background:#f3f3f3;padding:1px 3px}}
pre{{white-space:pre-wrap;word-break:normal;overflow-wrap:normal;overflow-x:auto}}</style></head><body>
<h1>BoxSup, reproduced</h1>
<p>Every table and figure of <em>BoxSup: Exploiting Bounding Boxes to Supervise Convolutional Networks for
Semantic Segmentation</em> (Dai, He, Sun, ICCV 2015), regenerated by this repository's notebooks.
Profile <code>{html.escape(manifest['profile'])}</code>{' (the embedded synthetic benchmark: compare orderings, not absolute numbers)' if manifest['profile'] == 'toy' else ''};
generated {html.escape(manifest['date'])} from commit <code>{html.escape(manifest['commit'])}</code>
in {sum(r['seconds'] for r in own) / 60:.1f} minutes of notebook time; the notebooks share
{len(all_runs)} training runs, which took {sum(all_runs.values()) / 60:.1f} minutes to train{evaluated} (runs are cached in
<code>runs/</code>, so a notebook whose runs exist only evaluates and renders).</p>
<table><tr><th>report</th><th>ours (mIoU %, unless said)</th><th>paper</th><th>verdict</th><th>notebook wall time</th>
<th>training of the runs it uses</th><th>their evaluations</th></tr>
{''.join(rows)}
</table>
<p>Every headline number in one table, to paste into a paper or an issue:
<a href="results.md">results.md</a> (Markdown), <a href="results.csv">results.csv</a>.
Regenerate with <code>make reports</code>; see README.md.</p>
</body></html>
"""
    path = out_dir / "index.html"
    write_text(path, page)
    return path


def build_reports(names: list[str] | None = None, params: dict | None = None, out_dir: str | Path = "reports",
                  kernel: str = "boxsup") -> Path:
    """Execute and render the notebooks (all present ones by default); returns the index path.
    Prints one line per notebook with its wall time (papermill's own output stays in the notebook)."""
    check_kernel(kernel)
    out_dir = from_root(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(params or {})
    known = [n for n, _, _ in NOTEBOOKS if (ROOT / "notebooks" / f"{n}.ipynb").is_file()]
    names = names or known
    unknown = set(names) - set(known)
    if unknown:
        raise ValueError(f"unknown report(s) {sorted(unknown)}; available: {', '.join(known)}")
    mpath = out_dir / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    if manifest.get("profile") not in (None, params.get("profile", "toy")):
        manifest = {}  # reports of another profile are not mixed into one index
    manifest.setdefault("reports", {})
    t_all = time.perf_counter()
    commit, date = git_commit(), dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for i, name in enumerate(names, 1):
        page = page_name(name, params)
        print(f"[{i}/{len(names)}] {page}: executing ...", flush=True)
        executed, metrics, seconds = execute(name, params, out_dir, kernel)
        render_html(executed, out_dir / f"{page}.html")
        runs = metrics.get("runs", [])
        manifest["reports"][page] = {"notebook": name, "notebook_sha": _sha(ROOT / "notebooks" / f"{name}.ipynb"),
                                     "seconds": seconds, "headline": metrics.get("headline", {}),
                                     "verdict": metrics.get("verdict", ""), "params": params,
                                     "commit": commit, "date": date,
                                     "runs": {Path(r).name: round(training_seconds(from_root(r)), 1) for r in runs},
                                     "evaluations": {Path(r).name: round(evaluation_seconds(from_root(r)), 1)
                                                     for r in runs}}
        print(f"[{i}/{len(names)}] {page}: {seconds:.0f} s -> {out_dir / page}.html "
              f"(total {(time.perf_counter() - t_all) / 60:.1f} min)", flush=True)
    if own_page(params):  # the header describes the profile's own pages
        manifest.update({"profile": params.get("profile", "toy"), "commit": commit, "date": date,
                         "seconds": time.perf_counter() - t_all})
    for k, v in (("profile", params.get("profile", "toy")), ("commit", commit), ("date", date)):
        manifest.setdefault(k, v)
    write_json(mpath, manifest)
    write_results(manifest, out_dir)
    return write_index(manifest, out_dir)


# --- results.md / results.csv: every headline number, from the manifest and the metrics files ---------

RESULT_COLUMNS = ("report", "row", "ours", "sd", "paper", "verdict")


def _record(records: list[dict], row: str) -> dict:
    """The table record of a headline row: the one whose leading (index) fields, joined with ' / '
    as ``results.headline`` joins them, name the row ({} when none does)."""
    for r in records:
        vals = tuple(r.values())
        if any(row_name(vals[:n]) == row for n in range(1, len(vals) + 1)):
            return r
    return {}


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def results_rows(manifest: dict, out_dir: str | Path) -> list[dict]:
    """One row per headline number of every report, in the index's order: (report, row, ours, its
    standard deviation over seeds where the table has one, paper where the report's table has it,
    the report's verdict)."""
    rows = []
    reports = manifest.get("reports", {})
    for name, title, _ in pages(manifest):
        metrics = read_json(Path(out_dir) / f"{name}.metrics.json") or {}
        records = metrics.get("table") if isinstance(metrics.get("table"), list) else []
        sd_column = f"{metrics.get('score_column')} sd"  # present when the table ran several seeds
        for row, ours in reports[name].get("headline", {}).items():
            rec = _record(records, row)
            rows.append({"report": title, "row": row, "ours": ours, "sd": _finite(rec.get(sd_column)),
                         "paper": _finite(rec.get("paper")), "verdict": reports[name].get("verdict", "")})
    return rows


def _num(v) -> str:
    """Numbers as the index shows them: one decimal for percentages, three for fractions."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) > 1.5 else f"{v:.3f}"
    return str(v)


def write_results(manifest: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """``results.md`` (a Markdown table; the verdict once per report) and ``results.csv`` (one full
    row per number) beside the index."""
    out_dir = Path(out_dir)
    rows = results_rows(manifest, out_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RESULT_COLUMNS)
    w.writerows([r["report"], r["row"], _num(r["ours"]), "" if r["sd"] is None else f"{r['sd']:.1f}", _num(r["paper"]),
                 r["verdict"]] for r in rows)
    write_text(out_dir / "results.csv", buf.getvalue())

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"# BoxSup, reproduced: results ({manifest.get('profile', '?')} profile, commit "
             f"{manifest.get('commit', '?')}, {manifest.get('date', '?')})", "",
             "mIoU % unless the row says otherwise; ours: the mean over the row's training seeds ± their "
             "standard deviation (no ± with one seed); paper: the paper's number for that row (PASCAL VOC), "
             "where it has one.", "", "| report | row | ours | paper | verdict |", "| --- | --- | ---: | ---: | --- |"]
    last = None
    for r in rows:
        first = r["report"] != last
        last = r["report"]
        ours = _num(r["ours"]) + (f" ± {r['sd']:.1f}" if r["sd"] is not None else "")
        lines.append(f"| {cell(r['report']) if first else ''} | {cell(r['row'])} | {ours} | "
                     f"{_num(r['paper']) or '–'} | {cell(r['verdict']) if first else ''} |")
    write_text(out_dir / "results.md", "\n".join(lines) + "\n")
    return out_dir / "results.md", out_dir / "results.csv"


def write_metrics(path: str | os.PathLike, result: Result) -> None:
    """Called by each notebook's last cell: the machine-readable result beside its output (headline,
    verdict, the run folders the result used, and its records). A relative ``path`` is read against
    the project root (a notebook's working folder is notebooks/); run folders are recorded relative
    to it, as the index reads them."""
    write_json(from_root(path), {"headline": result.headline, "verdict": result.verdict,
                                 "runs": [relative_to_root(r) for r in result.runs], **result.records})
