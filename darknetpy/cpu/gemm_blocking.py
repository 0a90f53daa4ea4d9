"""The GEMM's blocking driver: packing, k chunks, edge tiles and threads around
gemm_kernels.py's micro-kernels (BLIS-like, vectorised over output pixels j).

The product is described by a tuple g = (fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc):
A (M x K), B (K x N) and C (M x N) are the flat float32 arrays af, bf, cf with row
strides lda, ldb, ldc (in floats); fma is None for the exact kernel, True for
gemm_fast's; acc True adds to C (each output's sum going on from C's value).

* k is split into chunks (``KC`` or more) only by storing the accumulator tile to C
  after one chunk and loading it back before the next, so each output sees the same
  sequence of roundings as the plain loop.  The first chunk starts from +0.0f.
* Packing: B is packed per chunk and block of ``NC`` columns into micro-panels of
  ``NR`` columns, k-major; A per chunk into panels of ``MR`` rows, k-major.  Neither
  has a pass of its own: the kernels of the first row panel read B from its rows and
  store the packed copy as they go, and those of the first micro-panel do the same for
  A.  Software prefetch runs ahead of the rows these kernels read, of the next A panel
  and of the next C tiles.  When C has a single column block the packed A slices share
  one small buffer.  gemm.pack_a packs A ahead (``pack_a_panels``), once for many
  calls (a layer's weights).
* Edge tiles (M or N not a multiple of the tile) are computed into a small tile buffer
  (zero-padded A rows, zero-padded B columns) and only the valid part is copied to C.
  The last 1-8 columns past whole vectors go instead to the column kernels, every
  ``TAIL_PANELS`` panels while their packed A is in L2.  A large C gets its tiles
  aligned to 64 bytes (a narrow first strip of columns is done apart) and its final
  values written with non-temporal stores.
* On several threads (``gemm_parallel``) the work is cut into units of output columns
  (or, for few columns, of output row panels) -- never of k -- which the threads take
  one at a time from a shared counter.

The sizes below were tuned by measurement (bench/gemm.py; see bench/README.md).
"""
import numpy as np
from numba import njit, prange

from . import fpenv
from .gemm_kernels import MR, NR, NV, VW, col_tail, kernel, pack_a16, prefetch_span, prefetch_tile, store_fence
from .parallel import atomic_next

# Blocking (tuned on AMD Zen 4: 32 KiB L1d, 1 MiB L2 per core).
KC = 256                # k chunk: rows of B per packed block (at least)
NCP = 384 // NR         # micro-panels per packed B block (NC = NCP * NR = 384 columns)
B_BLOCK_BYTES = 384 * 1024      # packed B block budget (L2); small N gets a longer k chunk
WHOLE_B_BYTES = 1536 * 1024     # the same for a whole product whose B is one block (chunk_whole)
PF_CYCLES = 10000       # prefetch C tiles and B micro-panels about this many cycles ahead
NT_STORES = True        # non-temporal stores for the final values of a large C ...
NT_MIN_BYTES = 8 << 20  # ... of at least this size
SHIFT_MIN_N = 2048      # align C tiles to 64 bytes (a narrow first strip) from this N
UNITS_PER_THREAD = 4    # work units per thread, taken dynamically ...
ROW_UNIT_MIN = 6        # ... but row units of at least this many panels when possible
COL_SPLIT_MAX_A = 8 << 20   # split few columns among threads if A is at most this big
TAIL_COLS = 8           # at most this many columns past whole vectors: column kernel ...
TAIL_PANELS = 8         # ... run after every this many row panels (their A still in L2)


@njit(cache=True, inline="always")
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(cache=True)
def aligned_empty(n):
    """n float32 values, uninitialised, from a 64-byte boundary (a cache line, a vector)."""
    raw = np.empty(n + 16, np.float32)
    off = ((-raw.ctypes.data) % 64) // 4
    return raw[off:off + n]


@njit(cache=True)
def _tail_columns(g, ap, p0, p1, jt, j1, pc, kc, Mp, first, t):
    """Columns [jt, j1) of C's row panels [p0, p1) for the k chunk [pc, pc + kc) by the
    column kernels: 4, 2 or 1 columns at a time, 8 // columns panels a call (the last
    panels one at a time); t: scratch of 8*MR floats."""
    fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc = g
    j = jt
    while j < j1:
        cols = 4 if j1 - j >= 4 else 2 if j1 - j >= 2 else 1
        p = p0
        while p < p1:
            n = 8 // cols if p1 - p >= 8 // cols else 1
            i0 = p * MR
            rows = min(n * MR, M - i0)
            if not first:
                for c in range(cols):
                    for r in range(rows):
                        t[c * n * MR + r] = cf[(i0 + r) * ldc + j + c]
            col_tail(fma, n, cols, kc, ap, pc * Mp + p * kc * MR, kc * MR, bf, pc * ldb + j, ldb, t, first)
            for c in range(cols):
                for r in range(rows):
                    cf[(i0 + r) * ldc + j + c] = t[c * n * MR + r]
            p += n
        j += cols


@njit(cache=True)
def chunk(K, N):
    """k chunk length: a multiple of 16, sized so a packed B block fits in L2."""
    return _chunk_within(K, N, B_BLOCK_BYTES)


@njit(cache=True)
def chunk_whole(K, N):
    """k chunk of a whole product (one thread, or threads split by rows) whose B is a
    single column block (N <= NC: the layers at 19x19 and 13x13): up to four times
    chunk's. B then comes from L3, but each C tile is read and written once a chunk,
    and fewer chunks measured 2-8% faster at 1 thread and up to 20% at 2 (1x1 layers).
    (Not for column blocks a thread at a time: at 2 threads those lost.)"""
    if N > NCP * NR:
        return chunk(K, N)
    return _chunk_within(K, N, WHOLE_B_BYTES)


@njit(cache=True)
def _chunk_within(K, N, budget):
    nc = min(NCP * NR, _cdiv(N, NR) * NR)
    kmax = max(KC, (budget // (4 * nc)) // VW * VW)
    nkc = _cdiv(K, kmax)
    return _cdiv(_cdiv(K, nkc), VW) * VW


@njit(cache=True)
def _pack_a_slice(af, lda, M, ap, p, pc, kc, base):
    """Pack A[p*MR : p*MR + MR, pc : pc + kc] (rows past M as zeros) at
    ap[base], k-major: MR consecutive floats per k.  A[i, k] is af[i*lda + k]."""
    i0 = p * MR
    if i0 + MR <= M:
        k16 = kc - kc % VW
        for k0 in range(0, k16, VW):
            pack_a16(af, i0 * lda + pc + k0, lda, ap, base + k0 * MR)
        for k in range(k16, kc):
            for r in range(MR):
                ap[base + k * MR + r] = af[(i0 + r) * lda + pc + k]
    else:
        h = M - i0
        for k in range(kc):
            for r in range(h):
                ap[base + k * MR + r] = af[(i0 + r) * lda + pc + k]
            for r in range(h, MR):
                ap[base + k * MR + r] = 0.0


@njit(cache=True)
def pack_a_panels(af, lda, M, K, ap, p0, p1, kcs):
    """Pack rows [p0*MR, p1*MR) of A (zero-padded to whole panels).

    Layout: for each k chunk [pc, pc+kc) (pc a multiple of kcs), all panels
    one after the other, each k-major: ap[pc*Mp + (p*kc + k - pc)*MR + r]
    = a[p*MR + r, k], Mp = MR * number of panels.
    """
    Mp = _cdiv(M, MR) * MR
    for pc in range(0, K, kcs):
        kc = min(kcs, K - pc)
        for p in range(p0, p1):
            _pack_a_slice(af, lda, M, ap, p, pc, kc, pc * Mp + p * kc * MR)


@njit(cache=True)
def tail_width(n, ring):
    """Columns of a block of n that go to the column kernels: those past whole vectors,
    if at most TAIL_COLS; none with the ring (the kernels read the panels' packed A
    after their tiles)."""
    wt = n % NR % VW
    return 0 if ring or wt > TAIL_COLS else wt


@njit(cache=True)
def gemm_block(g, ap, p0, p1, j0, j1, kcs, bp, tile, nt_ok, pack_a, ring):
    """C[p0*MR:p1*MR, j0:j1] = A @ B (acc: += A @ B, each output's sum going on from
    C's value) for A packed by pack_a_panels.

    g = (fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc): A (M x K), B (K x N),
    C (M x N) are the flat arrays af, bf, cf with row strides lda, ldb, ldc
    (in floats); fma is None for the exact kernel, True for gemm_fast's.
    j0 is a multiple of NR; bp holds a chunk of the widest column block
    (_bp_size), tile MR * NR floats.
    For each block of NC columns (jc) and chunk of kcs rows of B (pc), the
    tiles (p, mp) -- row panel p, micro-panel mp of NR columns -- are
    visited panel by panel: the A panel stays in L1 and the packed B block
    in L2.  The kernels of the first panel pack the B block (fused).
    With nt_ok, the last chunk's tiles that are 64-byte aligned are written
    with non-temporal stores (for a C larger than the caches).  With pack_a
    the A panels are packed here, in the first column block, by the kernels
    of the first micro-panel (fused) or beforehand.
    """
    fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc = g
    Mp = _cdiv(M, MR) * MR
    caddr = cf.ctypes.data
    ncb = NCP * NR
    # ring (pack_a, one column block, nothing after this call needs packed
    # A): all packed A slices share ap[0 : MR * kcs], which stays in cache
    ring = ring and pack_a and j1 - j0 <= ncb
    wt = tail_width(j1 - j0, ring)
    for jc in range(j0, j1, ncb):
        nc = min(ncb, j1 - jc)
        nmp = _cdiv(nc, NR)
        first_block = pack_a and jc == j0
        tail = wt if jc + nc == j1 else 0
        for pc in range(0, K, kcs):
            kc = min(kcs, K - pc)
            first = pc == 0 and not acc
            # prefetch distance, in kernels, covering about PF_CYCLES
            dk = max(1, _cdiv(PF_CYCLES, kc * MR * NV))
            ntile = (p1 - p0) * nmp
            for t in range(ntile):
                p = p0 + t // nmp
                mp = t - (p - p0) * nmp
                if t + dk < ntile and not (nt_ok and pc + kc == K):
                    # the C tile dk kernels ahead, for writing (not when it
                    # will be written with non-temporal stores)
                    p2 = p0 + (t + dk) // nmp
                    mp2 = t + dk - (p2 - p0) * nmp
                    prefetch_tile(cf, p2 * MR * ldc + jc + mp2 * NR, ldc, min(MR, M - p2 * MR))
                i0 = p * MR
                h = min(MR, M - i0)
                aoff = 0 if ring else pc * Mp + p * kc * MR
                jb = jc + mp * NR
                w = min(NR, j1 - jb)
                if mp == nmp - 1:
                    w -= tail
                boff = mp * kc * NR
                nv = _cdiv(w, VW)
                fused = 0
                if first_block:
                    # A rows of the next panel, read (and packed) nmp kernels on
                    rpk = _cdiv(MR, nmp)
                    for q in range(mp * rpk, min(MR, (mp + 1) * rpk)):
                        row = i0 + MR + q
                        if row < M:
                            prefetch_span(af, row * lda + pc, 4 * kc)
                if first_block and mp == 0:
                    if p == p0 or h < MR or w < NR or MR != 8:
                        _pack_a_slice(af, lda, M, ap, p, pc, kc, aoff)
                    else:
                        fused = 2
                if p == p0:
                    if w == NR:
                        fused = 1
                    else:
                        ldp = nv * VW
                        for k in range(kc):
                            src = (pc + k) * ldb + jb
                            d = boff + k * ldp
                            # element by element: an array assignment would compile its
                            # shape-mismatch error (string formatting) into every caller
                            for jj in range(w):
                                bp[d + jj] = bf[src + jj]
                            bp[d + w:d + ldp] = 0.0
                apf = 0 if ring else kc * MR    # next panel's A slice, prefetched
                # a fused kernel prefetches the same B rows dk micro-panels on
                bpf = dk * NR
                flags = 1 if first else 0
                if w > 0 and h == MR and w == nv * VW:
                    coff = i0 * ldc + jb
                    # every row of the tile must be 64-byte aligned, not only the first
                    if nt_ok and pc + kc == K and ldc % VW == 0 and (caddr + 4 * coff) % 64 == 0:
                        flags += 2
                    kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, cf, coff, ldc,
                            flags, bf, pc * ldb + jb, ldb, bpf, af, i0 * lda + pc, lda)
                elif w > 0:
                    # edge tile: through the tile buffer
                    ldt = nv * VW
                    if not first:
                        for r in range(h):
                            for jj in range(w):
                                tile[r * ldt + jj] = cf[(i0 + r) * ldc + jb + jj]
                    kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, tile, i0 - i0, ldt,
                            flags, bf, pc * ldb + jb, ldb, bpf, af, i0 * lda + pc, lda)
                    for r in range(h):
                        for jj in range(w):
                            cf[(i0 + r) * ldc + jb + jj] = tile[r * ldt + jj]
                if tail and mp == nmp - 1 and ((p - p0) % TAIL_PANELS == TAIL_PANELS - 1 or p == p1 - 1):
                    # the tail columns of the last few panels, whose A is still in cache
                    pg = p - (p - p0) % TAIL_PANELS
                    _tail_columns(g, ap, pg, p + 1, j1 - tail, j1, pc, kc, Mp, first, tile)
    if nt_ok:
        store_fence()


@njit(cache=True)
def work_units(M, N, nt, K):
    """Work units for nt threads: (by_cols, cols, rows, width), cols column units by
    rows row units, each at most width columns wide (by rows: cols 1, width N).

    By columns when there are enough micro-panels, else by row panels.  When that
    gives a thread fewer than two units (many threads, a small C), by tiles:
    column units cut into row groups (see _row_groups).  About UNITS_PER_THREAD
    units per thread, taken dynamically, so a thread slowed down by other work on
    its core takes fewer; units split panels as evenly as whole panels allow
    (unit_start).
    """
    npan = _cdiv(M, MR)
    nj = _cdiv(N, NR)
    target = nt * UNITS_PER_THREAD
    # by columns every thread reads all of (packed) A: fine while A is small
    if nj >= 2 * target or nj >= npan or (nj >= 2 * nt and M * K * 4 <= COL_SPLIT_MAX_A):
        cols = min(nj, target)
        if cols >= 2 * nt or npan < 2:
            return True, cols, np.int64(1), _cdiv(nj, cols) * NR
    else:
        # each row unit packs B again: give it ROW_UNIT_MIN panels or more if
        # there are enough, with a whole number of units per thread
        rows = min(npan, max(nt, min(target, npan // ROW_UNIT_MIN) // nt * nt))
        if rows >= 2 * nt or nj < 2:
            return False, np.int64(1), rows, N
    rows = _row_groups(M, K, N, target)
    cols = min(nj, _cdiv(target, rows))
    return True, cols, rows, _cdiv(nj, cols) * NR


@njit(cache=True, inline="always")
def unit_start(i, units, panels):
    """First panel of unit i when `panels` are cut into `units` as evenly as whole
    panels allow (sizes differ by at most one)."""
    return i * panels // units


@njit(cache=True)
def _row_groups(M, K, N, target):
    """Row groups for a split by columns: the number R of groups with C = target / R
    column units each that reads the fewest floats (every unit reads its rows of
    packed A and its columns of B: C * M * K + R * K * N), row groups of at least
    ROW_UNIT_MIN panels where that gives `target` units (else down to one panel),
    and R * C at least `target` units where the rows allow."""
    nj = _cdiv(N, NR)
    npan = _cdiv(M, MR)
    best, best_units, best_cost = 1, 0, 0.0
    rmax = npan // ROW_UNIT_MIN
    if rmax * min(nj, target) < target:
        rmax = npan
    for r in range(1, max(1, rmax) + 1):
        units = r * min(nj, _cdiv(target, r))
        cost = float(min(nj, _cdiv(target, r))) * M * K + float(r) * K * N
        # enough units and fewer floats read, or more units while there are too few
        if (units >= target and (best_units < target or cost < best_cost)) or \
                (best_units < target and units > best_units):
            best, best_units, best_cost = r, units, cost
    return best


@njit(cache=True)
def _col_shift(cf, ldc, M, N):
    """Columns before the first one whose rows all start 64-byte aligned in C
    (0 when the rows do not share an alignment, or when C is small enough
    that the extra edge tiles would cost more than aligned stores gain)."""
    if ldc % VW != 0 or N < SHIFT_MIN_N or M * N * 4 < NT_MIN_BYTES:
        return 0
    return ((-cf.ctypes.data) % 64) // 4


@njit(cache=True, inline="always")
def _block_aligned(g, ap, p0, p1, j0, j1, kcs, bp, tile, shift, pack_a, ring):
    """gemm_block, with the columns [j0, j0 + shift) done on their own so
    that the other tiles of C are 64-byte aligned. ring: ap is this thread's
    own ring (see gemm_block), not a buffer that threads share panel by panel."""
    M, N = g[7], g[9]
    nt_ok = NT_STORES and M * N * 4 >= NT_MIN_BYTES
    # (np.bool_/np.int64 of a constant: not a literal type, so the calls
    # share one compiled specialisation of the callee)
    no = np.bool_(False)
    if shift > 0 and j0 + shift < j1:
        gemm_block(g, ap, p0, p1, j0, j0 + shift, kcs, bp, tile, no, pack_a, no)
        gemm_block(g, ap, p0, p1, j0 + shift, j1, kcs, bp, tile, nt_ok, no, no)
    else:
        gemm_block(g, ap, p0, p1, j0, j1, kcs, bp, tile, nt_ok, pack_a, ring)


@njit(cache=True)
def _ap_size(M, K, N, kcs):
    """Floats of packed A needed: one MR x kcs slice when C has a single
    column block (see gemm_block's ring), else all of A."""
    if N <= NCP * NR:
        return MR * kcs
    return _cdiv(M, MR) * MR * K


# The thin wrappers down to gemm_block are inlined (inline="always", compile time only):
# each function Numba compiles on its own is a module that links in, optimises and
# generates again the code of everything it calls, so each level of wrappers around
# gemm_block cost another pass over the whole GEMM at the first compilation.
@njit(cache=True, inline="always")
def gemm_serial(g):
    """The product on this thread.  g: (fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc),
    fma None for the exact kernel, acc True to add to C (see gemm_block)."""
    _gemm_serial_chunked(g, chunk(g[8], g[9]))


@njit(cache=True, inline="always")
def _gemm_serial_chunked(g, kcs):
    """gemm_serial with the k chunk given."""
    M, K, N = g[7:10]
    _serial(g, aligned_empty(_ap_size(M, K, N, kcs)), kcs, np.bool_(True))


@njit(cache=True)
def gemm_serial_packed(g, ap, kcs):
    """gemm_serial with A already packed: ap, kcs from pack_a (g's af and
    lda are not read)."""
    _serial(g, ap, kcs, np.bool_(False))


@njit(cache=True)
def gemm_serial_entry(g, ap, kcs, ftz):
    """gemm_exact/gemm_fast on the calling thread: A packed (ap, kcs from pack_a) or,
    with ap empty, packed here; ftz: with MXCSR's flush-to-zero and denormals-are-zero
    (the stock -Ofast build's), the caller's MXCSR restored after."""
    old = fpenv.enter(ftz)
    if ap.size > 0:
        gemm_serial_packed(g, ap, kcs)
    else:
        _gemm_serial_chunked(g, kcs)
    fpenv.leave(old)


@njit(cache=True, inline="always")
def _serial(g, ap, kcs, pack_a):
    cf, ldc, M, K, N = g[5:10]
    bp = aligned_empty(_bp_size(N, kcs))
    tile = aligned_empty(MR * NR)
    _block_aligned(g, ap, np.int64(0), _cdiv(M, MR), np.int64(0), N, kcs, bp, tile,
                   _col_shift(cf, ldc, M, N), pack_a, np.bool_(True))


@njit(cache=True)
def _bp_size(N, kcs):
    """Floats of packed B for one thread: a chunk of its widest column block."""
    return kcs * min(NCP, _cdiv(N, NR)) * NR


@njit(cache=True)
def _worker(g, ap, counter, by_cols, cols, rows, width, kcs, shift, ring, packed, work, ftz):
    """One thread's share: take work units from counter until none is left (unit u
    is row unit u // cols, column unit u % cols; see work_units).
    work: this thread's scratch (packed B, edge tile, ring A); packed: A
    is packed already (else row units pack their own panels); ftz: see
    gemm_serial_entry."""
    M, K, N = g[7:10]
    npan = _cdiv(M, MR)
    nj = _cdiv(N, NR)
    nbp = _bp_size(width, kcs)
    bp = work[:nbp]
    tile = work[nbp:nbp + MR * NR]
    if ring:
        ap = work[nbp + MR * NR:nbp + MR * NR + MR * kcs]
    old = fpenv.enter(ftz)
    while True:
        u = atomic_next(counter)
        if u >= cols * rows:
            break
        r, cu = u // cols, u % cols
        p0 = unit_start(r, rows, npan)
        p1 = unit_start(r + 1, rows, npan)
        if by_cols:
            # unit boundaries on aligned columns: column unit 0 takes the shift
            j0 = 0 if cu == 0 else min(N, shift + unit_start(cu, cols, nj) * NR)
            j1 = min(N, shift + unit_start(cu + 1, cols, nj) * NR)
            if j0 < j1:
                _block_aligned(g, ap, p0, p1, j0, j1, kcs, bp, tile,
                               shift if cu == 0 else np.int64(0), np.bool_(False), np.bool_(False))
        else:
            # a shared A buffer (ring False) holds each panel at its own place
            _block_aligned(g, ap, p0, p1, np.int64(0), N, kcs, bp, tile, shift,
                           not packed, ring)
    fpenv.leave(old)


@njit(cache=True, parallel=True)
def gemm_parallel(g, nt, ap, kcs, ftz):
    """The product on nt threads.  ap, kcs: A packed by pack_a, or ap empty
    (then A is packed here, kcs ignored); ftz: see gemm_serial_entry."""
    af, lda, bf, ldb, cf, ldc, M, K, N = g[1:10]
    npan = _cdiv(M, MR)
    by_cols, cols, rows, width = work_units(M, N, nt, K)
    packed = ap.size > 0
    if not packed:
        kcs = chunk(K, width) if by_cols else chunk_whole(K, N)
    ring = not packed and not by_cols and _ap_size(M, K, N, kcs) < npan * MR * K
    if not packed:
        ap = aligned_empty(0 if ring else npan * MR * K)
    shift = _col_shift(cf, ldc, M, N)
    counter = np.zeros(16, np.int64)
    # per-thread scratch, allocated here (not in the threads: their malloc
    # arenas would map and fault in fresh pages at every call), 64-byte rows
    nwork = _cdiv(_bp_size(width, kcs) + MR * NR + MR * kcs, 16) * 16
    work = aligned_empty(nt * nwork)
    if by_cols and not packed:
        # every column unit needs all of A: pack it first
        pp = _cdiv(npan, nt)
        for t in prange(nt):
            pack_a_panels(af, lda, M, K, ap, min(npan, t * pp), min(npan, (t + 1) * pp), kcs)
    for t in prange(nt):
        _worker(g, ap, counter, by_cols, cols, rows, width, kcs, shift, ring, packed,
                work[t * nwork:(t + 1) * nwork], ftz)
