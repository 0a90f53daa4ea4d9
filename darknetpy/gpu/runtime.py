"""CUDA modules and launches, on a GPU through CuPy or on the CPU through the emulator.

    module = runtime.load_module(path_to_cu, ("-ftz=true",))
    module.function("saxpy")((blocks,), (256,), (n, np.float32(a), x, y))

A kernel file is compiled once per (path, options) and process, and kept on disk by
CuPy (on a GPU) or by the emulator. Arguments are checked against the kernel's
parsed signature on both backends: arrays by dtype, Python ints converted to the
parameter's integer type (range-checked), numpy scalars passed only to parameters
of their own type. CuPy is imported only when a GPU is asked for.

The emulator runs when `DARKNETPY_GPU_EMULATE=1` is set or after `emulate(True)`.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import DarknetError
from . import emulator
from .cuda_source import Param, expand_source, parse_kernels

CUPY_MISSING = "--gpu needs CuPy: pip install 'darknet-exact[gpu]'"
# Every module is compiled as C++17 and without FMA contraction unless it says otherwise.
DEFAULT_OPTIONS = ("-std=c++17", "--fmad=false")
MAX_BLOCK_THREADS = 1024
GRID_LIMITS = (2**31 - 1, 65535, 65535)
BLOCK_LIMITS = (1024, 1024, 64)

_emulate_override: bool | None = None
_modules: dict[tuple, "Module"] = {}


def emulate(on: bool) -> None:
    """Run kernels on the CPU emulator (True) or on CuPy (False) from now on."""
    global _emulate_override
    _emulate_override = bool(on)


def emulating() -> bool:
    if _emulate_override is not None:
        return _emulate_override
    return os.environ.get("DARKNETPY_GPU_EMULATE", "") == "1"


def _cupy():
    if os.environ.get("DARKNETPY_NO_CUPY") == "1":  # tests: behave as if CuPy were not installed
        raise DarknetError(CUPY_MISSING)
    try:
        import cupy
    except ImportError as e:
        raise DarknetError(CUPY_MISSING) from e
    except Exception as e:  # a broken CUDA install can fail CuPy's import otherwise
        raise DarknetError(f"--gpu: CuPy could not be loaded ({_first_line(e)})") from e
    return cupy


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def available() -> bool:
    """Whether a real CUDA device can be used through CuPy (the emulator does not count)."""
    if os.environ.get("DARKNETPY_NO_CUPY") == "1":
        return False
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def require(device_index: int) -> None:
    """Make `device_index` the current device, or raise one clear DarknetError."""
    if emulating():
        if device_index != 0:
            raise DarknetError(f"--gpu {device_index}: no such CUDA device (the emulator has one, 0)")
        return
    cupy = _cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise DarknetError(f"--gpu: no usable CUDA device or driver ({_first_line(e)})") from e
    if count == 0:
        raise DarknetError("--gpu: no CUDA device found")
    if not 0 <= device_index < count:
        raise DarknetError(f"--gpu {device_index}: no such CUDA device (found {count}: 0..{count - 1})")
    cupy.cuda.Device(device_index).use()


def device_name() -> str:
    if emulating():
        return emulator.device_name()
    cupy = _cupy()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def xp():
    """The array module of the current backend: cupy, or numpy under the emulator."""
    return np if emulating() else _cupy()


def empty(shape, dtype=np.float32):
    return xp().empty(shape, dtype)


def upload(host: np.ndarray):
    """A C-contiguous device copy of a host array (a numpy copy under the emulator)."""
    if emulating():
        return np.array(host, order="C", copy=True)
    return _cupy().asarray(np.ascontiguousarray(host))


def download(arr) -> np.ndarray:
    """A host (numpy) copy of a device array; waits for the kernels writing it."""
    if emulating():
        return np.array(arr, copy=True)
    return _cupy().asnumpy(arr)


def synchronize() -> None:
    if not emulating():
        _cupy().cuda.Device().synchronize()


def compile_options(options: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The defaults, less any whose flag `options` sets itself, then `options`."""
    def key(option):
        return option.lstrip("-").split("=", 1)[0]
    given = {key(o) for o in options}
    return tuple(o for o in DEFAULT_OPTIONS if key(o) not in given) + tuple(options)


# --- launch arguments (checked against the signatures cuda_source parsed) -------------

def convert_args(kernel: str, params: tuple[Param, ...], args: tuple, array_type: type) -> list:
    """The launch arguments checked against the signature: arrays, and numpy scalars."""
    if len(args) != len(params):
        raise TypeError(f"kernel {kernel} takes {len(params)} arguments, got {len(args)}")
    return [_convert_arg(kernel, i, p, a, array_type) for i, (p, a) in enumerate(zip(params, args))]


def _convert_arg(kernel: str, index: int, param: Param, arg, array_type: type):
    where = f"kernel {kernel}, argument {index} ({param.ctype} {param.name})"
    want = np.dtype(param.dtype)
    if param.pointer:
        if not isinstance(arg, array_type):
            raise TypeError(f"{where}: needs a {array_type.__module__}.{array_type.__name__}, "
                            f"got {type(arg).__name__}")
        if arg.dtype != want:
            raise TypeError(f"{where}: needs a {want} array, got {arg.dtype}")
        return arg
    if isinstance(arg, (bool, np.bool_)):
        raise TypeError(f"{where}: got a bool; pass an int")
    if isinstance(arg, np.generic):
        if arg.dtype != want:
            raise TypeError(f"{where}: needs numpy.{want}, got numpy.{arg.dtype}")
        return arg
    if isinstance(arg, int):
        if want.kind not in "iu":
            raise TypeError(f"{where}: got a Python int; pass numpy.{want}")
        info = np.iinfo(want)
        if not info.min <= arg <= info.max:
            raise OverflowError(f"{where}: {arg} is out of range for {want}")
        return want.type(arg)
    if isinstance(arg, float) and want == np.float64:
        return np.float64(arg)
    raise TypeError(f"{where}: got {type(arg).__name__}; pass numpy.{want}")


def launch_shape(kernel: str, grid, block) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Grid and block as 3-tuples, within CUDA's limits."""
    def dims(value, limits, what):
        value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if not 1 <= len(value) <= 3 or any(not isinstance(v, (int, np.integer)) for v in value):
            raise ValueError(f"kernel {kernel}: {what} must be 1 to 3 ints, got {value!r}")
        value = tuple(int(v) for v in value) + (1,) * (3 - len(value))
        if any(not 1 <= v <= lim for v, lim in zip(value, limits)):
            raise ValueError(f"kernel {kernel}: {what} {value} is outside CUDA's limits {limits}")
        return value
    g, b = dims(grid, GRID_LIMITS, "grid"), dims(block, BLOCK_LIMITS, "block")
    if b[0] * b[1] * b[2] > MAX_BLOCK_THREADS:
        raise ValueError(f"kernel {kernel}: block {b} has more than {MAX_BLOCK_THREADS} threads")
    return g, b


# --- modules -------------------------------------------------------------------------

class Function:
    """One kernel of a loaded module; call it as f(grid, block, args, shared_mem=0)."""

    def __init__(self, module: "Module", name: str, params: tuple[Param, ...]):
        self.module = module
        self.name = name
        self.params = params

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        g, b = launch_shape(self.name, grid, block)
        values = convert_args(self.name, self.params, tuple(args), self.module.array_type)
        self.module.launch(self.name, g, b, values, shared_mem)

    def __repr__(self):
        return f"<kernel {self.name} of {self.module.path}>"


class Module:
    """A compiled .cu file: its kernels by name."""

    def __init__(self, path: str, options: tuple[str, ...], kernels: dict, backend):
        self.path = path
        self.options = options
        self.kernels = kernels
        self.backend = backend
        self.array_type = backend.array_type
        self._functions: dict[str, Function] = {}

    def function(self, name: str) -> Function:
        f = self._functions.get(name)
        if f is None:
            if name not in self.kernels:
                raise KeyError(f"{self.path} has no kernel {name!r} (it has: {', '.join(sorted(self.kernels))})")
            f = self._functions[name] = Function(self, name, self.kernels[name])
        return f

    def launch(self, name, grid, block, values, shared_mem):
        self.backend.launch(name, grid, block, values, shared_mem)


class _CupyModule:
    """A RawModule compiled by NVRTC for the current device (CuPy caches it on disk)."""

    def __init__(self, path: str, source: str, options: tuple[str, ...]):
        cupy = _cupy()
        self.array_type = cupy.ndarray
        self.raw = cupy.RawModule(code=source, options=options)
        try:
            self.raw.compile()
        except Exception as e:
            if type(e).__name__ != "CompileException":
                raise
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            first = next((line for line in lines if "error" in line), _first_line(e))
            err = DarknetError(f"NVRTC could not compile {path}: {first}")
            err.log = str(e)
            raise err from e
        self.kernels: dict = {}

    def launch(self, name, grid, block, values, shared_mem):
        kernel = self.kernels.get(name)
        if kernel is None:
            kernel = self.kernels[name] = self.raw.get_function(name)
        kernel(grid, block, tuple(values), shared_mem=shared_mem)


def load_module(path: str, options: tuple[str, ...] = ()) -> Module:
    """The kernels of the .cu file at `path`, compiled with `compile_options(options)`."""
    path = os.path.abspath(path)
    options = compile_options(tuple(options))
    key = (path, options, emulating())
    module = _modules.get(key)
    if module is None:
        source = expand_source(path)
        kernels = parse_kernels(source)
        if emulating():
            backend = emulator.EmulatedModule(path, source, kernels, options)
        else:
            backend = _CupyModule(path, source, options)
        module = _modules[key] = Module(path, options, kernels, backend)
    return module


def clear_cache() -> None:
    """Forget the modules loaded in this process (their on-disk caches stay)."""
    _modules.clear()
