"""`darknetpy partial`, `detector train` and `classifier train` through a real subprocess, and
the checkpoint rules (names, times, atomic writes, the resume state file)."""
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "NUMBA_NUM_THREADS": "2"}

PARTIAL_CFG = """[net]
batch=1
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
dontloadscales=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear
"""
# floats per layer as loaded, by hand: biases, [scales, rolling mean, rolling variance], weights;
# layer 2 has dontloadscales=1: its file has no scales/rolling statistics, but Darknet saves them
LAYER_FLOATS = [4 + 3 * 4 + 4 * 3 * 9, 0, 8 + 8 * 4 * 9, 5 + 5 * 8]


def saved(body: np.ndarray, n: int) -> bytes:
    """What save_weights_upto writes for the first n layers: layer 2 gains scales 1, mean 0, variance 0."""
    first = body[:sum(LAYER_FLOATS[:min(n, 2)])]
    parts = [first]
    if n > 2:
        start = sum(LAYER_FLOATS[:2])
        parts += [body[start:start + 8], np.ones(8), np.zeros(16), body[start + 8:start + LAYER_FLOATS[2]]]
    if n > 3:
        parts.append(body[sum(LAYER_FLOATS[:3]):])
    return np.concatenate(parts).astype("<f4").tobytes()


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)


def weights_file(path, header: bytes, floats: np.ndarray) -> None:
    path.write_bytes(header + floats.astype("<f4").tobytes())


@pytest.fixture
def small(tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(PARTIAL_CFG)
    body = np.random.default_rng(1).standard_normal(sum(LAYER_FLOATS)).astype(np.float32)
    return cfg, body


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 9])
def test_partial_writes_darknets_header_and_the_first_n_layers(tmp_path, small, n):
    cfg, body = small
    weights = tmp_path / "full.weights"
    weights_file(weights, struct.pack("<iiiQ", 0, 2, 0, 123456), body)
    out = tmp_path / "small.conv"
    r = run("partial", cfg, weights, out, n)
    assert r.returncode == 0, r.stderr
    want = struct.pack("<iiiQ", 0, 2, 0, 0) + saved(body, n)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(want).hexdigest()


def test_partial_of_an_old_header_writes_the_new_one(tmp_path, small):
    """A 0.1.0 file (seen as an int32) comes out as Darknet writes every file: 0.2.0, uint64 seen."""
    cfg, body = small
    weights = tmp_path / "old.weights"
    weights_file(weights, struct.pack("<iiii", 0, 1, 0, 77), body)
    out = tmp_path / "old.conv"
    assert run("partial", cfg, weights, out, 1).returncode == 0
    assert out.read_bytes() == struct.pack("<iiiQ", 0, 2, 0, 0) + body[:LAYER_FLOATS[0]].astype("<f4").tobytes()


def test_partial_short_weights_is_one_line_exit_2_and_writes_nothing(tmp_path, small):
    cfg, body = small
    weights = tmp_path / "short.weights"
    weights_file(weights, struct.pack("<iiiQ", 0, 2, 0, 0), body[:100])
    r = run("partial", cfg, weights, tmp_path / "out.conv", 2)
    assert r.returncode == 2 and r.stderr.count("darknetpy: error:") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out.conv").exists() and not list(tmp_path.glob(".tmp-*"))
