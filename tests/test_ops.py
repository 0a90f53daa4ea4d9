"""The op table: every kernel of the protocol (darknetpy/kernels.py) on every backend.

One row per case: the kernel, its arguments (host arrays, batch 2), and a plain numpy
reference. Each row runs on the CPU backend and on the GPU backend (the emulator here;
a real GPU under the `gpu` mark). Both must match the reference (bit for bit where the
reference does Darknet's float32 operations in Darknet's order, within 1e-5 where it is a
float64 formula), and the GPU's result must equal the CPU's bit for bit. Adding a kernel
to the protocol without a row here fails `test_every_kernel_has_a_row`.
"""
import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest

from darknetpy import kernels
from darknetpy.backend import get_backend
from darknetpy.cpu import activations
from darknetpy.gpu import runtime

F32 = np.float32
RNG_SEED = 7


@dataclass
class Case:
    kernel: str
    args: list                 # host values; numpy arrays go to the device
    out: int                   # the position of the output array in args (filled with NaN)
    reference: object          # args -> the expected host array
    exact: bool = True         # the reference's bits are Darknet's (else within 1e-5)
    extra: dict = field(default_factory=dict)


def rand(rng, *shape, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def leaky(v):
    return np.where(v > 0, v, 0.1 * v)


def conv_reference(x, weights, groups, size, stride, pad, bn, biases, out_shape):
    """float64 convolution, batch norm (Darknet's sqrt(var) + .000001) or bias, leaky."""
    n, c, h, w = x.shape
    filters, oh, ow = out_shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cg, m = c // groups, filters // groups
    wt = weights.astype(np.float64).reshape(filters, cg, size, size)
    out = np.zeros((n, filters, oh, ow))
    for f in range(filters):
        g = f // m
        for i in range(size):
            for j in range(size):
                patch = xp[:, g * cg:(g + 1) * cg, i:i + stride * oh:stride, j:j + stride * ow:stride]
                out[:, f] += np.einsum("nchw,c->nhw", patch, wt[f, :, i, j])
    if bn is not None:
        mean, var, scales = (a.astype(np.float64)[None, :, None, None] for a in bn)
        out = (out - mean) / (np.sqrt(var) + 1e-6) * scales
    out += biases.astype(np.float64)[None, :, None, None]
    return leaky(out)


def maxpool_reference(x, size, stride, pad, out_shape):
    """Darknet's forward_maxpool_layer, in float32 (a max is exact)."""
    n, c, h, w = x.shape
    _, oh, ow = out_shape
    off = -(pad // 2)
    out = np.full((n, c, oh, ow), -np.finfo(F32).max, F32)
    for i in range(oh):
        for j in range(ow):
            for a in range(size):
                for b in range(size):
                    y, z = off + i * stride + a, off + j * stride + b
                    if 0 <= y < h and 0 <= z < w:
                        out[:, :, i, j] = np.maximum(out[:, :, i, j], x[:, :, y, z])
    return out


def avgpool_reference(x):
    """A float32 sum in order, times float32 1/(h*w) (the -Ofast build)."""
    n, c, h, w = x.shape
    s = np.zeros((n, c), F32)
    for v in x.reshape(n, c, h * w).transpose(2, 0, 1):
        s = (s + v).astype(F32)
    return s * (F32(1.0) / F32(h * w))


def reorg_reference(x, stride, reverse):
    """Darknet's reorg_cpu with its `forward` = the layer's reverse, input sizes."""
    n, c, h, w = x.shape
    out = np.empty(x.size // n * n, F32).reshape(n, -1)
    flat = x.reshape(n, -1)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                offset = k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * (k % out_c))
                if reverse:
                    out[:, out_index] = flat[:, in_index]
                else:
                    out[:, in_index] = flat[:, out_index]
    return out


def softmax_reference(x):
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def region_reference(x, anchors, classes, coords):
    """Logistic boxes' x, y and objectness, softmax over classes (YOLOv2's region)."""
    n, _, h, w = x.shape
    v = x.astype(np.float64).reshape(n, anchors, classes + coords + 1, h * w)
    out = v.copy()
    out[:, :, :2] = 1 / (1 + np.exp(-v[:, :, :2]))
    out[:, :, coords] = 1 / (1 + np.exp(-v[:, :, coords]))
    out[:, :, coords + 1:] = softmax_reference(v[:, :, coords + 1:].transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    return out.reshape(x.shape)


def tree_reference(x, offsets, sizes):
    out = np.zeros(x.shape)
    for o, s in zip(offsets, sizes):
        out[:, o:o + s] = softmax_reference(x[:, o:o + s])
    return out


def conv_case(rng, c, h, w, filters, size, stride, pad, groups, bn):
    x = rand(rng, 2, c, h, w)
    weights = rand(rng, filters, c // groups * size * size, scale=0.5)
    biases = rand(rng, filters)
    norm = (rand(rng, filters), np.abs(rand(rng, filters)) + F32(0.5), rand(rng, filters)) if bn else None
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    out = np.zeros((2, filters, oh, ow), F32)
    args = [x, weights, groups, size, stride, pad, None, True, norm, biases, activations.LEAKY, True, out]
    ref = conv_reference(x, weights, groups, size, stride, pad, norm, biases, out.shape[1:])
    return Case("convolution", args, 12, lambda *a: ref, exact=False)


def conv_maxpool_case(rng):
    x = rand(rng, 2, 3, 8, 8)
    weights, biases = rand(rng, 4, 27, scale=0.5), rand(rng, 4)
    out = np.zeros((2, 4, 4, 4), F32)
    args = [x, weights, 3, 1, 1, (8, 8), None, True, None, biases, activations.LEAKY, True, 2, out]
    conv = conv_reference(x, weights, 1, 3, 1, 1, None, biases, (4, 8, 8))
    ref = conv.reshape(2, 4, 4, 2, 4, 2).max(axis=(3, 5))
    return Case("convolution_maxpool", args, 13, lambda *a: ref, exact=False)


def shortcut_reference(x, add, alpha, beta, activation):
    """Darknet's shortcut_cpu in float32 (one rounding per operation), then the activation."""
    out = x.copy()
    _, c2, h2, w2 = x.shape
    _, c1, h1, w1 = add.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    minc, minh, minw = min(c1, c2), min(h1, h2), min(w1, w2)
    dst = out[:, :minc, :minh * sample:sample, :minw * sample:sample]
    src = add[:, :minc, :minh * stride:stride, :minw * stride:stride]
    out[:, :minc, :minh * sample:sample, :minw * sample:sample] = F32(alpha) * dst + F32(beta) * src
    if activation == activations.LEAKY:
        out = np.where(out > 0, out, (0.1 * out.astype(np.float64)).astype(F32))
    return out


def shortcut_case(rng, x_shape, add_shape, alpha, beta, activation):
    x, add = rand(rng, 2, *x_shape), rand(rng, 2, *add_shape)
    args = [x, add, alpha, beta, activation, True, np.zeros_like(x)]
    return Case("shortcut", args, 6, lambda x, add, alpha, beta, activation, *a:
                shortcut_reference(x, add, alpha, beta, activation))


def cases():
    """The table; every output array starts as NaN, so a kernel that skips an element fails."""
    rng = np.random.default_rng(RNG_SEED)
    table = [
        conv_case(rng, 3, 9, 7, 4, 3, 1, 1, 1, bn=True),
        conv_case(rng, 4, 6, 6, 6, 3, 2, 1, 2, bn=False),
        conv_case(rng, 5, 4, 4, 3, 1, 1, 0, 1, bn=True),
        conv_maxpool_case(rng),
    ]
    for c, h, w, size, stride, pad in ((3, 7, 6, 2, 2, 1), (2, 5, 5, 2, 1, 1), (2, 7, 7, 3, 2, 2)):
        x = rand(rng, 2, c, h, w)
        oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
        out = np.zeros((2, c, oh, ow), F32)
        table.append(Case("maxpool", [x, size, stride, pad, out, True], 4,
                          lambda x, size, stride, pad, out, ftz: maxpool_reference(x, size, stride, pad, out.shape[1:])))
    x = rand(rng, 2, 5, 7, 3)
    table.append(Case("avgpool", [x, np.zeros((2, 5), F32), True, True], 1, lambda x, *a: avgpool_reference(x)))
    for reverse in (False, True):
        x = rand(rng, 2, 8, 4, 6)
        table.append(Case("reorg", [x, 2, reverse, np.zeros((2, 8 * 24), F32)], 3,
                          lambda x, stride, reverse, out: reorg_reference(x, stride, reverse)))
    parts = [rand(rng, 2, c, 3, 4) for c in (2, 5, 1)]
    table.append(Case("route", [parts, np.zeros((2, 8, 3, 4), F32)], 1,
                      lambda xs, out: np.concatenate(xs, axis=1)))
    anchors, classes, coords = 3, 4, 4
    x = rand(rng, 2, anchors * (classes + coords + 1), 3, 2)
    table.append(Case("region", [x, anchors, classes, coords, False, True, None, False, True, True, np.zeros_like(x)],
                      10, lambda x, anchors, classes, coords, *a: region_reference(x, anchors, classes, coords),
                      exact=False))
    x = rand(rng, 2, 12)
    table.append(Case("softmax", [x, 3, F32(1), np.zeros_like(x), True, True], 3,
                      lambda x, *a: softmax_reference(x.reshape(2, 3, 4)).reshape(2, 12), exact=False))
    offsets, sizes = np.array([0, 3, 5], np.int32), np.array([3, 2, 4], np.int32)
    x = rand(rng, 2, 10)
    table.append(Case("softmax_tree", [x, offsets, sizes, F32(1), np.zeros_like(x), True, True], 4,
                      lambda x, offsets, sizes, *a: tree_reference(x, offsets, sizes), exact=False))
    table += [
        shortcut_case(rng, (4, 5, 6), (4, 5, 6), 1.0, 1.0, activations.LINEAR),
        shortcut_case(rng, (6, 4, 4), (3, 4, 4), 0.5, 2.0, activations.LEAKY),     # fewer channels added
        shortcut_case(rng, (3, 3, 4), (5, 6, 8), 1.0, 1.0, activations.LEAKY),     # a larger grid, stride 2
        shortcut_case(rng, (3, 6, 8), (2, 3, 4), 1.0, 1.0, activations.LINEAR),    # a smaller grid, sample 2
    ]
    x = rand(rng, 2, 3, 4, 5)
    table.append(Case("upsample", [x, 2, F32(1.5), True, np.zeros((2, 3, 8, 10), F32)], 4,
                      lambda x, stride, scale, *a: np.repeat(np.repeat(x, 2, axis=2), 2, axis=3) * scale))
    for case in table:
        case.args[case.out].fill(np.nan)
    return table


CASES = cases()
QUERIES = ("workspace_floats", "prepare_weights", "maxpool_fusable", "maxpool_workspace_floats")


@pytest.fixture(scope="module", params=["cpu", "emulator", pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request):
    if request.param == "cpu":
        yield get_backend("cpu")
        return
    if request.param == "emulator" and shutil.which("g++") is None:
        pytest.skip("the GPU emulator needs g++")
    if request.param == "cuda" and not runtime.available():
        pytest.skip("needs CuPy and a CUDA device")
    old = runtime.emulating()
    runtime.emulate(request.param == "emulator")
    yield get_backend("cuda:0")
    runtime.emulate(old)


def to_device(backend, value):
    """A fresh device copy of every float32 array (on the CPU, a copy: the kernels write
    into `out`, and the case's own arrays must stay as made)."""
    if isinstance(value, np.ndarray) and value.dtype == F32:
        return backend.upload(value.copy())
    if isinstance(value, list):
        return [to_device(backend, v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_device(backend, v) for v in value)
    return value


def run_case(backend, case: Case) -> np.ndarray:
    args = to_device(backend, case.args)
    if case.kernel.startswith("convolution"):
        weights = args[1]
        x = case.args[0]
        size, stride, pad = args[2:5] if case.kernel == "convolution_maxpool" else args[3:6]
        groups = 1 if case.kernel == "convolution_maxpool" else args[2]
        args[1] = backend.kernels.prepare_weights(weights, x.shape[1:], size, stride, pad, groups, True)
    result = getattr(backend.kernels, case.kernel)(*args)
    assert result is args[case.out], f"{case.kernel} returns its `out`"
    return backend.download(result).reshape(case.args[case.out].shape).copy()


def test_every_kernel_has_a_row():
    assert set(kernels.NAMES) == {c.kernel for c in CASES} | set(QUERIES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.kernel}-{i}" for i, c in enumerate(CASES)])
def test_kernel_against_its_reference(backend, index):
    case = CASES[index]
    got = run_case(backend, case)
    want = np.asarray(case.reference(*case.args)).reshape(got.shape)
    if case.exact:
        assert got.tobytes() == want.astype(F32).tobytes()
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.kernel}-{i}" for i, c in enumerate(CASES)])
def test_kernel_equals_the_cpu_bit_for_bit(backend, index):
    if backend.is_cpu:
        pytest.skip("the CPU is the reference")
    case = CASES[index]
    assert run_case(backend, case).tobytes() == run_case(get_backend("cpu"), case).tobytes()


def test_queries_answer_on_every_backend(backend):
    k = backend.kernels
    need = k.workspace_floats(3, 9, 7, 3, 1, 1, 1, 9, 7, True, 4)
    assert isinstance(need, int) and need >= 0
    assert isinstance(k.maxpool_fusable((3, 8, 8), 4, 3, 1, 1, 1, (8, 8), 2, 2, 1, True), bool)
    assert k.maxpool_workspace_floats(3, 4, 3, (8, 8), 2) >= 0
