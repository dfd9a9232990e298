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
