"""Training learns: on the synthetic shapes dataset (darknetpy.datasets) the loss falls in a
short deterministic run from Darknet's random initial weights; the slow check runs
bench/learn.py's full training and requires mAP@0.5 >= 0.5 from `detector map`."""
import json
import subprocess
import sys

import pytest

from test_resume import ENV, REPO, setup


def test_the_loss_falls_on_synthetic_shapes(tmp_path):
    data, cfg = setup(tmp_path)
    r = subprocess.run([sys.executable, "-m", "darknetpy", "detector", "train", data, cfg, "--deterministic",
                        "--max-batches", "24", "--no-progress", "--chart", "none"], env=ENV, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    log = [json.loads(x) for x in (tmp_path / "backup" / "tiny.jsonl").read_text().splitlines()]
    first = sum(x["loss"] for x in log[:4]) / 4
    last = sum(x["loss"] for x in log[-4:]) / 4
    assert last < 0.6 * first, (first, last)


@pytest.mark.slow
def test_bench_learn_reaches_map_one_half(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "bench" / "learn.py"), "--root", str(tmp_path)], env=ENV,
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "learn.json").read_text())
    assert result["map"] >= 0.5, result
