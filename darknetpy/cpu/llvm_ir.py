"""Helpers for the Numba intrinsics written in llvmlite IR (the GEMM's micro-kernels,
Winograd's weight transform, the threads' shared counter): the scalar types and the
address of an array element."""
from llvmlite import ir

F32 = ir.FloatType()
I32 = ir.IntType(32)
I64 = ir.IntType(64)


def c64(x):
    """The int64 constant x."""
    return ir.Constant(I64, x)


def data_ptr(context, builder, ty, val, off):
    """The address of element `off` (an int64 value) of the array `val` of Numba type `ty`."""
    ptr = context.make_array(ty)(context, builder, val).data
    return builder.gep(ptr, [off])
