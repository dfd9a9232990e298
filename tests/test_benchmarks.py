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
