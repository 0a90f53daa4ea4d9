"""The OpenBLAS that numpy loaded: set its thread count, read its core name (ctypes only)."""
from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=None)
def _libs() -> list:
    import numpy  # noqa: F401  (loads numpy's OpenBLAS)

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            pass
    return libs


def _function(*names):
    for lib in _libs():
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn
    return None


def set_threads(n: int) -> bool:
    """openblas_set_num_threads(n) in numpy's OpenBLAS; False when it was not found."""
    fn = _function("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                   "openblas_set_num_threads64_", "openblas_set_num_threads")
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    fn(int(n))
    return True


def corename() -> str:
    """The kernel family OpenBLAS picked (e.g. 'SkylakeX', 'Haswell', 'Zen'), or '?'."""
    fn = _function("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                   "openblas_get_corename64_", "openblas_get_corename")
    if fn is None:
        return "?"
    fn.restype = ctypes.c_char_p
    return fn().decode()
