"""darknetpy on a real GPU (device="cuda:0", CuPy): the kit's hashes, fast against exact, the CLI.

Tests marked gpu skip, with the reason, where CuPy or a CUDA device is missing (or the
emulator is switched on: these are for the real device). The others run everywhere: the
CLI's one error line without CuPy (DARKNETPY_NO_CUPY=1, which darknetpy/gpu/runtime.py
honours) and the benchmark's table and PyTorch peer (bench/gpu.py, bench/gpu_torch.py).
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kit
from darknetpy.detect import _pct, box_iou, classifier_lines
from darknetpy.network import Network

BENCH = Path(__file__).resolve().parents[1] / "bench"
ENV = dict(os.environ, NUMBA_NUM_THREADS="2")
FAST_TOLERANCE = 1e-4
DEVICE = "cuda:0"


def gpu_missing() -> str | None:
    """Why the real-GPU tests cannot run here, or None."""
    if os.environ.get("DARKNETPY_NO_CUPY"):
        return "DARKNETPY_NO_CUPY is set"
    if os.environ.get("DARKNETPY_GPU_EMULATE"):
        return "DARKNETPY_GPU_EMULATE is set: these tests are for the real device"
    try:
        import cupy
    except ImportError as e:
        return f"CuPy is not installed ({e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:   # no driver, or CUDA cannot start
        return f"no CUDA device ({type(e).__name__}: {e})"
    return None if count else "no CUDA device"


GPU_MISSING = gpu_missing()
gpu = [pytest.mark.gpu, pytest.mark.skipif(GPU_MISSING is not None, reason=str(GPU_MISSING)),
       pytest.mark.skipif(not kit.available(), reason=kit.MISSING)]


# ---------------------------------------------------------------------------- kit on the GPU

@contextmanager
def in_kit_darknet():
    """The kit's darknet/ folder as the working directory (cfgs name data/... relative to it)."""
    cwd = os.getcwd()
    os.chdir(kit.KIT / "darknet")
    try:
        yield
    finally:
        os.chdir(cwd)


def kit_params():
    """Grouped by model and flavor, so that one network serves consecutive cases."""
    order = sorted((c["model"], flavor, i, c["id"]) for i, c in enumerate(kit.cases()) for flavor in c["flavors"])
    return [pytest.param(case_id, flavor, id=f"{case_id}-{flavor}", marks=gpu) for _, flavor, _, case_id in order]


@pytest.mark.parametrize("case_id,flavor", kit_params())
def test_gpu_exact_layers_equal_the_kit(case_id, flavor):
    c = kit.case(case_id)
    run = kit.run_case(c, flavor, device=DEVICE)
    assert kit.sha256_f32(run.input) == c["results"]["stock"]["input"]["sha256"], "network input differs from the kit's"
    assert run.mismatch is None, run.mismatch


@pytest.mark.parametrize("model_name", [pytest.param(m, marks=gpu) for m in ("yolov2-tiny", "yolo9000-128", "darknet19")])
def test_gpu_graph_replay_equals_kernel_launches(model_name):
    """forward() replays a captured CUDA graph: the bits of launching kernel by kernel, with
    the input buffer refilled on every call."""
    cases = [c for c in kit.cases() if c["model"] == model_name][:2]
    flavor = cases[0]["flavors"][0]
    xs = [kit.run_case(c, flavor, device=DEVICE).input for c in cases]
    net = kit.network(model_name, flavor, device=DEVICE)
    with in_kit_darknet():
        eager = [net.backend.download(net.forward_layers(x, keep=False)[net.output_layer.index]) for x in xs]
        replayed = [net.forward(x) for x in xs + xs]
    assert net._graph not in (None, False), "the CUDA graph was not captured"
    for got, want in zip(replayed, eager + eager):
        assert got.reshape(-1).tobytes() == want.reshape(-1).tobytes()


# ---------------------------------------------------------------------------- fast against exact

@functools.lru_cache(maxsize=1)
def fast_network(model_name: str, compat: str | None) -> Network:
    with in_kit_darknet():
        return Network(kit.cfg_path(model_name), kit.weights(kit.model(model_name)["weights"]),
                       numerics="fast", compat=compat, warn=None, device=DEVICE)


def exact_and_fast(c: dict):
    """The exact run (kit.run_case on the GPU) in the flavor whose lines the CLI prints,
    and fast mode's output layer's output on the same input."""
    flavor = reference_flavor(c["model"])
    run = kit.run_case(c, flavor, device=DEVICE)
    compat = kit.FLAVOR_SETTINGS[flavor][1] if "yolo9000" in c["model"] else None
    net = fast_network(c["model"], compat)
    with in_kit_darknet():
        fast = net.forward(run.input)
    return run, np.asarray(fast).reshape(run.output.shape)


def reference_flavor(model_name: str) -> str:
    """The flavor whose lines the CLI prints: the GPU build's tree for YOLO9000."""
    return "fixed-tree" if "yolo9000" in model_name else "stock"


def fast_params():
    return [pytest.param(c["id"], id=c["id"], marks=gpu) for c in kit.cases()]


def names_of(model_name: str) -> list[str]:
    return (kit.KIT / kit.model(model_name)["names"]).read_text().split("\n")


def rel_error(out: np.ndarray, ref: np.ndarray) -> float:
    """max|out - ref| / max|ref| over the finite values; inf where NaNs sit differently."""
    out, ref = out.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    if not np.array_equal(np.isnan(out), np.isnan(ref)):
        return float("inf")
    finite = ~np.isnan(ref)
    return float(np.max(np.abs(out[finite] - ref[finite])) / (np.max(np.abs(ref[finite])) or 1.0))


@pytest.mark.parametrize("case_id", fast_params())
def test_gpu_fast_output_within_tolerance_of_exact(case_id):
    run, fast = exact_and_fast(kit.case(case_id))
    err = rel_error(fast, run.output)
    assert err < FAST_TOLERANCE, f"fast mode's output is {err:.2e} from exact's (max|fast - exact| / max|exact|)"


def boxes_close(a, b, tol: float) -> bool:
    """Centres within `tol` (image-relative units), w and h within `tol` relative: they are
    exp(output), so an absolute error e in the output is a relative error e in them."""
    a, b = np.array(a, np.float64), np.array(b, np.float64)
    return bool(np.all(np.abs(a[:2] - b[:2]) <= tol) and np.all(np.abs(a[2:] - b[2:]) <= tol * np.abs(a[2:])))


def straddles(a: float, b: float, t: float) -> bool:
    return bool((np.float32(a) > np.float32(t)) != (np.float32(b) > np.float32(t)))


def printed(dets, thresh: float) -> dict:
    """(detection index, class) -> probability of every printed line."""
    return {(d.index, k): d.prob(k) for d in dets for k in d.classes_above(thresh)}


def differences(net, exact, fast, w: int, h: int, thresh: float, hier: float, nms: float, tol: float):
    """Lists (on a threshold, unexplained) of the ways fast mode's printed detections differ
    from exact's. On a threshold: probabilities within `tol` of each other that fall on
    opposite sides of `thresh` or of a printed rounding boundary, boxes whose IoU falls on
    opposite sides of `nms` (or that overlap such a box), order swaps of such near-equal
    probabilities. Everything else is unexplained: a real difference."""
    de, df = (net.detections(o.copy(), w, h, thresh, hier, nms) for o in (exact, fast))
    pre_e, pre_f = ({d.index: d for d in net.detections(o.copy(), w, h, thresh, hier, 0, printed_only=False)}
                    for o in (exact, fast))
    # every probability, also those at or below thresh (which the detections hold as 0)
    raw_e, raw_f = ({d.index: d for d in net.detections(o.copy(), w, h, 0.0, hier, 0, printed_only=False)}
                    for o in (exact, fast))
    pe, pf = printed(de, thresh), printed(df, thresh)
    moved = {i for i, _ in pe.keys() ^ pf.keys()}
    on, off = [], []
    for i, k in sorted(pe.keys() | pf.keys()):
        a, b = float(raw_e[i].prob(k)), float(raw_f[i].prob(k))
        where = f"detection {i} class {k} box {tuple(float(v) for v in pre_e[i].bbox)}: exact {a!r}, fast {b!r}"
        near = abs(a - b) <= tol
        if (i, k) in pe and (i, k) in pf:
            if "%.0f" % _pct(pe[i, k]) != "%.0f" % _pct(pf[i, k]):
                (on if near else off).append(f"{where}: printed percent on a rounding boundary")
            elif not boxes_close(pre_e[i].bbox, pre_f[i].bbox, tol):
                off.append(f"{where}: boxes differ, fast {tuple(float(v) for v in pre_f[i].bbox)}")
            continue
        side = "exact" if (i, k) in pe else "fast"
        if near and straddles(a, b, thresh):
            on.append(f"{where}: printed by {side} only, on thresh {thresh}")
            continue
        others = [j for j, x in pre_e.items() if j != i and k in x.probs and k in pre_f[j].probs]
        flips = [j for j in others if straddles(box_iou(pre_e[i].bbox, pre_e[j].bbox),
                                                box_iou(pre_f[i].bbox, pre_f[j].bbox), nms)]
        cascade = [j for j in others if j in moved and box_iou(pre_e[i].bbox, pre_e[j].bbox) > nms]
        if near and (flips or cascade):
            on.append(f"{where}: printed by {side} only, NMS IoU on {nms} with detection {(flips or cascade)[0]}")
        else:
            off.append(f"{where}: printed by {side} only")
    order_e = [key for key in (
        (d.index, k) for d in de for k in d.classes_above(thresh)) if key in pf]
    order_f = [key for key in (
        (d.index, k) for d in df for k in d.classes_above(thresh)) if key in pe]
    for (ie, ke), (jf, kf) in zip(order_e, order_f):
        if (ie, ke) != (jf, kf):
            text = f"order: exact prints detection {ie} class {ke} where fast prints detection {jf} class {kf}"
            k = sort_class(pre_e[ie], pre_e[jf]) if ie != jf else None
            if k is None:
                off.append(text)
            else:
                a, b = float(pre_e[ie].prob(k)), float(pre_e[jf].prob(k))
                (on if abs(a - b) <= tol else off).append(f"{text}: class {k} sorts them, exact {a!r} and {b!r}")
            break
    return on, off


def sort_class(a, b) -> int | None:
    """The class whose sort last ordered detections a and b (do_nms_sort sorts stably by each
    class's probability in turn: the last class where they differ decides), or None."""
    for k in sorted(set(a.probs) | set(b.probs), reverse=True):
        if a.prob(k) != b.prob(k):
            return k
    return None


@pytest.mark.parametrize("case_id", fast_params())
def test_gpu_fast_detections_and_lines_equal_exact(case_id):
    """Fast mode prints exact's lines; a difference must come from a value that sits on a
    threshold (reported as a warning, with the box) and never from anything else."""
    c = kit.case(case_id)
    run, fast = exact_and_fast(c)
    exact = run.output
    net = kit.network(c["model"], reference_flavor(c["model"]), device=DEVICE)
    names = names_of(c["model"])
    tol = FAST_TOLERANCE * max(1.0, float(np.nanmax(np.abs(exact))))
    if kit.model(c["model"])["kind"] == "classifier":
        le, lf = classifier_lines(exact, names), classifier_lines(fast, names)
        if le != lf:
            close = np.max(np.abs(fast.astype(np.float64) - exact)) <= tol
            assert close, f"fast mode prints {lf}, exact {le}"
            warnings.warn(f"{case_id}: top-5 lines on a rounding boundary or near tie: exact {le}, fast {lf}")
        return
    w, h = run.image_size
    hier, nms = (float(kit.manifest()["detector_settings"][k]) for k in ("hier_thresh", "nms"))
    for thresh in map(float, kit.manifest()["detector_settings"]["thresholds"]):
        on, off = differences(net, exact, fast, w, h, thresh, hier, nms, tol)
        assert not off, f"thresh {thresh}: fast mode's detections differ from exact's:\n" + "\n".join((off + on)[:20])
        if on:
            warnings.warn(f"{case_id} thresh {thresh}: values on a threshold:\n" + "\n".join(on[:20]))


def test_differences_tell_a_threshold_from_a_real_difference(tmp_path):
    """The fast-mode comparison on the CPU with made-up 'fast' outputs: noise that moves a
    probability across thresh is on a threshold; a changed class logit is a real difference."""
    from test_batch import write_tiny_model

    net = Network(*write_tiny_model(tmp_path), warn=None)
    exact = net.forward(np.random.default_rng(5).random((3, 32, 32), dtype=np.float32))
    fast = exact * (1 + np.float32(1e-6) * np.random.default_rng(6).standard_normal(exact.shape, np.float32))
    tol = FAST_TOLERANCE * float(np.abs(exact).max())
    raw = [{(d.index, k): p for d in net.detections(o.copy(), 64, 48, 0.0, 0.5, 0, printed_only=False)
            for k, p in d.probs.items()} for o in (exact, fast)]
    (i, k), a, b = max(((key, raw[0][key], raw[1][key]) for key in raw[0] if raw[0][key] != raw[1][key]),
                       key=lambda t: min(t[1], t[2]))
    thresh = (float(a) + float(b)) / 2
    on, off = differences(net, exact, fast, 64, 48, thresh, 0.5, 0.45, tol)
    assert off == [] and any(f"detection {i} class {k}" in line and "on thresh" in line for line in on), on
    changed = exact.copy()
    changed.reshape(2, 7, -1)[i // 256, 5 + k, i % 256] -= 3     # the class logit of (anchor, cell) = i
    on, off = differences(net, exact, changed, 64, 48, min(float(a), float(b)) * 0.9, 0.5, 0.45, tol)
    assert any(f"detection {i} class {k}" in line and "printed by exact only" in line for line in off), (on, off)


# ---------------------------------------------------------------------------- the CLI

def darknetpy(*args, env=ENV, cwd=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def detector_models() -> list[str]:
    return [name for name, spec in (kit.manifest()["models"].items() if kit.available() else [])
            if spec["kind"] == "detector"]


def kit_lines(model_name: str, cases: list[dict], thresh: str) -> list[str]:
    lines = []
    for c in cases:
        result = c["results"][reference_flavor(model_name)]
        lines += next(d["lines"] for d in result["detections"] if d["thresh"] == thresh)
    return lines


@pytest.mark.parametrize("model_name,flag", [pytest.param(m, f, id=f"{m}{f}", marks=gpu) for m in detector_models()
                                             for f in (("--gpu",) if m != "yolov2-tiny" else ("--gpu", "-i"))])
def test_gpu_detector_test_prints_the_kits_lines(model_name, flag, tmp_path):
    spec = kit.model(model_name)
    cases = [c for c in kit.cases() if c["model"] == model_name and c["image"].endswith(".png")]
    r = darknetpy("detector", "test", kit.KIT / spec["data"], kit.cfg_path(model_name), kit.weights(spec["weights"]),
                  *[kit.image_path(c) for c in cases], "-thresh", "0.25", "-out", tmp_path / "pred", flag, "0",
                  cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if ": Predicted in " not in line] == kit_lines(model_name, cases,
                                                                                                   "0.25")


@pytest.mark.parametrize("flag", [pytest.param(f, marks=gpu) for f in ("--gpu", "-i")])
def test_gpu_classifier_predict_prints_the_kits_top5(flag):
    spec = kit.model("darknet19")
    cases = [c for c in kit.cases() if c["model"] == "darknet19"]
    r = darknetpy("classifier", "predict", kit.KIT / spec["data"], kit.cfg_path("darknet19"),
                  kit.weights(spec["weights"]), *[kit.image_path(c) for c in cases], flag, "0", cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [line for c in cases for line in c["results"]["stock"]["lines"]]


def test_detect_on_the_gpu_without_cupy_is_one_error_line(tmp_path):
    from test_batch import write_image, write_tiny_model

    cfg, weights = write_tiny_model(tmp_path)
    image = write_image(tmp_path / "im.png", 40, 30, seed=1)
    r = darknetpy("detect", cfg, weights, image, "--gpu", "0", "--no-draw", env=dict(ENV, DARKNETPY_NO_CUPY="1"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darknetpy: error:"), r.stderr
    assert "cupy" in lines[0].lower(), lines[0]
    assert "Predicted" not in r.stdout


# ---------------------------------------------------------------------------- the benchmark (no GPU needed)

@pytest.fixture(scope="module")
def bench_gpu():
    sys.path.insert(0, str(BENCH))
    import gpu as bench_module
    return bench_module


def test_bench_gpu_arguments(bench_gpu):
    args = bench_gpu.parse_args(["--quick"])
    assert args.models == bench_gpu.QUICK_MODELS and args.batches == [1] and args.layers == ""
    args = bench_gpu.parse_args(["--models", "yolov2", "--batches", "1,16", "--engines", "exact,torch-tf32"])
    assert args.models == ["yolov2"] and args.batches == [1, 16] and args.engines == ["exact", "torch-tf32"]
    for bad in (["--models", "yolov3"], ["--engines", "onnx"], ["--batches", "0"], ["--layers", "x"]):
        with pytest.raises(SystemExit):
            bench_gpu.parse_args(bad)


def test_bench_gpu_table_from_made_up_numbers(bench_gpu):
    def row(key, ms, note=""):
        return dict(model="yolov2", size=608, gflop=10.0, batch=16, key=key, engine=key, ms=ms, min=ms, calls=9,
                    note=note, check="ok 1.0e-06")

    rows = [row("exact", 2.0, "16 sequential images"), row("torch-fp32", 1.0), row("torch-tf32", 0.5)]
    bench_gpu.ratios(rows)
    table = bench_gpu.report_rows(rows, fma=50.0)
    assert table[0].count("÷") == 2
    cells = [c.strip() for c in table[2].split("|")[1:-1]]
    # 10 GFLOP in 2 ms = 5 TFLOP/s: 10% of a 50 TFLOP/s FMA rate, 20% of the 25 TFLOP/s non-FMA rate
    assert cells == ["yolov2 608", "16", "exact", "full", "2.000", "2.000", "5.00", "10.0", "20.0", "2.00", "4.00",
                     "ok 1.0e-06", "16 sequential images"]
    assert [c.strip() for c in table[3].split("|")[1:-1]][9:11] == ["", "2.00"]
    layers = [dict(index=0, type="convolutional", summary="conv 32 3 x 3 / 1 608 x 608 x 3 -> 608", shape="32x27x369664",
                   gflop=1.0, ms=0.1),
              dict(index=1, type="convolutional", summary="conv", shape="64x288x92416", gflop=1.0, ms=0.2),
              dict(index=2, type="maxpool", summary="max", shape="", gflop=0.0, ms=0.05)]
    lines = bench_gpu.layer_rows(layers, fma=50.0)
    assert lines[2].endswith("| 10.00 | 40.0 | met |") and lines[3].endswith("| 5.00 | 20.0 | below |")
    assert "| 2.000 | 0.300 | 6.67 | 26.7 | 1/2 met |" in lines[4] and "0.050" in lines[5]


TINY_PEER_CFG = """[net]
width=16
height=16
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
filters=16
size=3
pad=1
activation=leaky

[route]
layers=0

[reorg]
stride=2

[route]
layers=-1,2

[convolutional]
filters=10
size=1
activation=linear

[avgpool]

[softmax]
"""


def test_bench_gpu_peer_takes_batches(tmp_path):
    """gpu_torch.Batched (any batch) computes what peers.to_torch (batch 1) does, per image."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(BENCH))
    import gpu_torch
    import peers

    rng = np.random.default_rng(3)
    cfg = tmp_path / "peer.cfg"
    cfg.write_text(TINY_PEER_CFG)
    arrays = [rng.uniform(-.1, .1, 8), rng.uniform(.5, 1.5, 8), rng.uniform(-.1, .1, 8), rng.uniform(.5, 1.5, 8),
              rng.uniform(-.5, .5, 8 * 3 * 9), rng.uniform(-.1, .1, 16), rng.uniform(-.3, .3, 16 * 8 * 9),
              rng.uniform(-.1, .1, 10), rng.uniform(-.3, .3, 10 * 48)]
    weights = tmp_path / "peer.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8)
                        + np.concatenate(arrays).astype("<f4").tobytes())
    spec = peers.graph_spec(Network(cfg, weights, warn=None), "peer")
    assert [op["type"] for op in spec.ops] == ["conv", "maxpool", "conv", "route", "reorg", "route", "conv",
                                               "avgpool", "softmax"]
    x = rng.random((3, 3, 16, 16), dtype=np.float32)
    one = peers.to_torch(spec)
    with torch.no_grad():
        batched = gpu_torch.Batched(spec, "cpu")(torch.from_numpy(x)).numpy()
        singles = np.concatenate([one(torch.from_numpy(x[i:i + 1])).numpy() for i in range(3)])
    assert batched.shape == (3, 10)
    np.testing.assert_allclose(batched, singles, rtol=1e-6, atol=1e-7)
    assert np.ptp(batched, axis=0).max() > 1e-3, "three different images should give three different outputs"
