"""darknetpy on a real GPU (device="cuda:0", CuPy): the kit's hashes, fast against exact, the CLI.

Tests marked gpu skip, with the reason, where CuPy or a CUDA device is missing (or the
emulator is switched on: these are for the real device). The others run everywhere: the
CLI's one error line without CuPy (DARKNETPY_NO_CUPY=1, which darknetpy/gpu/runtime.py
honours) and the benchmark's table and PyTorch peer (bench/gpu.py, bench/gpu_torch.py).
"""
from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kit
from darknetpy.detect import _pct, classifier_lines, detection_lines
from darknetpy.image import letterbox_image, load_image_color
from darknetpy.network import Network

BENCH = Path(__file__).resolve().parents[1] / "bench"
ENV = dict(os.environ, NUMBA_NUM_THREADS="2")
FAST_TOLERANCE = 1e-4


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


@functools.lru_cache(maxsize=2)
def gpu_network(model_name: str, numerics: str, compat: str | None) -> Network:
    with in_kit_darknet():
        return Network(kit.cfg_path(model_name), kit.weights(kit.model(model_name)["weights"]),
                       numerics=numerics, compat=compat, warn=None, device="cuda:0")


def settings(model_name: str, flavor: str) -> tuple[str, str | None]:
    """(numerics, compat) of a kit flavor, as kit.network chooses them."""
    numerics, compat = kit.FLAVOR_SETTINGS[flavor]
    return numerics, compat if "yolo9000" in model_name else None


@functools.lru_cache(maxsize=None)
def kit_input(image: str, width: int, height: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The letterboxed network input of a kit image and the image's (w, h)."""
    im = load_image_color(kit.KIT / image)
    return letterbox_image(im, width, height), (im.shape[2], im.shape[1])


_outputs: dict = {}   # (model, numerics, compat, input digest) -> (first mismatch or None, output)


def gpu_run(c: dict, flavor: str, numerics: str | None = None):
    """The network input, the first mismatching layer (None: all equal) and the output
    layer's output of a GPU forward pass in the flavor's settings (or other numerics)."""
    flavor_numerics, compat = settings(c["model"], flavor)
    numerics = numerics or flavor_numerics
    net = gpu_network(c["model"], numerics, compat)
    x, _ = kit_input(c["image"], net.width, net.height)
    key = (c["model"], numerics, compat, hashlib.sha256(x.tobytes()).hexdigest())
    if key not in _outputs:
        with in_kit_darknet():
            outputs = [host(o) for o in net.forward_layers(x)]
        mismatch = kit.first_mismatch(kit.expected_layers(c, flavor), outputs) if numerics == flavor_numerics else None
        _outputs[key] = (mismatch, outputs[net.output_layer.index].reshape(net.output_layer.out_shape))
    mismatch, out = _outputs[key]
    return x, mismatch, out.copy()


def host(a) -> np.ndarray:
    """A backend array on the host (forward_layers(keep=True) already downloads)."""
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def kit_params():
    """Grouped by model and flavor, so that one network serves consecutive cases."""
    order = sorted((c["model"], flavor, i, c["id"]) for i, c in enumerate(kit.cases()) for flavor in c["flavors"])
    return [pytest.param(case_id, flavor, id=f"{case_id}-{flavor}", marks=gpu) for _, flavor, _, case_id in order]


@pytest.mark.parametrize("case_id,flavor", kit_params())
def test_gpu_exact_layers_equal_the_kit(case_id, flavor):
    c = kit.case(case_id)
    x, mismatch, _ = gpu_run(c, flavor)
    assert kit.sha256_f32(x) == c["results"]["stock"]["input"]["sha256"], "network input differs from the kit's"
    assert mismatch is None, mismatch


# ---------------------------------------------------------------------------- fast against exact

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
    c = kit.case(case_id)
    flavor = reference_flavor(c["model"])
    _, _, exact = gpu_run(c, flavor)
    _, _, fast = gpu_run(c, flavor, numerics="fast")
    err = rel_error(fast, exact)
    assert err < FAST_TOLERANCE, f"fast mode's output is {err:.2e} from exact's (max|fast - exact| / max|exact|)"


def straddles(a: float, b: float, t: float) -> bool:
    return (np.float32(a) > np.float32(t)) != (np.float32(b) > np.float32(t))


def on_a_threshold(exact_dets, fast_dets, thresh: float, hier: float) -> list[str]:
    """Probabilities (with their box) that fall on opposite sides of a threshold, or print
    differently, in exact and fast mode: what makes the two lists differ."""
    fast_by_index = {d.index: d for d in fast_dets}
    found = []
    for d in exact_dets:
        f = fast_by_index.get(d.index)
        if f is None:
            found.append(f"detection {d.index} box {tuple(map(float, d.bbox))} objectness {float(d.objectness)!r}: "
                         f"exact only (NMS or objectness threshold)")
            continue
        for k in sorted(set(d.probs) | set(f.probs)):
            pe, pf = float(d.prob(k)), float(f.prob(k))
            why = [f"thresh {t}" for t in (thresh, hier) if straddles(pe, pf, t)]
            if "%.0f" % _pct(pe) != "%.0f" % _pct(pf):
                why.append("printed percent (%.0f)")
            if why:
                found.append(f"detection {d.index} class {k} box {tuple(map(float, d.bbox))}: exact {pe!r} "
                             f"fast {pf!r} on {', '.join(why)}")
    exact_indices = {d.index for d in exact_dets}
    found += [f"detection {d.index} box {tuple(map(float, d.bbox))}: fast only" for d in fast_dets
              if d.index not in exact_indices]
    return found


@pytest.mark.parametrize("case_id", fast_params())
def test_gpu_fast_detections_and_lines_equal_exact(case_id):
    c = kit.case(case_id)
    flavor = reference_flavor(c["model"])
    numerics, compat = settings(c["model"], flavor)
    net = gpu_network(c["model"], numerics, compat)
    names = names_of(c["model"])
    _, _, exact = gpu_run(c, flavor)
    _, _, fast = gpu_run(c, flavor, numerics="fast")
    if kit.model(c["model"])["kind"] == "classifier":
        assert classifier_lines(fast, names) == classifier_lines(exact, names)
        return
    _, (w, h) = kit_input(c["image"], net.width, net.height)
    hier, nms = (float(kit.manifest()["detector_settings"][k]) for k in ("hier_thresh", "nms"))
    # w and h are exp(output): an absolute error e in the output is a relative error e in them
    box_rtol = FAST_TOLERANCE * max(1.0, float(np.nanmax(np.abs(exact))))
    for thresh in map(float, kit.manifest()["detector_settings"]["thresholds"]):
        with in_kit_darknet():
            de = net.detections(exact.copy(), w, h, thresh, hier, nms)
            df = net.detections(fast.copy(), w, h, thresh, hier, nms)
        same = ([(d.index, d.classes_above(thresh)) for d in de] == [(d.index, d.classes_above(thresh)) for d in df]
                and all(np.allclose(np.array(a.bbox, np.float64), np.array(b.bbox, np.float64), rtol=box_rtol, atol=0)
                        for a, b in zip(de, df)))
        lines_same = detection_lines(de, names, thresh) == detection_lines(df, names, thresh)
        if not (same and lines_same):
            why = on_a_threshold(de, df, thresh, hier) or ["no probability on a threshold: boxes differ"]
            pytest.fail(f"thresh {thresh}: fast mode's detections differ from exact's:\n" + "\n".join(why[:20]))


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
