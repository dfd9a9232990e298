"""Fuzzing the public loaders with mutated VOC XML, mask PNGs and COCO json (see fuzz_cases.py).

A fast, seeded subset runs with every test run; the full suite (>= 1,000 XML, >= 200 mask and
>= 100 COCO cases) is marked ``fuzz`` and runs with ``make fuzz`` (BOXSUP_FUZZ_FULL=1). Either fails
on any silently wrong load, unexpected exception type, unnamed DataError, rejected valid file or
killed worker, and prints the count of each outcome.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fuzz_cases import (FAILURES, Case, classify, coco_cases, coco_counted_skip, load_coco, load_voc, make_coco,
                        make_voc, mask_cases, restore, run_capped, summarise, xml_cases, env_flag)

FULL = {"xml": 1280, "mask": 300, "coco": 200}
FAST = {"xml": 85, "mask": 50, "coco": 55}


def run_xml(tmp: Path, n: int):
    root = tmp / "voc_xml"
    base = make_voc(root)
    truth = {m: load_voc(root, m) for m in ("none", "required")}
    cases = xml_cases(n)
    for i, c in enumerate(cases):
        c.masks = "none" if i % 2 == 0 else "required"  # boxes alone, and boxes checked against masks

    def run_one(case: Case):
        restore(root, base["files"])
        case.apply(root)
        return classify(case, root, lambda: load_voc(root, case.masks), truth[case.masks], "img")
    return cases, run_capped(cases, run_one)


def run_mask(tmp: Path, n: int):
    root = tmp / "voc_mask"
    base = make_voc(root)
    truth = load_voc(root, "required")
    _, cls, inst = base["truth"]
    cases = mask_cases(n, cls, inst, base["files"][Path("JPEGImages/img.jpg")])

    def run_one(case: Case):
        restore(root, base["files"])
        case.apply(root)
        return classify(case, root, lambda: load_voc(root, "required"), truth, "img")
    return cases, run_capped(cases, run_one)


def run_coco(tmp: Path, n: int):
    root = tmp / "coco"
    base = make_coco(root)
    truth = load_coco(root)
    cases = coco_cases(n, base["data"], base["dog"])

    def run_one(case: Case):
        restore(root, base["files"])
        case.apply(root)
        return classify(case, root, lambda: load_coco(root), truth, "annotations", coco_counted_skip)
    return cases, run_capped(cases, run_one)


RUNNERS = {"xml": run_xml, "mask": run_mask, "coco": run_coco}


def check_suite(kind: str, n: int, tmp: Path) -> None:
    cases, outcomes = RUNNERS[kind](tmp, n)
    counts, failures = summarise(cases, outcomes)
    line = f"fuzz {kind}: {len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print("\n" + line)
    out = os.environ.get("BOXSUP_FUZZ_OUT")
    if out:  # make fuzz collects the counts for the README
        path = Path(out)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[kind] = {"cases": len(cases), **dict(counts)}
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    assert len(outcomes) == n
    assert not failures, f"{line}\n" + "\n".join(failures[:20])
    # the suite exercised both sides: valid files loaded, invalid ones refused
    assert counts["correct"] > 0 and counts["data_error"] > 0, line


@pytest.mark.parametrize("kind", list(FAST))
def test_fuzz_fast(kind, tmp_path):
    check_suite(kind, FAST[kind], tmp_path)


@pytest.mark.fuzz
@pytest.mark.skipif(not env_flag("BOXSUP_FUZZ_FULL"), reason="full fuzz suite: BOXSUP_FUZZ_FULL=1 (make fuzz)")
@pytest.mark.parametrize("kind", list(FULL))
def test_fuzz_full(kind, tmp_path):
    check_suite(kind, FULL[kind], tmp_path)


# --- the harness itself can fail ---------------------------------------------------------------

def naive_load_voc(root: Path):
    """The loader as it was before issue 14: ElementTree + float(), no checks."""
    tree = ET.parse(root / "Annotations" / "img.xml").getroot()
    from boxsup.data.sample import VOC_CLASSES
    boxes, labels = [], []
    for obj in tree.iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x0 - 1, y0 - 1, x1, y1])
        labels.append(VOC_CLASSES.index(obj.findtext("name").strip()))
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def test_harness_flags_a_lenient_loader(tmp_path):
    root = tmp_path / "voc"
    base = make_voc(root)
    truth = naive_load_voc(root)
    found = set()
    for case in xml_cases(200):
        if case.family not in ("bad_number", "renamed_object", "no_objects", "bad_declaration"):
            continue
        restore(root, base["files"])
        case.apply(root)
        found.add(classify(case, root, lambda: naive_load_voc(root), truth, "img")[0])
    # NaN / 1_2 load as boxes, renamed objects vanish, encodings raise LookupError: all caught
    assert {"wrong", "unexpected"} <= found and found & set(FAILURES)


def test_harness_records_a_killed_worker():
    def run_one(case: Case):
        if case.family == "die":
            os._exit(3)
        if case.family == "hog":
            np.ones((1 << 40,), np.uint8)  # a terabyte: refused under the cap (MemoryError)
        return "correct", ""
    cases = [Case(f, True, lambda root: None, "x") for f in ("ok", "die", "ok", "hog", "ok")]
    outcomes = run_capped(cases, run_one)
    assert [o for o, _ in outcomes][:3] == ["correct", "killed", "correct"] and outcomes[4][0] == "correct"
