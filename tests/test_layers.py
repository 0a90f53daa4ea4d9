"""Each kernel against a plain numpy reference written from Darknet's C semantics."""
import math

import numpy as np
import pytest

from darknetpy.cpu import activations as act
from darknetpy.cpu.im2col import im2col
from darknetpy.cpu.pool import avgpool, maxpool
from darknetpy.cpu.reorg import reorg
from darknetpy.cpu.softmax import softmax_groups
from darknetpy.network import Network

f32, f64 = np.float32, np.float64
TINY_SUB = f32(1e-40)  # a subnormal float32


def ref_activate(x, name):
    """Scalar C semantics: float in, double where C promotes, one rounding back."""
    x = f32(x)
    e = math.exp
    if name == "linear":
        return x
    if name == "leaky":
        return x if x > 0 else f32(0.1 * f64(x))
    if name == "logistic":
        return f32(1.0 / (1.0 + e(-f64(x))))
    if name == "relu":
        return f32(x * f32(x > 0))
    if name == "relie":
        return x if x > 0 else f32(0.01 * f64(x))
    if name == "ramp":
        return f32(f64(f32(x * f32(x > 0))) + 0.1 * f64(x))
    if name == "tanh":
        t = e(f64(f32(2 * x)))
        return f32((t - 1) / (t + 1))
    if name == "plse":
        if x < -4:
            return f32(0.01 * f64(f32(x + 4)))
        if x > 4:
            return f32(0.01 * f64(f32(x - 4)) + 1)
        return f32(0.125 * f64(x) + 0.5)
    if name == "elu":
        return f32(f64(f32(f32(x >= 0) * x)) + (x < 0) * (e(f64(x)) - 1))
    if name == "selu":
        return f32((x >= 0) * 1.0507 * f64(x) + (x < 0) * 1.0507 * 1.6732 * (e(f64(x)) - 1))
    if name == "loggy":
        return f32(2.0 / (1.0 + e(-f64(x))) - 1)
    if name == "stair":
        n = math.floor(f64(x))
        if n % 2 == 0:
            return f32(math.floor(f64(x) / 2.0))
        return f32(f64(f32(x - f32(n))) + math.floor(f64(x) / 2.0))
    if name == "hardtan":
        return f32(-1) if x < -1 else f32(1) if x > 1 else x
    if name == "lhtan":
        if x < 0:
            return f32(0.001 * f64(x))
        if x > 1:
            return f32(0.001 * f64(f32(x - 1)) + 1)
        return x
    raise KeyError(name)


VALUES = np.array([-7.3, -4.5, -4.0, -3.0, -2.5, -1.0, -0.7, -0.0, 0.0, 0.3, 0.999, 1.0, 1.5, 2.0, 3.7, 4.0, 6.2,
                   -40.0, 40.0], np.float32)


@pytest.mark.parametrize("name", sorted(act.CODES))
def test_activation_matches_c_semantics(name):
    x = np.concatenate([VALUES, np.random.default_rng(1).normal(0, 3, 200).astype(np.float32)])
    got = x.copy()
    act.activate_array(got, act.CODES[name], False)
    want = np.array([ref_activate(v, name) for v in x], np.float32)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()


def test_flush_to_zero_only_in_darknet_numerics():
    x = np.array([-100.0, -1e-37], np.float32)
    ieee = x.copy()
    act.activate_array(ieee, act.LOGISTIC, False)
    assert 0 < ieee[0] < np.finfo(np.float32).tiny
    stock = x.copy()
    act.activate_array(stock, act.LOGISTIC, True)
    assert stock[0] == 0
    leaky = np.array([-1e-37, TINY_SUB], np.float32)
    act.activate_array(leaky, act.LEAKY, True)
    assert leaky.tolist() == [0.0, 0.0]
    # flush-to-zero is restored afterwards: plain numpy still sees subnormals
    assert TINY_SUB * f32(1) != 0


def test_im2col_order_and_padding():
    rng = np.random.default_rng(2)
    im = rng.random((3, 5, 7), dtype=np.float32)
    for size, stride, pad in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 1, 2)]:
        oh, ow = (5 + 2 * pad - size) // stride + 1, (7 + 2 * pad - size) // stride + 1
        out = np.empty((3 * size * size, oh * ow), np.float32)
        im2col(im, size, stride, pad, out)
        padded = np.pad(im, ((0, 0), (pad, pad), (pad, pad)))
        want = np.empty_like(out)
        for ch in range(3):
            for ky in range(size):
                for kx in range(size):
                    row = (ch * size + ky) * size + kx
                    want[row] = padded[ch, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride].reshape(-1)
        assert np.array_equal(out, want)


def ref_maxpool(x, size, stride, pad):
    c, h, w = x.shape
    oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    off = -(pad // 2)
    out = np.full((c, oh, ow), -np.finfo(np.float32).max, np.float32)
    for i in range(oh):
        for j in range(ow):
            for n in range(size):
                for m in range(size):
                    y, xx = off + i * stride + n, off + j * stride + m
                    if 0 <= y < h and 0 <= xx < w:
                        out[:, i, j] = np.maximum(out[:, i, j], x[:, y, xx])
    return out


@pytest.mark.parametrize("size,stride,pad", [(2, 2, 1), (2, 1, 1), (3, 1, 2), (3, 2, 2), (2, 2, 0)])
def test_maxpool(size, stride, pad):
    x = np.random.default_rng(3).normal(size=(4, 7, 6)).astype(np.float32)
    want = ref_maxpool(x, size, stride, pad)
    out = np.empty_like(want)
    maxpool(x, size, stride, pad, out, True)
    assert np.array_equal(out, want)


def test_avgpool_reciprocal_and_division():
    x = np.random.default_rng(4).normal(size=(5, 3, 7)).astype(np.float32)
    sums = np.zeros(5, np.float32)
    for i in range(3):
        for j in range(7):
            sums = sums + x[:, i, j]
    out = np.empty(5, np.float32)
    avgpool(x, out, True, True)
    assert np.array_equal(out, sums * (f32(1) / f32(21)))
    avgpool(x, out, False, False)
    assert np.array_equal(out, sums / f32(21))


def test_reorg_forward0_matches_the_kit_formula():
    c, h, w, s = 8, 4, 6, 2
    x = np.arange(c * h * w, dtype=np.float32)
    out = np.empty_like(x)
    reorg(x, w, h, c, s, False, out)
    want = np.empty_like(x)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                c2, o = k % (c // 4), k // (c // 4)
                w2, h2 = 2 * i + o % 2, 2 * j + o // 2
                want[i + w * (j + h * k)] = x[w2 + 2 * w * (h2 + 2 * h * c2)]
    assert np.array_equal(out, want)
    back = np.empty_like(x)
    reorg(out, w, h, c, s, True, back)
    assert np.array_equal(np.sort(back), np.sort(x))


def libm_expf(x):
    """glibc's scalar expf, through ctypes: the reference for the softmax's scalar lanes."""
    import ctypes
    import ctypes.util
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return f32(libm.expf(float(x)))


def ref_libmvec_expf(x):
    """The kit README's description of libmvec's SSE4 expf, in numpy float32."""
    h = float.fromhex
    x = f32(x)
    if not abs(x) <= f32(h("0x1.5d589ep+6")):
        return f32(math.exp(f64(x)))  # not reached by the test values
    t = x * f32(h("0x1.715476p+0")) + f32(h("0x1.8p+23"))
    n = t - f32(h("0x1.8p+23"))
    r = x - n * f32(h("0x1.62e4p-1"))
    r = r - n * f32(h("0x1.7f7d1cp-20"))
    p = (((f32(h("0x1.0fb3fcp-7")) * r + f32(h("0x1.570724p-5"))) * r + f32(h("0x1.555958p-3"))) * r
         + f32(h("0x1.fffe68p-2"))) * r + f32(h("0x1.fffffcp-1"))
    p = r * p + f32(1)
    bits = (np.array([t], np.float32).view(np.uint32)[0] + np.uint32(127)) << np.uint32(23)
    return np.array([bits], np.uint32).view(np.float32)[0] * p


@pytest.mark.parametrize("n", [11, 12, 15, 80, 1000])
def test_vector_softmax_four_lane_sums(n):
    x = np.random.default_rng(n).normal(0, 4, n).astype(np.float32)
    out = np.empty_like(x)
    softmax_groups(x, n, 1, n, 1, n, 1, f32(1), out, True, True)
    z = x - x.max()
    body = n - n % 4
    e = np.array([ref_libmvec_expf(v) for v in z[:body]] + [libm_expf(v) for v in z[body:]], np.float32)
    lanes = [f32(0)] * 4
    for i in range(body):
        lanes[i % 4] = f32(lanes[i % 4] + e[i])
    total = f32(f32(lanes[0] + lanes[2]) + f32(lanes[1] + lanes[3]))
    for i in range(body, n):
        total = f32(total + e[i])
    want = e * (f32(1) / total)
    assert out.view(np.uint32).tolist() == want.view(np.uint32).tolist()


def test_ieee_softmax_is_double_exp_sequential_sum_division():
    x = np.random.default_rng(7).normal(0, 4, 30).astype(np.float32)
    out = np.empty_like(x)
    softmax_groups(x, 30, 1, 30, 1, 30, 1, f32(1), out, False, False)
    e = np.array([f32(math.exp(f64(v / f32(1) - x.max() / f32(1)))) for v in x], np.float32)
    total = f32(0)
    for v in e:
        total = f32(total + v)
    assert np.array_equal(out, e / total)


def test_short_softmax_is_scalar_and_sequential():
    """Below 11 elements: glibc's scalar expf, summed in order."""
    x = np.array([0.5, -1.0, 2.0, 0.25, 3.0, -2.0, -17.3, 1e-3], np.float32)
    out = np.empty_like(x)
    softmax_groups(x, x.size, 1, x.size, 1, x.size, 1, f32(1), out, True, True)
    e = np.array([libm_expf(v - x.max()) for v in x], np.float32)
    total = f32(0)
    for v in e:
        total = f32(total + v)
    assert out.view(np.uint32).tolist() == (e * (f32(1) / total)).view(np.uint32).tolist()


TREE_CFG = """[net]
width=2
height=2
channels={c}
[region]
classes=3
coords=4
num=2
tree={tree}
softmax=1
"""


def test_region_tree_default_and_stock_cpu_bug(tmp_path):
    tree = tmp_path / "t.tree"
    tree.write_text("a -1\nb -1\nc 1\n")
    c = 2 * (3 + 4 + 1)
    cfg = tmp_path / "r.cfg"
    cfg.write_text(TREE_CFG.format(c=c, tree=tree))
    x = np.random.default_rng(5).normal(size=(c, 2, 2)).astype(np.float32)
    fixed = Network(cfg, warn=None).forward_layers(x)[0].reshape(2, 8, 4)
    # group 0 = classes {a, b}, group 1 = {c}: softmax over a,b per cell and c alone -> 1
    cls = fixed[:, 5:]
    assert np.allclose(cls[:, 0] + cls[:, 1], 1, atol=1e-6) and np.all(cls[:, 2] == 1)
    stock = Network(cfg, compat="darknet-cpu", warn=None).forward_layers(x)[0]
    cells = 2 * 2 * 2
    reach = 5 + max(0 + 2 * cells, 2 + 1 * cells)
    assert np.all(np.isnan(stock[5:reach])) and not np.any(np.isnan(stock[reach:]))


def ref_conv(x, weights, size, stride, pad):
    c, h, w = x.shape
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    cols = np.empty((c * size * size, oh * ow), np.float32)
    im2col(x, size, stride, pad, cols)
    acc = np.zeros((weights.shape[0], oh * ow), np.float32)
    for k in range(cols.shape[0]):
        acc = acc + weights[:, k:k + 1] * cols[k]
    return acc


CONV_CFG = """[net]
width=9
height=7
channels=3
[convolutional]
batch_normalize={bn}
filters=5
size={size}
stride={stride}
pad=1
activation=leaky
[route]
layers=-1,-1
[dropout]
[cost]
"""


@pytest.mark.parametrize("size,stride,bn", [(3, 1, 1), (3, 2, 0), (1, 1, 1)])
@pytest.mark.parametrize("numerics", ["darknet", "ieee"])
def test_convolution_batchnorm_route(tmp_path, size, stride, bn, numerics):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CONV_CFG.format(bn=bn, size=size, stride=stride))
    net = Network(cfg, numerics=numerics, warn=None)
    conv = net.layers[0]
    rng = np.random.default_rng(6)
    conv.weights = rng.normal(size=conv.weights.shape).astype(np.float32)
    conv.biases = rng.normal(size=5).astype(np.float32)
    conv.scales = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    conv.rolling_mean = rng.normal(size=5).astype(np.float32)
    conv.rolling_variance = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    x = rng.random((3, 7, 9), dtype=np.float32)
    outputs = net.forward_layers(x)
    acc = ref_conv(x, conv.weights, size, stride, size // 2)
    if bn:
        d = np.sqrt(conv.rolling_variance.astype(np.float64)) + f64(f32(1e-6))
        acc = ((acc - conv.rolling_mean[:, None]).astype(np.float64) / d[:, None]).astype(np.float32)
        acc = acc * conv.scales[:, None]
    acc = acc + conv.biases[:, None]
    want = np.where(acc > 0, acc, (0.1 * acc.astype(np.float64)).astype(np.float32))
    assert outputs[0].tobytes() == want.tobytes()
    assert np.array_equal(outputs[1], np.concatenate([outputs[0], outputs[0]]))
    assert outputs[2] is outputs[1]
    assert not outputs[3].any() and net.output_layer.index == 2


def test_an_activation_is_a_literal_and_the_run_time_code_gives_the_same_bits():
    """Each Activation gets a kernel of its own (Numba types it as a literal); a plain int
    goes through the kernel holding every activation, with the same bits."""
    import numba

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(300).astype(np.float32) * np.float32(6.0),
                        np.array([0.0, -0.0, 1e-40, -1e-40, np.inf, -np.inf, np.nan, -1.0, 1.0, 4.0, -4.0],
                                 np.float32)])
    for name, a in act.CODES.items():
        assert act.constant(int(a)) is a and numba.typeof(a) == numba.types.IntegerLiteral(int(a))
        for ftz in (False, True):
            own, any_ = x.copy(), x.copy()
            act.activate_array_kernel(own, a, ftz)
            act.activate_array_kernel(any_, int(a), ftz)
            assert np.array_equal(own.view(np.uint32), any_.view(np.uint32)), (name, ftz)


def test_a_kernel_holds_only_its_activation():
    """leaky's epilogue has no exp in it (logistic's has): the whole chain compiled into
    every kernel made the first run take minutes."""
    import numba

    kernel = act.batchnorm_bias_activate_kernel
    v = np.ones(3, np.float32)
    ir = {}
    for a in (act.LEAKY, act.LOGISTIC):
        fresh = numba.njit(parallel=True, fastmath=False, error_model="numpy")(kernel.py_func)
        fresh(np.ones((3, 5), np.float32), v, v, v, v, True, a, False)
        ir[a] = "".join(fresh.inspect_llvm().values())
    assert "llvm.exp.f64" not in ir[act.LEAKY] and "llvm.exp.f64" in ir[act.LOGISTIC]


def test_no_fma_in_compiled_kernels():
    """Darknet's build has no fused multiply-add in its own code: no kernel may contain one.
    The tree softmax has glibc's expf inlined (softmax.expf_main), whose FMA build fuses
    its double-precision steps: double FMAs there, and no single-precision one."""
    import re

    import numba

    from darknetpy.cpu import softmax as sm
    for fn in (act.batchnorm_bias_activate_kernel, act.activate_array_kernel, sm.softmax_groups, sm.softmax_tree):
        assert fn.signatures, f"{fn.__name__} was not compiled by the tests above"
        options = {k: v for k, v in fn.targetoptions.items() if k not in ("nopython", "cache")}
        fresh = numba.njit(**options)(fn.py_func)  # cached code keeps no assembly to inspect
        multiplies = False   # (each activation has a kernel of its own: hardtan's multiplies nothing)
        for sig in fn.signatures:
            fresh.compile(sig)
            asm = fresh.inspect_asm(sig)
            multiplies |= "mulss" in asm or "mulps" in asm or "mulsd" in asm
            fmas = set(re.findall(r"\bvf(?:n)?m(?:add|sub)\w*", asm))
            if fn is sm.softmax_tree:
                assert fmas and all(f.endswith(("sd", "pd")) for f in fmas), (fn.__name__, fmas)
            else:
                assert not fmas, (fn.__name__, fmas)
        assert multiplies, fn.__name__
