"""The CPU convolution by column blocks: the same bits as one im2col + GEMM, whatever the
block, thread count or workspace; the fused epilogue the same bits as the separate one."""
import numba
import numpy as np
import pytest

from darknetpy.cpu import activations
from darknetpy.cpu import convolution as conv
from darknetpy.cpu.gemm import gemm_reference
from darknetpy.cpu.im2col import im2col

# (c, h, w, filters, size, stride, pad): n not a multiple of the block, stride 2, 5x5,
# 1x1, a padded 1x1 with stride 2 (Darknet reads its input buffer as the matrix)
SHAPES = [(3, 40, 50, 8, 3, 1, 1), (4, 33, 31, 5, 3, 2, 1), (3, 17, 19, 4, 5, 1, 2),
          (6, 20, 20, 7, 1, 1, 0), (2, 29, 29, 3, 3, 2, 0), (40, 30, 30, 20, 3, 1, 1),
          (8, 21, 21, 9, 1, 2, 0)]


def out_hw(h, w, size, stride, pad):
    return (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1


def columns(x, size, stride, pad, oh, ow):
    """im2col by slicing a zero-padded copy: rows (channel, ky, kx)."""
    c, h, w = x.shape
    xp = np.zeros((c, h + 2 * pad + size, w + 2 * pad + size), np.float32)
    xp[:, pad:pad + h, pad:pad + w] = x
    rows = [xp[ch, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride][:oh, :ow].reshape(-1)
            for ch in range(c) for ky in range(size) for kx in range(size)]
    return np.array(rows, np.float32)


def reference(x, weights, groups, size, stride, pad):
    c, h, w = x.shape
    oh, ow = out_hw(h, w, size, stride, pad)
    m, cg = weights.shape[0] // groups, c // groups
    parts = []
    for g in range(groups):
        xg = x[g * cg:(g + 1) * cg]
        b = xg.reshape(-1)[:cg * oh * ow].reshape(cg, -1) if size == 1 else columns(xg, size, stride, pad, oh, ow)
        parts.append(gemm_reference(weights[g * m:(g + 1) * m], b))
    return np.concatenate(parts)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 48 columns (or a few more for small k), so small shapes take many blocks."""
    monkeypatch.setattr(conv, "BLOCK_QUANTUM", 48)
    monkeypatch.setattr(conv, "BLOCK_FLOATS", 48 * 40)
    monkeypatch.setattr(conv, "BLOCKS_PER_THREAD", 2)


@pytest.fixture(params=[1, 2])
def threads(request):
    old = numba.get_num_threads()
    numba.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield request.param
    numba.set_num_threads(old)


def data(shape, groups=1, seed=0):
    c, h, w, f, size, stride, pad = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    weights = rng.standard_normal((f, c // groups * size * size)).astype(np.float32)
    return x, weights


def epilogue_params(f, use_bn, seed):
    """Biases and (mean, variance, scales) or None for f filters."""
    rng = np.random.default_rng(seed)
    biases = rng.standard_normal(f).astype(np.float32)
    bn = None
    if use_bn:
        bn = (rng.standard_normal(f).astype(np.float32), rng.uniform(0, 2, f).astype(np.float32),
              rng.standard_normal(f).astype(np.float32))
    return biases, bn


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("shape", SHAPES)
def test_blocks_match_one_gemm(small_blocks, threads, shape):
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape)
    oh, ow = out_hw(h, w, size, stride, pad)
    ws = np.empty(conv.workspace_floats(c, h, w, size, stride, pad, 1, oh, ow), np.float32)
    out = conv.convolution(x, weights, 1, size, stride, pad, (oh, ow), ws, True)
    assert same_bits(out, reference(x, weights, 1, size, stride, pad))


def test_blocked_path_is_taken(small_blocks):
    """The first shape is wide enough for blocks at 2 threads; its workspace is a block
    per thread, not the whole matrix."""
    c, h, w, f, size, stride, pad = SHAPES[0]
    oh, ow = out_hw(h, w, size, stride, pad)
    k, n = c * size * size, oh * ow
    assert conv.blocked(k, n, 2)
    assert conv.workspace_floats(c, h, w, size, stride, pad, 1, oh, ow) == \
        min(k * n, numba.config.NUMBA_NUM_THREADS * k * conv.block_columns(k))
    assert conv.workspace_floats(c, h, w, 1, 1, 0, 1, h, w) == 0


@pytest.mark.parametrize("ws_floats", [0, 1, 27 * 48])
def test_missing_or_small_workspace(small_blocks, ws_floats):
    """No workspace, or room for a single block: the same bits (fewer threads or a new one)."""
    shape = SHAPES[0]
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape)
    oh, ow = out_hw(h, w, size, stride, pad)
    ws = np.empty(ws_floats, np.float32) if ws_floats else None
    out = conv.convolution(x, weights, 1, size, stride, pad, (oh, ow), ws, True)
    assert same_bits(out, reference(x, weights, 1, size, stride, pad))


@pytest.mark.parametrize("shape", [(64, 19, 19, 24, 3, 1, 1), (30, 12, 17, 9, 3, 2, 1)])
def test_narrow_layer_by_row_chunks(monkeypatch, threads, shape):
    """A narrow layer im2cols its matrix by chunks of rows (GEMM's k), each product adding
    to the last: the same bits as one GEMM, with a workspace of one chunk (the second
    shape's matrix is 270 rows: one 256-row chunk and a 14-row one)."""
    monkeypatch.setattr(conv, "CHUNK_FLOATS", 300)
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape)
    oh, ow = out_hw(h, w, size, stride, pad)
    k, n = c * size * size, oh * ow
    assert not conv.blocked(k, n, numba.config.NUMBA_NUM_THREADS)
    rows = conv.chunk_rows(k, n)
    assert rows < k and rows % 256 == 0
    assert conv.workspace_floats(c, h, w, size, stride, pad, 1, oh, ow) == rows * n
    ws = np.empty(rows * n, np.float32)
    out = conv.convolution(x, weights, 1, size, stride, pad, (oh, ow), ws, True)
    assert same_bits(out, reference(x, weights, 1, size, stride, pad))


@pytest.mark.parametrize("groups", [2, 4])
def test_groups(small_blocks, groups):
    shape = (8, 24, 26, 12, 3, 1, 1)
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape, groups)
    oh, ow = out_hw(h, w, size, stride, pad)
    ws = np.empty(conv.workspace_floats(c, h, w, size, stride, pad, groups, oh, ow), np.float32)
    out = conv.convolution(x, weights, groups, size, stride, pad, (oh, ow), ws, True)
    assert same_bits(out, reference(x, weights, groups, size, stride, pad))


@pytest.mark.parametrize("activation", ["leaky", "linear", "logistic", "relu"])
@pytest.mark.parametrize("use_bn", [False, True])
@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[3], (16, 9, 9, 24, 3, 1, 1)])
def test_fused_epilogue(small_blocks, threads, shape, activation, use_bn, ftz):
    """convolution_epilogue == convolution then epilogue, on blocked and whole layers;
    subnormal inputs make ftz matter."""
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape, seed=1)
    x[0, 0, :4] = np.float32(1e-39)
    oh, ow = out_hw(h, w, size, stride, pad)
    biases, bn = epilogue_params(f, use_bn, seed=2)
    a = activations.CODES[activation]
    ws = np.empty(conv.workspace_floats(c, h, w, size, stride, pad, 1, oh, ow), np.float32)
    fused = conv.convolution_epilogue(x, weights, 1, size, stride, pad, (oh, ow), ws, True, bn, biases, a, ftz)
    apart = conv.convolution(x, weights, 1, size, stride, pad, (oh, ow), ws, True)
    conv.epilogue(apart, bn, biases, a, ftz)
    assert same_bits(fused, apart)


@pytest.mark.parametrize("shape", SHAPES)
def test_im2col_whole(shape):
    c, h, w, f, size, stride, pad = shape
    if size == 1:
        pytest.skip("a 1x1 kernel skips im2col")
    x, _ = data(shape)
    oh, ow = out_hw(h, w, size, stride, pad)
    out = np.empty((c * size * size, oh * ow), np.float32)
    im2col(x, size, stride, pad, out)
    assert same_bits(out, columns(x, size, stride, pad, oh, ow))


@pytest.mark.slow
def test_no_fma_in_the_blocked_convolution(small_blocks):
    """The exact column-block worker (GEMM and fused epilogue inlined) has no fused
    multiply-add: Darknet's build has none."""
    shape = SHAPES[0]
    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape)
    oh, ow = out_hw(h, w, size, stride, pad)
    biases = np.zeros(f, np.float32)
    conv.convolution_epilogue(x, weights, 1, size, stride, pad, (oh, ow), None, True,
                              (biases, biases + 1, biases + 1), biases, activations.LEAKY, True)
    exact = [sig for sig in conv._columns.signatures if isinstance(sig[10], numba.types.NoneType)]
    assert exact, "the exact _columns was not compiled"
    fn = conv._column_worker
    options = {k: v for k, v in fn.targetoptions.items() if k not in ("nopython", "cache")}
    fresh = numba.njit(**options)(fn.py_func)   # cached code keeps no assembly to inspect
    for sig in exact:
        # the worker's arguments: _columns' with (workspace, nb, threads) -> (b, nb, counter)
        sig = sig[:9] + (numba.types.int64[::1],) + sig[10:]
        fresh.compile(sig)
        asm = fresh.inspect_asm(sig)
        assert "vmulps" in asm or "mulps" in asm
        assert "vfmadd" not in asm and "vfmsub" not in asm and "vfnmadd" not in asm


# (conv shape, pool size, pool padding): even and odd outputs (a last band of one row,
# a last window column of one tap), a strided conv, 1x1, a 3x3/3 pool
POOLED = [(SHAPES[0], 2, 1), ((4, 33, 31, 5, 3, 1, 1), 2, 1), ((4, 33, 31, 5, 3, 2, 1), 2, 1),
          ((6, 20, 20, 7, 1, 1, 0), 2, 1), ((3, 40, 50, 8, 3, 1, 1), 3, 1), ((3, 29, 41, 4, 3, 1, 1), 3, 0)]


@pytest.mark.parametrize("use_bn", [False, True])
@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("shape,pool_size,pool_pad", POOLED)
def test_convolution_maxpool_fused(small_blocks, threads, shape, pool_size, pool_pad, use_bn, ftz):
    """The fused pair == convolution_epilogue then maxpool, bit for bit (subnormal inputs
    so that ftz matters, NaN-free leaky outputs with ties and signed zeros)."""
    from darknetpy.cpu import pool

    c, h, w, f, size, stride, pad = shape
    x, weights = data(shape, seed=3)
    x[0, 0, :4] = np.float32(1e-39)
    weights[1] = 0.0                     # a filter of zeros: every tap equal
    oh, ow = out_hw(h, w, size, stride, pad)
    biases, bn = epilogue_params(f, use_bn, seed=4)
    a = activations.LEAKY
    ws = np.empty(conv.workspace_floats(c, h, w, size, stride, pad, 1, oh, ow), np.float32)
    apart = conv.convolution_epilogue(x, weights, 1, size, stride, pad, (oh, ow), ws, True, bn, biases, a, ftz)
    ph, pw = (oh + pool_pad - pool_size) // pool_size + 1, (ow + pool_pad - pool_size) // pool_size + 1
    want = np.empty((f, ph, pw), np.float32)
    pool.maxpool(apart.reshape(f, oh, ow), pool_size, pool_size, pool_pad, want, ftz)
    got = np.full((f, ph, pw), np.nan, np.float32)
    pws = np.empty(conv.maxpool_workspace_floats(c, f, size, (oh, ow), pool_size), np.float32)
    conv.convolution_epilogue_maxpool(x, weights, size, stride, pad, (oh, ow), pws, True, bn, biases, a, ftz,
                                      pool_size, got)
    assert same_bits(got, want)


def test_maxpool_fusable():
    """Darknet's 2x2/2 pools after a wide convolution fuse; overlapping or shifted
    windows, grouped convolutions and narrow layers do not."""
    yolo0 = ((3, 608, 608), 32, 3, 1, 1, 1, (608, 608))
    assert conv.maxpool_fusable(*yolo0, 2, 2, 1)
    assert conv.maxpool_fusable(*yolo0, 2, 2, 0)
    assert not conv.maxpool_fusable(*yolo0, 2, 1, 1)     # yolov2-tiny's last pool: overlapping
    assert not conv.maxpool_fusable(*yolo0, 3, 3, 2)     # window origin at -1
    assert not conv.maxpool_fusable((4, 608, 608), 32, 3, 1, 1, 2, (608, 608), 2, 2, 1)
    assert not conv.maxpool_fusable((1024, 19, 19), 1024, 3, 1, 1, 1, (19, 19), 2, 2, 1)


def tiny_data(shape, seed):
    """Inputs and weights whose products fall below float32's normal range for half
    the filters and half the channels' rows (FTZ flushes them), and subnormal inputs."""
    x, weights = data(shape, seed=seed)
    c, f = x.shape[0], weights.shape[0]
    x[:, : x.shape[1] // 2] *= np.float32(1e-19)
    weights[: f // 2 + 1] *= np.float32(1e-20)
    x[0, -1, :] = np.float32(3e-39)
    return x, weights


def reference_ftz(x, weights, size, stride, pad):
    from test_gemm import reference_ftz as gemm_ftz

    c, h, w = x.shape
    oh, ow = out_hw(h, w, size, stride, pad)
    b = x.reshape(-1)[:c * oh * ow].reshape(c, -1) if size == 1 else columns(x, size, stride, pad, oh, ow)
    return gemm_ftz(weights, b)


@pytest.mark.parametrize("shape,path", [(SHAPES[0], "blocked"), (SHAPES[1], "blocked"),
                                        ((8, 40, 40, 9, 1, 1, 0), "blocked"), (SHAPES[0], "narrow"),
                                        (SHAPES[3], "narrow"), ((64, 19, 19, 24, 3, 1, 1), "narrow")])
def test_ftz_daz_in_the_product(monkeypatch, threads, shape, path):
    """With ftz the product itself runs under FTZ/DAZ, as in the stock build, on both
    paths (column blocks in the worker threads; the narrow layers' gemm_exact); the data
    makes it matter."""
    if path == "blocked":
        monkeypatch.setattr(conv, "BLOCK_QUANTUM", 48)
        monkeypatch.setattr(conv, "BLOCK_FLOATS", 48 * 40)
        monkeypatch.setattr(conv, "BLOCKS_PER_THREAD", 2)
    else:
        monkeypatch.setattr(conv, "BLOCKS_PER_THREAD", 1 << 30)
    c, h, w, f, size, stride, pad = shape
    x, weights = tiny_data(shape, seed=5)
    oh, ow = out_hw(h, w, size, stride, pad)
    k, n = c * size * size, oh * ow
    assert conv.blocked(k, n, numba.get_num_threads()) == (path == "blocked")
    want = reference_ftz(x, weights, size, stride, pad)
    assert not same_bits(want, reference(x, weights, 1, size, stride, pad))
    out = conv.convolution(x, weights, 1, size, stride, pad, (oh, ow), None, True, ftz=True)
    assert same_bits(out, want)
    biases = np.zeros(f, np.float32)
    out = conv.convolution_epilogue(x, weights, 1, size, stride, pad, (oh, ow), None, True, None, biases,
                                    activations.LINEAR, True)
    assert same_bits(out, want)


def test_ftz_daz_in_the_fused_maxpool(small_blocks, threads):
    """The fused convolution + maxpool's product runs under FTZ/DAZ too."""
    from darknetpy.cpu import pool

    shape = SHAPES[0]
    c, h, w, f, size, stride, pad = shape
    x, weights = tiny_data(shape, seed=6)
    oh, ow = out_hw(h, w, size, stride, pad)
    conv_out = reference_ftz(x, weights, size, stride, pad)
    want = np.empty((f, oh // 2, ow // 2), np.float32)
    pool.maxpool(conv_out.reshape(f, oh, ow), 2, 2, 0, want, True)
    got = np.full_like(want, np.nan)
    biases = np.zeros(f, np.float32)
    assert conv.maxpool_fusable(x.shape, f, size, stride, pad, 1, (oh, ow), 2, 2, 0)
    conv.convolution_epilogue_maxpool(x, weights, size, stride, pad, (oh, ow), None, True, None, biases,
                                      activations.LINEAR, True, 2, got)
    assert same_bits(got, want)
