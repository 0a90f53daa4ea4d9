"""The dataset format and the issue's "Bad input" rules for training data: a missing
label file, a malformed label line, a list with Windows line endings, an image that
does not decode, a .data file without train=."""
import json
import os
import shutil

import numpy as np
import pytest

from darknetpy.data import get_paths, training_data
from darknetpy.errors import DataError
from darknetpy.loader import Loader
from darknetpy.loader.labels import read_truth_boxes

KIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference-data")
pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(KIT, "manifest.json")), reason="data kit absent")


def behaviours():
    with open(os.path.join(KIT, "manifest.json")) as f:
        return json.load(f)["behaviours"]


ARGS = dict(n=1, w=64, h=64, boxes=30, classes=20, jitter=".3", hue=".1", saturation="1.5", exposure="1.5", threads=1)


def load_one(list_name, seed=1):
    warnings = []
    loader = Loader(get_paths(list_name), "detection", ARGS, seed=seed, warn=warnings.append)
    X, y = loader.load(64, 64)
    return X, y, warnings, loader


def test_missing_label_file_warns_once_and_trains_without_objects(monkeypatch):
    monkeypatch.chdir(KIT)
    X, y, warnings, loader = load_one(behaviours()["load_missing"]["list"])
    assert X.shape == (1, 3, 64, 64) and not y.any()
    assert len(warnings) == 1 and "behaviour/labels/missing.txt" in warnings[0]
    assert loader.rng.calls == 1 + 10          # the path, then the image's 10 draws, no box draws
    loader.load(64, 64)
    assert len(warnings) == 1                  # once per file, not per batch


def test_malformed_line_warns_with_file_and_line_and_keeps_darknets_boxes(monkeypatch):
    monkeypatch.chdir(KIT)
    b = behaviours()
    X, y, warnings, _ = load_one(b["load_malformed"]["list"])
    nonzero = [[int(i), float(v).hex()] for i, v in zip(np.flatnonzero(y[0]), y[0][y[0] != 0])]
    assert [[i, float.fromhex(v)] for i, v in nonzero] == [[i, float.fromhex(v)] for i, v in b["load_malformed"]["y_nonzero"]]
    assert len(warnings) == 1 and "behaviour/labels/malformed.txt:3" in warnings[0]


@pytest.mark.parametrize("name", ["read_boxes_malformed", "read_boxes_variants"])
def test_read_boxes_as_fscanf(name, monkeypatch):
    monkeypatch.chdir(KIT)
    case = behaviours()[name]
    warnings = []
    boxes = read_truth_boxes(case["label_file"], warnings.append)
    lines = [f"{int(r[0])} " + " ".join(float(v).hex() for v in r[1:]) for r in boxes]
    want = case["read_boxes_output"]
    assert want[0] == f"count {len(boxes)}"
    assert [[float.fromhex(v) if "x" in v else int(v) for v in line.split()] for line in want[1:]] == \
           [[float.fromhex(v) if "x" in v else int(v) for v in line.split()] for line in lines]
    assert len(warnings) == 1 and case["label_file"] + ":" in warnings[0]


def test_windows_line_endings_are_read(monkeypatch):
    monkeypatch.chdir(KIT)
    paths = get_paths(behaviours()["load_crlf"]["list"])
    assert paths == ["images/gray_50x40.png"]
    X, y, warnings, _ = load_one(behaviours()["load_crlf"]["list"])
    assert not warnings and X.shape == (1, 3, 64, 64)


def test_an_image_that_does_not_decode_is_replaced_by_the_next(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    shutil.copy(os.path.join(KIT, "images", "odd_37x23.png"), tmp_path / "images" / "odd.png")
    (tmp_path / "labels" / "odd.txt").write_text("1 .5 .5 .5 .5\n")
    (tmp_path / "train.list").write_text("images/broken.png\nimages/odd.png\n")
    monkeypatch.chdir(tmp_path)
    warnings = []
    args = dict(ARGS, n=4)
    X, y = Loader(get_paths("train.list"), "detection", args, seed=2, warn=warnings.append).load(64, 64)
    assert len(warnings) == 1 and "images/broken.png" in warnings[0]
    assert (y[:, 4] == 1).all() and (y[:, 2] > 0).all()   # every row is odd.png's box


def test_data_file_needs_train(tmp_path):
    (tmp_path / "t.list").write_text("a.jpg\n")
    good = tmp_path / "good.data"
    good.write_text(f"classes= 3\ntrain  = {tmp_path}/t.list\r\nbackup = backup/\n# note\nnames=x.names\n")
    d = training_data(str(good))
    assert (d.train, d.backup, d.classes, d.names) == (f"{tmp_path}/t.list", "backup/", 3, "x.names")
    bad = tmp_path / "bad.data"
    bad.write_text("classes=3\nvalid=t.list\n")
    with pytest.raises(DataError) as e:
        training_data(str(bad))
    assert "train=" in str(e.value) and "\n" not in str(e.value)


def test_fill_hierarchy_sets_parents_and_marks_empty_groups():
    from darknetpy.loader.labels import SECRET_NUM, fill_hierarchy

    class Tree:
        parent = np.array([-1, -1, 0, 0, 1], np.int32)        # groups: {0, 1}, {2, 3}, {4}
        group_size = np.array([2, 2, 1], np.int32)
        n = 5

    row = np.array([0, 0, 0, 1, 0], np.float32)
    fill_hierarchy(row, Tree())
    assert row.tolist() == [1, 0, 0, 1, SECRET_NUM]
