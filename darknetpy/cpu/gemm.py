"""Convolution GEMM kernels for the CPU backend.

``gemm_exact(a, b, c)`` writes ``c = a @ b`` for float32 ``a`` (M, K),
``b`` (K, N) and ``c`` (M, N) -- each row contiguous, the rows any stride
apart (column blocks of a wider matrix) -- with exactly the arithmetic of C
Darknet's ``gemm_nn`` (ALPHA = 1, C zero-filled first): every output starts
from +0.0f and adds ``a[i, k] * b[k, j]`` for k = 0, 1, ..., K-1 in that
order, the product and the sum each rounded to float32 -- no fused
multiply-add, no reassociation, no wider intermediate.  The result is
bit-identical to Darknet's for every input, including signed zeros,
subnormals, infs and NaNs (NaN payloads aside: like C, only NaN-ness is
specified).  With ``ftz=True`` every thread runs the product with MXCSR's
flush-to-zero and denormals-are-zero set, as the stock -Ofast build does
(its ``crtfastmath.o`` sets them); without, as the -O2 build.

``gemm_fast(a, b, c)`` computes the same product, not exactly: the same
blocked kernel with one ``vfmadd231ps`` (one rounding) per multiply-add.  It
is a separate compiled specialisation (``fma`` True instead of None), so the
exact entry points' machine code contains no FMA.  It replaced
numpy.matmul: on the yolov2-608 shapes (bench/gemm.py, 1 thread, thread
clock, numpy's OpenBLAS with the SkylakeX kernels it picks here by default;
OPENBLAS_CORETYPE=Haswell measures the same) it runs at 1.01-1.12x
OpenBLAS's speed on the layers with K >= 1024 and 1.18-2.5x on the others
(K = 27: 84 vs 34 GFLOP/s); gemm_exact at 1.00-1.07x and 1.17-2.4x.

Design of the exact kernel (BLIS-like, vectorised over output pixels j):

* Micro-kernel: an ``MR x NR`` (8 x 48) tile of C lives in 24 512-bit
  registers for a whole chunk of k.  Per k it loads ``NV`` = 3 vectors of
  the packed B row and, for each of the 8 rows, multiplies them by the
  broadcast A element (``vmulps`` with an embedded ``{1to16}`` broadcast)
  and adds each product to its accumulator (``vaddps``): separate multiply
  and add, each rounded -- exactly Darknet's ``C += A_PART * B``.  On x86-64
  with AVX-512F the k loop is inline assembly, so no FMA can be selected;
  elsewhere it is LLVM vector IR whose ``fmul``/``fadd`` carry no fast-math
  flags (LLVM may not contract them either).
* k is split into chunks (``KC`` or more) only by storing the accumulator
  tile to C after one chunk and loading it back before the next, so each
  output sees the same sequence of roundings as the plain loop.  The first
  chunk starts from +0.0f.
* Packing: B is packed per chunk and block of ``NC`` columns into
  micro-panels of ``NR`` columns, k-major; A per chunk into panels of ``MR``
  rows, k-major.  Neither has a pass of its own: the kernels of the first
  row panel read B from its rows and store the packed copy as they go, and
  those of the first micro-panel do the same for A.  Software prefetch runs
  ahead of the rows these kernels read, of the next A panel and of the next
  C tiles.  When C has a single column block the packed A slices share one
  small buffer.  ``pack_a(a)`` packs A ahead, once for many calls (a
  layer's weights): measured 1-3% faster per call (1 thread, 6 yolov2
  shapes, one of them 2% slower within the noise).
* Edge tiles (M or N not a multiple of the tile) are computed into a small
  tile buffer (zero-padded A rows, zero-padded B columns) and only the valid
  part is copied to C.  The last 1-8 columns past whole vectors go instead to
  column kernels vectorised over a panel's MR rows (``_make_col_tail``), every
  8 panels while their packed A is in L2: a 16-wide vector for one column
  costs 16 times its work (Winograd's 49-tile products).  A large C gets its tiles aligned to 64 bytes (a
  narrow first strip of columns is done apart) and its final values written
  with non-temporal stores.
* With ``numba.get_num_threads()`` > 1 the work is cut into units of output
  columns (or, for few columns, of output row panels) -- never of k -- which
  the threads take one at a time from a shared counter.

Why about 100 GFLOP/s per thread, measured on this host (AMD EPYC, family
25 model 17 = Zen 4 under KVM; no perf counters in the VM, llvm-mca 14 has
no Zen 4 model, so: timed asm loops and timed kernels):

* Clock under AVX-512 load: 3.6 GHz (a chain of dependent integer adds).
  Independent zmm ops per cycle: vfmadd231ps 1.00, vmulps 1.00, vaddps 0.99,
  vmulps + vaddps interleaved 1.98 (one of each), vmulps with a {1to16}
  memory broadcast 1.00; ymm vmulps + vaddps 4.0.  512-bit ops are split
  over the 256-bit pipes: the peak is 32 flop/cycle = 115 GFLOP/s for FMA
  and for separate multiply + add alike (not 2 FMA/cycle as on Zen 5).
* Per k the 8 x 48 kernel issues 3 B loads (vmovups), 24 vmulps with
  embedded broadcast loads, 24 vaddps, 4 prefetches and 4 loop
  instructions: 59 instructions, 27 loads in the 24 cycles the single
  512-bit multiply pipe needs -- multiply-bound, far from the load ports
  (3/cycle) and the 6-wide dispatch.
* The kernel alone (A and B packed, in L1/L2, kc = 256, 8 micro-panels):
  114 GFLOP/s exact, 115 with FMA -- 99% of peak.  Other tiles measure the
  same (12x32 114, 6x64 114, 14x32 114, 4x96 114; at kc = 27: 103-106),
  so tile shape, register broadcasts or unrolling cannot gain; 8x16 alone
  is 94 (8 accumulators cannot hide the add latency).
* Whole layers reach 97-107 GFLOP/s (small K: 80-95): the rest is the
  driver -- B read from memory while packing, C loaded and stored per k
  chunk, edges -- and, on this shared machine, caches lost to other
  processes.  OpenBLAS's SkylakeX sgemm reaches 96-103 on the same shapes.
  So one thread needs at least 62.9 GFLOP / 115 GFLOP/s = 547 ms for
  yolov2-608 with any exact (or FMA) direct GEMM here.
"""

import ctypes

import numpy as np
import numba
from numba import njit, prange, types
from numba.extending import intrinsic
from numba.core import cgutils
from llvmlite import ir
import llvmlite.binding as llb

from . import fpenv

__all__ = ["gemm_exact", "gemm_fast", "gemm_reference", "pack_a", "PackedA", "MR", "NR", "KC"]

# ---------------------------------------------------------------------------
# Parameters (tuned on AMD Zen 4: 32 KiB L1d, 1 MiB L2 per core).
MR = 8                  # rows of C per micro-tile (A elements broadcast per k)
NV = 3                  # 16-float vectors per micro-tile row
VW = 16                 # floats per vector (512 bits)
NR = NV * VW            # columns of C per micro-tile
KC = 256                # k chunk: rows of B per packed block (at least)
NCP = 8                 # micro-panels per packed B block (NC = NCP * NR columns)
B_BLOCK_BYTES = 384 * 1024      # packed B block budget (L2); small N gets a longer k chunk
WHOLE_B_BYTES = 1536 * 1024     # the same for a whole product whose B is one block (_chunk_whole)
PF_CYCLES = 10000       # prefetch C tiles and B micro-panels about this many cycles ahead
BPK = 8                 # packed kernel: prefetch B rows this many k steps ahead
PFINS = "prefetcht1"    # prefetch for the B rows a fused kernel will pack next
NT_STORES = True        # non-temporal stores for the final values of a large C ...
NT_MIN_BYTES = 8 << 20  # ... of at least this size
SHIFT_MIN_N = 2048      # align C tiles to 64 bytes (a narrow first strip) from this N
UNITS_PER_THREAD = 4    # work units per thread, taken dynamically ...
ROW_UNIT_MIN = 6        # ... but row units of at least this many panels when possible
COL_SPLIT_MAX_A = 8 << 20   # split few columns among threads if A is at most this big
PAR_MIN_FLOPS = 4e6     # below this many flops a call runs on one thread
TAIL_COLS = 8           # at most this many columns past whole vectors: column kernel ...
TAIL_PANELS = 8         # ... run after every this many row panels (their A still in L2)


def _use_asm():
    """Inline AVX-512 assembly iff numba compiles for x86-64 with avx512f.

    Decided from the same target features numba puts in its cache key
    (NUMBA_CPU_FEATURES, else the host's), so a cached kernel always matches.
    """
    try:
        llb.initialize_native_asmparser()
        triple = llb.get_process_triple()
        feats = numba.config.CPU_FEATURES
        if feats is None:
            feats = llb.get_host_cpu_features().flatten()
    except Exception:  # pragma: no cover
        return False
    return triple.startswith("x86_64") and "+avx512f" in feats.split(",")


USE_ASM = _use_asm()

_f32 = ir.FloatType()
_i64 = ir.IntType(64)
_i32 = ir.IntType(32)
_vec = ir.VectorType(_f32, VW)
_vptr = _vec.as_pointer()


def _c64(x):
    return ir.Constant(_i64, x)


def _data_ptr(context, builder, ty, val, off):
    ptr = context.make_array(ty)(context, builder, val).data
    return builder.gep(ptr, [off])


def _broadcast(builder, s):
    ins = builder.insert_element(ir.Constant(_vec, ir.Undefined), s,
                                 ir.Constant(_i32, 0))
    return builder.shuffle_vector(ins, ir.Constant(_vec, ir.Undefined),
                                  ir.Constant(ir.VectorType(_i32, VW), [0] * VW))


def _asm_loop(builder, acc, a_ptr, bp_ptr, kc, mr, nv, apf_bytes, bsrc=None, ldb_bytes=None,
              bpf_bytes=None, asrc=None, lda_bytes=None, fma=False):
    """k loop as inline asm: acc[r][v] += b[k][v] * bcast(a[k*mr + r]).

    Each step is one vmulps (B vector times the broadcast A element, the
    broadcast embedded in the memory operand) and one vaddps into the
    accumulator: two roundings, in Darknet's order.  ``apf_bytes`` is the
    distance to the A panel used next (prefetched).  If ``bsrc`` is given
    the B rows are read from there (row stride ``ldb_bytes``) and stored to
    the packed panel ``bp_ptr``, and the B rows ``bpf_bytes`` further on
    (those of a micro-panel packed soon) are prefetched.  If ``asrc`` is
    given the A elements are first copied from the rows of A there (row
    stride ``lda_bytes``, mr == 8) into the packed panel ``a_ptr``.
    With ``fma`` (gemm_fast only) one vfmadd231ps replaces each pair.
    """
    nacc = mr * nv
    ptr_t = a_ptr.type
    # tied operands (outputs 0..nout-1, inputs nout..2*nout-1), then inputs
    tied = [(t, v) for t, v in zip([_vec] * nacc, [acc[r][v] for r in range(mr)
                                                   for v in range(nv)])]
    idx = {}

    def add_tied(name, ty, val):
        idx[name] = len(tied)
        tied.append((ty, val))

    add_tied("a", ptr_t, a_ptr)
    add_tied("b", ptr_t, bp_ptr)
    add_tied("cnt", _i64, kc)
    if bsrc is not None:
        add_tied("src", ptr_t, bsrc)
    if asrc is not None:
        assert mr == 8
        add_tied("s0", ptr_t, asrc)
        add_tied("s3", ptr_t, builder.gep(asrc, [builder.mul(builder.sdiv(lda_bytes, _c64(4)),
                                                             _c64(3))]))
        add_tied("s6", ptr_t, builder.gep(asrc, [builder.mul(builder.sdiv(lda_bytes, _c64(4)),
                                                             _c64(6))]))
    nout = len(tied)
    untied = []

    def add_in(name, val):
        idx[name] = 2 * nout + len(untied)
        untied.append(val)

    add_in("apf", apf_bytes)
    if bsrc is not None:
        add_in("ldb", ldb_bytes)
        add_in("bpf", bpf_bytes)
    if asrc is not None:
        add_in("lda", lda_bytes)
    o = {k: "$%d" % v for k, v in idx.items()}

    bregs = ["%%zmm%d" % (31 - v) for v in range(nv)]
    ntmp = min(4, 32 - nacc - nv)
    assert ntmp >= 1
    tregs = ["%%zmm%d" % (31 - nv - t) for t in range(ntmp)]
    lines = ["test %s, %s" % (o["cnt"], o["cnt"]), "jle 2f", ".p2align 5", "1:"]
    if asrc is not None:
        # rows 0,1,2,4 from s0; 3,5,7 from s3; 6 from s6
        src = {0: "(%s)" % o["s0"], 1: "(%s,%s,1)" % (o["s0"], o["lda"]),
               2: "(%s,%s,2)" % (o["s0"], o["lda"]), 4: "(%s,%s,4)" % (o["s0"], o["lda"]),
               3: "(%s)" % o["s3"], 5: "(%s,%s,2)" % (o["s3"], o["lda"]),
               7: "(%s,%s,4)" % (o["s3"], o["lda"]), 6: "(%s)" % o["s6"]}
        for r in range(8):
            lines.append("movl %s, %%eax" % src[r])
            lines.append("movl %%eax, %d(%s)" % (4 * r, o["a"]))
    if bsrc is not None:
        for v in range(nv):
            lines.append("vmovups %d(%s), %s" % (64 * v, o["src"], bregs[v]))
        for v in range(nv + 1):
            lines.append("%s %d(%s,%s)" % (PFINS, min(64 * v, 64 * nv - 1), o["src"], o["bpf"]))
        for v in range(nv):
            lines.append("vmovups %s, %d(%s)" % (bregs[v], 64 * v, o["b"]))
    else:
        for v in range(nv):
            lines.append("vmovups %d(%s), %s" % (64 * v, o["b"], bregs[v]))
        if BPK:
            for v in range(nv):
                lines.append("prefetcht0 %d(%s)" % (64 * v + 4 * VW * nv * BPK, o["b"]))
    lines.append("prefetcht0 (%s,%s)" % (o["a"], o["apf"]))
    t = 0
    for r in range(mr):
        for v in range(nv):
            j = r * nv + v
            if fma:
                lines.append("vfmadd231ps %d(%s){1to16}, %s, $%d" % (4 * r, o["a"], bregs[v], j))
                continue
            lines.append("vmulps %d(%s){1to16}, %s, %s" % (4 * r, o["a"], bregs[v], tregs[t]))
            lines.append("vaddps %s, $%d, $%d" % (tregs[t], j, j))
            t = (t + 1) % ntmp
    lines += ["add $$%d, %s" % (4 * mr, o["a"]), "add $$%d, %s" % (4 * VW * nv, o["b"])]
    if bsrc is not None:
        lines.append("add %s, %s" % (o["ldb"], o["src"]))
    if asrc is not None:
        lines += ["add $$4, %s" % o[n] for n in ("s0", "s3", "s6")]
    lines += ["dec %s" % o["cnt"], "jnz 1b", "2:"]
    asm = "\n\t".join(lines)

    out_types = [ty for ty, _ in tied]
    cons = ["=v"] * nacc + ["=&r"] * (nout - nacc) + [str(i) for i in range(nout)]
    cons += ["r"] * len(untied)
    clob = ["~{zmm%d}" % (31 - i) for i in range(nv + ntmp)] + ["~{flags}", "~{memory}"]
    if asrc is not None:
        clob.append("~{eax}")
    fty = ir.FunctionType(ir.LiteralStructType(out_types), out_types + [_i64] * len(untied))
    res = builder.asm(fty, asm, ",".join(cons + clob), [v for _, v in tied] + untied,
                      side_effect=True)
    return [[builder.extract_value(res, r * nv + v) for v in range(nv)] for r in range(mr)]


def _ir_loop(builder, acc, a_ptr, bp_ptr, kc, mr, nv, bsrc=None, ldb=None, asrc=None, lda=None,
             fma=False):
    """Portable k loop in LLVM IR (no fast-math flags: fmul/fadd exactly).

    Same contract as _asm_loop (ldb, lda in elements)."""
    fused = bsrc is not None
    pre = builder.block
    fn = builder.function
    hdr = fn.append_basic_block("k_hdr")
    body = fn.append_basic_block("k_body")
    done = fn.append_basic_block("k_done")
    builder.branch(hdr)
    builder.position_at_end(hdr)
    k = builder.phi(_i64)
    k.add_incoming(_c64(0), pre)
    phis = [[builder.phi(_vec) for _ in range(nv)] for _ in range(mr)]
    for r in range(mr):
        for v in range(nv):
            phis[r][v].add_incoming(acc[r][v], pre)
    builder.cbranch(builder.icmp_signed("<", k, kc), body, done)
    builder.position_at_end(body)
    boff = builder.mul(k, _c64(nv * VW))
    bvec = []
    for v in range(nv):
        dst = builder.bitcast(builder.gep(bp_ptr, [builder.add(boff, _c64(VW * v))]), _vptr)
        if fused:
            src = builder.gep(bsrc, [builder.add(builder.mul(k, ldb), _c64(VW * v))])
            x = builder.load(builder.bitcast(src, _vptr), align=4)
            builder.store(x, dst, align=4)
        else:
            x = builder.load(dst, align=4)
        bvec.append(x)
    aoff = builder.mul(k, _c64(mr))
    new = []
    for r in range(mr):
        dst = builder.gep(a_ptr, [builder.add(aoff, _c64(r))])
        if asrc is not None:
            s = builder.load(builder.gep(asrc, [builder.add(builder.mul(lda, _c64(r)), k)]),
                             align=4)
            builder.store(s, dst, align=4)
        else:
            s = builder.load(dst, align=4)
        bc = _broadcast(builder, s)
        if fma:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
                _vec, [_vec] * 3), "llvm.fma.v%df32" % VW)
            new.append([builder.call(fn, [bvec[v], bc, phis[r][v]]) for v in range(nv)])
        else:
            new.append([builder.fadd(phis[r][v], builder.fmul(bvec[v], bc)) for v in range(nv)])
    k1 = builder.add(k, _c64(1))
    end = builder.block
    k.add_incoming(k1, end)
    for r in range(mr):
        for v in range(nv):
            phis[r][v].add_incoming(new[r][v], end)
    builder.branch(hdr)
    builder.position_at_end(done)
    return phis


def _make_kernel(mr, nv, fused, use_asm, fused_a=False):
    """Micro-kernel intrinsic for an mr x (16*nv) tile of C.

    kern(fma, kc, ap, ap_off, apf, bp, bp_off, c, c_off, ldc, flags, b, b_off, ldb, bpf,
         a, a_off, lda)
      acc = +0.0 (flags & 1) or the tile of C at c[c_off + r*ldc + j];
      for k < kc: acc[r, j] = acc[r, j] + ap[ap_off + k*mr + r] * B[k, j]
      store acc to C (non-temporal stores if flags & 2: the tile must then
      be 64-byte aligned).
    B[k, j] is bp[bp_off + k*16*nv + j]; if ``fused`` it is read from
    b[b_off + k*ldb + j] instead and also written to bp at that place, and
    b[b_off + bpf + k*ldb + j] is prefetched.  ap[ap_off + apf + ...] (the
    next A panel) is prefetched.  If ``fused_a`` the A elements are read
    from a[a_off + r*lda + k] and also written to ap[ap_off + k*mr + r].
    ``fma`` is None for the exact kernel; any other type (True) compiles a
    separate fused multiply-add kernel (gemm_fast), so the exact callers'
    machine code never contains one.
    """

    @intrinsic
    def kern(typingctx, fma, kc, ap, ap_off, apf, bp, bp_off, c, c_off, ldc, first,
             b, b_off, ldb, bpf, a, a_off, lda):
        sig = types.void(fma, kc, ap, ap_off, apf, bp, bp_off, c, c_off, ldc, first,
                         b, b_off, ldb, bpf, a, a_off, lda)
        use_fma = not isinstance(fma, (types.NoneType, types.Omitted))

        def codegen(context, builder, signature, args):
            (kc_v, ap_v, apo, apf_v, bp_v, bpo, c_v, co, ldc_v, first_v,
             b_v, bo, ldb_v, bpf_v, a_v, ao, lda_v) = args[1:]
            st = signature.args[1:]
            a_ptr = _data_ptr(context, builder, st[1], ap_v, apo)
            bp_ptr = _data_ptr(context, builder, st[4], bp_v, bpo)
            c_ptr = _data_ptr(context, builder, st[6], c_v, co)

            def cvec(r, v):
                off = builder.add(builder.mul(ldc_v, _c64(r)), _c64(VW * v))
                return builder.bitcast(builder.gep(c_ptr, [off]), _vptr)

            flags = context.cast(builder, first_v, st[9], types.int64)
            nt_v = builder.icmp_unsigned("!=", builder.and_(flags, _c64(2)), _c64(0))
            first_v = builder.icmp_unsigned("!=", builder.and_(flags, _c64(1)), _c64(0))
            with builder.if_else(first_v) as (then, otherwise):
                with then:
                    bb_then = builder.block
                with otherwise:
                    loaded = [[builder.load(cvec(r, v), align=4) for v in range(nv)]
                              for r in range(mr)]
                    bb_else = builder.block
            zero = ir.Constant(_vec, [0.0] * VW)   # +0.0f
            acc = []
            for r in range(mr):
                row = []
                for v in range(nv):
                    phi = builder.phi(_vec)
                    phi.add_incoming(zero, bb_then)
                    phi.add_incoming(loaded[r][v], bb_else)
                    row.append(phi)
                acc.append(row)
            bsrc = ldb_x = None
            if fused:
                bsrc = _data_ptr(context, builder, st[10], b_v, bo)
                ldb_x = ldb_v
            asrc = None
            if fused_a:
                asrc = _data_ptr(context, builder, st[14], a_v, ao)
            if use_asm:
                if fused:
                    ldb_x = builder.mul(ldb_v, _c64(4))
                acc = _asm_loop(builder, acc, a_ptr, bp_ptr, kc_v, mr, nv,
                                builder.mul(apf_v, _c64(4)), bsrc, ldb_x,
                                builder.mul(bpf_v, _c64(4)), asrc,
                                builder.mul(lda_v, _c64(4)), use_fma)
            else:
                acc = _ir_loop(builder, acc, a_ptr, bp_ptr, kc_v, mr, nv, bsrc, ldb_x,
                               asrc, lda_v, use_fma)
            with builder.if_else(nt_v) as (then, otherwise):
                with then:
                    # non-temporal stores, C tile 64-byte aligned (checked by caller)
                    md = builder.module.add_metadata([ir.Constant(_i32, 1)])
                    for r in range(mr):
                        for v in range(nv):
                            st_ = builder.store(acc[r][v], cvec(r, v), align=64)
                            st_.set_metadata("nontemporal", md)
                with otherwise:
                    for r in range(mr):
                        for v in range(nv):
                            builder.store(acc[r][v], cvec(r, v), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return kern


def _make_pack_a(mr):
    """pack(a, a_off, lda, ap, ap_off): transpose an mr x 16 block of A.

    Reads rows a[a_off + r*lda : +16] (r < mr) and writes them k-major:
    ap[ap_off + kk*mr + r] = a[a_off + r*lda + kk].
    """

    @intrinsic
    def pack(typingctx, a, a_off, lda, ap, ap_off):
        sig = types.void(a, a_off, lda, ap, ap_off)

        def codegen(context, builder, signature, args):
            a_v, ao, lda_v, ap_v, apo = args
            st = signature.args
            src = _data_ptr(context, builder, st[0], a_v, ao)
            dst = _data_ptr(context, builder, st[3], ap_v, apo)
            rows = []
            for r in range(mr):
                p = builder.gep(src, [builder.mul(lda_v, _c64(r))])
                rows.append(builder.load(builder.bitcast(p, _vptr), align=4))
            undef = ir.Constant(_vec, ir.Undefined)
            for q in range(mr):
                out = None
                for r in range(mr):
                    lanes = [l for l in range(VW) if (VW * q + l) % mr == r]
                    if not lanes:
                        continue
                    if out is None:
                        mask = [((VW * q + l) // mr) if (VW * q + l) % mr == r else 0
                                for l in range(VW)]
                        out = builder.shuffle_vector(rows[r], undef,
                                                     ir.Constant(ir.VectorType(_i32, VW), mask))
                    else:
                        mask = [(VW + (VW * q + l) // mr) if (VW * q + l) % mr == r else l
                                for l in range(VW)]
                        out = builder.shuffle_vector(out, rows[r],
                                                     ir.Constant(ir.VectorType(_i32, VW), mask))
                p = builder.gep(dst, [_c64(VW * q)])
                builder.store(out, builder.bitcast(p, _vptr), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return pack


def _make_col_tail(panels, cols):
    """Column kernel: `cols` adjacent columns of C for `panels` row panels, vectorised
    over the MR rows of a panel (columns left over past whole 16-float vectors would
    otherwise cost a whole vector of columns: up to 16x their work).

    kern(fma, kc, ap, ap_off, ap_step, b, b_off, ldb, t, first)
      acc[c, p] = +0.0 (first) or t[(c*panels + p)*MR : +MR];
      for k < kc: acc[c, p][r] = acc[c, p][r] + ap[ap_off + p*ap_step + k*MR + r]
                                              * b[b_off + k*ldb + c]
      store acc to t.
    The same sequence of roundings for each output as the micro-kernel: plain fmul
    and fadd, or llvm.fma when fma is not None (gemm_fast).
    """
    vec = ir.VectorType(_f32, MR)
    vptr = vec.as_pointer()
    lanes = ir.Constant(ir.VectorType(_i32, MR), [0] * MR)

    @intrinsic
    def kern(typingctx, fma, kc, ap, ap_off, ap_step, b, b_off, ldb, t, first):
        sig = types.void(fma, kc, ap, ap_off, ap_step, b, b_off, ldb, t, first)
        use_fma = not isinstance(fma, (types.NoneType, types.Omitted))

        def codegen(context, builder, signature, args):
            kc_v, ap_v, apo, step, b_v, bo, ldb_v, t_v, first_v = args[1:]
            st = signature.args[1:]
            a_ptr = _data_ptr(context, builder, st[1], ap_v, apo)
            b_ptr = _data_ptr(context, builder, st[4], b_v, bo)
            t_ptr = _data_ptr(context, builder, st[7], t_v, _c64(0))
            slots = [(c, p) for c in range(cols) for p in range(panels)]
            tvec = [builder.bitcast(builder.gep(t_ptr, [_c64(MR * i)]), vptr) for i in range(len(slots))]
            zero = ir.Constant(vec, [0.0] * MR)
            pre = builder.block
            with builder.if_then(builder.not_(context.cast(builder, first_v, st[8], types.boolean))):
                loaded = [builder.load(v, align=4) for v in tvec]
                bb_load = builder.block
            entry = builder.block
            fn = builder.function
            hdr = fn.append_basic_block("t_hdr")
            body = fn.append_basic_block("t_body")
            done = fn.append_basic_block("t_done")
            acc = []
            for i in range(len(slots)):
                phi = builder.phi(vec)
                phi.add_incoming(zero, pre)
                phi.add_incoming(loaded[i], bb_load)
                acc.append(phi)
            builder.branch(hdr)
            builder.position_at_end(hdr)
            k = builder.phi(_i64)
            k.add_incoming(_c64(0), entry)
            phis = [builder.phi(vec) for _ in slots]
            for i in range(len(slots)):
                phis[i].add_incoming(acc[i], entry)
            builder.cbranch(builder.icmp_signed("<", k, kc_v), body, done)
            builder.position_at_end(body)
            brow = builder.gep(b_ptr, [builder.mul(k, ldb_v)])
            bcs = []
            for c in range(cols):
                s_ = builder.load(builder.gep(brow, [_c64(c)]), align=4)
                ins = builder.insert_element(ir.Constant(vec, ir.Undefined), s_, ir.Constant(_i32, 0))
                bcs.append(builder.shuffle_vector(ins, ir.Constant(vec, ir.Undefined), lanes))
            koff = builder.mul(k, _c64(MR))
            avs = []
            for p in range(panels):
                off = builder.add(koff, builder.mul(step, _c64(p)))
                avs.append(builder.load(builder.bitcast(builder.gep(a_ptr, [off]), vptr), align=4))
            ffn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 "llvm.fma.v%df32" % MR)
            new = []
            for i, (c, p) in enumerate(slots):
                if use_fma:
                    new.append(builder.call(ffn, [avs[p], bcs[c], phis[i]]))
                else:
                    new.append(builder.fadd(phis[i], builder.fmul(avs[p], bcs[c])))
            k.add_incoming(builder.add(k, _c64(1)), builder.block)
            for i in range(len(slots)):
                phis[i].add_incoming(new[i], builder.block)
            builder.branch(hdr)
            builder.position_at_end(done)
            for i in range(len(slots)):
                builder.store(phis[i], tvec[i], align=4)
            return context.get_dummy_value()

        return sig, codegen

    return kern


@intrinsic
def _prefetch_tile(typingctx, c, off, ldc, nrows):
    """Prefetch for writing an MR x NR tile of C at c[off], rows ldc apart
    (rows past nrows repeat the last one)."""
    sig = types.void(c, off, ldc, nrows)

    def codegen(context, builder, signature, args):
        c_v, off_v, ldc_v, nrows_v = args
        base = _data_ptr(context, builder, signature.args[0], c_v, off_v)
        i8p = ir.IntType(8).as_pointer()
        pfn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, _i32, _i32, _i32]),
            "llvm.prefetch.p0")
        last = builder.sub(nrows_v, _c64(1))
        for r in range(MR):
            rr = builder.select(builder.icmp_signed("<", _c64(r), last), _c64(r), last)
            row = builder.bitcast(builder.gep(base, [builder.mul(rr, ldc_v)]), i8p)
            for v in range(NV + 1):
                builder.call(pfn, [builder.gep(row, [_c64(min(64 * v, 64 * NV - 1))]),
                                   ir.Constant(_i32, 1), ir.Constant(_i32, 3),
                                   ir.Constant(_i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _prefetch_span(typingctx, arr, off, nbytes):
    """Prefetch (for reading, into L2) the bytes [0, nbytes) at arr[off]."""
    sig = types.void(arr, off, nbytes)

    def codegen(context, builder, signature, args):
        base = _data_ptr(context, builder, signature.args[0], args[0], args[1])
        i8p = ir.IntType(8).as_pointer()
        base = builder.bitcast(base, i8p)
        pfn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, _i32, _i32, _i32]),
            "llvm.prefetch.p0")
        with cgutils.for_range_slice(builder, _c64(0), builder.add(args[2], _c64(63)),
                                     _c64(64)) as (o, _):
            builder.call(pfn, [builder.gep(base, [o]), ir.Constant(_i32, 0),
                               ir.Constant(_i32, 2), ir.Constant(_i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _store_fence(typingctx):
    """Order earlier non-temporal stores before later stores (mfence)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


_pack_a16 = _make_pack_a(MR)
_KF = _make_kernel(MR, NV, True, USE_ASM)
_KA = _make_kernel(MR, NV, False, USE_ASM, fused_a=(MR == 8))
_K1 = _make_kernel(MR, 1, False, USE_ASM)
_K2 = _make_kernel(MR, 2, False, USE_ASM) if NV >= 2 else _K1
_K3 = _make_kernel(MR, 3, False, USE_ASM) if NV >= 3 else _K1
_K4 = _make_kernel(MR, 4, False, USE_ASM) if NV >= 4 else _K1
# column kernels (panels x columns): 8 accumulators, and one panel for the last panels
_T81, _T42, _T24 = _make_col_tail(8, 1), _make_col_tail(4, 2), _make_col_tail(2, 4)
_T11, _T12, _T14 = _make_col_tail(1, 1), _make_col_tail(1, 2), _make_col_tail(1, 4)


@njit(cache=True, inline="always")
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(cache=True)
def _aligned_empty(n):
    raw = np.empty(n + 16, np.float32)
    off = ((-raw.ctypes.data) % 64) // 4
    return raw[off:off + n]


@njit(cache=True, inline="always")
def _kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda):
    """Dispatch: fused 1 = pack B, 2 = pack A (both only with nv == NV)."""
    if fused == 1:
        _KF(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)
    elif fused == 2:
        _KA(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)
    elif nv == 1:
        _K1(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)
    elif nv == 2:
        _K2(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)
    elif nv == 3:
        _K3(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)
    else:
        _K4(fma, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
            a, a_off, lda)


@njit(cache=True, inline="always")
def _col_tail(fma, panels, cols, kc, ap, aoff, step, b, boff, ldb, t, first):
    """Dispatch: panels 1 or 8 // cols, cols 1, 2 or 4."""
    if panels == 1:
        if cols == 4:
            _T14(fma, kc, ap, aoff, step, b, boff, ldb, t, first)
        elif cols == 2:
            _T12(fma, kc, ap, aoff, step, b, boff, ldb, t, first)
        else:
            _T11(fma, kc, ap, aoff, step, b, boff, ldb, t, first)
    elif cols == 4:
        _T24(fma, kc, ap, aoff, step, b, boff, ldb, t, first)
    elif cols == 2:
        _T42(fma, kc, ap, aoff, step, b, boff, ldb, t, first)
    else:
        _T81(fma, kc, ap, aoff, step, b, boff, ldb, t, first)


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
            _col_tail(fma, n, cols, kc, ap, pc * Mp + p * kc * MR, kc * MR, bf, pc * ldb + j, ldb, t, first)
            for c in range(cols):
                for r in range(rows):
                    cf[(i0 + r) * ldc + j + c] = t[c * n * MR + r]
            p += n
        j += cols


@njit(cache=True)
def _chunk(K, N):
    """k chunk length: a multiple of 16, sized so a packed B block fits in L2."""
    return _chunk_within(K, N, B_BLOCK_BYTES)


@njit(cache=True)
def _chunk_whole(K, N):
    """k chunk of a whole product (one thread, or threads split by rows) whose B is a
    single column block (N <= NC: the layers at 19x19 and 13x13): up to four times
    _chunk's. B then comes from L3, but each C tile is read and written once a chunk,
    and fewer chunks measured 2-8% faster at 1 thread and up to 20% at 2 (1x1 layers).
    (Not for column blocks a thread at a time: at 2 threads those lost.)"""
    if N > NCP * NR:
        return _chunk(K, N)
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
            _pack_a16(af, i0 * lda + pc + k0, lda, ap, base + k0 * MR)
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
def _pack_a_panels(af, lda, M, K, ap, p0, p1, kcs):
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
def _tail_width(n, ring):
    """Columns of a block of n that go to the column kernels: those past whole vectors,
    if at most TAIL_COLS; none with the ring (the kernels read the panels' packed A
    after their tiles)."""
    wt = n % NR % VW
    return 0 if ring or wt > TAIL_COLS else wt


@njit(cache=True)
def _gemm_block(g, ap, p0, p1, j0, j1, kcs, bp, tile, nt_ok, pack_a, ring):
    """C[p0*MR:p1*MR, j0:j1] = A @ B (acc: += A @ B, each output's sum going on from
    C's value) for A packed by _pack_a_panels.

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
    wt = _tail_width(j1 - j0, ring)
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
                    _prefetch_tile(cf, p2 * MR * ldc + jc + mp2 * NR, ldc, min(MR, M - p2 * MR))
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
                            _prefetch_span(af, row * lda + pc, 4 * kc)
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
                            bp[d:d + w] = bf[src:src + w]
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
                    _kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, cf, coff, ldc,
                            flags, bf, pc * ldb + jb, ldb, bpf, af, i0 * lda + pc, lda)
                elif w > 0:
                    # edge tile: through the tile buffer
                    ldt = nv * VW
                    if not first:
                        for r in range(h):
                            for jj in range(w):
                                tile[r * ldt + jj] = cf[(i0 + r) * ldc + jb + jj]
                    _kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, tile, i0 - i0, ldt,
                            flags, bf, pc * ldb + jb, ldb, bpf, af, i0 * lda + pc, lda)
                    for r in range(h):
                        for jj in range(w):
                            cf[(i0 + r) * ldc + jb + jj] = tile[r * ldt + jj]
                if tail and mp == nmp - 1 and ((p - p0) % TAIL_PANELS == TAIL_PANELS - 1 or p == p1 - 1):
                    # the tail columns of the last few panels, whose A is still in cache
                    pg = p - (p - p0) % TAIL_PANELS
                    _tail_columns(g, ap, pg, p + 1, j1 - tail, j1, pc, kc, Mp, first, tile)
    if nt_ok:
        _store_fence()


@njit(cache=True)
def _split(M, N, nt, K):
    """Work units for nt threads: (by_cols, size, count).

    By columns (size: columns, a multiple of NR) when there are enough
    micro-panels, else by row panels (size: panels).  About UNITS_PER_THREAD
    units per thread, taken dynamically, so a thread slowed down by other
    work on its core takes fewer.
    """
    npan = _cdiv(M, MR)
    nj = _cdiv(N, NR)
    target = nt * UNITS_PER_THREAD
    # by columns every thread reads all of (packed) A: fine while A is small
    if nj >= 2 * target or nj >= npan or (nj >= 2 * nt and M * K * 4 <= COL_SPLIT_MAX_A):
        per = _cdiv(nj, target) * NR
        return True, per, _cdiv(N, per)
    # each row unit packs B again: give it ROW_UNIT_MIN panels or more if
    # there are enough, with a whole number of units per thread
    nunits = min(target, npan // ROW_UNIT_MIN) // nt * nt
    per = _cdiv(npan, max(nt, nunits))
    return False, per, _cdiv(npan, per)


@intrinsic
def _atomic_next(typingctx, counter):
    """Atomically counter[0] += 1; returns the old value."""
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        ptr = _data_ptr(context, builder, signature.args[0], args[0], _c64(0))
        return builder.atomic_rmw("add", ptr, _c64(1), "seq_cst")

    return sig, codegen


@njit(cache=True)
def _col_shift(cf, ldc, M, N):
    """Columns before the first one whose rows all start 64-byte aligned in C
    (0 when the rows do not share an alignment, or when C is small enough
    that the extra edge tiles would cost more than aligned stores gain)."""
    if ldc % VW != 0 or N < SHIFT_MIN_N or M * N * 4 < NT_MIN_BYTES:
        return 0
    return ((-cf.ctypes.data) % 64) // 4


@njit(cache=True, inline="always")
def _block_aligned(g, ap, p0, p1, j0, j1, kcs, bp, tile, shift, pack_a):
    """_gemm_block, with the columns [j0, j0 + shift) done on their own so
    that the other tiles of C are 64-byte aligned."""
    M, N = g[7], g[9]
    nt_ok = NT_STORES and M * N * 4 >= NT_MIN_BYTES
    # (np.bool_/np.int64 of a constant: not a literal type, so the calls
    # share one compiled specialisation of the callee)
    no, yes = np.bool_(False), np.bool_(True)
    if shift > 0 and j0 + shift < j1:
        _gemm_block(g, ap, p0, p1, j0, j0 + shift, kcs, bp, tile, no, pack_a, no)
        _gemm_block(g, ap, p0, p1, j0 + shift, j1, kcs, bp, tile, nt_ok, no, no)
    else:
        _gemm_block(g, ap, p0, p1, j0, j1, kcs, bp, tile, nt_ok, pack_a, yes)


@njit(cache=True)
def _ap_size(M, K, N, kcs):
    """Floats of packed A needed: one MR x kcs slice when C has a single
    column block (see _gemm_block's ring), else all of A."""
    if N <= NCP * NR:
        return MR * kcs
    return _cdiv(M, MR) * MR * K


# The thin wrappers down to _gemm_block are inlined (inline="always", compile time only):
# each function Numba compiles on its own is a module that links in, optimises and
# generates again the code of everything it calls, so each level of wrappers around
# _gemm_block cost another pass over the whole GEMM at the first compilation.
@njit(cache=True, inline="always")
def _gemm_serial(g):
    """The product on this thread.  g: (fma, af, lda, bf, ldb, cf, ldc, M, K, N, acc),
    fma None for the exact kernel, acc True to add to C (see _gemm_block)."""
    _gemm_serial_chunked(g, _chunk(g[8], g[9]))


@njit(cache=True, inline="always")
def _gemm_serial_chunked(g, kcs):
    """_gemm_serial with the k chunk given."""
    M, K, N = g[7:10]
    _serial(g, _aligned_empty(_ap_size(M, K, N, kcs)), kcs, np.bool_(True))


@njit(cache=True)
def _gemm_serial_packed(g, ap, kcs):
    """_gemm_serial with A already packed: ap, kcs from pack_a (g's af and
    lda are not read)."""
    _serial(g, ap, kcs, np.bool_(False))


@njit(cache=True)
def _gemm_serial_entry(g, ap, kcs, ftz):
    """gemm_exact/gemm_fast on the calling thread: A packed (ap, kcs from pack_a) or,
    with ap empty, packed here; ftz: with MXCSR's flush-to-zero and denormals-are-zero
    (the stock -Ofast build's), the caller's MXCSR restored after."""
    old = fpenv.enter(ftz)
    if ap.size > 0:
        _gemm_serial_packed(g, ap, kcs)
    else:
        _gemm_serial_chunked(g, kcs)
    fpenv.leave(old)


@njit(cache=True, inline="always")
def _serial(g, ap, kcs, pack_a):
    cf, ldc, M, K, N = g[5:10]
    bp = _aligned_empty(_bp_size(N, kcs))
    tile = _aligned_empty(MR * NR)
    _block_aligned(g, ap, np.int64(0), _cdiv(M, MR), np.int64(0), N, kcs, bp, tile,
                   _col_shift(cf, ldc, M, N), pack_a)


@njit(cache=True)
def _bp_size(N, kcs):
    """Floats of packed B for one thread: a chunk of its widest column block."""
    return kcs * min(NCP, _cdiv(N, NR)) * NR


@njit(cache=True)
def _worker(g, ap, counter, by_cols, per, nunits, kcs, shift, ring, packed, work, ftz):
    """One thread's share: take work units from counter until none is left.
    work: this thread's scratch (packed B, edge tile, ring A); packed: A
    is packed already (else row units pack their own panels); ftz: see
    _gemm_serial_entry."""
    M, K, N = g[7:10]
    npan = _cdiv(M, MR)
    nbp = _bp_size(per if by_cols else N, kcs)
    bp = work[:nbp]
    tile = work[nbp:nbp + MR * NR]
    if ring:
        ap = work[nbp + MR * NR:nbp + MR * NR + MR * kcs]
    old = fpenv.enter(ftz)
    while True:
        u = _atomic_next(counter)
        if u >= nunits:
            break
        if by_cols:
            # unit boundaries on aligned columns: unit 0 takes the shift
            j0 = 0 if u == 0 else min(N, shift + u * per)
            j1 = min(N, shift + (u + 1) * per)
            if j0 < j1:
                _block_aligned(g, ap, np.int64(0), npan, j0, j1, kcs, bp, tile,
                               shift if u == 0 else np.int64(0), np.bool_(False))
        else:
            p0 = u * per
            p1 = min(npan, p0 + per)
            _block_aligned(g, ap, p0, p1, np.int64(0), N, kcs, bp, tile, shift,
                           not packed)
    fpenv.leave(old)


@njit(cache=True, parallel=True)
def _gemm_parallel(g, nt, ap, kcs, ftz):
    """The product on nt threads.  ap, kcs: A packed by pack_a, or ap empty
    (then A is packed here, kcs ignored); ftz: see _gemm_serial_entry."""
    af, lda, bf, ldb, cf, ldc, M, K, N = g[1:10]
    npan = _cdiv(M, MR)
    by_cols, per, nunits = _split(M, N, nt, K)
    packed = ap.size > 0
    if not packed:
        kcs = _chunk(K, per) if by_cols else _chunk_whole(K, N)
    ring = not packed and not by_cols and _ap_size(M, K, N, kcs) < npan * MR * K
    if not packed:
        ap = _aligned_empty(0 if ring else npan * MR * K)
    shift = _col_shift(cf, ldc, M, N)
    counter = np.zeros(16, np.int64)
    # per-thread scratch, allocated here (not in the threads: their malloc
    # arenas would map and fault in fresh pages at every call), 64-byte rows
    nwork = _cdiv(_bp_size(per if by_cols else N, kcs) + MR * NR + MR * kcs, 16) * 16
    work = _aligned_empty(nt * nwork)
    if by_cols and not packed:
        # every column unit needs all of A: pack it first
        pp = _cdiv(npan, nt)
        for t in prange(nt):
            _pack_a_panels(af, lda, M, K, ap, min(npan, t * pp), min(npan, (t + 1) * pp), kcs)
    for t in prange(nt):
        _worker(g, ap, counter, by_cols, per, nunits, kcs, shift, ring, packed,
                work[t * nwork:(t + 1) * nwork], ftz)


def _num_threads():
    """numba.get_num_threads(), without its per-call lock once threads are up."""
    global _fast_get_num_threads
    if _fast_get_num_threads is None:
        n = numba.get_num_threads()
        from numba.np.ufunc import parallel as _par
        fn = getattr(_par, "_get_num_threads", None)
        if fn is not None and getattr(_par, "_is_initialized", False):
            _fast_get_num_threads = fn
        return n
    n = _fast_get_num_threads()
    return n if n > 0 else numba.get_num_threads()


_fast_get_num_threads = None
_NO_A = np.empty(0, np.float32)


class PackedA:
    """A matrix packed once for the kernels (see pack_a)."""

    __slots__ = ("ap", "kcs", "shape")

    def __init__(self, ap, kcs, shape):
        self.ap, self.kcs, self.shape = ap, kcs, shape


def pack_a(a, n=None):
    """A (M, K) packed once for many products with it -- a layer's weights:
    gemm_exact and gemm_fast accept the result in place of ``a`` and skip
    packing A (see the module doc).  n: the usual number of columns of B,
    which picks the k chunk (speed only: any chunk gives the same bits)."""
    _check_matrix("a", a)
    M, K = a.shape
    kcs = _chunk_whole(K, n if n else NCP * NR) if K else VW
    af, lda = _flat(a)
    npan = (M + MR - 1) // MR
    ap = _aligned_empty(npan * MR * K)
    if ap.size:
        _pack_a_panels(af, lda, M, K, ap, 0, npan, kcs)
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
    nt = _num_threads()
    ftz = np.bool_(ftz)
    if nt <= 1 or 2.0 * M * N * K < PAR_MIN_FLOPS:
        if packed:
            _gemm_serial_entry(g, a.ap, a.kcs, ftz)
        else:
            _gemm_serial_entry(g, _NO_A, _chunk_whole(K, N), ftz)
    elif packed:
        _gemm_parallel(g, nt, a.ap, a.kcs, ftz)
    else:
        _gemm_parallel(g, nt, _NO_A, 0, ftz)
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
