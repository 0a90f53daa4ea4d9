"""The GEMM's micro-kernels, generated as LLVM IR (or x86 inline assembly) by Numba
intrinsics: what computes the products for gemm_blocking.py's driver.

* Micro-kernel (``make_kernel``): an ``MR x NR`` (8 x 48) tile of C lives in 24
  512-bit registers for a whole chunk of k.  Per k it loads ``NV`` = 3 vectors of the
  packed B row and, for each of the 8 rows, multiplies them by the broadcast A element
  (``vmulps`` with an embedded ``{1to16}`` broadcast) and adds each product to its
  accumulator (``vaddps``): separate multiply and add, each rounded -- exactly
  Darknet's ``C += A_PART * B``.  On x86-64 with AVX-512F the k loop is inline
  assembly, so no FMA can be selected; elsewhere it is LLVM vector IR whose
  ``fmul``/``fadd`` carry no fast-math flags (LLVM may not contract them either),
  on a 6 x 16 tile of 8-float vectors (12 accumulators in AVX2's 16 registers).
  The kernel starts from +0.0f or from the tile of C, so that the driver can split k
  into chunks without changing any output's sequence of roundings.
* Variants of the same loop read B from its rows and store the packed copy as they
  go, or do the same for A, so that packing needs no pass of its own.
* Column kernels (``make_col_tail``): the last 1-8 columns past whole vectors,
  vectorised over a panel's MR rows instead (a 16-wide vector for one column costs 16
  times its work: Winograd's 49-tile products), with the same order of roundings.
* gemm_fast's kernels are separate compiled specialisations (``fma`` True instead of
  None) with one fused multiply-add per step, so the exact callers' machine code
  contains no FMA.

bench/README.md ("The CPU GEMM") has the measurements behind the tile shape.
"""
import numba
from numba import njit, types
from numba.extending import intrinsic
from numba.core import cgutils
from llvmlite import ir
import llvmlite.binding as llb

from .llvm_ir import F32, I32, I64, c64, data_ptr

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

# Tile geometry and prefetch (tuned on AMD Zen 4: 32 KiB L1d, 1 MiB L2 per core). With
# AVX-512 (32 registers of 16 floats) the 8 x 48 tile's 24 accumulators fit; elsewhere
# (AVX2 and the others: 16 registers of 8 floats) a 6 x 16 tile's 12 do, where 8 x 48 in
# 256-bit halves would need 48 registers and spill to the stack at every k (measured in
# bench/README.md).
MR = 8 if USE_ASM else 6        # rows of C per micro-tile (A elements broadcast per k)
NV = 3 if USE_ASM else 2        # vectors per micro-tile row
VW = 16 if USE_ASM else 8       # floats per vector (512 or 256 bits)
NR = NV * VW            # columns of C per micro-tile
BPK = 8                 # packed kernel: prefetch B rows this many k steps ahead
PFINS = "prefetcht1"    # prefetch for the B rows a fused kernel will pack next

_vec = ir.VectorType(F32, VW)
_vptr = _vec.as_pointer()


def _broadcast(builder, s):
    ins = builder.insert_element(ir.Constant(_vec, ir.Undefined), s,
                                 ir.Constant(I32, 0))
    return builder.shuffle_vector(ins, ir.Constant(_vec, ir.Undefined),
                                  ir.Constant(ir.VectorType(I32, VW), [0] * VW))


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
    add_tied("cnt", I64, kc)
    if bsrc is not None:
        add_tied("src", ptr_t, bsrc)
    if asrc is not None:
        assert mr == 8
        add_tied("s0", ptr_t, asrc)
        add_tied("s3", ptr_t, builder.gep(asrc, [builder.mul(builder.sdiv(lda_bytes, c64(4)),
                                                             c64(3))]))
        add_tied("s6", ptr_t, builder.gep(asrc, [builder.mul(builder.sdiv(lda_bytes, c64(4)),
                                                             c64(6))]))
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
    fty = ir.FunctionType(ir.LiteralStructType(out_types), out_types + [I64] * len(untied))
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
    k = builder.phi(I64)
    k.add_incoming(c64(0), pre)
    phis = [[builder.phi(_vec) for _ in range(nv)] for _ in range(mr)]
    for r in range(mr):
        for v in range(nv):
            phis[r][v].add_incoming(acc[r][v], pre)
    builder.cbranch(builder.icmp_signed("<", k, kc), body, done)
    builder.position_at_end(body)
    boff = builder.mul(k, c64(nv * VW))
    bvec = []
    for v in range(nv):
        dst = builder.bitcast(builder.gep(bp_ptr, [builder.add(boff, c64(VW * v))]), _vptr)
        if fused:
            src = builder.gep(bsrc, [builder.add(builder.mul(k, ldb), c64(VW * v))])
            x = builder.load(builder.bitcast(src, _vptr), align=4)
            builder.store(x, dst, align=4)
        else:
            x = builder.load(dst, align=4)
        bvec.append(x)
    aoff = builder.mul(k, c64(mr))
    new = []
    for r in range(mr):
        dst = builder.gep(a_ptr, [builder.add(aoff, c64(r))])
        if asrc is not None:
            s = builder.load(builder.gep(asrc, [builder.add(builder.mul(lda, c64(r)), k)]),
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
    k1 = builder.add(k, c64(1))
    end = builder.block
    k.add_incoming(k1, end)
    for r in range(mr):
        for v in range(nv):
            phis[r][v].add_incoming(new[r][v], end)
    builder.branch(hdr)
    builder.position_at_end(done)
    return phis


def make_kernel(mr, nv, fused, use_asm, fused_a=False):
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
            a_ptr = data_ptr(context, builder, st[1], ap_v, apo)
            bp_ptr = data_ptr(context, builder, st[4], bp_v, bpo)
            c_ptr = data_ptr(context, builder, st[6], c_v, co)

            def cvec(r, v):
                off = builder.add(builder.mul(ldc_v, c64(r)), c64(VW * v))
                return builder.bitcast(builder.gep(c_ptr, [off]), _vptr)

            flags = context.cast(builder, first_v, st[9], types.int64)
            nt_v = builder.icmp_unsigned("!=", builder.and_(flags, c64(2)), c64(0))
            first_v = builder.icmp_unsigned("!=", builder.and_(flags, c64(1)), c64(0))
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
                bsrc = data_ptr(context, builder, st[10], b_v, bo)
                ldb_x = ldb_v
            asrc = None
            if fused_a:
                asrc = data_ptr(context, builder, st[14], a_v, ao)
            if use_asm:
                if fused:
                    ldb_x = builder.mul(ldb_v, c64(4))
                acc = _asm_loop(builder, acc, a_ptr, bp_ptr, kc_v, mr, nv,
                                builder.mul(apf_v, c64(4)), bsrc, ldb_x,
                                builder.mul(bpf_v, c64(4)), asrc,
                                builder.mul(lda_v, c64(4)), use_fma)
            else:
                acc = _ir_loop(builder, acc, a_ptr, bp_ptr, kc_v, mr, nv, bsrc, ldb_x,
                               asrc, lda_v, use_fma)
            with builder.if_else(nt_v) as (then, otherwise):
                with then:
                    # non-temporal stores, C tile 64-byte aligned (checked by caller)
                    md = builder.module.add_metadata([ir.Constant(I32, 1)])
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


def make_pack_a(mr):
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
            src = data_ptr(context, builder, st[0], a_v, ao)
            dst = data_ptr(context, builder, st[3], ap_v, apo)
            rows = []
            for r in range(mr):
                p = builder.gep(src, [builder.mul(lda_v, c64(r))])
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
                                                     ir.Constant(ir.VectorType(I32, VW), mask))
                    else:
                        mask = [(VW + (VW * q + l) // mr) if (VW * q + l) % mr == r else l
                                for l in range(VW)]
                        out = builder.shuffle_vector(out, rows[r],
                                                     ir.Constant(ir.VectorType(I32, VW), mask))
                p = builder.gep(dst, [c64(VW * q)])
                builder.store(out, builder.bitcast(p, _vptr), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return pack


def make_col_tail(panels, cols):
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
    vec = ir.VectorType(F32, MR)
    vptr = vec.as_pointer()
    lanes = ir.Constant(ir.VectorType(I32, MR), [0] * MR)

    @intrinsic
    def kern(typingctx, fma, kc, ap, ap_off, ap_step, b, b_off, ldb, t, first):
        sig = types.void(fma, kc, ap, ap_off, ap_step, b, b_off, ldb, t, first)
        use_fma = not isinstance(fma, (types.NoneType, types.Omitted))

        def codegen(context, builder, signature, args):
            kc_v, ap_v, apo, step, b_v, bo, ldb_v, t_v, first_v = args[1:]
            st = signature.args[1:]
            a_ptr = data_ptr(context, builder, st[1], ap_v, apo)
            b_ptr = data_ptr(context, builder, st[4], b_v, bo)
            t_ptr = data_ptr(context, builder, st[7], t_v, c64(0))
            slots = [(c, p) for c in range(cols) for p in range(panels)]
            tvec = [builder.bitcast(builder.gep(t_ptr, [c64(MR * i)]), vptr) for i in range(len(slots))]
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
            k = builder.phi(I64)
            k.add_incoming(c64(0), entry)
            phis = [builder.phi(vec) for _ in slots]
            for i in range(len(slots)):
                phis[i].add_incoming(acc[i], entry)
            builder.cbranch(builder.icmp_signed("<", k, kc_v), body, done)
            builder.position_at_end(body)
            brow = builder.gep(b_ptr, [builder.mul(k, ldb_v)])
            bcs = []
            for c in range(cols):
                s_ = builder.load(builder.gep(brow, [c64(c)]), align=4)
                ins = builder.insert_element(ir.Constant(vec, ir.Undefined), s_, ir.Constant(I32, 0))
                bcs.append(builder.shuffle_vector(ins, ir.Constant(vec, ir.Undefined), lanes))
            koff = builder.mul(k, c64(MR))
            avs = []
            for p in range(panels):
                off = builder.add(koff, builder.mul(step, c64(p)))
                avs.append(builder.load(builder.bitcast(builder.gep(a_ptr, [off]), vptr), align=4))
            ffn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 "llvm.fma.v%df32" % MR)
            new = []
            for i, (c, p) in enumerate(slots):
                if use_fma:
                    new.append(builder.call(ffn, [avs[p], bcs[c], phis[i]]))
                else:
                    new.append(builder.fadd(phis[i], builder.fmul(avs[p], bcs[c])))
            k.add_incoming(builder.add(k, c64(1)), builder.block)
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
def prefetch_tile(typingctx, c, off, ldc, nrows):
    """Prefetch for writing an MR x NR tile of C at c[off], rows ldc apart
    (rows past nrows repeat the last one)."""
    sig = types.void(c, off, ldc, nrows)

    def codegen(context, builder, signature, args):
        c_v, off_v, ldc_v, nrows_v = args
        base = data_ptr(context, builder, signature.args[0], c_v, off_v)
        i8p = ir.IntType(8).as_pointer()
        pfn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, I32, I32, I32]),
            "llvm.prefetch.p0")
        last = builder.sub(nrows_v, c64(1))
        for r in range(MR):
            rr = builder.select(builder.icmp_signed("<", c64(r), last), c64(r), last)
            row = builder.bitcast(builder.gep(base, [builder.mul(rr, ldc_v)]), i8p)
            for v in range(NV + 1):
                builder.call(pfn, [builder.gep(row, [c64(min(64 * v, 64 * NV - 1))]),
                                   ir.Constant(I32, 1), ir.Constant(I32, 3),
                                   ir.Constant(I32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def prefetch_span(typingctx, arr, off, nbytes):
    """Prefetch (for reading, into L2) the bytes [0, nbytes) at arr[off]."""
    sig = types.void(arr, off, nbytes)

    def codegen(context, builder, signature, args):
        base = data_ptr(context, builder, signature.args[0], args[0], args[1])
        i8p = ir.IntType(8).as_pointer()
        base = builder.bitcast(base, i8p)
        pfn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, I32, I32, I32]),
            "llvm.prefetch.p0")
        with cgutils.for_range_slice(builder, c64(0), builder.add(args[2], c64(63)),
                                     c64(64)) as (o, _):
            builder.call(pfn, [builder.gep(base, [o]), ir.Constant(I32, 0),
                               ir.Constant(I32, 2), ir.Constant(I32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_fence(typingctx):
    """Order earlier non-temporal stores before later stores (mfence)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


pack_a16 = make_pack_a(MR)
_KF = make_kernel(MR, NV, True, USE_ASM)
_KA = make_kernel(MR, NV, False, USE_ASM, fused_a=True)
_K1 = make_kernel(MR, 1, False, USE_ASM)
_K2 = make_kernel(MR, 2, False, USE_ASM) if NV >= 2 else _K1
_K3 = make_kernel(MR, 3, False, USE_ASM) if NV >= 3 else _K1
_K4 = make_kernel(MR, 4, False, USE_ASM) if NV >= 4 else _K1
# column kernels (panels x columns): 8 accumulators, and one panel for the last panels
_T81, _T42, _T24 = make_col_tail(8, 1), make_col_tail(4, 2), make_col_tail(2, 4)
_T11, _T12, _T14 = make_col_tail(1, 1), make_col_tail(1, 2), make_col_tail(1, 4)

@njit(cache=True, inline="always")
def kernel(fma, nv, fused, kc, ap, aoff, apf, bp, boff, c, coff, ldc, flags, b, b_off, ldb, bpf,
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
def col_tail(fma, panels, cols, kc, ap, aoff, step, b, boff, ldb, t, first):
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
