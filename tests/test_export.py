"""darknetpy export: the ONNX graph (run by ONNX Runtime) and the torch module equal darknetpy.

Every comparison is against darknetpy's exact output (the kit's bits), within 1e-4 of the
largest value: raw (the output layer's output) and decoded (boxes, scores and objectness
against `Network.detections` with no threshold and no NMS). Small synthetic networks
cover each layer type, option and activation; the kit's models run raw and decoded,
yolov2-tiny by default and the others marked slow.
"""
from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest

import kit

onnx = pytest.importorskip("onnx", reason="onnx not installed: pip install 'darknet-exact[export]'")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnxruntime")

from darknetpy import export  # noqa: E402
from darknetpy.detect import detection_lines  # noqa: E402
from darknetpy.export.graph import ACTIVATIONS, reorg_numpy  # noqa: E402
from darknetpy.network import Network  # noqa: E402
from test_cli import run  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed: pip install 'darknet-exact[torch]' "
                                                       "(the torch module's checks skip)")
needs_kit = pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
TOLERANCE = 1e-4


def rel(out, ref) -> float:
    """max |out - ref| / max |ref|."""
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    assert out.shape == ref.shape, f"shape {out.shape}, darknetpy's {ref.shape}"
    return float(np.max(np.abs(out - ref)) / (np.max(np.abs(ref)) or 1.0))


def session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_onnx(model, x, image_size=None):
    return run_session(session(model), x, image_size)


def run_session(sess, x, image_size=None):
    feed = {"input": np.ascontiguousarray(x, np.float32)}
    if image_size is not None:
        feed["image_size"] = np.asarray(image_size, np.int64)
    return sess.run(None, feed)


def run_torch(module, x, image_size=None):
    """The module's outputs; oneDNN's convolutions (torch's CPU default) are turned off: on
    yolov2-voc they are 6e-6 of the largest raw value away from exact (float64) arithmetic,
    which exp() makes 1.3e-4 in the boxes; torch's own convolutions are 1.5e-6 away."""
    onednn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                         *([] if image_size is None else [torch.as_tensor(np.asarray(image_size, np.int64))]))
    finally:
        torch.backends.mkldnn.enabled = onednn
    return [t.numpy() for t in out] if isinstance(out, tuple) else [out.numpy()]


ENGINES = ["onnx", pytest.param("torch", marks=needs_torch)]


def exported(net, engine: str, **options):
    """net exported for `engine` ("onnx": checked by onnx.checker, run by ONNX Runtime;
    "torch": the module) as a function (x, image_size=None) -> its outputs."""
    if engine == "onnx":
        model = export.to_onnx(net, **options)
        onnx.checker.check_model(model, full_check=True)
        sess = session(model)
        return lambda x, image_size=None: run_session(sess, x, image_size)
    module = export.to_torch(net, decode=options.get("decode", False), hier_thresh=options.get("hier_thresh", 0.5))
    return lambda x, image_size=None: run_torch(module, x, image_size)


def reference_decode(net, outs, w, h, hier_thresh=0.5):
    """Darknet's detection array for one image (the detection layers' outputs `outs`), with
    every entry (a threshold of -1: [yolo] layers keep all) and no NMS: boxes, scores,
    objectness."""
    outs = [np.array(out, np.float32) for out in (outs if isinstance(outs, list) else [outs])]
    dets = net.detections(outs, w, h, thresh=-1, hier_thresh=hier_thresh, nms=0, printed_only=False)
    return (np.array([d.bbox for d in dets], np.float32), np.array([d.prob_array() for d in dets]),
            np.array([d.objectness for d in dets], np.float32))


def check_decode(got, want, what, box_tolerance=TOLERANCE):
    for name, g, wnt in zip(("boxes", "scores", "objectness"), got, want):
        err = rel(g, wnt)
        limit = box_tolerance if name == "boxes" else TOLERANCE
        assert err < limit, f"{what}: {name} differ by {err:.1e} of the largest"


# ------------------------------------------------------------------ synthetic networks

def random_network(tmp_path, cfg_text: str, seed: int = 0, files: dict | None = None, gain: float = 1.0) -> Network:
    """The cfg with random weights (written to a .weights file and loaded back)."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    cfg = tmp_path / "net.cfg"
    cfg.write_text(cfg_text)
    net = Network(cfg, None, warn=None)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.type == "convolutional":
            layer.weights[:] = rng.uniform(-gain, gain, layer.weights.shape) / np.sqrt(layer.weights.shape[1])
            layer.biases[:] = rng.uniform(-0.5, 0.5, layer.filters)
            layer.scales[:] = rng.uniform(0.5, 1.5, layer.filters)
            layer.rolling_mean[:] = rng.uniform(-0.2, 0.2, layer.filters)
            layer.rolling_variance[:] = rng.uniform(0.2, 2.0, layer.filters)
    weights = tmp_path / "net.weights"
    net.save_weights(str(weights))
    return Network(cfg, weights, warn=None)


def random_input(net, batch=None, seed=1):
    c, h, w = net.layers[0].in_shape
    shape = (c, h, w) if batch is None else (batch, c, h, w)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def raw_reference(net, x) -> list:
    """What the export returns without decoding: each detection layer's output, else the
    output layer's (net.forward)."""
    return net.forward_detection(x) or [net.forward(x)]


def check_raw(got, want, what):
    assert len(got) == len(want), f"{what}: {len(got)} outputs, darknetpy has {len(want)}"
    for k, (g, wnt) in enumerate(zip(got, want)):
        err = rel(g[0], wnt)
        assert err < TOLERANCE, f"{what}: output {k} differs by {err:.1e}"


def assert_exports_match(net, x, engine, *, decode_sizes=(), hier_thresh=0.5, opset=17):
    """The export for `engine` equals net.forward(x) raw, and net.detections when decoding."""
    refs = raw_reference(net, x)
    check_raw(exported(net, engine, opset=opset)(x[None]), refs, engine)
    if not decode_sizes:
        return
    run = exported(net, engine, decode=True, batch=None, hier_thresh=hier_thresh, opset=opset)
    for w, h in decode_sizes:
        want = reference_decode(net, refs, w, h, hier_thresh)
        check_decode([a[0] for a in run(x[None], [[w, h]])], want, f"{engine}, {w}x{h} image")


def activations_cfg() -> str:
    """A base convolution, then each activation on its own branch from it, all routed out."""
    text = "[net]\nwidth=9\nheight=7\nchannels=3\n\n[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
    picks = []
    for i, name in enumerate(ACTIVATIONS):
        text += (f"\n[route]\nlayers=0\n\n[convolutional]\nbatch_normalize={i % 2}\nfilters=3\nsize=3\npad=1\n"
                 f"activation={name}\n")
        picks.append(str(2 + 2 * i))
    return text + f"\n[route]\nlayers={','.join(picks)}\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_every_activation(tmp_path, engine):
    net = random_network(tmp_path, activations_cfg())
    x = random_input(net) * 6 - 3         # pre-activations across plse's, lhtan's and stair's pieces
    assert_exports_match(net, x, engine)


LAYERS_CFG = """[net]
width=14
height=14
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[maxpool]
size=3
stride=2

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
groups=2
activation=relu

[maxpool]
size=2
stride=2

[convolutional]
filters=16
size=1
activation=linear

[reorg]
stride=2

[reorg]
stride=2
reverse=1

[route]
layers=-1,-3

[dropout]
probability=.5

[convolutional]
batch_normalize=1
filters=12
size=3
stride=2
pad=1
activation=logistic

[avgpool]

[softmax]
groups=3
temperature=2

[cost]
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_layers_pools_reorg_route_softmax(tmp_path, engine):
    """Size-2 stride-1 and odd-size pools, grouped and strided convolutions, reorg both ways,
    route, dropout, avgpool, softmax with groups and temperature, a trailing cost."""
    net = random_network(tmp_path, LAYERS_CFG)
    assert [layer.out_shape for layer in net.layers[1:5]] == [(8, 14, 14), (8, 7, 7), (8, 7, 7), (8, 4, 4)]
    assert net.output_layer.index == 12
    assert_exports_match(net, random_input(net), engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_norm_is_folded_with_darknets_epsilon(tmp_path, engine):
    """(x - mean) / (sqrt(var) + 1e-6): with a variance of 1e-10 the filter's scale is
    1/(1e-5 + 1e-6), where sqrt(var + 1e-6) would give about 1/1e-3."""
    cfg = "[net]\nwidth=5\nheight=5\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"
    net = random_network(tmp_path, cfg + "activation=linear\n")
    net.layers[0].rolling_variance[:2] = [1e-10, 1e-12]
    assert_exports_match(net, random_input(net), engine)


def test_reorg_numpy_is_darknets_permutation():
    """graph.reorg_numpy (what both builders compute) against darknetpy's reorg kernel."""
    from darknetpy.cpu.reorg import reorg

    x = np.arange(16 * 4 * 6, dtype=np.float32)
    for reverse in (False, True):
        out = np.empty_like(x)
        reorg(x, 6, 4, 16, 2, reverse, out)
        np.testing.assert_array_equal(reorg_numpy(x.reshape(16, 4, 6), 2, reverse).reshape(-1), out)


TREE = "a -1\nb -1\nc -1\na1 0\na2 0\na3 0\na4 0\nc1 2\nc2 2\nc3 2\na1x 3\na1y 3\n"   # 12 classes, depth 2


def region_cfg(options: str, classes: int = 12, num: int = 2) -> str:
    return f"""[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters={num * (classes + 5)}
size=1
activation=linear

[region]
anchors=1.1,2.3, 3.5,1.7
classes={classes}
coords=4
num={num}
{options}
"""


@pytest.mark.parametrize("options", ["softmax=1", "softmax=0", "softmax=1\nbackground=1", "softmax=1\ntree=t.tree",
                                     "softmax=1\ntree=t.tree\nbackground=1"],
                         ids=["softmax", "logistic", "background", "tree", "tree-background"])
@pytest.mark.parametrize("engine", ENGINES)
def test_region_raw_and_decoded(tmp_path, options, engine):
    """[region] as net.forward gives it, and decoded as get_region_detections (letterbox
    undone for a wide, a tall and a square image)."""
    net = random_network(tmp_path, region_cfg(options), files={"t.tree": TREE})
    x = random_input(net)
    for hier_thresh in (0.5, 0.02) if "tree" in options else (0.5,):   # 0.02: most walks reach the leaves
        assert_exports_match(net, x, engine, decode_sizes=[(50, 30), (31, 64), (32, 32)], hier_thresh=hier_thresh)


@pytest.mark.parametrize("engine", ENGINES)
def test_tree_decode_at_every_level(tmp_path, engine):
    """YOLO9000's walk down the tree: 512 boxes whose classes spread over the tree (leaves
    at depth 2, inner classes where the walk stops), at three hier thresholds."""
    cfg = ("[net]\nwidth=16\nheight=16\nchannels=24\n\n[convolutional]\nfilters=34\nsize=1\nactivation=linear\n"
           "\n[region]\nanchors=1,2,3,4\nclasses=12\nnum=2\nsoftmax=1\ntree=t.tree\n")
    net = random_network(tmp_path, cfg, files={"t.tree": TREE}, gain=3)
    x = random_input(net) * 2 - 1
    picked = set()
    for hier_thresh in (0.5, 0.1, 0.02):
        picked |= set(reference_decode(net, net.forward(x), 16, 16, hier_thresh)[1].argmax(1).tolist())
        assert_exports_match(net, x, engine, decode_sizes=[(16, 16)], hier_thresh=hier_thresh)
    assert len(picked) >= 10 and {10, 11} <= picked


YOLOV3_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=8
size=1
activation=linear

[shortcut]
from=-2
alpha=0.5
beta=2
activation=leaky

[shortcut]
from=0

[convolutional]
batch_normalize=1
filters=16
size=1
activation=mish

[shortcut]
from=-3
activation=logistic

[convolutional]
filters=27
size=1
activation=linear

[yolo]
mask=3,4,5
anchors=1,2, 3,4, 5,6, 7,8, 9,10, 11,12
classes=4
num=6

[route]
layers=-4

[upsample]
stride=2
scale=1.5

[route]
layers=-1,0

[convolutional]
filters=27
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=1,2, 3,4, 5,6, 7,8, 9,10, 11,12
classes=4
num=6
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_yolov3_layers_raw_and_decoded(tmp_path, engine):
    """[shortcut] (alpha and beta, from a grid twice as large, from fewer channels),
    [upsample] (with a scale), two [yolo] layers: both outputs, and the detection array
    over both, letterbox undone."""
    net = random_network(tmp_path, YOLOV3_CFG.replace("activation=mish", "activation=relu"))
    assert [layer.out_shape for layer in net.layers if layer.type == "yolo"] == [(27, 8, 8), (27, 16, 16)]
    assert net.layers[4].add_shape == (8, 16, 16) and net.layers[6].add_shape == (8, 8, 8)
    assert_exports_match(net, random_input(net), engine, decode_sizes=[(40, 30), (16, 16)])


def test_activation_names_follow_darknets_enum():
    from darknetpy.cpu.activations import CODES
    from darknetpy.export.graph import ACTIVATION_NAMES

    assert {name: code for code, name in ACTIVATION_NAMES.items()} == CODES


@pytest.mark.parametrize("engine", ENGINES)
def test_tree_softmax_layer_and_opset_13(tmp_path, engine):
    """[softmax] with a tree over 14 inputs: the tree's 12 softmaxed, the last two 0 (Darknet's);
    and the oldest opset the exporter takes."""
    cfg = ("[net]\nwidth=6\nheight=6\nchannels=3\n\n[convolutional]\nfilters=14\nsize=3\nstride=2\nactivation=linear\n"
           "\n[avgpool]\n\n[softmax]\ntree=t.tree\n")
    net = random_network(tmp_path, cfg, files={"t.tree": TREE})
    x = random_input(net)
    out = net.forward(x).reshape(-1)
    assert out[12:].tolist() == [0.0, 0.0] and out[:12].min() > 0
    assert_exports_match(net, x, engine, opset=13)
    assert_exports_match(net, x, engine, opset=export.onnx.max_opset())


@pytest.mark.parametrize("engine", ENGINES)
def test_dynamic_batch_and_size_on_a_small_network(tmp_path, engine):
    net = random_network(tmp_path, region_cfg("softmax=1\ntree=t.tree"), files={"t.tree": TREE})
    if engine == "onnx":
        model = export.to_onnx(net, batch=None, size=None, decode=True)
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["batch", 3, "height", "width"]
    run = exported(net, engine, batch=None, size=None, decode=True)
    xs = random_input(net, batch=4)
    sizes = [[40, 30], [30, 40], [32, 32], [100, 7]]
    got = run(xs, sizes)
    for i in range(4):
        check_decode([a[i] for a in got], reference_decode(net, net.forward(xs[i]), *sizes[i]), f"batch item {i}")
    big = tmp_path / "big.cfg"
    big.write_text(region_cfg("softmax=1\ntree=t.tree").replace("width=32\nheight=32", "width=64\nheight=48"))
    net64 = Network(big, tmp_path / "net.weights", warn=None)
    x = random_input(net64)
    check_decode([a[0] for a in run(x[None], [[64, 48]])],
                 reference_decode(net64, net64.forward(x), 64, 48), "a 64x48 input")


@needs_torch
def test_state_dict_names_are_darknet_layer_indices(tmp_path):
    net = random_network(tmp_path, region_cfg("softmax=1"))
    module = export.to_torch(net)
    assert sorted(module.state_dict()) == ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight",
                                           "layers.3.bias", "layers.3.weight", "layers.4.anchors"]
    np.testing.assert_array_equal(module.state_dict()["layers.4.anchors"].numpy().reshape(-1),
                                  np.float32([1.1, 2.3, 3.5, 1.7]))


def test_unsupported_is_one_error_naming_the_layer(tmp_path):
    cfg = "[net]\nwidth=8\nheight=8\nchannels=3\n\n[maxpool]\nsize=2\nstride=2\npadding=4\n"
    net = random_network(tmp_path, cfg)
    with pytest.raises(export.Unsupported, match=r"net.cfg:\d+: layer 0 \(maxpool\): cannot export padding=4"):
        export.to_onnx(net)


# ------------------------------------------------------------------ the reference kit's models

KIT_MODELS = [("V2", m) for m in ("yolov2-tiny", "yolov2-tiny-voc", "yolov2-128", "yolo9000-128", "darknet19",
                                   "yolov2-voc", "yolov2", "yolo9000")]
KIT_MODELS += [("V3", m) for m in ("yolov3-tiny", "yolov3-128", "yolov3-416", "yolov3-spp-320", "yolov3-voc",
                                   "darknet53", "resnet50")]
DEFAULT_RUN = {"yolov2-tiny", "yolov3-tiny"}


def kit_run(model, which="V2"):
    """The first case of a kit's model: (case, kit.Run, the network)."""
    k = getattr(kit, which)
    if not k.available():
        pytest.skip(k.MISSING)
    c = next(c for c in k.cases() if c["model"] == model)
    flavor = kit.reference_flavor(model)
    run = k.run_case(c, flavor)
    assert run.mismatch is None, run.mismatch
    return c, run, k.network(model, flavor)


# yolov2 (608) on the kit's random weights has boxes up to 5.8e18 wide (exp of a raw 43):
# there Darknet's own float32 sums (darknetpy's exact bits) are 1.2e-4 of the largest box
# away from float64 arithmetic, which the exported graph is within 1.6e-5 (ONNX Runtime)
# and 7e-6 (torch) of; its raw output is within 8e-6 (see the README).
BOX_TOLERANCE = {"yolov2": 3e-4}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("which,model", [pytest.param(k, m, marks=[] if m in DEFAULT_RUN else [pytest.mark.slow])
                                         for k, m in KIT_MODELS])
def test_kit_model_raw_and_decoded(which, model, engine):
    """The export against the kit's exact output of the model's first case, raw and decoded."""
    c, run, net = kit_run(model, which)
    check_raw(exported(net, engine)(run.input[None]), run.detection_outputs or [run.output], engine)
    if not run.detection_outputs:
        return
    w, h = run.image_size
    want = reference_decode(net, run.detection_outputs, w, h)
    got = exported(net, engine, decode=True)(run.input[None], [[w, h]])
    check_decode([a[0] for a in got], want, engine, BOX_TOLERANCE.get(model, TOLERANCE))


@needs_kit
@pytest.mark.parametrize("engine", ENGINES)
def test_kit_dynamic_batch_1_and_4_and_size(tmp_path, engine):
    """yolov2-tiny exported with a dynamic batch and input size: batch 1 and 4 (four
    different images) equal darknetpy; a 320x320 input equals darknetpy built at 320."""
    c, run_case, net = kit_run("yolov2-tiny")
    run = exported(net, engine, batch=None, size=None)
    assert rel(run(run_case.input[None])[0][0], run_case.output) < TOLERANCE
    xs = np.stack([run_case.input, run_case.input[:, ::-1], run_case.input[:, :, ::-1], 1 - run_case.input])
    out = run(xs)[0]
    assert out.shape == (4, 425, 13, 13)
    for i in range(4):
        err = rel(out[i], net.forward(xs[i]))
        assert err < TOLERANCE, f"batch item {i}: {err:.1e}"
    small = kit.KIT / "darknet" / "cfg" / "yolov2-tiny.cfg"
    text = re.sub(r"width=416\nheight=416", "width=320\nheight=320", small.read_text())
    path = tmp_path / "yolov2-tiny-320.cfg"
    path.write_text(text)
    net320 = Network(path, kit.weights("yolov2-tiny.weights"), warn=None)
    x = net320.letterbox(net320.image(kit.image_path(c)))
    ref = net320.forward(x)
    assert ref.shape == (425, 10, 10)
    assert rel(run(x[None])[0][0], ref) < TOLERANCE
    if engine == "onnx":
        fixed = export.to_onnx(net, size=(320, 320))
        assert [d.dim_value for d in fixed.graph.output[0].type.tensor_type.shape.dim] == [1, 425, 10, 10]
        assert rel(run_onnx(fixed, x[None])[0][0], ref) < TOLERANCE


def readme_lines(onnx_path, image, size, thresh, yolo=False):
    """The README's three lines (see 'Export to ONNX and PyTorch'), for a size x size model."""
    import onnxruntime

    import darknetpy.export

    im = darknetpy.image.load_image_color(image)
    boxes, scores, objectness = onnxruntime.InferenceSession(onnx_path).run(None, {
        "input": darknetpy.image.letterbox_image(im, size, size)[None],
        "image_size": np.array([[im.shape[2], im.shape[1]]])})
    return darknetpy.export.detections(boxes[0], scores[0], objectness[0], thresh=thresh, nms=.45, yolo=yolo)


def iou(a, b) -> float:
    """Darknet's box_iou of two (x, y, w, h) boxes, in float64."""
    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
    w, h = overlap(a.x, a.w, b.x, b.w), overlap(a.y, a.h, b.y, b.h)
    inter = w * h if w > 0 and h > 0 else 0.0
    return inter / (float(a.w) * a.h + float(b.w) * b.h - inter)


def nms_twins(got, want, nms=.45):
    """Pairs (index in got, index in want) of detections found on one side only that are
    the same object: NMS kept one box of two that suppress each other (IoU above `nms`),
    whose probabilities are equal within TOLERANCE, so a difference in their last bits
    decides which one survives (random-weight yolov2 gives many boxes of probability 1.0
    a million pixels wide)."""
    only_got = [i for i in got if i not in want]
    only_want = [i for i in want if i not in got]
    pairs = []
    for g in only_got:
        for w in only_want:
            a, b = got[g], want[w]
            if a.probs.keys() == b.probs.keys() and iou(a.bbox, b.bbox) > nms and \
                    max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < TOLERANCE:
                pairs.append((g, w))
                only_want.remove(w)
                break
    return pairs


def test_nms_twins_pairs_only_boxes_that_suppress_each_other():
    from types import SimpleNamespace as D

    from darknetpy.detect import Box
    big, shifted, far = Box(.5, .5, 1e5, 1e6), Box(.9, .4, 1e5, 1e6), Box(5e5, .5, 1e5, 1e6)
    got = {1: D(probs={4: 1.0}, bbox=big), 7: D(probs={2: .6}, bbox=big)}
    want = {2: D(probs={4: 1.0}, bbox=shifted), 9: D(probs={2: .6}, bbox=far)}
    assert nms_twins(got, want) == [(1, 2)]
    want[2] = D(probs={4: .9}, bbox=shifted)
    assert nms_twins(got, want) == []


@pytest.mark.parametrize("which,model", [("V2", "yolov2-tiny"), pytest.param("V2", "yolov2", marks=pytest.mark.slow),
                                         ("V3", "yolov3-tiny")])
def test_readme_lines_give_detects_detections(tmp_path, which, model):
    """The README's lines on the exported model give the detections `darknetpy detect`
    gives (each image of the model's cases, both of the kit's thresholds): the same lines
    and boxes, probabilities within 1e-4. (Two detections whose probabilities differ in
    the last bits may trade places in Darknet's order: the order is not compared.)"""
    k = getattr(kit, which)
    if not k.available():
        pytest.skip(k.MISSING)
    net = k.network(model, "stock")
    path = tmp_path / "model.onnx"
    export.save_onnx(net, str(path), decode=True)
    yolo = net.output_layer.type == "yolo"
    names = [str(k) for k in range(net.classes)]
    images = sorted({k.image_path(c) for c in k.cases() if c["model"] == model and c["image"].endswith(".jpg")})
    for image in images:
        im = net.image(image)
        outs = net.forward_detection(net.letterbox(im))
        for thresh in (0.5, 0.25):
            want = net.detections([out.copy() for out in outs], im.shape[2], im.shape[1], thresh=thresh)
            got = readme_lines(str(path), image, net.width, thresh, yolo)
            assert sorted(detection_lines(got, names, thresh)) == sorted(detection_lines(want, names, thresh))
            got = {d.index: d for d in got}
            want = {d.index: d for d in want}
            for g, w in nms_twins(got, want):
                got[w] = got.pop(g)
            assert got.keys() == want.keys(), (image, thresh)
            boxes = np.array([want[i].bbox for i in want])
            assert rel(np.array([got[i].bbox for i in want]).reshape(boxes.shape), boxes) < BOX_TOLERANCE.get(
                model, TOLERANCE)
            for i in want:
                assert got[i].probs.keys() == want[i].probs.keys()
                assert max(abs(got[i].probs[k] - want[i].probs[k]) for k in want[i].probs) < TOLERANCE


# ------------------------------------------------------------------ the command

@needs_kit
def test_cli_export_writes_a_checked_model_with_metadata(tmp_path):
    out = tmp_path / "tiny.onnx"
    r = run("export", kit.cfg_path("yolov2-tiny"), kit.weights("yolov2-tiny.weights"), "-o", out, "--decode",
            "--batch", "dynamic", "--opset", "15", cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr and os.listdir(tmp_path) == ["tiny.onnx"]
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 15
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["darknet.names"])[:2] == ["person", "bicycle"]
    assert meta["darknet.input"] == "416x416" and meta["darknet.num"] == "5"
    assert meta["darknet.anchors"].startswith("0.57273,0.677385,")
    assert "letterbox" in meta["darknet.letterbox"]
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "objectness"]


def test_cli_unsupported_layer_is_one_line_exit_2_and_no_file(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=2\nsize=3\npad=1\n"
                   "activation=leaky\n\n[maxpool]\nsize=2\nstride=2\npadding=5\n")
    weights = tmp_path / "bad.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8) + np.zeros(2 + 54, "<f4").tobytes())
    out = tmp_path / "out" / "bad.onnx"
    out.parent.mkdir()
    r = run("export", cfg, weights, "-o", out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "layer 1 (maxpool)" in lines[0] and "bad.cfg:" in lines[0], r.stderr
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize("case", ["unwritable", "decode_classifier", "bad_size", "bad_opset"])
def test_cli_export_user_errors(tmp_path, case):
    cfg = tmp_path / "c.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=2\nsize=3\npad=1\n"
                   "activation=leaky\n\n[avgpool]\n\n[softmax]\n")
    weights = tmp_path / "c.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8) + np.zeros(2 + 54, "<f4").tobytes())
    args = {"unwritable": ["-o", tmp_path / "no" / "such" / "m.onnx"],
            "decode_classifier": ["-o", tmp_path / "m.onnx", "--decode"],
            "bad_size": ["-o", tmp_path / "m.onnx", "--size", "big"],
            "bad_opset": ["-o", tmp_path / "m.onnx", "--opset", "9"]}[case]
    r = run("export", cfg, weights, *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(("darknetpy: error:", "darknetpy export: error:"))
    if case != "bad_size":
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "m.onnx").exists()
    assert sorted(os.listdir(tmp_path)) == ["c.cfg", "c.weights"]
