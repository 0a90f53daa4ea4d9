"""Winograd F(2x2, 3x3) convolution for the non-exact ("fast") numerics.

A 3x3, stride-1, pad-1 convolution computed on 4x4 input tiles that give 2x2 output
tiles (Lavin and Gray, 2015): V = B^T d B per tile and channel, U = G g G^T per filter
and channel, then for each of the 16 tile positions xi one product
Y[xi] (M, tiles) = U[xi] (M, C) @ V[xi] (C, tiles), and the output tile A^T Y A.
That is 16 multiplies per 4 outputs instead of 36: 2.25x fewer flops in the products,
which run on gemm.py's fast (FMA) kernel with U packed once (gemm.pack_a).

The sums are reassociated and the transforms add and subtract values of different
sizes, so the result is not Darknet's bits; its error stays near float32 rounding of
the output scale (about 1e-6 relative for unit-scale data, see tests/test_winograd.py).

Tiles are processed by blocks: a block's transformed input (16, C, T) and products
(16, M, T) are small (a thread's share fits in L2 for the wide layers) and the output
transform writes the block's pixels of `out` while its products are still in cache, so
no (16, C, all tiles) array is ever made. The output transform also applies the layer's
epilogue, and for a 2x2/2 maxpool after the layer takes each 2x2 output tile's maximum
and writes only that (the pool's windows are the tiles): the layer's own output is then
never written. Two schedules:

* many blocks: each thread takes whole blocks from a shared counter and does the
  input transform, the 16 products and the output transform of its block alone;
* few blocks (the 38x38 and 19x19 layers: too few blocks to share out): blocks one
  after the other, each phase split among the threads (input transform by channels,
  products by tile position xi, output transform by filters).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import activations, fpenv, gemm, llvm_ir, parallel, pool

NR = gemm.NR                  # block widths are whole micro-panels of the GEMM
THREAD_BLOCK_FLOATS = 1 << 19  # many-blocks schedule: a block's V + Y, at most 2 MB
SHARED_BLOCK_FLOATS = 1 << 21  # few-blocks schedule: a block's V + Y, at most 8 MB
MAX_BLOCK = 8 * NR             # one packed column block of the GEMM
BLOCKS_PER_THREAD = 4          # many-blocks schedule only with this many blocks a thread

# the end of the GEMM's product descriptor g (see gemm_blocking), which _product builds:
# accumulate = False
_G_TAIL = (np.bool_(False),)

# measured (bench/winograd.py): below these Winograd loses to the direct fast GEMM
MIN_CHANNELS = 16
MIN_FILTERS = 16
MIN_WORK = 1 << 21          # c * m * h * w


class WinogradWeights:
    """A layer's transformed weights: U[xi] (M, C) for the 16 tile positions, packed
    for gemm.py's kernel: `ap` holds the 16 packed matrices `stride` floats apart,
    `kcs` is their k chunk. 16/9 the size of the weights."""

    __slots__ = ("ap", "stride", "kcs", "m", "c")

    def __init__(self, ap, stride, kcs, m, c):
        self.ap, self.stride, self.kcs, self.m, self.c = ap, stride, kcs, m, c

    def packed(self, xi):
        """U[xi] as a gemm.PackedA (a view), for gemm.gemm_fast."""
        size = -(-self.m // gemm.MR) * gemm.MR * self.c
        return gemm.PackedA(self.ap[xi * self.stride:xi * self.stride + size], self.kcs,
                            (self.m, self.c))


# Winograd's G, with which U = G g G^T (the tests check the transform against it)
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def transform_weights(weights):
    """weights float32 (M, C*9), each row in (c, ky, kx) order -> WinogradWeights.

    U = G g G^T in float32 (about 3e-8 relative off the exact transform, far below
    Winograd's own error), packed straight into the 16 matrices (the layout of
    gemm.pack_a, for blocks of MAX_BLOCK tiles)."""
    weights = np.ascontiguousarray(weights, np.float32)
    m, k = weights.shape
    if k % 9 or m == 0 or k == 0:
        raise ValueError("winograd: weights must be (filters, channels*9), got %s" % (weights.shape,))
    c = k // 9
    # 64-byte aligned, and an odd number of cache lines apart: the 16 matrices' rows
    # written together (_transform_panels) then fall in different cache sets, where a
    # power-of-two stride (1024 x 1024 filters) would put them all in one
    stride = (-(-(-(-m // gemm.MR) * gemm.MR * c) // 16) | 1) * 16
    ap = gemm.aligned_empty(16 * stride)
    kcs = gemm.chunk(c, MAX_BLOCK)      # gemm's k chunk for a column block of MAX_BLOCK
    _transform_panels(weights.reshape(-1), m, c, kcs, ap, stride)
    return WinogradWeights(ap, stride, kcs, m, c)


@njit(cache=True, fastmath=False)
def _transform_panels(wf, m, c, kcs, u, us):
    """U = G g G^T of the weights wf (m filters of c*9 floats, flat), packed as gemm's
    A (see gemm_blocking.pack_a_panels): U[xi] at u[xi * us]; for each k chunk of kcs, each
    panel of MR rows k-major; rows past m are zeros. Whole panels go 8 channels at a
    time through _tile_weights_8x8 (10x faster than one kernel at a time), the rest
    through _tile_weights: the same float32 operations, so the same bits."""
    mr = gemm.MR
    k = 9 * c
    mp = (m + mr - 1) // mr * mr
    for pc in range(0, c, kcs):
        kc = min(kcs, c - pc)
        for p in range(mp // mr):
            base = pc * mp + p * kc * mr
            rows = min(mr, m - p * mr)
            g = p * mr * k + 9 * pc
            vec = kc // 8 * 8 if rows == 8 and mr == 8 else 0
            for kk in range(0, vec, 8):
                _tile_weights_8x8(wf, g + 9 * kk, k, u, base + kk * mr, us)
            for kk in range(vec, kc):
                o = base + kk * mr
                for r in range(rows):
                    _tile_weights(wf, np.uint64(g + r * k + 9 * kk), u, np.uint64(o + r), np.uint64(us))
                for r in range(rows, mr):
                    for xi in range(16):
                        u[o + xi * us + r] = np.float32(0.0)


@njit(inline="always")
def _half_sums(a, b, c):
    """One side of G g G^T on three values: (a, (a+b+c)/2, (a-b+c)/2, c), in float32."""
    s = a + c
    h = np.float32(0.5)
    return a, h * (s + b), h * (s - b), c


@njit(inline="always")
def _tile_weights(wf, g, u, o, us):
    """The 16 values of G g G^T for the 3x3 kernel at wf[g:g + 9] (taps row by row)
    into u[o + xi*us]. G's rows: (1, 0, 0), (1/2, 1/2, 1/2), (1/2, -1/2, 1/2),
    (0, 0, 1), on both sides. (Unsigned indices: no test for negative ones.)"""
    i = np.uint64
    c0 = _half_sums(wf[g], wf[g + i(3)], wf[g + i(6)])       # G applied to the columns
    c1 = _half_sums(wf[g + i(1)], wf[g + i(4)], wf[g + i(7)])
    c2 = _half_sums(wf[g + i(2)], wf[g + i(5)], wf[g + i(8)])
    # then to the rows of the result, row i giving U[4i .. 4i + 3] (literal indices:
    # a tuple indexed by a loop variable is built in memory, at a call a kernel)
    _store_row(u, o, us, _half_sums(c0[0], c1[0], c2[0]))
    _store_row(u, o + i(4) * us, us, _half_sums(c0[1], c1[1], c2[1]))
    _store_row(u, o + i(8) * us, us, _half_sums(c0[2], c1[2], c2[2]))
    _store_row(u, o + i(12) * us, us, _half_sums(c0[3], c1[3], c2[3]))


@njit(inline="always")
def _store_row(u, o, us, row):
    u[o] = row[0]
    u[o + us] = row[1]
    u[o + np.uint64(2) * us] = row[2]
    u[o + np.uint64(3) * us] = row[3]


_f32x8 = ir.VectorType(ir.FloatType(), 8)


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(llvm_ir.I32, 8), mask))


def _transpose8(builder, rows):
    """Columns of the 8x8 block given by its rows (8 vectors of 8 floats): unpack,
    pair and swap halves (the usual three stages, 24 shuffles)."""
    t = []
    for i in range(0, 8, 2):
        t.append(_shuffle(builder, rows[i], rows[i + 1], [0, 8, 1, 9, 4, 12, 5, 13]))
        t.append(_shuffle(builder, rows[i], rows[i + 1], [2, 10, 3, 11, 6, 14, 7, 15]))
    lo, hi = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
    s = []
    for i in (0, 4):
        s += [_shuffle(builder, t[i], t[i + 2], lo), _shuffle(builder, t[i], t[i + 2], hi),
              _shuffle(builder, t[i + 1], t[i + 3], lo), _shuffle(builder, t[i + 1], t[i + 3], hi)]
    first, second = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
    return ([_shuffle(builder, s[i], s[4 + i], first) for i in range(4)]
            + [_shuffle(builder, s[i], s[4 + i], second) for i in range(4)])


def _half_sums_ir(builder, a, b, c):
    half = ir.Constant(_f32x8, [0.5] * 8)
    s = builder.fadd(a, c)
    return a, builder.fmul(half, builder.fadd(s, b)), builder.fmul(half, builder.fsub(s, b)), c


@intrinsic
def _tile_weights_8x8(typingctx, wf, g, k, u, o, us):
    """_tile_weights for 8 filters (gemm.MR: rows k floats apart, the first at wf[g]) and 8
    channels, the filters side by side in vectors: each row's 72 floats are read as 9
    vectors and transposed in registers (9 blocks of 8x8), so that a k step's 8 values
    of each U[xi] are one store at u[o + xi*us + 8*channel]. The same float32
    operations as _tile_weights (no contraction into FMA), so the same bits."""
    sig = types.void(wf, g, k, u, o, us)

    def codegen(context, builder, signature, args):
        wf_v, g_v, k_v, u_v, o_v, us_v = args
        vptr = _f32x8.as_pointer()
        src = llvm_ir.data_ptr(context, builder, signature.args[0], wf_v, g_v)
        dst = llvm_ir.data_ptr(context, builder, signature.args[3], u_v, o_v)
        blocks = [[] for _ in range(9)]
        for r in range(8):
            row = builder.gep(src, [builder.mul(k_v, llvm_ir.c64(r))])
            for q in range(9):
                p = builder.gep(row, [llvm_ir.c64(8 * q)])
                blocks[q].append(builder.load(builder.bitcast(p, vptr), align=4))
        cols = [v for q in range(9) for v in _transpose8(builder, blocks[q])]
        for ch in range(8):
            tap = cols[9 * ch:9 * ch + 9]
            c = [_half_sums_ir(builder, tap[j], tap[3 + j], tap[6 + j]) for j in range(3)]
            for i in range(4):
                row = _half_sums_ir(builder, c[0][i], c[1][i], c[2][i])
                for j in range(4):
                    off = builder.add(builder.mul(us_v, llvm_ir.c64(4 * i + j)),
                                      llvm_ir.c64(8 * ch))
                    builder.store(row[j], builder.bitcast(builder.gep(dst, [off]), vptr), align=4)
        return context.get_dummy_value()

    return sig, codegen


def _tiles(h, w):
    th, tw = (h + 1) // 2, (w + 1) // 2
    return th, tw, th * tw


def _round_block(floats_per_tile, budget, ntiles):
    t = max(NR, min(MAX_BLOCK, budget // floats_per_tile // NR * NR))
    return min(t, -(-ntiles // NR) * NR)


def plan(c, h, w, m, threads=None):
    """(shared, T, workers): the schedule (shared: few blocks, phases split among the
    threads), the block width in tiles and how many blocks of workspace (one a worker).

    The shared schedule's blocks are split evenly (every block re-reads all of U,
    64 MB for the 1024-channel layers) and at most SHARED_BLOCK_FLOATS."""
    threads = numba.get_num_threads() if threads is None else threads
    ntiles = _tiles(h, w)[2]
    per_tile = 16 * (c + m)
    t = _round_block(per_tile, THREAD_BLOCK_FLOATS, ntiles)
    nblocks = -(-ntiles // t)
    if nblocks >= BLOCKS_PER_THREAD * threads:
        return False, t, min(threads, nblocks)
    nblocks = max(-(-ntiles * per_tile // SHARED_BLOCK_FLOATS), -(-ntiles // MAX_BLOCK))
    return True, -(-(-(-ntiles // nblocks)) // 16) * 16, 1


def workspace_floats(c, h, w, m, threads=None):
    """Floats of workspace convolution3x3 uses (plus 2*(W+3) floats per thread)."""
    shared, t, workers = plan(c, h, w, m, threads)
    return workers * 16 * (c + m) * t


def worth_it(c, h, w, m):
    """Whether Winograd beats the direct fast GEMM for a 3x3 stride-1 pad-1 layer
    (c, h, w) -> m, measured at 1 thread (bench/winograd.py and shapes around them):
    yolov2's layers from C = 32 up gain 1.5-1.8x; C = 3 loses 1.8x and C = 8 loses
    (the products are too small for the transforms to pay), C = 16 gains 1.1-1.3x.
    Small layers lose to the fixed costs (32x5x5 -> 32: 0.7x; 256x5x5 -> 256 breaks
    even, 256x7x7 -> 256 gains 1.45x), and small odd images waste part of their edge
    tiles: H*W/(4 * tiles) of the 2.25x is left, asked to be 1.5x or more."""
    th, tw, ntiles = _tiles(h, w)
    return (c >= MIN_CHANNELS and m >= MIN_FILTERS and c * m * h * w >= MIN_WORK
            and 2.25 * h * w >= 1.5 * 4 * ntiles)


@njit(fastmath=True, inline="always")
def _add(a, b, out, n):
    for j in range(n):
        out[j] = a[j] + b[j]


@njit(fastmath=True, inline="always")
def _sub(a, b, out, n):
    for j in range(n):
        out[j] = a[j] - b[j]


@njit(fastmath=True, inline="always")
def _add3(a, b, c, out, n):
    for j in range(n):
        out[j] = a[j] + b[j] + c[j]


@njit(fastmath=True, inline="always")
def _sub3(a, b, c, out, n):
    for j in range(n):
        out[j] = a[j] - b[j] - c[j]


# Both transforms run along a row of tiles as loops of two or three input streams
# and one output stream, each loop over views indexed from 0: LLVM vectorises these
# (a loop with 16 output streams it does not: it cannot rule out that they alias).


@njit(cache=True, fastmath=True)
def _input_transform(x, c0, c1, t0, t1, tw, v, ldv, vstride, rows):
    """V[xi, c, t - t0] = (B^T d B)[xi] for channels [c0, c1) and tiles [t0, t1);
    V[xi, c, j] is v[xi * vstride + c * ldv + j]. rows: scratch of _row_floats(tw)
    floats: the four input rows of a tile row split into even and odd padded columns
    (8 * (tw + 1)), then their row transforms (16 * tw)."""
    h, w = x.shape[1], x.shape[2]
    n = tw + 1
    ty0, ty1 = t0 // tw, (t1 - 1) // tw
    a = rows[8 * n:]
    for c in range(c0, c1):
        for ty in range(ty0, ty1 + 1):
            txa = max(0, t0 - ty * tw)
            nt = min(tw, t1 - ty * tw) - txa
            for i in range(4):
                y = 2 * ty - 1 + i
                ev = rows[(2 * i) * n:(2 * i + 1) * n]
                od = rows[(2 * i + 1) * n:(2 * i + 2) * n]
                # padded column s + 1: odd s -> ev[(s + 1) // 2], even s -> od[s // 2]
                ev[0] = 0.0
                if 0 <= y < h:
                    xr = x[c, y]
                    half = w // 2
                    ev1 = ev[1:]
                    for j in range(half):
                        od[j] = xr[2 * j]
                        ev1[j] = xr[2 * j + 1]
                    if w % 2:
                        od[half] = xr[w - 1]
                        ev[half + 1] = 0.0
                    else:
                        od[half] = 0.0
                else:
                    for j in range(n):
                        ev[j] = 0.0
                        od[j] = 0.0
                # row transform of row i: d[i, 0..3] = ev[tx], od[tx], ev[tx + 1], od[tx + 1]
                e, o = ev[txa:], od[txa:]
                e1, o1 = ev[txa + 1:], od[txa + 1:]
                ai = a[4 * i * tw:]
                _sub(e, e1, ai, nt)
                _add(o, e1, ai[tw:], nt)
                _sub(e1, o, ai[2 * tw:], nt)
                _sub(o, o1, ai[3 * tw:], nt)
            base = c * ldv + ty * tw + txa - t0
            for j in range(4):
                r0, r1 = a[j * tw:], a[(4 + j) * tw:]
                r2, r3 = a[(8 + j) * tw:], a[(12 + j) * tw:]
                _sub(r0, r2, v[j * vstride + base:], nt)
                _add(r1, r2, v[(4 + j) * vstride + base:], nt)
                _sub(r2, r1, v[(8 + j) * vstride + base:], nt)
                _sub(r1, r3, v[(12 + j) * vstride + base:], nt)


@njit(cache=True, fastmath=False, error_model="numpy")
def _epilogue_rows(r, tw, nt, f, ep, ty, txa, h, w, ftz):
    """The convolution's epilogue (batch norm or bias, activation; see
    activations.epilogue_span) on tile row ty's four output streams of nt values, tw
    apart (output rows 2ty and 2ty+1, even and odd columns from 2txa): compiled apart
    from the fast-math transform, so it has the bits of the epilogue pass it replaces,
    the stock build's batch-norm reciprocal included."""
    use_bn, mean, variance, scales, biases, a = ep
    vector_end = activations.reciprocal_end(h * w, ftz)
    last = (2 * ty + 1) * w + 2 * (txa + nt - 1) + 1
    if vector_end == 0 or last < vector_end:
        # one span over the four (the values between them are stale, and never read): a
        # short span's scalar remainder costs more than the values past nt
        split = 0 if vector_end == 0 else 3 * tw + nt
        activations.epilogue_span(r, 0, 3 * tw + nt, f, mean, variance, scales, biases, use_bn, a, split)
        return
    for k in range(4):
        # stream k's positions (2ty + k//2) * w + 2(txa + t) + k%2 rise by 2
        first = (2 * ty + k // 2) * w + 2 * txa + k % 2
        split = min(max((vector_end - first + 1) // 2, 0), nt)
        activations.epilogue_span(r, k * tw, k * tw + nt, f, mean, variance, scales, biases, use_bn, a, split)


@njit(cache=True, fastmath=False, error_model="numpy")
def _pool_row(r, tw, nt, prow, ftz):
    """A 2x2, stride-2 maxpool over a tile row's 2x2 output tiles (the windows are the
    tiles): prow[j] takes tile j's four outputs as Darknet's maxpool takes taps, row by
    row from -FLT_MAX (pool.take_tap)."""
    e0, o0, e1, o1 = r[:nt], r[tw:tw + nt], r[2 * tw:2 * tw + nt], r[3 * tw:3 * tw + nt]
    for j in range(nt):
        m = pool.take_tap(e0[j], -pool.FLT_MAX, ftz)
        m = pool.take_tap(o0[j], m, ftz)
        m = pool.take_tap(e1[j], m, ftz)
        prow[j] = pool.take_tap(o1[j], m, ftz)


@njit(cache=True, fastmath=True)
def _output_transform(y, f0, f1, t0, t1, tw, ldy, ystride, out, h, w, rows, ep, apply, pooled, ftz):
    """out[f, pixels of tiles [t0, t1)] = A^T Y A for filters [f0, f1); Y[xi, f, j]
    is y[xi * ystride + f * ldy + j]. rows: scratch of _row_floats(tw) floats: the
    column transforms (8 * tw), then a tile row's two output rows as even and odd
    columns (4 * tw), interleaved into out. With apply, the epilogue ep (see
    _epilogue_rows) on them first; with pooled (filters, h/2, w/2; h and w even) not
    empty, their 2x2/2 maxpool into pooled instead of out (then pooled's rows)."""
    ty0, ty1 = t0 // tw, (t1 - 1) // tw
    s = rows[:8 * tw]
    r = rows[8 * tw:]
    for f in range(f0, f1):
        of = out[f]
        for ty in range(ty0, ty1 + 1):
            txa = max(0, t0 - ty * tw)
            nt = min(tw, t1 - ty * tw) - txa
            base = f * ldy + ty * tw + txa - t0
            for j in range(4):
                m0, m1 = y[j * ystride + base:], y[(4 + j) * ystride + base:]
                m2, m3 = y[(8 + j) * ystride + base:], y[(12 + j) * ystride + base:]
                _add3(m0, m1, m2, s[j * tw:], nt)
                _sub3(m1, m2, m3, s[(4 + j) * tw:], nt)
            for i in range(2):
                si = s[4 * i * tw:]
                _add3(si, si[tw:], si[2 * tw:], r[2 * i * tw:], nt)
                _sub3(si[tw:], si[2 * tw:], si[3 * tw:], r[(2 * i + 1) * tw:], nt)
            if apply:
                _epilogue_rows(r, tw, nt, f, ep, ty, txa, h, w, ftz)
            if pooled.size:
                _pool_row(r, tw, nt, pooled[f, ty, txa:], ftz)
                continue
            for dy in range(2):
                yy = 2 * ty + dy
                if yy >= h:
                    break
                ev, od = r[2 * dy * tw:], r[(2 * dy + 1) * tw:]
                x0 = 2 * txa
                x1 = min(w, 2 * (txa + nt))
                full = (x1 - x0) // 2
                o = of[yy * w + x0:]
                for j in range(full):
                    o[2 * j] = ev[j]
                    o[2 * j + 1] = od[j]
                if (x1 - x0) % 2:
                    o[x1 - x0 - 1] = ev[full]


def _row_floats(tw):
    """Floats of transform scratch per thread (a multiple of 16)."""
    return -(-max(8 * (tw + 1) + 16 * tw, 12 * tw) // 16) * 16


@njit(inline="always")
def _product(ap, astride, kcs, xi, v, vstride, ldv, y, ystride, ldy, m, c, n, tail):
    """Y[xi] (m, n) = U[xi] @ V[xi] (c, n) on this thread, U packed; tail: _G_TAIL."""
    g = (True, ap, c, v[xi * vstride:], ldv, y[xi * ystride:], ldy, m, c, n) + tail
    gemm.gemm_serial_packed(g, ap[xi * astride:], kcs)


@njit(inline="always")
def _finish(y, f0, f1, t0, t1, tw, ldy, ystride, h, w, rows, dst):
    """The output transform into dst = (out, pooled, ep, apply, ftz) (see
    _output_transform), under ftz's FTZ/DAZ."""
    out, pooled, ep, apply, ftz = dst
    old = fpenv.enter(ftz)
    _output_transform(y, f0, f1, t0, t1, tw, ldy, ystride, out, h, w, rows, ep, apply, pooled, ftz)
    fpenv.leave(old)


@njit(cache=True, fastmath=True)
def _block_worker(x, ap, astride, kcs, m, dst, t, counter, work, rows, tail):
    """Many-blocks schedule, one thread: take blocks of t tiles until none is left."""
    c, h, w = x.shape
    tw = (w + 1) // 2
    ntiles = ((h + 1) // 2) * tw
    nblocks = (ntiles + t - 1) // t
    vstride, ystride = c * t, m * t
    v = work[:16 * vstride]
    y = work[16 * vstride:16 * (vstride + ystride)]
    while True:
        b = parallel.atomic_next(counter)
        if b >= nblocks:
            break
        t0 = b * t
        t1 = min(ntiles, t0 + t)
        _input_transform(x, 0, c, t0, t1, tw, v, t, vstride, rows)
        for xi in range(16):
            _product(ap, astride, kcs, xi, v, vstride, t, y, ystride, t, m, c, t1 - t0, tail)
        _finish(y, 0, m, t0, t1, tw, t, ystride, h, w, rows, dst)


# The parallel functions take dst's parts one by one: a parallel loop's body cannot
# capture a tuple that holds arrays.

@njit(cache=True, parallel=True)
def _by_blocks(x, ap, astride, kcs, m, out, pooled, use_bn, mean, variance, scales, biases, a, apply, ftz,
               t, threads, work, rows, tail):
    counter = np.zeros(16, np.int64)
    per = work.size // threads
    nrow = rows.size // threads
    if threads == 1:
        dst = (out, pooled, (use_bn, mean, variance, scales, biases, a), apply, ftz)
        _block_worker(x, ap, astride, kcs, m, dst, t, counter, work, rows, tail)
        return
    for i in prange(threads):
        dst = (out, pooled, (use_bn, mean, variance, scales, biases, a), apply, ftz)
        _block_worker(x, ap, astride, kcs, m, dst, t, counter, work[i * per:(i + 1) * per],
                      rows[i * nrow:(i + 1) * nrow], tail)


@njit(cache=True, parallel=True)
def _by_phases(x, ap, astride, kcs, m, out, pooled, use_bn, mean, variance, scales, biases, a, apply, ftz,
               t, threads, work, rows, tail):
    """Few-blocks schedule: blocks in turn, each phase split among `threads`."""
    c, h, w = x.shape
    tw = (w + 1) // 2
    ntiles = ((h + 1) // 2) * tw
    vstride, ystride = c * t, m * t
    v = work[:16 * vstride]
    y = work[16 * vstride:16 * (vstride + ystride)]
    nrow = rows.size // threads
    for t0 in range(0, ntiles, t):
        t1 = min(ntiles, t0 + t)
        for i in prange(threads):
            _input_transform(x, c * i // threads, c * (i + 1) // threads, t0, t1, tw, v, t,
                             vstride, rows[i * nrow:(i + 1) * nrow])
        for xi in prange(16):
            _product(ap, astride, kcs, xi, v, vstride, t, y, ystride, t, m, c, t1 - t0, tail)
        for i in prange(threads):
            dst = (out, pooled, (use_bn, mean, variance, scales, biases, a), apply, ftz)
            _finish(y, m * i // threads, m * (i + 1) // threads, t0, t1, tw, t, ystride, h, w,
                    rows[i * nrow:(i + 1) * nrow], dst)


_EMPTY = np.empty(0, np.float32)
_NO_EPILOGUE = (False, _EMPTY, _EMPTY, _EMPTY, _EMPTY, activations.LINEAR, False)
_NO_POOL = np.empty((0, 0, 0), np.float32)


def convolution3x3(x, U, out, workspace=None, epilogue=None, pooled=None):
    """out (M, H*W) = the 3x3, stride-1, pad-1 convolution of x (C, H, W) float32
    contiguous with the weights U = transform_weights(weights).
    epilogue: None (none), or (use_bn, mean, variance, scales, biases, activation, ftz):
    the convolution's epilogue applied as each tile row is made, with the bits of
    activations.batchnorm_bias_activate on the result.
    pooled: None, or a float32 (M, H/2, W/2) array (H and W even) that gets the 2x2,
    stride-2 maxpool of the result (as pool.maxpool with ftz takes taps); `out` is
    then not written (None will do).
    workspace: optional float32 buffer of workspace_floats(C, H, W, M) or more.
    Uses numba.get_num_threads() threads. Returns out, or pooled."""
    c, h, w = x.shape
    if c != U.c:
        raise ValueError("winograd: input has %d channels, weights %d" % (c, U.c))
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("winograd: x must be float32 contiguous")
    if pooled is None:
        if out is None or out.shape != (U.m, h * w) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError("winograd: out must be float32 (%d, %d) contiguous" % (U.m, h * w))
        result, pooled = out, _NO_POOL
    else:
        if h % 2 or w % 2 or pooled.shape != (U.m, h // 2, w // 2) or pooled.dtype != np.float32 \
                or not pooled.flags.c_contiguous:
            raise ValueError("winograd: pooled must be float32 (%d, %d, %d) contiguous, h and w even"
                             % (U.m, h // 2, w // 2))
        result = out = pooled
    if result.size == 0:
        return result
    ep = _NO_EPILOGUE if epilogue is None else epilogue
    use_bn, mean, variance, scales, biases, a, ftz = ep
    a = activations.constant(a)
    threads = parallel.num_threads()
    shared, t, workers = plan(c, h, w, U.m, threads)
    need = workers * 16 * (c + U.m) * t
    if workspace is None or workspace.size < need:
        workspace = gemm.aligned_empty(need)
    tw = (w + 1) // 2
    nrow = _row_floats(tw)
    rows = np.empty(max(workers, threads) * nrow, np.float32)
    run = _by_phases if shared else _by_blocks
    run(x, U.ap, U.stride, U.kcs, U.m, out.reshape(out.shape[0], -1), pooled, np.bool_(use_bn), mean, variance,
        scales, biases, a, np.bool_(epilogue is not None), np.bool_(ftz), t, threads if shared else workers,
        workspace[:need], rows, _G_TAIL)
    return result
