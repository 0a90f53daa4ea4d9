"""The x86 floating-point environment (MXCSR) from inside Numba kernels.

The stock Darknet build is linked with -Ofast, whose start-up code sets flush-to-zero
and denormals-are-zero: every float or double result below the normal range becomes
zero, and subnormal inputs count as zero. Kernels in `numerics="darknet"` set those two
bits around their loops (in each worker thread) and restore the caller's value after,
so the whole arithmetic, glibc's `exp`/`expf` included, behaves as in that build.
"""
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

FTZ_DAZ = np.uint32(0x8040)
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _mxcsr_call(builder, name, slot):
    fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8))])
    fn = builder.module.declare_intrinsic(name, fnty=fnty)
    builder.call(fn, [builder.bitcast(slot, ir.PointerType(ir.IntType(8)))])


@intrinsic
def _stmxcsr(typingctx):
    def codegen(context, builder, signature, args):
        slot = builder.alloca(ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)
    return types.uint32(), codegen


@intrinsic
def _ldmxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        slot = builder.alloca(ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.void(types.uint32), codegen


if IS_X86:
    @njit(inline="always")
    def enter(ftz):
        """Set (ftz=True) or clear flush-to-zero/denormals-are-zero; returns the old MXCSR."""
        old = _stmxcsr()
        if ftz:
            _ldmxcsr(old | FTZ_DAZ)
        else:
            _ldmxcsr(old & ~FTZ_DAZ)
        return old

    @njit(inline="always")
    def leave(old):
        _ldmxcsr(old)
else:
    @njit(inline="always")
    def enter(ftz):
        return np.uint32(0)

    @njit(inline="always")
    def leave(old):
        pass
