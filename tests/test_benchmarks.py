"""The benchmark scripts still run (tiny settings, CPU): they are how speed claims are measured."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_paper_epoch_runs_end_to_end_on_the_cpu(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/paper_epoch.py"), "--device", "cpu", "--images", "4",
                          "--val", "2", "--size", "64", "--arch", "toyfcn", "--candidates", "50", "--crf-workers", "1",
                          "--root", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "relabel share" in out and "img/s" in out and "projected 45-epoch run" in out


def test_calibration_prints_every_statistic_and_skips_missing_real_sets(tmp_path):
    from boxsup.data.synthetic import ToySpec, ensure_toy

    root = ensure_toy(tmp_path / "toy", ToySpec(train=3, extra=2, val=2, test=2, context_train=2, context_val=2,
                                                imagenet=20))
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/calibration.py"), "--n", "2", "--data-root", str(root),
                          "--realdata", str(tmp_path / "absent")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "skipping weizmann_horse" in res.stdout and "skipping coco128_seg" in res.stdout
    for row in ("box fill", "pool ABO", "Eo-only k=5", "ceiling k=1", "CRF-box - ABO", "edge sharpness"):
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(row))
        assert float(line.split()[-1]) == float(line.split()[-1])  # a number, not NaN


def test_edge_sharpness_is_higher_for_a_sharp_boundary_than_a_blurred_one():
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from calibration import edge_sharpness

    rng = np.random.default_rng(0)
    truth = np.zeros((1, 64, 64), bool)
    truth[0, 16:48, 16:48] = True
    image = (rng.normal(100, 10, (64, 64, 3)) + 80 * truth[0, :, :, None]).clip(0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    assert edge_sharpness(image, truth) > edge_sharpness(blurred, truth) > 1


def test_crf_benchmark_compares_the_torch_crf_on_photos_and_skips_missing_sets(tmp_path):
    pytest.importorskip("pydensecrf")
    from boxsup.data.synthetic import ToySpec, ensure_toy
    from fixtures import write_voc

    root = ensure_toy(tmp_path / "toy", ToySpec(train=2, extra=2, val=3, test=2, context_train=2, context_val=2,
                                                imagenet=20))
    real = tmp_path / "realdata"
    # a stand-in for weizmann_horse (class 13 is VOC's horse); coco128_seg is absent
    write_voc(real / "weizmann_horse", {"h0": [(13, (4, 6, 30, 26))], "h1": [(13, (8, 4, 36, 28))]},
              {"val": ["h0", "h1"]}, h=32, w=40)
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/crf.py"), "--data-root", str(root), "--images", "2",
                          "--repeat", "1", "--workers", "1", "--photos", "2", "--strides", "1", "2",
                          "--realdata", str(real)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "coco128_seg not found, skipped" in out
    lines = [ln for ln in out.splitlines() if "source_stride" in ln and "agreement with pydensecrf" in ln]
    assert len(lines) == 2
    # the exact kernel and pydensecrf's lattice solve the same mean field: nearly every pixel agrees
    exact = float(lines[0].split("pydensecrf ")[1].split("%")[0])
    assert exact > 90.0


def test_toy_budget_builds_both_toys_and_prints_every_stage(tmp_path):
    pytest.importorskip("pydensecrf")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/toy_budget.py"), "--smoke", "--workers", "1",
                          "--root", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    for stage in ("benchmark", "body pre-training", "candidates", "mask: training and scoring",
                  "BoxSup k=5: CRF protocol", "networks' training", "CRF protocol"):
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(stage))
        assert line.rstrip().endswith("x"), line
    assert "variant: 80-px images" in res.stdout and "BoxSup k=5" in res.stdout
