"""The [region] layer in training: Darknet's forward_region_layer loss and the GPU build's
backward. First small grids whose deltas are computed here by hand, statement by statement
from region_layer.c in float32; then the training kit (region output, delta, cost, the
printed lines) where the training executor is available."""
import ctypes
import ctypes.util
import json
import math
import os
import re
from pathlib import Path

import numba
import numpy as np
import pytest

import darknetpy
import kit
from darknetpy.cpu import kernels
from darknetpy.cpu import region_loss
from darknetpy.cpu.region_loss import sum_squares
from darknetpy.errors import DataError
from darknetpy.layers.base import Step
from darknetpy.layers.region import ofast_reciprocal, printed
from darknetpy.numerics import NUMERICS

F = np.float32
LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
LIBM.logf.restype = ctypes.c_float
LIBM.logf.argtypes = [ctypes.c_float]


def logf(v):
    """glibc's logf, as the -Ofast build calls it (numpy's float32 log differs in the last bit)."""
    return F(LIBM.logf(F(v)))

LINE = "Region Avg IOU: {}, Class: {}, Obj: {}, No Obj: {}, Avg Recall: {},  count: {}"


def region_layer(tmp_path, grid=2, classes=2, num=2, anchors="1,1, 2,2", extra="", compat=None):
    cfg = tmp_path / "r.cfg"
    cfg.write_text(f"[net]\nbatch=1\nwidth={grid}\nheight={grid}\nchannels={num * (classes + 5)}\n\n"
                   f"[region]\nanchors={anchors}\nclasses={classes}\ncoords=4\nnum={num}\nsoftmax=1\n"
                   f"object_scale=5\nnoobject_scale=1\nclass_scale=1\ncoord_scale=1\nthresh=.6\n{extra}")
    return darknetpy.load(str(cfg), compat=compat).layers[0]


def train(layer, x, truth, numerics="darknet", seen=2):
    """One training forward; returns (output, delta, printed lines)."""
    lines = []
    t = np.zeros((x.shape[0], 150), F)
    for b, boxes in enumerate(truth):
        for k, box in enumerate(boxes):
            t[b, 5 * k:5 * k + 5] = box
    step = Step([x], np.empty_like(x), kernels, NUMERICS[numerics], train=True, delta=np.zeros_like(x),
                truth=t, seen=seen, log=lines.append)
    out = layer.forward(step)
    return out, step.delta, lines, step


def entries(a, layer):
    """(batch, anchor, entry, cell) view of a region tensor."""
    c, h, w = layer.out_shape
    return a.reshape(a.shape[0], layer.num, layer.classes + 5, h * w)


def inputs(layer, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + layer.in_shape).astype(F)


def h4(values):
    """mag_array's -Ofast sum of squares: 4 lanes, (v0+v2)+(v1+v3), then the tail."""
    v = [F(0)] * 4
    m = len(values) - len(values) % 4
    for k in range(m):
        v[k % 4] = F(v[k % 4] + F(values[k] * values[k]))
    s = F(F(v[0] + v[2]) + F(v[1] + v[3]))
    for k in range(m, len(values)):
        s = F(s + F(values[k] * values[k]))
    return s


def test_ofast_reciprocal_is_the_reference_cpus():
    assert ofast_reciprocal(4) == F(float.fromhex("0x1.fffffep-3"))
    assert ofast_reciprocal(13) == F(float.fromhex("0x1.3b13b2p-4"))
    assert ofast_reciprocal(11) == F(1) / F(11)


def test_sum_squares_lanes():
    """mag_array's -Ofast sum: lanes j = k mod 4, then (v0+v2)+(v1+v3): 1 + (2^-24 + 2^-24)
    keeps 2^-23; the sequential sum (-O2) loses both halves of an ulp."""
    a = np.array([1, 2.0 ** -12, 0, 2.0 ** -12, 0.5], F)
    assert sum_squares(a, True) == F(1 + 2.0 ** -23) + F(0.25)
    assert sum_squares(a, False) == F(1.25)


@pytest.mark.slow
def test_no_fma_in_the_region_kernels(tmp_path):
    """Darknet's build has no fused multiply-add: neither may the loss and backward kernels."""
    layer = region_layer(tmp_path)
    _, _, _, step = train(layer, inputs(layer), [[[F(0.3), F(0.6), F(0.4), F(0.5), F(1)]]])
    step.source_deltas = [np.zeros_like(step.delta)]
    layer.backward(step)
    fma = re.compile(r"\bv?f(n)?m(add|sub)[a-z0-9]*\b", re.I)
    for fn in (region_loss.region_loss, region_loss.region_backward, region_loss.sum_squares):
        assert fn.signatures, fn
        options = {k: v for k, v in fn.targetoptions.items() if k not in ("nopython", "cache")}
        assert not options.get("fastmath")
        fresh = numba.njit(**options)(fn.py_func)   # cached code keeps no assembly to inspect
        for sig in fn.signatures:
            fresh.compile(sig)
            asm = fresh.inspect_asm(sig)
            assert "mulss" in asm and not fma.search(asm), fn


def test_printed_nan_as_glibc():
    assert printed(F(0.5)) == "0.500000"
    assert printed(F(0) * F(np.inf)) == "-nan"          # x86's default NaN has the sign bit
    assert printed(-(F(0) * F(np.inf))) == "nan"


@pytest.mark.parametrize("numerics", ["darknet", "ieee"])
def test_no_truth_noobject_and_prior(tmp_path, numerics):
    layer = region_layer(tmp_path)
    x = inputs(layer, seed=5)    # a delta whose cost tells the 4-lane sum from others
    out, delta, lines, _ = train(layer, x, [[]], numerics)
    o, d = entries(out, layer)[0], entries(delta, layer)[0]
    for n in range(2):
        anchor = layer.biases[2 * n]
        aw = anchor * ofast_reciprocal(2) if numerics == "darknet" else anchor / F(2)
        ratio = F(F(aw * F(2)) / anchor)
        tw = F(math.log(ratio)) if numerics == "ieee" else logf(ratio)
        if numerics == "darknet":
            assert tw < 0            # 1/2 from rcpps is 0x1.fffffep-2, not 0.5
        else:
            assert tw == 0
        for cell in range(4):
            i = cell % 2
            assert d[n, 0, cell] == F(0.01) * F(F(F(F((i + .5) / 2) * F(2)) - F(i)) - o[n, 0, cell])
            assert d[n, 2, cell] == F(0.01) * F(tw - o[n, 2, cell])
            assert d[n, 4, cell] == F(1) * F(F(0) - o[n, 4, cell])
        assert not d[n, 5:].any()
    no_obj = F(0)
    for cell in range(4):
        for n in range(2):
            no_obj = F(no_obj + o[n, 4, cell])
    assert lines == [LINE.format("-nan", "-nan", "-nan", printed(no_obj / F(8)), "-nan", 0)]
    flat = delta.reshape(-1)
    mag = F(math.sqrt(h4(flat) if numerics == "darknet" else sum_seq(flat)))
    assert layer.cost == F(mag * mag)


def sum_seq(values):
    s = F(0)
    for v in values:
        s = F(s + F(v * v))
    return s


def test_prior_term_stops_at_12800_seen(tmp_path):
    layer = region_layer(tmp_path)
    x = inputs(layer)
    out, delta, _, _ = train(layer, x, [[]], seen=12800)
    o, d = entries(out, layer)[0], entries(delta, layer)[0]
    assert not d[:, :4].any()
    assert np.array_equal(d[:, 4], F(0) - o[:, 4])
    _, delta, _, _ = train(layer, x, [[]], seen=12799)
    assert entries(delta, layer)[0][:, :4].all()


@pytest.mark.parametrize("rescore", [0, 1])
def test_one_truth(tmp_path, rescore):
    """Truth (0.3, 0.6, ~0.4, 0.5, class 1): cell i = (int)(0.3*2) = 0, j = (int)(0.6*2) = 1;
    with bias_match, anchor 0 (1x1 on a 2-grid: 0.5 x 0.5) overlaps it best. The width is
    one whose logf(w*2) differs from (float)log((double)(w*2)) in the delta (the -Ofast tw)."""
    layer = region_layer(tmp_path, extra=f"bias_match=1\nrescore={rescore}\n")
    x = inputs(layer)
    box = [F(0.3), F(0.6), F(float.fromhex("0x1.99a2dap-2")), F(0.5)]
    out, delta, lines, _ = train(layer, x, [[box + [F(1)]]])
    o, d = entries(out, layer)[0], entries(delta, layer)[0]
    cell = 1 * 2 + 0
    scale = F(F(1) * F(F(2) - F(box[2] * box[3])))
    px = F(F(F(0) + o[0, 0, cell]) / F(2))
    py = F(F(F(1) + o[0, 1, cell]) / F(2))
    pw = F(math.exp(float(o[0, 2, cell])) * 1.0 / 2)
    ph = F(math.exp(float(o[0, 3, cell])) * 1.0 / 2)
    iou = box_iou((px, py, pw, ph), box)
    targets = [F(F(box[0] * F(2)) - F(0)), F(F(box[1] * F(2)) - F(1)),
               logf(F(box[2] * F(2)) / F(1)), logf(F(box[3] * F(2)) / F(1))]
    for e in range(4):
        assert d[0, e, cell] == F(scale * F(targets[e] - o[0, e, cell])), e
    assert d[0, 4, cell] == F(F(5) * F((iou if rescore else F(1)) - o[0, 4, cell]))
    assert d[0, 5, cell] == F(F(1) * F(F(0) - o[0, 5, cell]))
    assert d[0, 6, cell] == F(F(1) * F(F(1) - o[0, 6, cell]))
    assert not d[1, 5:].any() and not d[0, 5:, [0, 1, 3]].any()
    # anchor 1 in that cell keeps its no-object and prior deltas
    assert d[1, 4, cell] == F(F(0) - o[1, 4, cell])
    no_obj = F(0)
    for c in range(4):
        for n in range(2):
            no_obj = F(no_obj + o[n, 4, c])
    r = F(1) / F(1)
    assert lines == [LINE.format(printed(iou * r), printed(o[0, 6, cell] / F(1)), printed(o[0, 4, cell] * r),
                                 printed(no_obj / F(8)), printed(F(0)), 1)]


def box_iou(a, b):
    def overlap(x1, w1, x2, w2):
        l1, l2 = F(x1 - F(w1 * F(.5))), F(x2 - F(w2 * F(.5)))
        r1, r2 = F(x1 + F(w1 * F(.5))), F(x2 + F(w2 * F(.5)))
        return F((r1 if r1 < r2 else r2) - (l1 if l1 > l2 else l2))
    ow, oh = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = F(0) if ow < 0 or oh < 0 else F(ow * oh)
    return F(inter / F(F(F(a[2] * a[3]) + F(b[2] * b[3])) - inter))


def test_best_anchor_without_bias_match_uses_the_predicted_size(tmp_path):
    """Without bias_match the anchors compete with their predicted w, h: make anchor 1's
    prediction the truth's size exactly, anchor 0's tiny."""
    layer = region_layer(tmp_path)
    x = inputs(layer)
    e = entries(x, layer)[0]
    e[1, 2:4, 0] = 0.0            # anchor 1: exp(0) * 2 / 2 = 1.0
    e[0, 2:4, 0] = -8.0
    _, delta, _, _ = train(layer, x, [[[F(0.2), F(0.2), F(1.0), F(1.0), F(0)]]])
    d = entries(delta, layer)[0]
    assert d[1, 5:, 0].all() and not d[0, 5:, 0].any()


def test_truth_outside_the_grid_is_a_data_error(tmp_path):
    layer = region_layer(tmp_path)
    with pytest.raises(DataError, match="truth 0 of image 0 lies outside the grid"):
        train(layer, inputs(layer), [[[F(1.5), F(0.5), F(0.2), F(0.2), F(0)]]])
    with pytest.raises(DataError, match="class outside"):
        train(layer, inputs(layer), [[[F(0.5), F(0.5), F(0.2), F(0.2), F(7)]]])


def tree_layer(tmp_path, extra=""):
    """Tree a(-1) b(-1) | c(0) d(0): groups [a, b] and [c, d]."""
    (tmp_path / "t.tree").write_text("a -1\nb -1\nc 0\nd 0\n")
    return region_layer(tmp_path, classes=4, extra=f"tree={tmp_path / 't.tree'}\n{extra}")


def test_classification_only_truth_of_the_tree(tmp_path):
    layer = tree_layer(tmp_path)
    x = inputs(layer, seed=3)
    big = F(999999)
    out, delta, lines, _ = train(layer, x, [[[big, big, big, big, F(3)]]])
    o, d = entries(out, layer)[0], entries(delta, layer)[0]
    p = [[F(o[n, 4, c] * F(F(F(1) * o[n, 5 + 3, c]) * o[n, 5 + 0, c])) for c in range(4)] for n in range(2)]
    best = max(range(8), key=lambda k: (p[k // 4][k % 4], -k))
    n, c = best // 4, best % 4
    assert d[n, 4, c] == 0
    for m in range(2):
        for cc in range(4):
            if (m, cc) != (n, c):
                assert d[m, 4, cc] == F(F(0) - o[m, 4, cc])
                assert not d[m, 5:, cc].any()
    assert not d[:, :4].any()               # no box, no prior term for this image
    assert list(d[n, 5:, c]) == [F(1) - o[n, 5, c], F(0) - o[n, 6, c], F(0) - o[n, 7, c], F(1) - o[n, 8, c]]
    cat = F(F(F(1) * o[n, 8, c]) * o[n, 5, c])
    assert lines == [LINE.format("-nan", printed(cat / F(1)), "-nan", printed(F(0) / F(8)), "-nan", 0)]


def test_map_sends_the_class_through_the_tree(tmp_path):
    (tmp_path / "m.map").write_text("3\n2\n")
    layer = tree_layer(tmp_path, extra=f"map={tmp_path / 'm.map'}\n")
    x = inputs(layer)
    out, delta, _, _ = train(layer, x, [[[F(0.3), F(0.3), F(0.5), F(0.5), F(1)]]])  # class 1 -> 2 (c)
    o, d = entries(out, layer)[0], entries(delta, layer)[0]
    assert list(d[0, 5:, 0]) == [F(1) - o[0, 5, 0], F(0) - o[0, 6, 0], F(1) - o[0, 7, 0], F(0) - o[0, 8, 0]]


@pytest.mark.parametrize("numerics", ["darknet", "ieee"])
def test_backward_gpu_build(tmp_path, numerics):
    layer = region_layer(tmp_path)
    x = inputs(layer)
    out, delta, _, step = train(layer, x, [[[F(0.3), F(0.6), F(0.4), F(0.5), F(1)]]], numerics)
    before = delta.copy()
    source = np.full_like(x, F(0.25))
    step.source_deltas = [source]
    layer.backward(step)
    o, d0 = entries(out, layer)[0], entries(before, layer)[0]
    want = d0.copy()
    for e in (0, 1, 4):
        if numerics == "darknet":
            want[:, e] = (F(1) - o[:, e]) * (o[:, e] * d0[:, e])
        else:
            want[:, e] = d0[:, e] * ((F(1) - o[:, e]) * o[:, e])
    assert np.array_equal(entries(delta, layer)[0], want)
    assert np.array_equal(source, F(0.25) + delta)


def test_backward_stock_cpu_is_empty(tmp_path):
    layer = region_layer(tmp_path, compat="darknet-cpu")
    x = inputs(layer)
    _, delta, _, step = train(layer, x, [[[F(0.3), F(0.6), F(0.4), F(0.5), F(1)]]])
    before = delta.copy()
    step.source_deltas = [np.zeros_like(x)]
    layer.backward(step)
    assert np.array_equal(delta, before) and not step.source_deltas[0].any()


# -- the training kit: the region layer of every detector case and flavor

TRAIN_KIT = Path(os.environ.get("DARKNETPY_TRAIN_KIT", kit.REPO.parent / "shared" / "reference-train"))
# flavor -> (numerics, compat, region backward as Darknet's CPU build: empty)
FLAVORS = {"stock": ("darknet", "darknet-cpu"), "O2": ("ieee", "darknet-cpu"),
           "region-backward": ("darknet", None), "O2-region-backward": ("ieee", None),
           "fixed-tree": ("darknet", None), "O2-fixed-tree": ("ieee", None)}
# one run per model by default (and both backwards of the smallest); the rest is slow
FAST = {("tiny-voc-b2", "stock"), ("tiny-voc-b2", "region-backward"), ("yolov2-b2", "region-backward"),
        ("yolo9000-b2", "fixed-tree")}


def train_manifest():
    return json.loads((TRAIN_KIT / "manifest.json").read_text())


def detector_cases():
    if not (TRAIN_KIT / "manifest.json").is_file():
        return []
    return [(c["id"], f) for c in train_manifest()["cases"] if c["kind"] != "classifier" for f in c["flavors"]]


def kit_params():
    params = []
    for case_id, flavor in detector_cases():
        marks = () if (case_id, flavor) in FAST else (pytest.mark.slow,)
        params.append(pytest.param(case_id, flavor, id=f"{case_id}-{flavor}", marks=marks))
    return params or [pytest.param(None, None, marks=pytest.mark.skip(reason=f"training kit not found at {TRAIN_KIT}"))]


def expected(m, case, flavor, stage, index, name):
    """The kit's record of a tensor: an O2 flavor's where it differs, else its base flavor's."""
    base = flavor
    if flavor.startswith("O2"):
        diff = m["flavor_results"][flavor][case["id"]]
        base = diff["compared_with"]
        for d in diff["stages"].get(stage, {}).get("differing_tensors", []):
            if d["index"] == index and d["tensor"] == name:
                return d
    layers = next(s for s in case["results"][base]["stages"] if s["stage"] == stage)["layers"]
    return next(rec for rec in layers if rec["index"] == index)["tensors"][name]


def expected_cost(m, case, flavor):
    base = flavor
    if flavor.startswith("O2"):
        diff = m["flavor_results"][flavor][case["id"]]
        base = diff["compared_with"]
        if "cost" in diff["stages"].get("d1_forward", {}):
            return diff["stages"]["d1_forward"]["cost"]
    return case["results"][base]["stages"][0]["cost"]


def expected_lines(m, case, flavor):
    lines = case["results"][flavor if not flavor.startswith("O2") else
                            m["flavor_results"][flavor][case["id"]]["compared_with"]]["region_lines"]
    if flavor.startswith("O2"):
        lines = m["flavor_results"][flavor][case["id"]].get("region_lines") or lines
    return [line for k in sorted(lines, key=int) for line in lines[k]]


def kit_run(case, flavor):
    """All K datums of a case through the Trainer, from the inference kit's darknet/ folder
    (YOLO9000's tree= and map=); keeps the region layer's d1 tensors and every printed line.
    The fixed-tree flavors are Darknet's CPU build with the GPU's tree softmax: the
    network is built without compat and the region layer's backward made empty here."""
    from darknetpy.network import Network
    from darknetpy.train.trainer import Trainer
    numerics, compat = FLAVORS[flavor]
    weights = kit.weights(case["weights"]["file"])
    cwd = os.getcwd()
    os.chdir(kit.V2.root / "darknet")
    try:
        net = Network(str(TRAIN_KIT / case["cfg"]), str(weights), numerics=numerics, compat=compat, warn=None)
        region = net.layers[-1]
        if "fixed-tree" in flavor:
            region.backward = lambda step: None
        lines = []
        trainer = Trainer(net, compat=compat, log=lambda line: lines.append(line) if line.startswith("Region") else None)
        X = np.load(TRAIN_KIT / "inputs" / f"{case['id']}_X.npy")
        y = np.load(TRAIN_KIT / "inputs" / f"{case['id']}_y.npy")
        got = {}

        def stages(name):
            if "cost" in got and name != "backward" or "d1_backward" in got:
                return
            r, prev = region.index, region.index - 1
            if name == "forward":
                got.update(output=trainer.outputs[r].copy(), delta=trainer.deltas[r].copy(),
                           cost=trainer.executor.cost)
            elif name == "backward":
                got["d1_backward"] = (trainer.deltas[r].copy(), trainer.deltas[prev].copy())

        b, subdivisions = trainer.options.batch, trainer.options.subdivisions
        for k in range(case["K_datums"]):
            rows = slice((k % subdivisions) * b, (k % subdivisions + 1) * b)
            trainer.datum(X[rows], y[rows], stages if k == 0 else None)
        return region, got, lines
    finally:
        os.chdir(cwd)


def matches(record, a):
    return kit.layer_matches(record, np.asarray(a).reshape(-1))


@pytest.mark.parametrize("case_id,flavor", kit_params())
def test_kit_region_layer(case_id, flavor):
    m = train_manifest()
    case = next(c for c in m["cases"] if c["id"] == case_id)
    region, got, lines = kit_run(case, flavor)
    r = region.index
    assert matches(expected(m, case, flavor, "d1_forward", r, "output"), got["output"]), "d1_forward output"
    assert matches(expected(m, case, flavor, "d1_forward", r, "delta"), got["delta"]), "d1_forward delta"
    want = expected_cost(m, case, flavor)
    if "nan" in want:
        assert np.isnan(got["cost"]) and np.signbit(got["cost"]) == want.startswith("-")
    else:
        assert got["cost"] == F(float.fromhex(want))
    delta, prev = got["d1_backward"]
    assert matches(expected(m, case, flavor, "d1_backward", r, "delta"), delta), "d1_backward region delta"
    assert matches(expected(m, case, flavor, "d1_backward", r - 1, "delta"), prev), "d1_backward delta below"
    assert lines == expected_lines(m, case, flavor)
