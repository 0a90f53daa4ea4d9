"""Work sharing among Numba's threads: the kernels' workers take units of work one at a
time from a shared counter (so a thread slowed down by other work on its core takes
fewer), and ask for the thread count on every call without paying for Numba's lock.

Importing this module also makes Numba's TBB threading layer loadable when the `tbb`
package is installed (see `prefer_tbb`): a pass runs dozens of parallel regions, and
between them GNU OpenMP's idle workers spin, taking a core from whatever else runs on
the machine (another process, or a second darknetpy), while its passive mode makes
every region wait for a sleeping worker to wake. TBB's workers spin briefly, then
yield the core, then sleep.
"""
import ctypes
import importlib.metadata
import os
import sys

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


TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}


def tbb_library_path():
    """The path of the `tbb` package's shared library, or None. pip puts it in the
    environment's lib folder, where the loader does not look unless that is a system
    folder (a virtual environment, pyenv, a --user install)."""
    name = TBB_LIBRARY.get(sys.platform)
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == name:
            path = str(f.locate())
            return path if os.path.exists(path) else None
    return None


def prefer_tbb():
    """Let Numba's default search (tbb, then omp, then workqueue) find TBB: load its
    library by path before Numba looks for it by name. Nothing happens when the user
    chose a layer (NUMBA_THREADING_LAYER), when Numba's threads are already running, or
    when tbb is not installed. Returns whether the library is loaded."""
    from numba.np.ufunc import parallel as numba_parallel
    if numba.config.THREADING_LAYER != "default" or getattr(numba_parallel, "_is_initialized", False):
        return False
    path = tbb_library_path()
    if path is None:
        return False
    try:
        ctypes.CDLL(path)
    except OSError:
        return False
    return True


prefer_tbb()
