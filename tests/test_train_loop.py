"""`darknetpy partial`, `detector train` and `classifier train` through a real subprocess, and
the checkpoint rules (names, times, atomic writes, the resume state file)."""
import hashlib
import json
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


# -- detector train / classifier train

import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from test_resume import CFG, setup  # noqa: E402

LINE = re.compile(r"^(\d+): (-?[\d.]+|nan), (-?[\d.]+|nan) avg, [\d.]+ rate, [\d.]+ seconds, (\d+) images$")


def test_detector_train_prints_darknets_lines_and_writes_its_files(tmp_path):
    data, cfg = setup(tmp_path)
    r = run("detector", "train", data, cfg, "--deterministic", "--max-batches", 4, "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "tiny" and out[1] == "Learning Rate: 0.01, Momentum: 0.9, Decay: 0.0005"
    lines = [m.groups() for m in map(LINE.match, out) if m]
    assert [(int(b), int(n)) for b, _, _, n in lines] == [(i, i * 4) for i in range(1, 5)]
    loss = [float(x) for _, x, _, _ in lines]
    avg = np.float32(loss[0])
    for x in loss[1:]:
        avg = np.float32(float(avg) * .9 + x * .1)
    assert abs(float(lines[-1][2]) - avg) < 1e-5
    assert sum(line.startswith("Loaded: ") for line in out) == 4
    assert sum(line.startswith("Region Avg IOU: ") for line in out) == 8     # one per datum (subdivisions=2)
    backup = tmp_path / "backup"
    assert [json.loads(x)["batch"] for x in (backup / "tiny.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert (backup / "tiny_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (backup / "tiny.backup").stat().st_size == 20 + 4 * (8 + 24 + 8 * 27 + 16 + 48 + 16 * 72 + 18 + 18 * 16)
    assert not list(backup.glob(".tmp-*"))


def test_ctrl_c_saves_and_stops_cleanly(tmp_path):
    data, cfg = setup(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "darknetpy", "detector", "train", data, cfg, "--deterministic",
                          "--no-progress", "--chart", "none"], env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    log = tmp_path / "backup" / "tiny.jsonl"
    deadline = time.time() + 300
    while p.poll() is None and not (log.exists() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "continue with --resume" in err and "Traceback" not in err
    assert (tmp_path / "backup" / "tiny.backup.state").is_file()


def test_data_without_train_and_cfg_without_max_batches_are_one_line_exit_2(tmp_path):
    data, cfg = setup(tmp_path)
    bad = tmp_path / "bad.data"
    bad.write_text("classes=4\nvalid=valid.txt\n")
    r = run("detector", "train", bad, cfg, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no train= line" in r.stderr
    nomax = tmp_path / "nomax.cfg"
    nomax.write_text(CFG.replace("max_batches=36\n", ""))
    r = run("detector", "train", data, nomax, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no max_batches=" in r.stderr


def test_a_full_disk_is_reported_and_the_previous_checkpoint_kept(tmp_path, monkeypatch):
    import errno

    from darknetpy import fileio
    from darknetpy.errors import DarknetError
    from darknetpy.model import Model
    from darknetpy.train import checkpoint

    cfg = tmp_path / "small.cfg"
    cfg.write_text(PARTIAL_CFG)
    model = Model(cfg)
    model.init_weights()
    path = str(tmp_path / "small.backup")
    checkpoint.save(path, model.layers, 8, {"batch": 1})
    before = (open(path, "rb").read(), open(path + ".state", "rb").read())

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(fileio.os, "fsync", full)
    model.layers[0].biases = model.layers[0].biases + 1
    with pytest.raises(DarknetError, match="No space left on device"):
        checkpoint.save(path, model.layers, 16, {"batch": 2})
    assert (open(path, "rb").read(), open(path + ".state", "rb").read()) == before
    assert sorted(os.listdir(tmp_path)) == ["small.backup", "small.backup.state", "small.cfg"]
    monkeypatch.undo()
    assert checkpoint.latest(str(tmp_path), "small").record["batch"] == 1


def test_checkpoint_names_and_times_are_darknets():
    from darknetpy.train.checkpoint import basecfg, classifier_backups, detector_backups

    assert basecfg("cfg/yolov2-voc.cfg") == "yolov2-voc" and basecfg("a/b.c.cfg") == "b"
    saved = {i: detector_backups(i) for i in range(1, 30001) if detector_backups(i)}
    assert saved[100] == [".backup", "_100.weights"] and saved[900] == [".backup", "_900.weights"]
    assert saved[1000] == [".backup"] and saved[10000] == [".backup", "_10000.weights"]
    assert sorted(saved) == list(range(100, 30001, 100))
    assert sum("_" in n for v in saved.values() for n in v) == 9 + 3
    assert classifier_backups(1000, 3, 3) == [".backup"] and classifier_backups(7, 3, 4) == ["_4.weights"]


CLASSIFIER_CFG = """[net]
batch=8
subdivisions=1
width=24
height=24
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.05
max_batches=6
policy=poly
power=4

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
filters=4
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
groups=1
"""


def test_classifier_train_runs_darknets_loop(tmp_path):
    import cv2

    from darknetpy.datasets import SHAPES, background, draw_shape

    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        shape = i % len(SHAPES)
        im = background(rng, 32)
        draw_shape(im, shape, (6, 6, 26, 26), (255, 255, 255))
        path = tmp_path / f"{i:03d}_{SHAPES[shape]}.png"
        cv2.imwrite(str(path), im)
        paths.append(str(path))
    (tmp_path / "train.list").write_text("\n".join(paths) + "\n")
    (tmp_path / "labels.list").write_text("\n".join(SHAPES) + "\n")
    (tmp_path / "shapes.data").write_text("classes=4\ntrain=train.list\nlabels=labels.list\nbackup=backup\n")
    (tmp_path / "cls.cfg").write_text(CLASSIFIER_CFG)
    r = run("classifier", "train", "shapes.data", "cls.cfg", "--deterministic", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if re.match(r"^\d+, ", line)]
    assert len(lines) == 6
    m = re.match(r"^6, ([\d.]+): [\d.]+, [\d.]+ avg, [\d.]+ rate, [\d.]+ seconds, 48 images$", lines[-1])
    assert m and m.group(1) == "4.000"               # seen / N = 48 / 12
    backup = tmp_path / "backup"
    assert sorted(p.name for p in backup.glob("*.weights")) == ["cls.weights", "cls_1.weights", "cls_2.weights",
                                                                  "cls_3.weights", "cls_4.weights"]


TREE = "round -1\nangular -1\ncircle 0\nsquare 1\ntriangle 1\ncross 1\n"


def test_yolo9000_joint_training_from_the_command(tmp_path):
    """A list mixing detection images and classification-only ones (label lines with x = y = 0,
    which Darknet's loader turns into classification-only truths) trains through a tree."""
    data, cfg = setup(tmp_path)
    (tmp_path / "shapes.tree").write_text(TREE)
    text = CFG.replace("classes=4\n", "classes=6\ntree=shapes.tree\n").replace("filters=18\n", "filters=22\n")
    cfg.write_text(text)
    labels = sorted((tmp_path / "labels" / "train").glob("*.txt"))
    for i, path in enumerate(labels):
        rows = [line.split() for line in path.read_text().splitlines()]
        if i % 2:   # classification-only: the first object's leaf, no box
            rows = [[str(int(rows[0][0]) + 2), "0", "0", "0.5", "0.5"]]
        else:
            rows = [[str(int(r[0]) + 2), *r[1:]] for r in rows]
        path.write_text("".join(" ".join(r) + "\n" for r in rows))
    r = run("detector", "train", data, cfg, "--deterministic", "--max-batches", 3, "--no-progress", "--chart", "none",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [m.groups() for m in map(LINE.match, r.stdout.splitlines()) if m]
    assert len(lines) == 3 and all(np.isfinite(float(loss)) for _, loss, _, _ in lines)
    region = [line for line in r.stdout.splitlines() if line.startswith("Region Avg IOU")]
    assert len(region) == 6
    assert (tmp_path / "backup" / "tiny.backup").is_file()
