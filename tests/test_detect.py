"""Detection post-processing against the reference kit, plus unit tests.

The kit tests reproduce, from the saved region outputs of the 128x128 cases, every
detection (array position after NMS, box, objectness and probability bits) and every
printed line that Darknet recorded, at both thresholds.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darknetpy.detect import (
    Box,
    Detection,
    OfastFactors,
    box_iou,
    classifier_lines,
    correct_region_boxes,
    detection_lines,
    do_nms_sort,
    get_region_box,
    get_region_detections,
    top_k,
)
from darknetpy.draw import class_color, draw_detections, get_color
from darknetpy.tree import read_tree

REF = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
F32 = np.float32

needs_ref = pytest.mark.skipif(not (REF / "manifest.json").is_file(),
                               reason=f"reference kit not found at {REF}")


# ---------------------------------------------------------------------------
# kit helpers
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def manifest() -> dict:
    return json.loads((REF / "manifest.json").read_text())


@functools.lru_cache(maxsize=None)
def tree9k():
    return read_tree(str(REF / "darknet" / "data" / "9k.tree"))


@functools.lru_cache(maxsize=None)
def names_of(model: str) -> tuple[str, ...]:
    fname = "9k.names" if model.startswith("yolo9000") else "coco.names"
    return tuple((REF / "darknet" / "data" / fname).read_text().split("\n"))


@functools.lru_cache(maxsize=None)
def region_params(model: str) -> dict:
    """classes, coords, num, biases of the [region] section of cfg-small/<model>.cfg."""
    text = (REF / "cfg-small" / f"{model}.cfg").read_text()
    section = text.split("[region]", 1)[1].split("\n[", 1)[0]
    opts = {}
    for line in section.splitlines():
        line = line.strip()
        if line and line[0] not in "#;" and "=" in line:
            k, v = line.split("=", 1)
            opts[k.strip()] = v.strip()
    biases = np.array([F32(float(a)) for a in opts["anchors"].split(",")], np.float32)
    return dict(classes=int(opts["classes"]), coords=int(opts["coords"]),
                num=int(opts["num"]), biases=biases)


def kit_cases() -> list[tuple[str, str]]:
    """(case id, flavor) for every saved region output; a placeholder when no kit."""
    if not (REF / "manifest.json").is_file():
        return [("no-kit", "stock")]
    return [(c["id"], flavor) for c in manifest()["cases"]
            for flavor in c.get("final_output_npy", {})]


def case_by_id(case_id: str) -> dict:
    return next(c for c in manifest()["cases"] if c["id"] == case_id)


def run_case(case: dict, flavor: str, thresh: str, factors, ftz=True):
    """get_network_boxes + do_nms_sort as test_detector does; returns (dets, output)."""
    res = case["results"][flavor]
    out = np.load(REF / case["final_output_npy"][flavor])
    model = case["model"]
    p = region_params(model)
    _, ih, iw = res["image_float"]["shape"]
    settings_ = manifest()["detector_settings"]
    dets = get_region_detections(
        out, **p, w=iw, h=ih, netw=res["net"]["w"], neth=res["net"]["h"],
        thresh=float(thresh), hier_thresh=float(settings_["hier_thresh"]),
        tree=tree9k() if model.startswith("yolo9000") else None,
        relative=bool(settings_["relative"]), factors=factors, ftz=ftz)
    return dets, out


def bits(v) -> str:
    return format(int(np.asarray(v, np.float32).view(np.uint32)), "08x")


def recorded_view(dets: list[Detection]) -> list[dict]:
    """Our detections in the manifest's form: array position, bits of everything."""
    return [dict(index=pos, bbox_bits=[bits(v) for v in d.bbox],
                 objectness_bits=bits(d.objectness),
                 probs=[[k, bits(v)] for k, v in d.probs.items()])
            for pos, d in enumerate(dets) if d.probs]


def manifest_view(rec: dict) -> list[dict]:
    return [dict(index=e["index"], bbox_bits=e["bbox_bits"], objectness_bits=e["objectness_bits"],
                 probs=[[p[0], p[2]] for p in e["probs"]]) for e in rec["dets"]]


# ---------------------------------------------------------------------------
# kit tests
# ---------------------------------------------------------------------------

@needs_ref
@pytest.mark.parametrize("case_id,flavor", kit_cases())
def test_detections_bit_exact_with_ofast_factors(case_id, flavor):
    case = case_by_id(case_id)
    nms = float(manifest()["detector_settings"]["nms"])
    classes = region_params(case["model"])["classes"]
    assert len(case["results"][flavor]["detections"]) == 2
    for rec in case["results"][flavor]["detections"]:
        dets, out = run_case(case, flavor, rec["thresh"], case["ofast_correct_region_boxes"])
        assert len(dets) == rec["nboxes"]
        assert [d.index for d in dets] == list(range(rec["nboxes"]))
        assert sum(1 for d in dets if d.objectness != 0) == rec["nonzero_objectness"]
        after = case["results"][flavor].get("region_after_get_network_boxes")
        if after is not None:
            assert hashlib.sha256(out.tobytes()).hexdigest() == after["sha256"]
        do_nms_sort(dets, classes, nms)
        assert recorded_view(dets) == manifest_view(rec)
        lines = detection_lines(dets, names_of(case["model"]), float(rec["thresh"]))
        assert lines == rec["lines"]
        assert rec["lines"], "a case without printed lines tests little"


@needs_ref
@pytest.mark.parametrize("case_id,flavor", kit_cases())
def test_lines_exact_with_exact_factors(case_id, flavor):
    """IEEE correct_region_boxes moves the boxes by an ulp or two; the lines stay."""
    case = case_by_id(case_id)
    nms = float(manifest()["detector_settings"]["nms"])
    classes = region_params(case["model"])["classes"]
    for rec in case["results"][flavor]["detections"]:
        dets, _ = run_case(case, flavor, rec["thresh"], None)
        do_nms_sort(dets, classes, nms)
        assert detection_lines(dets, names_of(case["model"]), float(rec["thresh"])) == rec["lines"]


@needs_ref
def test_o2_flavor_yolo9000():
    """The O2 build's yolo9000 region layer equals stock; without FTZ and with exact
    box factors the detections differ in their bits but the lines are the same, as
    the manifest records (detections_equal false, lines_equal true)."""
    o2 = manifest()["flavors"]["O2"]["results"]
    checked = 0
    for case_id, flavor in kit_cases():
        if flavor != "stock" or not case_id.startswith("yolo9000-128"):
            continue
        case = case_by_id(case_id)
        assert o2[case_id]["differing_layers"] == []
        for i, rec in enumerate(case["results"]["stock"]["detections"]):
            dets, _ = run_case(case, "stock", rec["thresh"], None, ftz=False)
            do_nms_sort(dets, 9418, 0.45, ftz=False)
            assert (recorded_view(dets) == manifest_view(rec)) == o2[case_id]["detections_equal"][i]
            lines = detection_lines(dets, names_of(case["model"]), float(rec["thresh"]))
            assert (lines == rec["lines"]) == o2[case_id]["lines_equal"][i]
            checked += 1
    assert checked == 8


@needs_ref
def test_fixed_tree_hash_needs_ftz():
    """hierarchy_predictions products below 2^-126 are flushed in the stock build: the
    fixed-tree region hash is only reproduced with ftz=True."""
    case = case_by_id("yolo9000-128_dog_png")
    rec = case["results"]["fixed-tree"]
    _, out = run_case(case, "fixed-tree", "0.5", case["ofast_correct_region_boxes"], ftz=False)
    assert hashlib.sha256(out.tobytes()).hexdigest() != rec["region_after_get_network_boxes"]["sha256"]


@needs_ref
def test_ofast_factors_parse():
    case = case_by_id("yolo9000-128_dog_png")
    f = OfastFactors.from_mapping(case["ofast_correct_region_boxes"])
    assert f.w_factor == F32(float.fromhex("0x1.fffffep-1"))
    assert f.y_offset == 0.125
    assert isinstance(f.x_recip, float)


# ---------------------------------------------------------------------------
# boxes
# ---------------------------------------------------------------------------

def test_get_region_box():
    lw = lh = 4
    out = np.zeros(5 * lw * lh, np.float32)
    idx = 1 * lw + 2  # row 1, col 2, anchor 0
    out[idx], out[idx + 16], out[idx + 32], out[idx + 48] = 0.5, 0.25, 0.0, math.log(2.0)
    biases = np.array([1.5, 3.0], np.float32)
    b = get_region_box(out, biases, 0, idx, 2, 1, lw, lh, lw * lh)
    assert b == Box(F32(2.5 / 4), F32(1.25 / 4), F32(1.5 / 4), F32(np.float32(2.0 * 3.0 / 4)))
    assert all(isinstance(v, np.float32) for v in b)


def test_correct_region_boxes_exact_and_relative():
    # 200x100 image in a 128x128 net: new size 128x64, 32 rows of padding top and bottom
    d = Detection(0, Box(F32(0.5), F32(0.5), F32(0.5), F32(0.25)), F32(1), 1)
    correct_region_boxes([d], 200, 100, 128, 128)
    assert d.bbox == Box(F32(0.5), F32(0.5), F32(0.5), F32(0.5))
    d = Detection(0, Box(F32(0.5), F32(0.25), F32(0.5), F32(0.25)), F32(1), 1)
    correct_region_boxes([d], 200, 100, 128, 128, relative=False)
    assert d.bbox == Box(F32(100), F32(0), F32(100), F32(50))


def _iou_reference(a, b):
    """box.c in plain float32 numpy, written independently of the kernel."""
    a = [F32(v) for v in a]
    b = [F32(v) for v in b]
    two = F32(2)

    def overlap(x1, w1, x2, w2):
        left = max(x1 - w1 / two, x2 - w2 / two)
        right = min(x1 + w1 / two, x2 + w2 / two)
        return F32(right - left)

    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    inter = F32(0) if (w < 0 or h < 0) else F32(w * h)
    union = F32(F32(a[2] * a[3]) + F32(b[2] * b[3])) - inter
    with np.errstate(all="ignore"):
        return F32(inter / union)


def test_box_iou_values():
    assert box_iou((0.5, 0.5, 1, 1), (0.5, 0.5, 1, 1)) == F32(1)
    assert box_iou((0.5, 0.5, 1, 1), (1.0, 0.5, 1, 1)) == F32(0.5) / F32(1.5)
    assert box_iou((0, 0, 1, 1), (3, 3, 1, 1)) == 0
    assert box_iou((0, 0, 1, 1), (1, 0, 1, 1)) == 0  # touching edges
    assert isinstance(box_iou((0, 0, 1, 1), (0, 0, 2, 2)), np.float32)


_coord = st.floats(-2, 2, width=32, allow_subnormal=False)
_size = st.floats(0, 3, width=32, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(st.tuples(_coord, _coord, _size, _size), st.tuples(_coord, _coord, _size, _size))
def test_box_iou_matches_float32_reference(a, b):
    got = box_iou(a, b, ftz=False)
    ref = _iou_reference(a, b)
    assert got.view(np.uint32) == ref.view(np.uint32) or (np.isnan(got) and np.isnan(ref))


# ---------------------------------------------------------------------------
# NMS
# ---------------------------------------------------------------------------

def _det(i, box, obj, probs, classes=3):
    return Detection(i, Box(*(F32(v) for v in box)), F32(obj),
                     classes, {k: F32(v) for k, v in probs.items()})


def test_nms_swap_loop_order():
    far = [(0.1 * i, 0.1 * i, 0.01, 0.01) for i in range(5)]
    objs = [0, 0.9, 0, 0.8, 0.7]
    dets = [_det(i, far[i], objs[i], {}) for i in range(5)]
    do_nms_sort(dets, 3, 0.45)
    # i=0 is swapped with 4, then i=2 with 3: active [4, 1, 3], then [2, 0]
    assert [d.index for d in dets] == [4, 1, 3, 2, 0]


def test_nms_stable_ties_and_suppression():
    box = (0.5, 0.5, 0.2, 0.2)
    dets = [_det(0, box, 0.9, {1: 0.6}),
            _det(1, box, 0.9, {1: 0.7}),
            _det(2, box, 0.9, {1: 0.7}),
            _det(3, (0.9, 0.9, 0.05, 0.05), 0.9, {1: 0.7, 2: 0.5})]
    do_nms_sort(dets, 3, 0.45)
    # class 1: 0.7 ties keep array order 1, 2, 3, then 0; 1 suppresses 2 and 0
    assert [d.index for d in dets] == [3, 1, 2, 0]  # after class 2's sort (3 first)
    assert dets[1].probs == {1: F32(0.7)}
    assert dets[2].probs == {} and dets[3].probs == {}
    assert dets[0].probs == {1: F32(0.7), 2: F32(0.5)}


def _glibc_msort(items, cmp):
    """glibc msort_with_tmp, recursively, in Python (reference for the kernel)."""
    if len(items) <= 1:
        return list(items)
    n1 = len(items) // 2
    a, b = _glibc_msort(items[:n1], cmp), _glibc_msort(items[n1:], cmp)
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if cmp(a[i], b[j]) <= 0:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


def _flush(x, ftz):
    x = F32(x)
    return F32(0) * x if ftz and abs(x) < F32(2.0 ** -126) else x


def _nms_reference(dets, classes, nms, ftz):
    """do_nms_sort in Python: swap loop, glibc merge sort, suppression."""
    dets = list(dets)
    prob = [d.prob_array() for d in dets]
    order = list(range(len(dets)))
    k = len(order) - 1
    i = 0
    while i <= k:
        if _flush(dets[order[i]].objectness, ftz) == 0:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    total = k + 1
    for c in range(classes):
        def cmp(a, b):
            diff = _flush(_flush(prob[a][c], ftz) - _flush(prob[b][c], ftz), ftz)
            return 1 if diff < 0 else (-1 if diff > 0 else 0)
        order[:total] = _glibc_msort(order[:total], cmp)
        for q in range(total):
            a = order[q]
            if _flush(prob[a][c], ftz) == 0:
                continue
            for r in range(q + 1, total):
                b = order[r]
                if _iou_reference(dets[a].bbox, dets[b].bbox) > F32(nms):
                    prob[b][c] = F32(0)
    return order, prob


_probv = st.sampled_from([0.0, 0.0, 0.3, 0.5, 0.5, 0.9, 1e-39, 2e-39, 3e-38])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.tuples(st.sampled_from([0.2, 0.25, 0.3, 0.7]),
                                    st.sampled_from([0.2, 0.3, 0.7]),
                                    st.sampled_from([0.1, 0.3, 0.5]),
                                    st.sampled_from([0.1, 0.3, 0.5])),
                          st.sampled_from([0.0, 0.6, 0.9]),
                          st.lists(_probv, min_size=3, max_size=3)),
                min_size=0, max_size=12),
       st.booleans())
def test_nms_matches_reference(spec, ftz):
    # tiny probabilities make the FTZ'd comparator inconsistent: only the exact glibc
    # merge order reproduces the reference then
    dets = [_det(i, box, obj, {k: v for k, v in enumerate(ps) if v != 0})
            for i, (box, obj, ps) in enumerate(spec)]
    order, prob = _nms_reference(dets, 3, 0.45, ftz)
    out = do_nms_sort(list(dets), 3, 0.45, ftz=ftz)
    assert [d.index for d in out] == order
    for d, o in zip(out, order):
        assert d.prob_array().view(np.uint32).tolist() == prob[o].view(np.uint32).tolist()


# ---------------------------------------------------------------------------
# printed lines
# ---------------------------------------------------------------------------

def test_detection_lines_round_half_even_and_order():
    names = ["zero", "one", "two"]
    dets = [_det(0, (0.5,) * 4, 1, {2: 0.625, 0: 0.375}),  # 62.5 -> 62, 37.5 -> 38
            _det(1, (0.5,) * 4, 1, {1: 0.25}),              # not > 0.25
            _det(2, (0.5,) * 4, 1, {1: 0.5})]
    assert detection_lines(dets, names, 0.25) == ["zero: 38%", "two: 62%", "one: 50%"]
    assert detection_lines(dets, names, 0.5) == ["two: 62%"]
    # prob*100 is a float32 product: float32(0.025)*100 is exactly 2.5 (-> "2", half to
    # even) where the double product 2.50000004 would print "3"; same for 0.015 -> 1.5
    low = [_det(0, (0.5,) * 4, 1, {0: 0.025, 1: 0.015})]
    assert detection_lines(low, names, 0.0) == ["zero: 2%", "one: 2%"]
    assert "%.0f" % (float(F32(0.025)) * 100) == "3"


def _top_k_reference(a, k):
    """utils.c top_k transcribed to Python."""
    index = [-1] * k
    for i in range(len(a)):
        curr = i
        for j in range(k):
            if index[j] < 0 or a[curr] > a[index[j]]:
                curr, index[j] = index[j], curr
    return [i for i in index if i >= 0]


def test_top_k_ties():
    a = np.array([0.5, 0.7, 0.5, 0.1], np.float32)
    assert top_k(a, 3) == [1, 0, 2]  # equal values: the lower index stays ahead
    assert top_k(a[:2], 5) == [1, 0]
    assert top_k(a, 0) == []
    # Darknet's quirk: an entry pushed down by a larger newcomer also needs a strictly
    # larger value to move into the next slot, so an equal value there keeps it out.
    # Here 0.7 pushes index 1 (0.5) down, but slots 1 and 2 already hold 0.5s (2, 4).
    a = np.array([0.1, 0.5, 0.5, 0.3, 0.5, 0.7], np.float32)
    assert top_k(a, 3) == [5, 2, 4]
    assert top_k(a, 5) == [5, 2, 4, 1, 3]
    # NaN never compares greater and is never displaced by a comparison
    assert top_k(np.array([np.nan, 1.0], np.float32), 2) == [0, 1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, float("nan")]), max_size=20),
       st.integers(0, 7))
def test_top_k_matches_c_loop(values, k):
    a = np.array(values, np.float32)
    assert top_k(a, k) == _top_k_reference(a, k)


def test_classifier_lines():
    probs = np.zeros(8, np.float32)
    probs[[3, 6, 1, 5, 7, 0]] = [0.25, 0.25, 0.05, 0.123456, 0.001, 0.25]
    names = [f"c{i}" for i in range(8)]
    assert classifier_lines(probs, names) == [
        "25.00%: c0", "25.00%: c3", "25.00%: c6", "12.35%: c5", " 5.00%: c1"]
    assert classifier_lines(probs, names, k=1) == ["25.00%: c0"]


# ---------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------

def test_get_color():
    assert [get_color(c, 0, 80) for c in range(3)] == [1, 0, 1]
    # class 1 of 80: offset 123457 % 80 = 17, ratio 1.0625 between blue and cyan
    assert class_color(1, 80) == (F32(1), F32(0.0625), F32(0))


def test_draw_detections():
    img = np.full((300, 400, 3), 128, np.uint8)
    d = _det(0, (0.5, 0.5, 0.5, 0.5), 1, {1: 0.9}, classes=80)
    faint = _det(1, (0.2, 0.2, 0.1, 0.1), 1, {1: 0.2}, classes=80)
    names = [f"class{i}" for i in range(80)]
    out = draw_detections(img, [d, faint], names, 0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 128).all()  # input untouched
    # box from (100, 75) to (300, 225), int(300*.006) = 1 pixel wide, colour (255, 15, 0)
    assert out[150, 100].tolist() == [255, 15, 0]
    assert out[150, 300].tolist() == [255, 15, 0]
    assert out[225, 200].tolist() == [255, 15, 0]
    assert out[150, 200].tolist() == [128, 128, 128]  # inside, away from the edges
    # label above the top edge, on the box colour
    assert (out[60:75, 100:140] != 128).any()
    # below the threshold: nothing drawn around the faint box
    assert (out[:, :50] == 128).all()
    no_labels = draw_detections(img, [d], names, 0.5, labels=False)
    changed = (no_labels != img).any(axis=2)
    assert changed.sum() == 2 * 201 + 2 * 149


def test_draw_small_image_has_no_box():
    img = np.zeros((100, 100, 3), np.uint8)  # int(100*.006) = 0: Darknet draws no box
    d = _det(0, (0.5, 0.5, 0.5, 0.5), 1, {0: 0.9}, classes=3)
    assert (draw_detections(img, [d], ["a", "b", "c"], 0.5, labels=False) == 0).all()


@needs_ref
def test_ofast_factors_of_another_size_are_refused():
    case = case_by_id("yolo9000-128_dog_png")  # 768x576: letterbox 128x96
    d = Detection(0, Box(F32(0.5), F32(0.5), F32(0.1), F32(0.1)), F32(1), 1)
    with pytest.raises(ValueError, match="letterbox"):
        correct_region_boxes([d], 576, 768, 128, 128, factors=case["ofast_correct_region_boxes"])
