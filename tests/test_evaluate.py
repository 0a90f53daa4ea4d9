"""Evaluation (darknetpy/evaluate): `detector valid`, `recall`, `map`, `calc_anchors`.

A dataset is built in a temporary folder (images, label files, list, names and .data
files). The AP values of a small worked example are computed by hand below; the COCO
numbers are compared with pycocotools' own run on JSON files written here; valid's files
are read back and compared with `detector test --json` on the same images, with a tiny
synthetic detector (weights written with numpy) so that the network part takes seconds.
"""
import json
import os
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest

from darknetpy import evaluate
from darknetpy.data import find_label_file, label_path, read_boxes
from darknetpy.detect import box_iou
from darknetpy.errors import DataError
from darknetpy.evaluate import ImageDetections, ScoredBox
from darknetpy.evaluate.boxes import iou_matrix
from darknetpy.evaluate.results import basecfg, coco_image_id, voc_line, write_results

ENV = dict(os.environ, NUMBA_NUM_THREADS="2")

try:
    import pycocotools  # noqa: F401
    HAVE_COCO = True
except ImportError:
    HAVE_COCO = False
try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False
NO_COCO = "pycocotools is not installed (pip install 'darknet-exact[eval]')"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)


def one_error_line(r):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("darknetpy: error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


# ---------------------------------------------------------------------------
# Label files and Darknet's path rules
# ---------------------------------------------------------------------------

def test_label_path_follows_darknets_first_match_rules():
    assert label_path("data/voc/VOC2007/JPEGImages/000001.jpg") == "data/voc/VOC2007/labels/000001.txt"
    assert label_path("coco/images/val2014/COCO_val2014_000000000042.jpg") == \
        "coco/labels/val2014/COCO_val2014_000000000042.txt"
    assert label_path("a/images/b/images/x.png") == "a/labels/b/images/x.txt"     # the first match only
    assert label_path("drawings/images/x.JPEG") == "dlabelsings/labels/x.txt"      # `raw` inside a name too
    assert label_path("images/x.jpeg") == "labels/x.jpeg"                          # Darknet leaves .jpeg
    assert find_label_file("images/x.jpeg") == "labels/x.txt"
    assert find_label_file("images/x.bmp") == "labels/x.txt"


def test_read_boxes_and_its_errors(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("0 0.5 0.5 0.25 0.125\r\n\n2 .1 .2 .3 .4\n")
    boxes = read_boxes(str(good), classes=3)
    assert [(b.id, float(b.x), float(b.w)) for b in boxes] == [(0, 0.5, 0.25), (2, np.float32(0.1), np.float32(0.3))]
    for text, message in [("0 0.5 0.5 0.2\n", "good2.txt:1"), ("0 .5 .5 .2 .2\nx .5 .5 .2 .2\n", "good2.txt:2"),
                          ("3 .5 .5 .2 .2\n", "class 3 is outside 0..2"), ("0 .5 nan .2 .2\n", "finite")]:
        bad = tmp_path / "good2.txt"
        bad.write_text(text)
        with pytest.raises(DataError, match=message):
            read_boxes(str(bad), classes=3)
    with pytest.raises(FileNotFoundError):
        read_boxes(str(tmp_path / "none.txt"))


def test_iou_matrix_is_darknets_box_iou_bit_for_bit():
    rng = np.random.default_rng(3)
    a = rng.random((40, 4), dtype=np.float32)
    b = rng.random((30, 4), dtype=np.float32)
    b[0] = a[0]
    m = iou_matrix(a, b)
    want = np.array([[box_iou(x, y, ftz=False) for y in b] for x in a], np.float32)
    assert m.tobytes() == want.tobytes()
    assert abs(m[0, 0] - 1) < 1e-5  # from the edges, not exactly 1 (as in Darknet)


# ---------------------------------------------------------------------------
# valid's line formats
# ---------------------------------------------------------------------------

def test_valid_lines_are_darknets_formats():
    b = ScoredBox(0, np.float32(0.5), np.float32(0.5), np.float32(0.5), np.float32(0.2), np.float32(0.4))
    assert voc_line("img", b, 100, 50) == "img 0.500000 41.000000 16.000000 61.000000 36.000000\n"
    edge = ScoredBox(0, np.float32(0.25), np.float32(0.05), np.float32(0.95), np.float32(0.2), np.float32(0.2))
    assert voc_line("img", edge, 100, 50) == "img 0.250000 1.000000 43.500000 16.000000 50.000000\n"
    assert basecfg("data/x/COCO_val2014_000000000139.jpg") == "COCO_val2014_000000000139"
    assert coco_image_id("data/x/COCO_val2014_000000000139.jpg") == 139
    assert coco_image_id("data/img_7.png") == 7 and coco_image_id("data/img7.png") == 0


def test_valid_leaves_nothing_half_written(tmp_path):
    def images():
        yield ImageDetections("a.png", 10, 10, [ScoredBox(0, np.float32(.5), *map(np.float32, (.5, .5, .2, .2)))])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_results(images(), ["a", "b"], 2, folder=str(tmp_path / "results"))
    assert list((tmp_path / "results").iterdir()) == []


# ---------------------------------------------------------------------------
# A worked example: AP by hand
# ---------------------------------------------------------------------------

NAMES = ["cat", "dog", "bird"]
SIZE = (100, 100)
TRUTH = {  # image -> (class, x, y, w, h)
    "img_1": [(0, .3, .3, .2, .2), (0, .7, .7, .2, .2), (1, .5, .5, .4, .4)],
    "img_2": [(0, .5, .5, .3, .3)],
}
DETECTIONS = {  # image -> (class, prob, x, y, w, h)
    "img_1": [(0, .9, .3, .3, .2, .2),      # cat A exactly: TP
              (0, .8, .32, .3, .2, .2),     # cat A again (IoU .82): FP, A is taken
              (0, .5, .7, .7, .2, .2),      # cat B exactly: TP
              (0, .2, .8, .7, .2, .2),      # cat B at IoU 1/3: FP, below the .25 confidence
              (1, .3, .55, .5, .4, .4),     # the dog at IoU .78: TP
              (2, .9, .5, .5, .1, .1)],     # a bird where there is none: FP, and no bird to find
    "img_2": [(0, .7, .1, .1, .1, .1),      # no cat there: FP
              (0, .6, .5, .5, .3, .3),      # cat D exactly: TP
              (1, .95, .5, .5, .3, .3)],    # no dog in img_2: FP
}
# Ranked cat detections: TP FP FP TP TP FP over 3 cats: precision 1 1/2 1/3 1/2 3/5 1/2, recall 1/3 1/3 1/3
# 2/3 1 1; made non-increasing from the right: 1 3/5 3/5 3/5 3/5 1/2. Area (VOC2010): 1/3*1 + 1/3*3/5 + 1/3*3/5
# = 11/15. 11 points: levels 0-.3 -> 1, .4-1 -> 3/5: (4 + 7*3/5)/11. 101 points: levels 0-.33 -> 1 (34),
# .34-1 -> 3/5 (67): (34 + 67*3/5)/101. Dogs: FP TP over 1 dog: precision 0 1/2, recall 0 1: 1/2 every way.
HAND_AP = {0: {"cat": Fraction(11, 15), "dog": Fraction(1, 2)},
           11: {"cat": Fraction(41, 55), "dog": Fraction(1, 2)},
           101: {"cat": Fraction(371, 505), "dog": Fraction(1, 2)}}


def write_dataset(root, truth=TRUTH, names=NAMES, extra=""):
    """images/<name>.png (SIZE, noise), labels/<name>.txt, valid.txt, names and .data."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name, boxes in truth.items():
        cv2.imwrite(str(root / "images" / f"{name}.png"), rng.integers(0, 256, (SIZE[1], SIZE[0], 3), np.uint8))
        (root / "labels" / f"{name}.txt").write_text("".join(f"{k} {x} {y} {w} {h}\n" for k, x, y, w, h in boxes))
    (root / "valid.txt").write_text("".join(f"{root}/images/{name}.png\n" for name in truth))
    (root / "names.txt").write_text("\n".join(names) + "\n")
    data = root / "set.data"
    data.write_text(f"classes={len(names)}\ntrain={root}/valid.txt\nvalid={root}/valid.txt\n"
                    f"names={root}/names.txt\nresults={root}/results\n{extra}")
    return data


def synthetic_detections(root):
    f32 = np.float32
    return [ImageDetections(str(root / "images" / f"{name}.png"), *SIZE,
                            [ScoredBox(k, *map(f32, (p, x, y, w, h))) for k, p, x, y, w, h in DETECTIONS[name]])
            for name in TRUTH]


@pytest.mark.parametrize("points", [0, 11, 101])
def test_voc_ap_equals_the_hand_computed_values(tmp_path, points):
    from darknetpy.evaluate.voc import evaluate as voc_evaluate

    data = write_dataset(tmp_path)
    detections = synthetic_detections(tmp_path)
    truths = evaluate.ground_truth([d.path for d in detections], 3)
    cat, dog, bird = voc_evaluate(truths, detections, NAMES, iou=0.5, points=points)
    assert cat.ap == pytest.approx(float(HAND_AP[points]["cat"]), abs=1e-12)
    assert dog.ap == pytest.approx(float(HAND_AP[points]["dog"]), abs=1e-12)
    assert bird.ap is None and bird.ground_truth == 0
    # at confidence .25: cats TP FP FP TP TP, dogs FP TP, the bird FP
    assert (cat.tp, cat.fp, cat.ground_truth) == (3, 2, 3) and (dog.tp, dog.fp) == (1, 1) and (bird.tp, bird.fp) == (0, 1)
    if points != 101:  # the API's map (the command's --points 101 is pycocotools' metric)
        result = evaluate.map(str(data), detections=detections, points=points)
        assert result.mAP == pytest.approx(float((HAND_AP[points]["cat"] + HAND_AP[points]["dog"]) / 2), abs=1e-12)
        assert (result.tp, result.fp, result.ground_truth) == (4, 4, 4)


def test_difficult_objects_are_neither_true_nor_false_positives(tmp_path):
    hard = tmp_path / "hard" / "labels"
    hard.mkdir(parents=True)
    (hard / "img_1.txt").write_text("0 .3 .3 .2 .2\n")    # also where cat A is: matched detections stay
    (hard / "img_2.txt").write_text("0 .1 .1 .1 .1\n")    # where img_2's "no cat there" detection is
    (tmp_path / "hard.txt").write_text(f"{tmp_path}/hard/images/img_1.png\n{tmp_path}/hard/images/img_2.png\n")
    data = write_dataset(tmp_path, extra=f"difficult={tmp_path}/hard.txt\n")
    result = evaluate.map(str(data), detections=synthetic_detections(tmp_path), points=0)
    cat = result.classes[0]
    # cats ranked TP FP TP TP FP: precision 1 1/2 2/3 3/4 3/5, recall 1/3 1/3 2/3 1 1: 1/3 + 1/3*3/4 + 1/3*3/4
    assert cat.ap == pytest.approx(5 / 6, abs=1e-12) and (cat.tp, cat.fp, cat.detections) == (3, 1, 5)
    assert result.mAP == pytest.approx((5 / 6 + 1 / 2) / 2, abs=1e-12)


def test_recall_is_darknets_validate_detector_recall():
    from darknetpy.detect import Box, Detection
    from darknetpy.evaluate.dataset import ImageTruth
    from darknetpy.evaluate.recall import RecallResult, image_recall
    from darknetpy.data import TruthBox

    f32 = np.float32

    def det(i, obj, x, y, w, h):
        return Detection(i, Box(*map(f32, (x, y, w, h))), f32(obj), 2, {0: f32(obj)} if obj else {})

    dets = [det(0, .9, .3, .3, .2, .2), det(1, .8, .32, .3, .2, .2),   # IoU .82 > .4: the second is suppressed
            det(2, .5, .7, .7, .2, .2), det(3, 0, .5, .5, .1, .1)]     # objectness 0: not a proposal
    truth = ImageTruth("a.png", "a.txt", [TruthBox(0, *map(f32, (.32, .3, .2, .2))),    # best IoU .82 with the first
                                          TruthBox(1, *map(f32, (.5, .5, .1, .1)))])    # nothing near
    image = image_recall("a.png", dets, truth)
    assert (image.proposals, image.objects, image.found) == (2, 2, 1)
    assert image.best[0] == box_iou((.3, .3, .2, .2), (.32, .3, .2, .2)) and image.best[1] == 0
    result = RecallResult()
    assert result.add(image) == "    0     1     2\tRPs/Img: 2.00\tIOU: 40.91%\tRecall:50.00%"
    empty = RecallResult()
    assert empty.add(image_recall("b.png", dets, ImageTruth("b.png", "b.txt", []))) == \
        "    0     0     0\tRPs/Img: 2.00\tIOU: -nan%\tRecall:-nan%"


def test_map_json_and_iou_threshold(tmp_path):
    data = write_dataset(tmp_path)
    result = evaluate.map(str(data), detections=synthetic_detections(tmp_path), iou=0.8, points=0)
    # at IoU .8 the dog (IoU .78) is missed and the second cat A detection (IoU .82) is not a match either
    assert result.classes[1].ap == 0.0
    j = result.to_json()
    assert set(j) >= {"mAP", "iou", "points", "classes"} and j["iou"] == 0.8 and j["points"] == 0
    assert [set(c) >= {"id", "name", "ap", "tp", "fp", "ground_truth"} for c in j["classes"]] == [True] * 3
    json.dumps(j)


def test_average_precision_definitions_on_a_plain_curve():
    rec, prec = [0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]
    assert evaluate.average_precision(rec, prec, 0) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert evaluate.average_precision(rec, prec, 11) == pytest.approx((6 + 5 * 2 / 3) / 11)


# ---------------------------------------------------------------------------
# COCO: pycocotools' own numbers
# ---------------------------------------------------------------------------

def coco_json_files(root):
    """The worked example as COCO JSON, written here independently of darknetpy."""
    w, h = SIZE
    images = [{"id": i + 1, "width": w, "height": h, "file_name": name} for i, name in enumerate(TRUTH)]
    anns, dets = [], []
    for i, name in enumerate(TRUTH):
        for k, x, y, bw, bh in TRUTH[name]:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": k + 1, "iscrowd": 0,
                         "bbox": [(x - bw / 2) * w, (y - bh / 2) * h, bw * w, bh * h], "area": bw * w * bh * h})
        for k, p, x, y, bw, bh in DETECTIONS[name]:
            left, top = max((x - bw / 2) * w, 0), max((y - bh / 2) * h, 0)
            right, bottom = min((x + bw / 2) * w, w), min((y + bh / 2) * h, h)
            dets.append({"image_id": i + 1, "category_id": k + 1, "bbox": [left, top, right - left, bottom - top],
                         "score": p})
    gt = {"images": images, "annotations": anns, "categories": [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)]}
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "dt.json").write_text(json.dumps(dets))
    return root / "gt.json", root / "dt.json"


def pycocotools_run(gt_file, dt_file):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(str(dt_file)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.skipif(not HAVE_COCO, reason=NO_COCO)
def test_coco_numbers_are_pycocotools_own(tmp_path):
    data = write_dataset(tmp_path)
    gt_file, dt_file = coco_json_files(tmp_path)
    ev = pycocotools_run(gt_file, dt_file)
    from darknetpy.evaluate import coco

    from_files = coco.evaluate(str(gt_file), str(dt_file))
    assert list(from_files.stats.values()) == list(ev.stats)
    result = evaluate.map(str(data), detections=synthetic_detections(tmp_path), points=101)
    assert list(result.coco["stats"].values()) == list(ev.stats)
    assert result.mAP == ev.stats[0]
    per_class = [ev.eval["precision"][:, :, k, 0, -1] for k in range(3)]
    assert [c.ap for c in result.classes[:2]] == [float(p[p > -1].mean()) for p in per_class[:2]]
    assert result.classes[2].ap is None
    # where VOC's matching and COCO's coincide (no object claimed twice), VOC's 101-point AP at IoU .5 is
    # pycocotools' AP50
    from darknetpy.evaluate.voc import evaluate as voc_evaluate
    stats = voc_evaluate(evaluate.ground_truth([d.path for d in synthetic_detections(tmp_path)], 3),
                         synthetic_detections(tmp_path), NAMES, iou=0.5, points=101)
    assert [s.ap for s in stats[:2]] == pytest.approx([float(ev.eval["precision"][0, :, k, 0, -1].mean())
                                                       for k in range(2)], abs=1e-12)


# ---------------------------------------------------------------------------
# calc_anchors
# ---------------------------------------------------------------------------

CLUSTERS = [(30, 40), (100, 60), (60, 150), (200, 220), (350, 180)]


def cluster_boxes(n=60, seed=1):
    rng = np.random.default_rng(seed)
    return np.concatenate([np.array(c) * rng.uniform(0.95, 1.05, (n, 2)) for c in CLUSTERS])


def test_calc_anchors_recovers_known_clusters():
    boxes = cluster_boxes()
    result = evaluate.anchors(boxes, 5, 416, 416, seed=3)
    assert result.avg_iou > 0.9
    from darknetpy.evaluate.anchors import wh_iou
    match = wh_iou(np.array(CLUSTERS, float), result.anchors)
    assert (match.max(axis=1) > 0.95).all() and sorted(match.argmax(axis=1)) == list(range(5))
    assert np.array_equal(evaluate.anchors(boxes, 5, 416, 416, seed=3).anchors, result.anchors)
    areas = result.anchors[:, 0] * result.anchors[:, 1]
    assert (np.diff(areas) > 0).all()


def test_calc_anchors_command_is_deterministic(tmp_path):
    boxes = cluster_boxes(20) / 416
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    paths = []
    for i in range(10):
        paths.append(f"images/{i}.jpg")
        (tmp_path / "labels" / f"{i}.txt").write_text(
            "".join(f"{i % 3} .5 .5 {w:.6f} {h:.6f}\n" for w, h in boxes[i::10]))
    (tmp_path / "train.txt").write_text("\n".join(paths) + "\n")
    (tmp_path / "a.data").write_text("train=train.txt\n")
    args = ("detector", "calc_anchors", "a.data", "-num_of_clusters", 5, "-width", 416, "-height", 416)
    first = run(*args, "--json", "a.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert run(*args, cwd=tmp_path).stdout == first.stdout
    lines = first.stdout.splitlines()
    assert lines[1] == " read labels from 10 images: 100 boxes"
    region = [line for line in lines if line.startswith("[region] anchors = ")][0]
    yolo = [line for line in lines if line.startswith("[yolo]   anchors = ")][0]
    j = json.loads((tmp_path / "a.json").read_text())
    assert j["avg_iou"] > 0.9 and len(j["anchors"]) == 5
    assert region.endswith(", ".join(f"{w / 32:.4f},{h / 32:.4f}" for w, h in j["anchors"]))
    assert yolo.endswith(", ".join(f"{round(w)},{round(h)}" for w, h in j["anchors"]))
    other = run(*args, "--seed", "5", cwd=tmp_path)
    assert other.returncode == 0 and other.stdout.splitlines()[0] != lines[0]


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed (pip install 'darknet-exact[eval]')")
def test_calc_anchors_show_writes_a_png(tmp_path):
    from darknetpy.evaluate.anchors import plot_png

    png = plot_png(evaluate.anchors(cluster_boxes(10), 5, 416, 416))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    im = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert im.shape[1] > im.shape[0] > 200


# ---------------------------------------------------------------------------
# The commands on a real (tiny) network
# ---------------------------------------------------------------------------

TINY_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=24
size=1
activation=linear

[region]
anchors=1,1, 3,2, 2,4
classes=3
coords=4
num=3
softmax=1
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.cfg").write_text(TINY_CFG)
    rng = np.random.default_rng(11)
    arrays = [rng.normal(0, .1, 8), rng.normal(0, .5, 8 * 3 * 9), rng.normal(0, .1, 8), rng.normal(0, .3, 8 * 8 * 9),
              rng.normal(0, .5, 24), rng.normal(0, .8, 24 * 8)]
    (folder / "tiny.weights").write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8)
                                          + np.concatenate(arrays).astype("<f4").tobytes())
    return folder / "tiny.cfg", folder / "tiny.weights"


def test_valid_files_read_back_as_detector_tests_json(tiny, tmp_path):
    cfg, weights = tiny
    data = write_dataset(tmp_path)
    r = run("detector", "valid", data, cfg, weights)
    assert r.returncode == 0, r.stderr
    images = [str(tmp_path / "images" / f"{name}.png") for name in TRUTH]
    t = run("detector", "test", data, cfg, weights, *images, "-thresh", ".005", "--json", tmp_path / "d.jsonl",
            "--no-draw")
    assert t.returncode == 0, t.stderr
    records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    total = 0
    for k, name in enumerate(NAMES):
        rows = evaluate.read_voc_results(str(tmp_path / "results" / f"comp4_det_test_{name}.txt"))
        want = []
        for rec in records:
            w, h = rec["width"], rec["height"]
            for d in rec["detections"]:
                if d["class_id"] == k:
                    b = d["bbox"]
                    want.append((basecfg(rec["path"]), d["prob"], max((b["x"] - b["w"] / 2) * w + 1, 1),
                                 max((b["y"] - b["h"] / 2) * h + 1, 1), min((b["x"] + b["w"] / 2) * w + 1, w),
                                 min((b["y"] + b["h"] / 2) * h + 1, h)))
        assert [row[0] for row in rows] == [row[0] for row in want]
        assert np.allclose([row[1:] for row in rows], [row[1:] for row in want], rtol=0, atol=1e-4)
        assert np.allclose([row[1] for row in rows], [row[1] for row in want], rtol=0, atol=5e-7)
        total += len(rows)
    assert total > 20 and f"{total} detections in 3 files" in r.stderr
    assert sorted(os.listdir(tmp_path / "results")) == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)

    coco_data = write_dataset(tmp_path, extra="eval=coco\n")
    r = run("detector", "valid", coco_data, cfg, weights, "-out", "dets", "--batch", 2)
    assert r.returncode == 0, r.stderr
    dets = evaluate.read_coco_results(str(tmp_path / "results" / "dets.json"))
    assert len(dets) == total and {d["image_id"] for d in dets} == {1, 2}
    first = records[0]["detections"][0]
    assert dets[0]["category_id"] == first["class_id"] + 1 and dets[0]["score"] == pytest.approx(first["prob"], abs=5e-7)
    b, w, h = first["bbox"], records[0]["width"], records[0]["height"]
    left = max((b["x"] - b["w"] / 2) * w, 0)
    assert dets[0]["bbox"][0] == pytest.approx(left, abs=1e-4)
    assert dets[0]["bbox"][2] == pytest.approx(min((b["x"] + b["w"] / 2) * w, w) - left, abs=1e-4)


def test_map_and_recall_commands(tiny, tmp_path):
    cfg, weights = tiny
    data = write_dataset(tmp_path)
    r = run("detector", "map", data, cfg, weights, "--points", 11, "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    j = json.loads((tmp_path / "m.json").read_text())
    assert j["points"] == 11 and j["iou"] == 0.5 and [c["name"] for c in j["classes"]] == NAMES
    assert [c["ground_truth"] for c in j["classes"]] == [3, 1, 0]
    assert f"mean average precision (mAP@0.50) = {j['mAP']:f}" in r.stdout
    assert "class_id = 2, name = bird, ap = n/a (no ground truth)" in r.stdout

    r = run("detector", "recall", data, cfg, weights, "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("    0 ") and "\tRPs/Img: " in lines[0] and lines[0].endswith("%")
    assert lines[1].split()[:3] == ["1", lines[1].split()[1], "4"]
    j = json.loads((tmp_path / "r.json").read_text())
    assert j["objects"] == 4 and j["images"] == 2 and lines[-1].startswith("recall: ")


@pytest.mark.skipif(not HAVE_COCO, reason=NO_COCO)
def test_map_points_101_is_pycocotools_on_the_networks_detections(tiny, tmp_path):
    cfg, weights = tiny
    data = write_dataset(tmp_path, extra="eval=coco\n")
    r = run("detector", "map", data, cfg, weights, "--points", 101, "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in r.stderr
    # the same detections through valid's coco_results.json and pycocotools directly
    assert run("detector", "valid", data, cfg, weights).returncode == 0
    dets = json.loads((tmp_path / "results" / "coco_results.json").read_text())  # coco_ids[k] = k+1 for k < 11
    gt_file, _ = coco_json_files(tmp_path)
    gt = json.loads(gt_file.read_text())
    gt["images"] = [{"id": i + 1, "width": SIZE[0], "height": SIZE[1]} for i in range(2)]
    gt_file.write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    ev = pycocotools_run(gt_file, tmp_path / "dt.json")
    assert j["mAP"] == pytest.approx(ev.stats[0], abs=1e-6)


def test_bad_input_one_line_each(tiny, tmp_path):
    cfg, weights = tiny
    data = write_dataset(tmp_path)
    no_valid = tmp_path / "nv.data"
    no_valid.write_text(f"names={tmp_path}/names.txt\n")
    assert "no valid= line" in one_error_line(run("detector", "valid", no_valid, cfg, weights))
    assert "no train= line" in one_error_line(run("detector", "calc_anchors", no_valid, "-width", 416, "-height", 416))

    (tmp_path / "valid.txt").write_text(f"{tmp_path}/images/img_1.png\n{tmp_path}/images/gone.png\n")
    assert "valid.txt:2: image" in one_error_line(run("detector", "map", data, cfg, weights))

    (tmp_path / "valid.txt").write_text(f"{tmp_path}/images/img_1.png\n{tmp_path}/images/img_2.png\n")
    (tmp_path / "labels" / "img_2.txt").write_text("0 .5 .5 .2\n")
    assert "img_2.txt:1:" in one_error_line(run("detector", "map", data, cfg, weights))

    (tmp_path / "labels" / "img_2.txt").unlink()
    r = run("detector", "map", data, cfg, weights, "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "img_2.txt" in warnings[0]
    assert [c["ground_truth"] for c in json.loads((tmp_path / "m.json").read_text())["classes"]] == [2, 1, 0]

    r = run("detector", "map", data, cfg, weights, "--points", 7)
    assert r.returncode == 2 and "invalid choice" in r.stderr

    (tmp_path / "images" / "img_2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    r = run("detector", "valid", data, cfg, weights)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("darknetpy: error:")][0].count("img_2.png") == 1
    assert "2 images, 1 failed" in r.stderr
    assert sorted(os.listdir(tmp_path / "results")) == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)
