"""Exact resume: a deterministic `detector train` run SIGKILLed at several random points and
resumed each time with --resume ends with weights bit-identical (SHA-256) to an
uninterrupted run. A tiny cfg on 32x32 synthetic images, so a run takes seconds."""
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "NUMBA_NUM_THREADS": "2"}
COMMAND = [sys.executable, "-m", "darknetpy"]
BATCHES = 36

CFG = f"""[net]
batch=4
subdivisions=2
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate=0.01
burn_in=5
max_batches={BATCHES}
policy=steps
steps=20,30
scales=.1,.1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=18
activation=linear

[region]
anchors=1.5,1.5, 3,3
bias_match=1
classes=4
coords=4
num=2
softmax=1
jitter=.2
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
absolute=1
thresh=.6
random=0
"""


def setup(root: Path):
    from darknetpy.datasets import make_detection_dataset

    data = make_detection_dataset(str(root), train=24, valid=4, size=32, seed=3)
    cfg = root / "tiny.cfg"
    cfg.write_text(CFG)
    return data, cfg


def command(data, cfg, *extra):
    return [*COMMAND, "detector", "train", data, cfg, "--deterministic", "--backup-every", "3", "--no-progress",
            "--chart", "none", *map(str, extra)]


def final_sha(root: Path) -> str:
    return hashlib.sha256((root / "backup" / "tiny_final.weights").read_bytes()).hexdigest()


def last_logged(log: Path) -> dict:
    try:
        lines = log.read_text().splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def logged_batch(log: Path) -> int:
    return last_logged(log).get("batch", 0)


def kill_at(cmd, log: Path, batch: int, rng: random.Random) -> bool:
    """Start `cmd`, SIGKILL it once the log reaches `batch` plus a random part of an
    iteration (of the last logged one's time: a fixed delay can outlast the few
    remaining iterations of this tiny run); True if it was killed before it finished."""
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while p.poll() is None and logged_batch(log) < batch and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, last_logged(log).get("seconds", 0.0)))
    alive = p.poll() is None
    if alive:
        p.send_signal(signal.SIGKILL)
    p.wait()
    p.stderr.close()
    return alive


@pytest.mark.slow
def test_killed_and_resumed_runs_end_bit_identical(tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    data, cfg = setup(ref)
    r = subprocess.run(command(data, cfg), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    want = final_sha(ref)

    data, cfg = setup(cut)
    log = cut / "backup" / "tiny.jsonl"
    rng = random.Random(17)
    points = sorted(rng.sample(range(2, BATCHES - 2), 4))
    kills = sum(kill_at(command(data, cfg, "--resume"), log, b, rng) for b in points)
    assert kills >= 3
    r = subprocess.run(command(data, cfg, "--resume"), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    assert final_sha(cut) == want
    batches = [json.loads(x)["batch"] for x in log.read_text().splitlines()]
    assert batches == list(range(1, BATCHES + 1))


def test_state_file_sits_beside_each_checkpoint_and_a_stale_one_is_skipped(tmp_path):
    """Every checkpoint has its .state; a state that does not match its weights (a kill
    between the two renames) is not used."""
    from darknetpy.train import checkpoint

    data, cfg = setup(tmp_path)
    r = subprocess.run(command(data, cfg, "--max-batches", 6), env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    backup = tmp_path / "backup"
    assert (backup / "tiny.backup").is_file() and (backup / "tiny.backup.state").is_file()
    assert "continue with --resume" in r.stderr
    c = checkpoint.latest(str(backup), "tiny")
    assert c is not None and c.record["seen"] == 6 * 4 and c.record["batch"] == 6
    with open(backup / "tiny.backup", "r+b") as f:     # weights that no state belongs to
        f.seek(100)
        f.write(b"\x01\x02\x03\x04")
    assert checkpoint.latest(str(backup), "tiny") is None


def test_a_kill_between_a_saves_renames_keeps_a_checkpoint(tmp_path, monkeypatch):
    """checkpoint.save overwrites `X.backup` at every save: killed before its renames the
    old pair stays, killed between them the new weights and the new state (still at
    `.state.next`) are found; either way --resume finds a checkpoint (a kill there used to
    leave none, and the run started again from random weights)."""
    from darknetpy.train import checkpoint

    data, cfg = setup(tmp_path)
    r = subprocess.run(command(data, cfg, "--max-batches", 6), env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    backup = str(tmp_path / "backup")
    old = checkpoint.latest(backup, "tiny")
    real_replace = os.replace

    def killed_at(n):
        calls = []

        def replace(a, b):
            calls.append(a)
            if len(calls) == n:
                raise KeyboardInterrupt
            real_replace(a, b)
        return replace

    path = os.path.join(backup, "tiny.backup")
    monkeypatch.setattr(checkpoint, "save_weights_upto", lambda p, layers, seen: shutil.copy(path + ".orig", p))
    shutil.copy(path, path + ".orig")
    with open(path + ".orig", "r+b") as f:    # the new weights differ from the old
        f.seek(100)
        f.write(b"\x01\x02\x03\x04")
    monkeypatch.setattr(checkpoint, "learned_updates", lambda layers: old.updates)
    # os.replace calls in a save: the state to .state.next, the weights, the state
    # killed at the weights' rename: the old pair
    monkeypatch.setattr(checkpoint.os, "replace", killed_at(2))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, [], 7 * 4, {**old.record, "batch": 7})
    c = checkpoint.latest(backup, "tiny")
    assert c is not None and c.record["batch"] == 6
    # killed at the state's rename: the new pair
    monkeypatch.setattr(checkpoint.os, "replace", killed_at(3))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, [], 7 * 4, {**old.record, "batch": 7})
    c = checkpoint.latest(backup, "tiny")
    assert c is not None and c.record["batch"] == 7 and c.record["seen"] == 7 * 4
