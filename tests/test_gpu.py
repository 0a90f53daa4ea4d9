"""darknetpy on a real GPU (device="cuda:0", CuPy): the kit's hashes, fast against exact, the CLI.

Tests marked gpu skip, with the reason, where CuPy or a CUDA device is missing (or the
emulator is switched on: these are for the real device). The others run everywhere: the
CLI's one error line without CuPy (DARKNETPY_NO_CUPY=1, which darknetpy/gpu/runtime.py
honours) and the benchmark's table and PyTorch peer (bench/gpu.py, bench/gpu_torch.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kit
from darknetpy.network import Network

BENCH = Path(__file__).resolve().parents[1] / "bench"
ENV = dict(os.environ, NUMBA_NUM_THREADS="2")
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
    assert net.executor._graph not in (None, False), "the CUDA graph was not captured"
    for got, want in zip(replayed, eager + eager):
        assert got.reshape(-1).tobytes() == want.reshape(-1).tobytes()


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
        result = c["results"][kit.reference_flavor(model_name)]
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
    from test_many import write_image, write_tiny_model

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
    assert batched.shape == (3, 10, 1, 1)          # (batch, c, h, w), as net.forward gives (c, h, w)
    np.testing.assert_allclose(batched, singles, rtol=1e-6, atol=1e-7)
    assert np.ptp(batched, axis=0).max() > 1e-3, "three different images should give three different outputs"
