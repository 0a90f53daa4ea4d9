"""`darknetpy dump-train` through a real subprocess: the kit's stage names and hashes,
lines.txt and final.weights; a user error is one line with exit status 2."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kit
from test_train_kit import TRAIN_KIT, case, expected, mismatches

ENV = {**os.environ, "PYTHONPATH": str(kit.REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
pytestmark = pytest.mark.skipif(not (TRAIN_KIT / "manifest.json").is_file() or not kit.available(),
                                reason=f"training kit not found at {TRAIN_KIT} or {kit.MISSING}")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)


def test_dump_train_writes_the_kits_stages(tmp_path):
    c = case("tiny-voc-b2")
    inputs = TRAIN_KIT / "inputs"
    r = run("dump-train", TRAIN_KIT / c["cfg"], kit.weights(c["weights"]["file"]), "--x", inputs / "tiny-voc-b2_X.npy",
            "--y", inputs / "tiny-voc-b2_y.npy", "--datums", 3, "-o", tmp_path / "out", "--compat", "darknet-cpu")
    assert r.returncode == 0, r.stderr
    want = expected("tiny-voc-b2", "stock")
    stages = json.loads((tmp_path / "out" / "stages.json").read_text())
    assert [s["stage"] for s in stages] == ["d1_forward", "d1_backward", "d1_update", "d2_end", "d3_end"]
    for stage in stages:
        assert not mismatches(stage, want["stages"][stage["stage"]])
    lines = (tmp_path / "out" / "lines.txt").read_text().splitlines()
    assert [line for line in lines if line.startswith("Region")] == want["region_lines"]
    assert lines[-1] == want["log_lines"][-1] and "never changes" in lines[0]
    digest = hashlib.sha256((tmp_path / "out" / "final.weights").read_bytes()).hexdigest()
    assert digest == want["final_weights_sha256"]


def test_dump_train_wrong_rows_is_one_line_exit_2(tmp_path):
    c = case("darknet19-b2")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 3, 128, 128), np.float32))
    r = run("dump-train", TRAIN_KIT / c["cfg"], kit.weights(c["weights"]["file"]), "--x", x,
            "--y", TRAIN_KIT / "inputs" / "darknet19-b2_y.npy", "-o", tmp_path / "out")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "batch x subdivisions = 2 rows" in r.stderr
    assert not (tmp_path / "out").exists()
