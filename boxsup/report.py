"""Reports: execute the notebooks with papermill, render HTML with nbconvert, write the index.

``build_reports()`` (``boxsup report`` / ``make reports``) runs every notebook in ``NOTEBOOKS`` at the
chosen profile, saves the executed copies under ``reports/_executed/`` (not in git), renders
``reports/<name>.html`` (code hidden, parameters shown), keeps each notebook's ``metrics.json`` as
``reports/<name>.metrics.json`` and writes ``reports/manifest.json`` and ``reports/index.html``.
Training runs are cached in ``runs/``, so a second call only re-executes and re-renders.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import re
import subprocess
import time
from pathlib import Path

from tqdm.auto import tqdm

from .atomic import replacing, write_json, write_text
from .paper import Result
from .runs import training_seconds

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


def execute(name: str, params: dict, out_dir: Path, kernel: str = "boxsup") -> tuple[Path, dict, float]:
    """Run ``notebooks/<name>.ipynb`` with papermill; returns (executed path, metrics, seconds)."""
    import papermill as pm  # local: the optional "notebooks" extra (see check_kernel)

    src = ROOT / "notebooks" / f"{name}.ipynb"
    if not src.is_file():
        raise FileNotFoundError(f"notebook {src} does not exist")
    executed = out_dir / "_executed" / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / f"{name}.metrics.json"
    t0 = time.perf_counter()
    with replacing(executed) as tmp:
        pm.execute_notebook(str(src), str(tmp), parameters={**params, "metrics_path": os.path.relpath(metrics_path.resolve(), ROOT)},
                            kernel_name=kernel, cwd=str(ROOT), progress_bar=False)
    seconds = time.perf_counter() - t0
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return executed, metrics, seconds


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_EXTERNAL_LINK = re.compile(r"<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.I)


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
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    body = _EXTERNAL_LINK.sub("", _EXTERNAL_SCRIPT.sub("", body))
    write_text(html_path, body)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) > 1.5 else f"{v:.3f}"
    return html.escape(str(v))


def write_index(manifest: dict, out_dir: Path) -> Path:
    rows = []
    for name, title, paper in NOTEBOOKS:
        m = manifest.get("reports", {}).get(name)
        if m is None:
            continue
        head = m.get("headline", {})
        ours = "<br>".join(f"{html.escape(k)}: {_fmt(v)}" for k, v in head.items()) or "&ndash;"
        runs = m.get("runs", {})
        train = f"{sum(runs.values()) / 60:.1f} min ({len(runs)} run{'s' if len(runs) != 1 else ''})" if runs else "&ndash;"
        rows.append(f"<tr><td><a href=\"{name}.html\">{html.escape(title)}</a></td><td>{ours}</td>"
                    f"<td>{html.escape(paper)}</td><td>{html.escape(m.get('verdict', ''))}</td>"
                    f"<td>{m['seconds']:.0f} s</td><td>{train}</td></tr>")
    all_runs = {k: v for r in manifest.get("reports", {}).values() for k, v in r.get("runs", {}).items()}
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>boxsup reports</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:6px;vertical-align:top;font-size:14px}}
th{{background:#f3f3f3}}code{{background:#f3f3f3;padding:1px 3px}}</style></head><body>
<h1>BoxSup, reproduced</h1>
<p>Every table and figure of <em>BoxSup: Exploiting Bounding Boxes to Supervise Convolutional Networks for
Semantic Segmentation</em> (Dai, He, Sun, ICCV 2015), regenerated by this repository's notebooks.
Profile <code>{html.escape(manifest['profile'])}</code>{' (the embedded synthetic benchmark: compare orderings, not absolute numbers)' if manifest['profile'] == 'toy' else ''};
generated {html.escape(manifest['date'])} from commit <code>{html.escape(manifest['commit'])}</code>
in {sum(r['seconds'] for r in manifest['reports'].values()) / 60:.1f} minutes of notebook time; the notebooks share
{len(all_runs)} training runs, which took {sum(all_runs.values()) / 60:.1f} minutes to train (runs are cached in
<code>runs/</code>, so a notebook whose runs exist only evaluates and renders).</p>
<table><tr><th>report</th><th>ours (mIoU %, unless said)</th><th>paper</th><th>verdict</th><th>notebook wall time</th>
<th>training of the runs it uses</th></tr>
{''.join(rows)}
</table>
<p>Regenerate with <code>make reports</code>; see README.md.</p>
</body></html>
"""
    path = out_dir / "index.html"
    write_text(path, page)
    return path


def build_reports(names: list[str] | None = None, params: dict | None = None, out_dir: str | Path = "reports",
                  kernel: str = "boxsup") -> Path:
    """Execute and render the notebooks (all present ones by default); returns the index path."""
    check_kernel(kernel)
    out_dir = Path(out_dir)
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
    for name in tqdm(names, desc="reports"):
        executed, metrics, seconds = execute(name, params, out_dir, kernel)
        render_html(executed, out_dir / f"{name}.html")
        runs = metrics.get("runs", [])
        manifest["reports"][name] = {"notebook_sha": _sha(ROOT / "notebooks" / f"{name}.ipynb"),
                                     "seconds": seconds, "headline": metrics.get("headline", {}),
                                     "verdict": metrics.get("verdict", ""), "params": params,
                                     "runs": {Path(r).name: round(training_seconds(ROOT / r), 1) for r in runs}}
    manifest.update({"profile": params.get("profile", "toy"), "commit": git_commit(),
                     "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "seconds": time.perf_counter() - t_all})
    write_json(mpath, manifest)
    return write_index(manifest, out_dir)


def write_metrics(path: str | os.PathLike, result: Result) -> None:
    """Called by each notebook's last cell: the machine-readable result beside its output (headline,
    verdict, the run folders the result used, and its records)."""
    write_json(Path(path), {"headline": result.headline, "verdict": result.verdict, "runs": list(result.runs),
                            **result.records})
