"""Work sharing among Numba's threads: the kernels' workers take units of work one at a
time from a shared counter (so a thread slowed down by other work on its core takes
fewer), and ask for the thread count on every call without paying for Numba's lock."""
import numba
from numba import types
from numba.extending import intrinsic

from .llvm_ir import c64, data_ptr


@intrinsic
def atomic_next(typingctx, counter):
    """Atomically counter[0] += 1; returns the old value."""
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        ptr = data_ptr(context, builder, signature.args[0], args[0], c64(0))
        return builder.atomic_rmw("add", ptr, c64(1), "seq_cst")

    return sig, codegen


def num_threads():
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
