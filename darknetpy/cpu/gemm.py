"""The CPU backend's convolution GEMM: c = a @ b in float32, bit-exact with Darknet or fast.

``gemm_exact(a, b, c)`` writes ``c = a @ b`` for float32 ``a`` (M, K), ``b`` (K, N)
and ``c`` (M, N) -- each row contiguous, the rows any stride apart (column blocks of a
wider matrix) -- with exactly the arithmetic of C Darknet's ``gemm_nn`` (ALPHA = 1, C
zero-filled first): every output starts from +0.0f and adds ``a[i, k] * b[k, j]`` for
k = 0, 1, ..., K-1 in that order, the product and the sum each rounded to float32 -- no
fused multiply-add, no reassociation, no wider intermediate.  The result is
bit-identical to Darknet's for every input, including signed zeros, subnormals, infs
and NaNs (NaN payloads aside: like C, only NaN-ness is specified).  With ``ftz=True``
every thread runs the product with MXCSR's flush-to-zero and denormals-are-zero set,
as the stock -Ofast build does (its ``crtfastmath.o`` sets them); without, as the -O2
build.  ``gemm_fast(a, b, c)`` computes the same product with one fused multiply-add
(one rounding) per step: not exact, for the fast numerics.

Hand-written because no BLAS promises an order of summation; the exact kernel still
runs at about OpenBLAS's speed (bench/README.md, "The CPU GEMM", has the measurements).
The code is in three modules: gemm_kernels.py generates the micro-kernels,
gemm_blocking.py packs, blocks and shares the work among threads, and this one checks
the arguments and picks the serial or the parallel driver.  Numba code that runs its
own products on its own thread (the convolution's column blocks, Winograd's tile
products) calls ``gemm_serial`` or, with A from ``pack_a``'s layout,
``gemm_serial_packed`` (see gemm_blocking for their product descriptor).
"""

import ctypes

import numpy as np

from .gemm_blocking import (KC, NCP, aligned_empty, chunk, chunk_whole, gemm_parallel, gemm_serial,
                            gemm_serial_entry, gemm_serial_packed, pack_a_panels)
from .gemm_kernels import MR, NR, VW
from .parallel import num_threads

__all__ = ["gemm_exact", "gemm_fast", "gemm_reference", "pack_a", "PackedA", "MR", "NR", "KC", "NCP",
           "gemm_serial", "gemm_serial_packed", "chunk", "aligned_empty"]

PAR_MIN_FLOPS = 4e6     # below this many flops a call runs on one thread
_NO_A = np.empty(0, np.float32)


class PackedA:
    """A matrix packed once for the kernels (see pack_a)."""

    __slots__ = ("ap", "kcs", "shape")

    def __init__(self, ap, kcs, shape):
        self.ap, self.kcs, self.shape = ap, kcs, shape


def pack_a(a, n=None):
    """A (M, K) packed once for many products with it -- a layer's weights:
    gemm_exact and gemm_fast accept the result in place of ``a`` and skip
    packing A (gemm_blocking.pack_a_panels's layout).  n: the usual number of
    columns of B, which picks the k chunk (speed only: any chunk gives the same
    bits)."""
    _check_matrix("a", a)
    M, K = a.shape
    kcs = chunk_whole(K, n if n else NCP * NR) if K else VW
    af, lda = _flat(a)
    npan = (M + MR - 1) // MR
    ap = aligned_empty(npan * MR * K)
    if ap.size:
        pack_a_panels(af, lda, M, K, ap, 0, npan, kcs)
    return PackedA(ap, kcs, (M, K))


def _check_matrix(name, x):
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
        raise TypeError("gemm: %s must be a 2-D float32 array" % name)
    rows, cols = x.shape
    if x.size and ((cols > 1 and x.strides[1] != 4) or (rows > 1 and (
            x.strides[0] % 4 != 0 or x.strides[0] < 4 * cols))):
        raise TypeError("gemm: the rows of %s must be contiguous and not overlap "
                        "(strides %s)" % (name, x.strides))


def _check(a, b, c):
    if not isinstance(a, PackedA):
        _check_matrix("a", a)
    _check_matrix("b", b)
    _check_matrix("c", c)
    M, K = a.shape
    if b.shape[0] != K or c.shape != (M, b.shape[1]):
        raise ValueError("gemm: shapes %s @ %s -> %s do not match"
                         % (a.shape, b.shape, c.shape))
    if not c.flags.writeable:
        raise ValueError("gemm: c is read-only")


def _flat(x):
    """(flat, ld): x's memory from its first to its last element as a 1-D
    writable array (x is only read if it is read-only) and its row stride
    in floats; numba then compiles one version for every layout."""
    rows, cols = x.shape
    ld = x.strides[0] // 4 if rows > 1 else cols
    if x.flags.c_contiguous and x.flags.writeable:
        return x.reshape(-1), ld
    n = (rows - 1) * ld + cols
    buf = (ctypes.c_char * (4 * n)).from_address(x.ctypes.data)
    return np.frombuffer(buf, np.float32), ld


def _gemm(a, b, c, fma, accumulate, ftz):
    _check(a, b, c)
    M, K = a.shape
    N = b.shape[1]
    if M == 0 or N == 0:
        return c
    if K == 0:
        if not accumulate:
            c[...] = 0.0
        return c
    packed = isinstance(a, PackedA)
    (af, lda) = (a.ap, K) if packed else _flat(a)
    (bf, ldb), (cf, ldc) = _flat(b), _flat(c)
    g = (fma, af, lda, bf, ldb, cf, ldc, M, K, N, np.bool_(accumulate))
    nt = num_threads()
    ftz = np.bool_(ftz)
    if nt <= 1 or 2.0 * M * N * K < PAR_MIN_FLOPS:
        if packed:
            gemm_serial_entry(g, a.ap, a.kcs, ftz)
        else:
            gemm_serial_entry(g, _NO_A, chunk_whole(K, N), ftz)
    elif packed:
        gemm_parallel(g, nt, a.ap, a.kcs, ftz)
    else:
        gemm_parallel(g, nt, _NO_A, 0, ftz)
    return c


def gemm_exact(a, b, c, accumulate=False, ftz=False):
    """c[:] = a @ b with Darknet's exact float32 arithmetic (see module doc).

    a: (M, K), b: (K, N), c: (M, N); float32, each row contiguous, rows any
    (positive) stride apart -- so c may be a column slice out[:, j0:j1] and
    b a column block of a wider matrix.  a may be pack_a(a).  c must not
    overlap a or b.  Uses numba.get_num_threads() threads.

    accumulate: c += a @ b, each output's sum going on from c's value in the
    same order -- so a product split over k, k-chunk after k-chunk, gives the
    bits of the whole product (a convolution's im2col matrix by row chunks).

    ftz: as the stock -Ofast build runs, with flush-to-zero and denormals-are-zero
    (subnormal inputs count as zero, subnormal products and sums become zero).
    """
    return _gemm(a, b, c, None, accumulate, ftz)


def gemm_fast(a, b, c, accumulate=False, ftz=False):
    """c[:] = a @ b, not bit-exact: the same blocked kernel with fused
    multiply-adds (same arguments as gemm_exact)."""
    return _gemm(a, b, c, True, accumulate, ftz)


def gemm_reference(a, b):
    """Slow numpy reference of the exact semantics (for tests)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        acc = (acc + (a[:, k:k + 1] * b[k:k + 1, :]).astype(np.float32)).astype(np.float32)
    return acc
