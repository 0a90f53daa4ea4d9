"""The convolutional layer's forward pass on the CPU: im2col, GEMM, epilogue.

A convolution with many output pixels runs by blocks of output columns in one parallel
region: each thread takes the next block, im2cols it into its own slice of the workspace
(a few hundred KB, so it stays in cache), multiplies it into the same columns of `out`
and, in `convolution_epilogue`, applies the epilogue to them while they are still in
cache. The workspace is then a few blocks, not the whole (k, n) matrix. The GEMM adds
each output's k products in the same order whatever the block, so the bits do not change.
Narrow layers (few blocks per thread) im2col the whole matrix and leave the split of the
product among threads to the GEMM.
"""
import numba
import numpy as np
from numba import njit, prange

from . import activations, fpenv, gemm, parallel, pool, winograd
from .im2col import im2col, im2col_block

BLOCK_FLOATS = 1 << 17      # aim for im2col blocks of about this many floats (512 KB) ...
BLOCK_QUANTUM = gemm.NCP * gemm.NR  # ... a whole number of the GEMM's packed column blocks
BLOCKS_PER_THREAD = 4       # column blocks only when there are this many per thread
CHUNK_FLOATS = 1 << 19      # narrow layers: im2col rows by chunks of about this many floats
COPY, BIAS, BATCHNORM = 0, 1, 2


def block_columns(k):
    """Width of a column block of an im2col matrix with k rows."""
    return BLOCK_QUANTUM * max(1, BLOCK_FLOATS // (k * BLOCK_QUANTUM))


def blocked(k, n, threads):
    """Whether a layer runs by column blocks (enough of them for every thread)."""
    return n >= BLOCKS_PER_THREAD * threads * block_columns(k)


def chunk_rows(k, n):
    """Rows of the im2col matrix (k, n) per chunk on the narrow-layer path: the whole
    matrix when small, else a multiple of the GEMM's k chunk of about CHUNK_FLOATS."""
    if k * n <= CHUNK_FLOATS:
        return k
    return min(k, max(gemm.KC, CHUNK_FLOATS // n // gemm.KC * gemm.KC))


def winograd_applies(c, h, w, filters, size, stride, pad, groups, exact):
    """Whether the fast numerics run this layer by Winograd F(2x2, 3x3) (cpu/winograd.py):
    3x3, stride 1, pad 1 layers where it measured faster than the direct product."""
    return (not exact and size == 3 and stride == 1 and pad == 1 and groups == 1
            and winograd.worth_it(c, h, w, filters))


def prepare_weights(weights, in_shape, size, stride, pad, groups, exact):
    """A layer's weights as `convolution_epilogue` takes them, made once per network: the
    array itself, or for a Winograd layer its transformed matrices (16/9 the floats)."""
    if winograd_applies(*in_shape, weights.shape[0], size, stride, pad, groups, exact):
        return winograd.transform_weights(weights)
    return weights


def workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact=True, filters=0):
    """Floats of workspace `convolution` needs: none for 1x1, a block per thread (at
    Numba's largest thread count) for wide layers, else a chunk of rows of the im2col
    matrix; a fast-mode Winograd layer (with `filters` given) its blocks of tiles."""
    if winograd_applies(c, h, w, filters, size, stride, pad, groups, exact):
        return max(winograd.workspace_floats(c, h, w, filters, t) for t in (1, numba.config.NUMBA_NUM_THREADS))
    if size == 1:
        return 0
    k, n = c // groups * size * size, out_h * out_w
    threads = numba.config.NUMBA_NUM_THREADS
    if groups == 1 and blocked(k, n, threads):
        return min(k * n, threads * k * block_columns(k))
    return chunk_rows(k, n) * n


@njit(inline="always")
def _multiply(fma, af, lda, bf, ldb, cf, ldc, m, k, n):
    """C = A @ B on this thread; A, B, C flat with row strides lda, ldb, ldc."""
    # np.bool_: not a literal type, so gemm_block is compiled once for here and gemm_exact
    gemm.gemm_serial((fma, af, lda, bf, ldb, cf, ldc, m, k, n, np.bool_(False)))


@njit(inline="always")
def _block_product(fma, x, wf, k, filters, size, stride, pad, out_w, n, j0, j1, b, cf, ldc):
    """Columns [j0, j1) of weights @ im2col(x) (n columns) into cf (filters rows, ldc
    apart); b: the im2col block's room."""
    if size == 1:
        # Darknet reads a 1x1 layer's input as the (k, n) matrix itself, whatever the stride
        _multiply(fma, wf, k, x.reshape(-1)[j0:], n, cf, ldc, filters, k, j1 - j0)
    else:
        im2col_block(x, size, stride, pad, out_w, j0, j1, b)
        _multiply(fma, wf, k, b, j1 - j0, cf, ldc, filters, k, j1 - j0)


@njit(inline="always")
def _block_epilogue(cf, ldc, width, first, spatial, mean, variance, scales, biases, mode, a, ftz):
    """The epilogue on the first `width` columns of each of cf's rows (ldc apart), which
    are positions first.. of channels of `spatial` outputs."""
    split = activations.reciprocal_count(first, width, activations.reciprocal_end(spatial, ftz))
    for f in range(biases.size):
        activations.epilogue_span(cf, f * ldc, f * ldc + width, f, mean, variance, scales,
                                  biases, mode == BATCHNORM, a, split)


@njit(cache=True, fastmath=False, error_model="numpy")
def _column_worker(x, weights, size, stride, pad, out_w, out, b, nb, counter, fma,
                   mean, variance, scales, biases, mode, a, ftz):
    """One thread's share: take column blocks from counter until none is left; b is
    its workspace. Product and epilogue run under ftz (the stock build's FTZ/DAZ).
    (A function of its own: as the body of the parallel loop itself the same code runs
    about a third slower.)"""
    filters, n = out.shape
    k = weights.shape[1]
    nblocks = (n + nb - 1) // nb
    wf = weights.reshape(-1)
    of = out.reshape(-1)
    old = fpenv.enter(ftz)
    while True:
        u = parallel.atomic_next(counter)
        if u >= nblocks:
            break
        j0 = u * nb
        j1 = min(n, j0 + nb)
        _block_product(fma, x, wf, k, filters, size, stride, pad, out_w, n, j0, j1, b, of[j0:], n)
        if mode != COPY:
            _block_epilogue(of[j0:], n, j1 - j0, j0, n, mean, variance, scales, biases, mode, a, ftz)
    fpenv.leave(old)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def _columns(x, weights, size, stride, pad, out_w, out, workspace, nb, threads, fma,
             mean, variance, scales, biases, mode, a, ftz):
    """out = weights @ im2col(x) by column blocks of nb, each followed by its epilogue
    (mode COPY: none); `threads` workers take blocks from a shared counter. fma: None
    for the exact GEMM (see gemm.gemm_fast)."""
    k = weights.shape[1]
    counter = np.zeros(16, np.int64)
    if threads == 1:
        _column_worker(x, weights, size, stride, pad, out_w, out, workspace[:k * nb], nb, counter, fma,
                       mean, variance, scales, biases, mode, a, ftz)
        return
    for t in prange(threads):
        _column_worker(x, weights, size, stride, pad, out_w, out, workspace[t * k * nb:(t + 1) * k * nb],
                       nb, counter, fma, mean, variance, scales, biases, mode, a, ftz)


# ---------------------------------------------------------------- convolution + maxpool

def pool_bands(k, out_w, pool_size):
    """Pooled rows per work unit of the fused kernel: a unit's columns are whole bands of
    pool_size output rows, about a column block's worth."""
    return max(1, block_columns(k) // (pool_size * out_w))


def maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride,
                    pool_pad, exact=True, threads=None):
    """Whether `convolution_epilogue_maxpool` can run this pair: pool windows that tile
    the rows without overlap from the origin (size == stride, offset 0; Darknet's 2x2/2
    pools), and enough bands to keep every thread busy (wide layers); for a Winograd
    layer, 2x2 windows on an even output (the windows are its output tiles)."""
    if groups != 1 or pool_size != pool_stride or pool_size < 2 or pool_pad // 2 != 0 or pool_pad < 0:
        return False
    if winograd_applies(*in_shape, filters, size, stride, pad, groups, exact):
        return pool_size == 2 and out_hw[0] % 2 == 0 and out_hw[1] % 2 == 0
    c = in_shape[0]
    k, (out_h, out_w) = c * size * size, out_hw
    units = -(-out_h // pool_size) // pool_bands(k, out_w, pool_size)
    return units >= BLOCKS_PER_THREAD * (threads or numba.config.NUMBA_NUM_THREADS)


def _pooled_floats_per_thread(k, filters, size, out_w, pool_size):
    """A thread's room in the fused kernel: an im2col block (none for 1x1) and the
    block's convolution output."""
    nb = pool_bands(k, out_w, pool_size) * pool_size * out_w
    return ((k if size > 1 else 0) + filters) * nb


def maxpool_workspace_floats(c, filters, size, out_hw, pool_size):
    """Floats of workspace `convolution_epilogue_maxpool` needs, at Numba's largest
    thread count."""
    k = c * size * size
    return numba.config.NUMBA_NUM_THREADS * _pooled_floats_per_thread(k, filters, size, out_hw[1], pool_size)


@njit(cache=True, fastmath=False, error_model="numpy")
def _pooled_worker(x, weights, size, stride, pad, out_h, out_w, pooled, pool_size, bands, work,
                   counter, fma, mean, variance, scales, biases, mode, a, ftz):
    """One thread's share of the fused pair: take bands of pooled rows from counter; for
    each, the convolution of the conv rows under them into `work` (a block, in cache),
    its epilogue, then the maxpool from there (see pool.window_row)."""
    filters, k = weights.shape
    _, ph, pw = pooled.shape
    nb = bands * pool_size * out_w
    b = work[:k * nb if size > 1 else 0]
    cf = work[b.size:b.size + filters * nb]
    wf = weights.reshape(-1)
    units = (ph + bands - 1) // bands
    old = fpenv.enter(ftz)
    while True:
        u = parallel.atomic_next(counter)
        if u >= units:
            break
        i0 = u * bands
        i1 = min(ph, i0 + bands)
        y0 = i0 * pool_size
        y1 = min(out_h, i1 * pool_size)
        width = (y1 - y0) * out_w
        _block_product(fma, x, wf, k, filters, size, stride, pad, out_w, out_h * out_w, y0 * out_w, y1 * out_w,
                       b, cf, width)
        if mode != COPY:
            _block_epilogue(cf, width, width, y0 * out_w, out_h * out_w, mean, variance, scales, biases, mode, a,
                            ftz)
        for f in range(filters):
            for i in range(i0, i1):
                orow = pooled[f, i]
                for j in range(pw):
                    orow[j] = -pool.FLT_MAX
                for r in range(pool_size):
                    y = i * pool_size + r
                    if y < y1:
                        start = f * width + (y - y0) * out_w
                        pool.window_row(cf[start:start + out_w], orow, pool_size, pool_size, 0, ftz)
    fpenv.leave(old)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def _pooled(x, weights, size, stride, pad, out_h, out_w, pooled, pool_size, bands, workspace,
            per_thread, threads, fma, mean, variance, scales, biases, mode, a, ftz):
    counter = np.zeros(16, np.int64)
    if threads == 1:
        _pooled_worker(x, weights, size, stride, pad, out_h, out_w, pooled, pool_size, bands,
                       workspace[:per_thread], counter, fma, mean, variance, scales, biases, mode, a, ftz)
        return
    for t in prange(threads):
        _pooled_worker(x, weights, size, stride, pad, out_h, out_w, pooled, pool_size, bands,
                       workspace[t * per_thread:(t + 1) * per_thread], counter, fma, mean, variance,
                       scales, biases, mode, a, ftz)


def convolution_epilogue_maxpool(x, weights, size, stride, pad, out_hw, workspace, exact, bn, biases,
                                 activation, ftz, pool_size, pooled):
    """`convolution_epilogue` then a pool_size x pool_size, stride pool_size maxpool (a
    pair `maxpool_fusable` accepts) into pooled (filters, pooled_h, pooled_w), by bands of
    rows in cache: the convolution's whole output is never in memory. The same bits as
    the two layers apart (each output's sum, epilogue and taps are the same operations).
    A Winograd layer's (weights from `prepare_weights`) pools each 2x2 output tile as
    its output transform makes it."""
    activation = activations.constant(activation)
    if isinstance(weights, winograd.WinogradWeights):
        return winograd.convolution3x3(x, weights, None, workspace,
                                       _winograd_epilogue(bn, biases, activation, ftz), pooled)
    filters, k = weights.shape
    out_h, out_w = out_hw
    bands = pool_bands(k, out_w, pool_size)
    per_thread = _pooled_floats_per_thread(k, filters, size, out_w, pool_size)
    threads = numba.get_num_threads()
    if workspace is None or workspace.size < per_thread:
        workspace = np.empty(per_thread, np.float32)
    threads = min(threads, workspace.size // per_thread)
    if bn is None:
        mode, mean, variance, scales = BIAS, _EMPTY, _EMPTY, _EMPTY
    else:
        mode, (mean, variance, scales) = BATCHNORM, bn
    _pooled(x, weights, size, stride, pad, out_h, out_w, pooled, pool_size, bands, workspace, per_thread,
            threads, None if exact else True, mean, variance, scales, biases, mode, activation, ftz)
    return pooled


def _convolve(x, weights, groups, size, stride, pad, out_hw, workspace, exact, epilogue_args, out):
    c, h, w = x.shape
    filters = weights.shape[0]
    m, cg = filters // groups, c // groups
    k, n = cg * size * size, out_hw[0] * out_hw[1]
    out = np.empty((filters, n), np.float32) if out is None else out.reshape(filters, n)
    threads = numba.get_num_threads()
    nb = block_columns(k)
    by_blocks = groups == 1 and blocked(k, n, threads)
    rows = chunk_rows(k, n)
    need = 0 if size == 1 else k * nb if by_blocks else rows * n
    if workspace is None or workspace.size < need:
        workspace = np.empty(need, np.float32)
    mode, mean, variance, scales, biases, a, ftz = epilogue_args
    if by_blocks:
        if size > 1:
            threads = min(threads, workspace.size // (k * nb))
        _columns(x, weights, size, stride, pad, out_hw[1], out, workspace, nb, threads,
                 None if exact else True, mean, variance, scales, biases, mode, a, ftz)
        return out, True
    flat = x.reshape(-1)
    multiply = gemm.gemm_exact if exact else gemm.gemm_fast
    for g in range(groups):
        a, c = weights[g * m:(g + 1) * m], out[g * m:(g + 1) * m]
        if size == 1:
            start = g * cg * h * w
            multiply(a, flat[start:start + k * n].reshape(k, n), c, ftz=ftz)
            continue
        # by chunks of im2col rows, each product going on from the last one's sums:
        # the same bits as one product, with a workspace of one chunk
        for r0 in range(0, k, rows):
            r1 = min(k, r0 + rows)
            b = workspace[:(r1 - r0) * n].reshape(r1 - r0, n)
            im2col(x[g * cg:(g + 1) * cg], size, stride, pad, b, r0)
            multiply(a[:, r0:r1], b, c, r0 > 0, ftz)
    return out, mode == COPY


_EMPTY = np.empty(0, np.float32)


def convolution(x, weights, groups, size, stride, pad, out_hw, workspace, exact, out=None, ftz=False):
    """x (c, h, w) -> (filters, out_h*out_w), before bias, batch norm and activation.

    `weights` is (filters, c/groups*size*size). As in Darknet, a 1x1 kernel skips
    im2col and reads the input buffer directly as the (k, n) matrix. `out`: a buffer
    of filters*out_h*out_w floats to write into (an arena place), not overlapping x.
    ftz: the product under flush-to-zero and denormals-are-zero (the stock build).
    """
    no_epilogue = (COPY, _EMPTY, _EMPTY, _EMPTY, _EMPTY, activations.LINEAR, ftz)
    return _convolve(x, weights, groups, size, stride, pad, out_hw, workspace, exact, no_epilogue, out)[0]


def convolution_epilogue(x, weights, groups, size, stride, pad, out_hw, workspace, exact,
                         bn, biases, activation, ftz, out=None):
    """`convolution` then `epilogue`, the epilogue done block by block while in cache.
    weights: an array, or what `prepare_weights` made of it (a Winograd layer's)."""
    activation = activations.constant(activation)
    if isinstance(weights, winograd.WinogradWeights):
        out = np.empty((weights.m, out_hw[0] * out_hw[1]), np.float32) if out is None else out
        return winograd.convolution3x3(x, weights, out.reshape(weights.m, -1), workspace,
                                       _winograd_epilogue(bn, biases, activation, ftz))
    if bn is None:
        args = (BIAS, _EMPTY, _EMPTY, _EMPTY, biases, activation, ftz)
    else:
        args = (BATCHNORM, *bn, biases, activation, ftz)
    out, done = _convolve(x, weights, groups, size, stride, pad, out_hw, workspace, exact, args, out)
    if not done:
        epilogue(out, bn, biases, activation, ftz)
    return out


def _winograd_epilogue(bn, biases, activation, ftz):
    """The epilogue as winograd.convolution3x3 takes it (done in its output transform)."""
    if bn is None:
        return (False, _EMPTY, _EMPTY, _EMPTY, biases, activation, ftz)
    return (True, *bn, biases, activation, ftz)


def epilogue(out, bn, biases, activation, ftz):
    """Batch norm (or bias) and activation in place on out (filters, spatial)."""
    if bn is None:
        activations.batchnorm_bias_activate(out, _EMPTY, _EMPTY, _EMPTY, biases, False, activation, ftz)
    else:
        mean, variance, scales = bn
        activations.batchnorm_bias_activate(out, mean, variance, scales, biases, True, activation, ftz)
