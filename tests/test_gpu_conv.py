"""The GPU convolution kernels (GEMM, im2col, epilogue) against their CPU twins, bit for bit.

The default run uses the CUDA-on-CPU emulator on small shapes (skipped without g++);
the `gpu`-marked tests run the same checks with CuPy on a real GPU on yolov2-sized
layers, and time the exact GEMM on yolov2-608's convolutions.
"""
import re
import shutil

import numpy as np
import pytest

from darknetpy.cpu import activations as cpu_act
from darknetpy.cpu import convolution as cpu_conv
from darknetpy.cpu import gemm as cpu_gemm
from darknetpy.cpu.im2col import im2col as cpu_im2col
from darknetpy.gpu import activations, convolution, gemm, runtime
from darknetpy.gpu.im2col import im2col

TILES = [c[:2] for c in gemm.CONFIGS]
SUBNORMAL = np.float32(1e-40)
SPECIALS = np.array([0.0, -0.0, 1e-40, -1e-40, 1.1754942e-38, -1.1754942e-38, 1.1754944e-38,
                     np.inf, -np.inf, np.nan, 3e38, -3e38, 1.0, -1.0, 4.0, -4.0, 0.5, 2.5, -2.5,
                     100.0, -100.0, -700.0, 89.0, 1e-30], np.float32)


@pytest.fixture(scope="module")
def emulated():
    if shutil.which("g++") is None:
        pytest.skip("the GPU emulator needs g++")
    old = runtime._emulate_override
    runtime.emulate(True)
    yield
    runtime._emulate_override = old


@pytest.fixture(scope="module")
def cuda():
    if not runtime.available():
        pytest.skip("needs CuPy and a CUDA device")
    old = runtime._emulate_override
    runtime.emulate(False)
    yield
    runtime._emulate_override = old


def bits(x):
    return np.ascontiguousarray(x).view(np.uint32)


def assert_same(got, want, payloads=True):
    """Bit-identical; NaN payloads too unless `payloads` is False (a GEMM's NaN payload
    depends on operand order, which C leaves open, and the kit hashes NaNs canonically)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    differ = bits(got) != bits(want)
    if not payloads:
        differ &= ~(np.isnan(got) & np.isnan(want))
    diff = np.flatnonzero(differ)
    assert diff.size == 0, "%d of %d differ, first at %d: %r vs %r" % (
        diff.size, got.size, diff[0], got.reshape(-1)[diff[0]], want.reshape(-1)[diff[0]])


def with_specials(rng, shape, fraction=0.05):
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.random(flat.size) < fraction
    flat[picks] = rng.choice(SPECIALS, int(picks.sum()))
    return x


def cpu_gemm_of(a, b):
    c = np.empty((a.shape[0], b.shape[1]), np.float32)
    cpu_gemm.gemm_exact(a, b, c)
    return c


# --- emulator ---------------------------------------------------------------------------

@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (5, 7, 1), (3, 1, 9), (33, 130, 17), (130, 65, 8)])
def test_gemm_exact_matches_cpu(emulated, tile, M, N, K):
    rng = np.random.default_rng(M * 1000 + N * 10 + K)
    a = with_specials(rng, (M, K))
    b = with_specials(rng, (K, N))
    c = np.full((M, N), np.nan, np.float32)
    gemm.gemm_exact(a, b, c, tile=tile)
    assert_same(c, cpu_gemm_of(a, b), False)


def test_gemm_exact_signed_zeros_and_subnormal_sums(emulated):
    """Sums start from +0.0 (-0.0 products leave it +0.0), 0*inf in the last k is NaN,
    subnormal products and sums are kept (the GEMM runs without FTZ, as on the CPU)."""
    K = 11
    a = np.array([[-0.0] * K, [SUBNORMAL] * K, [1e-20] * K], np.float32)
    b = np.tile(np.array([[1.0], [1e-19], [-3.0]], np.float32).T, (K, 1))
    b[K - 1, 2] = np.inf
    c = np.empty((3, 3), np.float32)
    gemm.gemm_exact(a, b, c, tile=(64, 64))
    assert_same(c, cpu_gemm_of(a, b), False)
    assert bits(c)[0, 0] == 0 and 0 < c[1, 0] < 1.2e-38 and np.isnan(c[0, 2])


def test_gemm_exact_row_strides(emulated):
    rng = np.random.default_rng(1)
    a_big, b_big = with_specials(rng, (20, 40)), with_specials(rng, (19, 90))
    a, b = a_big[:, 3:22], b_big[:, 5:75]
    out = np.zeros((20, 100), np.float32)
    c = out[:, 7:77]
    gemm.gemm_exact(a, b, c, tile=(32, 128))
    assert_same(c, cpu_gemm_of(np.ascontiguousarray(a), np.ascontiguousarray(b)), False)
    assert not out[:, :7].any() and not out[:, 77:].any()


def test_gemm_exact_empty_k_gives_zeros(emulated):
    c = np.full((3, 4), np.nan, np.float32)
    gemm.gemm_exact(np.empty((3, 0), np.float32), np.empty((0, 4), np.float32), c)
    assert_same(c, np.zeros((3, 4), np.float32))


def test_gemm_rejects_bad_arrays(emulated):
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError):
        gemm.gemm_exact(a, np.zeros((4, 2), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError):
        gemm.gemm_exact(a.astype(np.float64), np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32))


def test_choose_tile_fills_the_gpu():
    """Big tiles for big layers, small ones where big tiles would leave SMs idle."""
    assert gemm.choose_tile(4096, 8192, 132) == (128, 128)
    assert gemm.choose_tile(32, 369664, 132) == (32, 128)
    assert gemm.choose_tile(1024, 361, 132) == (32, 32)
    assert gemm.choose_tile(1024, 361, 8) == (128, 128)


GEOMETRIES = [  # c, h, w, size, stride, pad
    (3, 9, 11, 3, 1, 1), (4, 10, 10, 3, 2, 1), (2, 7, 7, 5, 1, 2), (3, 8, 8, 2, 2, 0),
    (1, 5, 5, 3, 1, 0), (2, 6, 5, 3, 3, 2), (3, 12, 12, 7, 4, 3),
]


def out_hw(h, w, size, stride, pad):
    return (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1


@pytest.mark.parametrize("c,h,w,size,stride,pad", GEOMETRIES)
def test_im2col_matches_cpu(emulated, c, h, w, size, stride, pad):
    im = with_specials(np.random.default_rng(c * h * w), (c, h, w))
    oh, ow = out_hw(h, w, size, stride, pad)
    got = np.full((c * size * size, oh * ow), np.nan, np.float32)
    want = np.empty_like(got)
    im2col(im, size, stride, pad, got)
    cpu_im2col(im, size, stride, pad, want)
    assert_same(got, want)


@pytest.mark.parametrize("c,h,w,size,stride,pad,tile", [g + ((64, 64),) for g in GEOMETRIES]
                         + [GEOMETRIES[0] + (t,) for t in TILES if t != (64, 64)])
def test_conv_exact_implicit_im2col_matches_cpu(emulated, c, h, w, size, stride, pad, tile):
    rng = np.random.default_rng(size * 100 + stride * 10 + pad)
    im = with_specials(rng, (c, h, w))
    oh, ow = out_hw(h, w, size, stride, pad)
    weights = with_specials(rng, (70, c * size * size))
    cols = np.empty((c * size * size, oh * ow), np.float32)
    cpu_im2col(im, size, stride, pad, cols)
    got = np.empty((70, oh * ow), np.float32)
    gemm.conv_exact(weights, im, size, stride, pad, (oh, ow), got, tile=tile)
    assert_same(got, cpu_gemm_of(weights, cols), False)


def test_activation_enum_matches_cpu_codes():
    source = open(activations.SOURCE).read()
    names = re.search(r"enum Activation \{([^}]*)\}", source).group(1).replace("\n", " ").split(",")
    assert [n.strip().lower() for n in names] == sorted(cpu_act.CODES, key=cpu_act.CODES.get)


def epilogue_inputs(rng, filters=7, spatial=150):
    with np.errstate(over="ignore"):
        out = with_specials(rng, (filters, spatial), 0.15) * np.float32(3.0)
    mean, scales, biases = rng.standard_normal((3, filters)).astype(np.float32)
    variance = (rng.random(filters) * 2).astype(np.float32)
    # tiny results (flushed or not), a subnormal variance, a negative one (NaN), a zero
    # scale, a subnormal bias: on the first filters there are
    for array, f, value in ((scales, 0, 1e-37), (mean, 0, 0.0), (variance, 1, SUBNORMAL),
                            (variance, 2, -1.0), (scales, 3, 0.0), (biases, 4, SUBNORMAL)):
        if f < filters:
            array[f] = value
    return out, mean, variance, scales, biases


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("use_bn", [False, True])
@pytest.mark.parametrize("name", sorted(cpu_act.CODES))
def test_epilogue_matches_cpu(emulated, name, use_bn, ftz):
    a = cpu_act.CODES[name]
    out, mean, variance, scales, biases = epilogue_inputs(np.random.default_rng(a))
    want = out.copy()
    cpu_act.batchnorm_bias_activate(want, mean, variance, scales, biases, use_bn, a, ftz)
    activations.batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, a, ftz)
    assert_same(out, want)


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("name", sorted(cpu_act.CODES))
def test_activate_array_matches_cpu(emulated, name, ftz):
    a = cpu_act.CODES[name]
    rng = np.random.default_rng(100 + a)
    with np.errstate(over="ignore"):
        x = np.concatenate([SPECIALS, -SPECIALS, with_specials(rng, 500) * np.float32(5.0),
                            np.float32(0.7) * np.arange(-60, 60, dtype=np.float32)])
    want = x.copy()
    cpu_act.activate_array(want, a, ftz)
    activations.activate_array(x, a, ftz)
    assert_same(x, want)


CONVS = [  # c, h, w, filters, size, stride, pad, groups
    (4, 9, 9, 6, 3, 1, 1, 1), (4, 10, 10, 8, 3, 2, 1, 2), (6, 7, 7, 5, 1, 1, 0, 1),
    (4, 6, 6, 4, 1, 1, 0, 2), (3, 8, 8, 3, 1, 2, 0, 1), (2, 9, 9, 5, 5, 2, 2, 1),
]


def conv_case(rng, c, h, w, filters, size, stride, pad, groups):
    x = with_specials(rng, (c, h, w), 0.02)
    weights = (rng.standard_normal((filters, c // groups * size * size)) * 0.3).astype(np.float32)
    _, mean, variance, scales, biases = epilogue_inputs(rng, filters, 1)
    return x, weights, (mean, variance, scales), biases, out_hw(h, w, size, stride, pad)


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("c,h,w,filters,size,stride,pad,groups", CONVS)
def test_convolution_and_epilogue_match_cpu(emulated, c, h, w, filters, size, stride, pad, groups, ftz):
    rng = np.random.default_rng(c + h + filters + size + groups)
    x, weights, bn, biases, ohw = conv_case(rng, c, h, w, filters, size, stride, pad, groups)
    workspace = np.empty(c * size * size * ohw[0] * ohw[1], np.float32)
    want = cpu_conv.convolution(x, weights, groups, size, stride, pad, ohw, workspace, True)
    cpu_conv.epilogue(want, bn, biases, cpu_act.LEAKY, ftz)
    got = convolution.convolution_epilogue(x, weights, groups, size, stride, pad, ohw, None, True,
                                           bn, biases, cpu_act.LEAKY, ftz)
    assert_same(got, want, False)


@pytest.mark.parametrize("name", ["leaky", "linear", "logistic", "relu", "tanh", "elu", "selu", "loggy"])
@pytest.mark.parametrize("c,h,w,filters,size,stride,pad,groups", CONVS[:3])
def test_fast_mode_close_to_exact(emulated, name, c, h, w, filters, size, stride, pad, groups):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    weights = (rng.standard_normal((filters, c // groups * size * size)) * 0.3).astype(np.float32)
    mean, biases = rng.standard_normal((2, filters)).astype(np.float32)
    variance, scales = (rng.random((2, filters)) + 0.5).astype(np.float32)
    ohw = out_hw(h, w, size, stride, pad)
    workspace = np.empty(c * size * size * ohw[0] * ohw[1], np.float32)
    args = (x, weights, groups, size, stride, pad, ohw, workspace)
    bn, a = (mean, variance, scales), cpu_act.CODES[name]
    exact = convolution.convolution_epilogue(*args, True, bn, biases, a, True)
    fast = convolution.convolution_epilogue(*args, False, bn, biases, a, True)
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())


# --- real GPU ---------------------------------------------------------------------------

# yolov2 at 608x608: (filters, k, n, size) of each convolutional layer's GEMM
YOLOV2_608 = [
    (32, 27, 369664, 3), (64, 288, 92416, 3), (128, 576, 23104, 3), (64, 128, 23104, 1),
    (128, 576, 23104, 3), (256, 1152, 5776, 3), (128, 256, 5776, 1), (256, 1152, 5776, 3),
    (512, 2304, 1444, 3), (256, 512, 1444, 1), (512, 2304, 1444, 3), (256, 512, 1444, 1),
    (512, 2304, 1444, 3), (1024, 4608, 361, 3), (512, 1024, 361, 1), (1024, 4608, 361, 3),
    (512, 1024, 361, 1), (1024, 4608, 361, 3), (1024, 9216, 361, 3), (1024, 9216, 361, 3),
    (64, 512, 1444, 1), (1024, 11520, 361, 3), (425, 1024, 361, 1),
]


def _yolov2_layer(rng, filters, k, n, size):
    side = int(round(n ** 0.5))
    channels = k // (size * size)
    x = rng.standard_normal((channels, side, side)).astype(np.float32)
    weights = (rng.standard_normal((filters, k)) * 0.05).astype(np.float32)
    return x, weights, side


@pytest.mark.gpu
@pytest.mark.parametrize("layer", [YOLOV2_608[2], YOLOV2_608[8], YOLOV2_608[13], YOLOV2_608[14]])
def test_gpu_conv_exact_matches_cpu_on_yolov2_layers(cuda, layer):
    filters, k, n, size = layer
    rng = np.random.default_rng(filters + k)
    x, weights, side = _yolov2_layer(rng, filters, k, n, size)
    pad = size // 2
    workspace = np.empty(k * n, np.float32)
    bn = tuple(rng.random((3, filters)).astype(np.float32) + np.float32(0.5))
    biases = rng.standard_normal(filters).astype(np.float32)
    want = cpu_conv.convolution(x, weights, 1, size, 1, pad, (side, side), workspace, True)
    cpu_conv.epilogue(want, bn, biases, cpu_act.LEAKY, True)
    up = runtime.upload
    got = convolution.convolution_epilogue(up(x), up(weights), 1, size, 1, pad, (side, side), None, True,
                                           tuple(up(v) for v in bn), up(biases), cpu_act.LEAKY, True)
    assert_same(runtime.download(got), want, False)
    fast = convolution.convolution_epilogue(up(x), up(weights), 1, size, 1, pad, (side, side),
                                            runtime.empty(k * n), False, tuple(up(v) for v in bn),
                                            up(biases), cpu_act.LEAKY, True)
    np.testing.assert_allclose(runtime.download(fast), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.gpu
def test_gpu_im2col_matches_cpu_on_a_yolov2_layer(cuda):
    im = with_specials(np.random.default_rng(5), (64, 152, 152), 0.01)
    got = runtime.empty((64 * 9, 152 * 152))
    want = np.empty((64 * 9, 152 * 152), np.float32)
    im2col(runtime.upload(im), 3, 1, 1, got)
    cpu_im2col(im, 3, 1, 1, want)
    assert_same(runtime.download(got), want)


@pytest.mark.gpu
@pytest.mark.parametrize("ftz", [False, True])
def test_gpu_epilogue_and_gemm_match_cpu_with_specials(cuda, ftz):
    rng = np.random.default_rng(3)
    up = runtime.upload
    for tile in TILES:
        a, b = with_specials(rng, (300, 77)), with_specials(rng, (77, 500))
        c = runtime.empty((300, 500))
        gemm.gemm_exact(up(a), up(b), c, tile=tile)
        assert_same(runtime.download(c), cpu_gemm_of(a, b), False)
    for name, a in sorted(cpu_act.CODES.items()):
        for use_bn in (False, True):
            out, mean, variance, scales, biases = epilogue_inputs(rng, 9, 3000)
            want = out.copy()
            cpu_act.batchnorm_bias_activate(want, mean, variance, scales, biases, use_bn, a, ftz)
            got = up(out)
            activations.batchnorm_bias_activate(got, up(mean), up(variance), up(scales), up(biases),
                                                use_bn, a, ftz)
            assert_same(runtime.download(got), want)
        with np.errstate(over="ignore"):
            x = with_specials(rng, 100000) * np.float32(5.0)
        want = x.copy()
        cpu_act.activate_array(want, a, ftz)
        got = up(x)
        activations.activate_array(got, a, ftz)
        assert_same(runtime.download(got), want)


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_exact_gemm_speed_on_yolov2_608(cuda):
    """At least 40% of the card's non-FMA FP32 rate (SMs x 128 flops x clock) over
    yolov2-608's convolutions; prints each layer's TFLOP/s, its tile, and cuBLAS's."""
    import cupy

    def seconds(run):
        run()
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(3):
            run()
        stop.record()
        stop.synchronize()
        return cupy.cuda.get_elapsed_time(start, stop) / 3e3

    rng = np.random.default_rng(0)
    up = runtime.upload
    total_flops = total_time = 0.0
    for filters, k, n, size in YOLOV2_608:
        x, weights, side = (up(v) if isinstance(v, np.ndarray) else v
                            for v in _yolov2_layer(rng, filters, k, n, size))
        out = runtime.empty((filters, n))
        if size == 1:
            t = seconds(lambda: gemm.gemm_exact(weights, x.reshape(k, n), out))
            key = ("nn", filters, n, k)
        else:
            t = seconds(lambda: gemm.conv_exact(weights, x, size, 1, size // 2, (side, side), out))
            key = ("im2col", filters, n, k, side, side, size, 1)
        b = cupy.random.standard_normal((k, n), dtype=cupy.float32)
        flops = 2.0 * filters * k * n
        total_flops += flops
        total_time += t
        print("M=%5d K=%6d N=%6d tile=%s exact %.2f TFLOP/s, cuBLAS SGEMM %.2f" % (
            filters, k, n, gemm._tuned.get(key, gemm.choose_tile(filters, n)), flops / t / 1e12,
            flops / seconds(lambda: cupy.matmul(weights, b, out=out)) / 1e12))
    attrs = cupy.cuda.Device().attributes
    peak = attrs["MultiProcessorCount"] * 128 * attrs["ClockRate"] * 1e3
    rate = total_flops / total_time
    print("yolov2-608 exact GEMM: %.2f TFLOP/s, %.0f%% of the %.1f TFLOP/s non-FMA peak (%.1f ms)"
          % (rate / 1e12, 100 * rate / peak, peak / 1e12, total_time * 1e3))
    assert rate >= 0.4 * peak
