"""CUDA kernels on the CPU: g++ and OpenMP run the same .cu sources, for tests without a GPU.

A module's expanded source is compiled with cuda_shim.h force-included and one
generated launcher per kernel, `launch_<name>(gx, gy, gz, bx, by, bz, params...)`,
into a shared library cached on disk (keyed by a hash of everything that goes into
it) and loaded with ctypes.

How a launch runs:
- A kernel that can reach `__syncthreads` or `__shared__` (in its body or in a function
  of the file it calls) runs its blocks in an OpenMP loop, each block whole on one OS
  thread, its CUDA threads as fibers (cooperative, switched at `__syncthreads`; see
  cuda_shim.h). `__shared__` arrays are function-static and thread_local: shared by
  the fibers of the block, private to each OS thread, so blocks running at the same
  time do not share them. `__syncthreads` is a barrier of the block's threads that
  have not returned; if the threads of a block do not all pass the same number of
  barriers (undefined behaviour in CUDA), the launch raises instead of hanging.
  (OS threads per CUDA thread, with OpenMP barriers, cost milliseconds per barrier
  on a small machine; fibers cost nanoseconds.)
- Any other kernel is a flat OpenMP loop over all (block, thread) pairs.
- With `-ftz=true` among the options, each OpenMP thread sets MXCSR's FTZ and DAZ for
  the launch (and restores them after); otherwise it clears them. x86's DAZ/FTZ also
  flush doubles, where CUDA's -ftz=true flushes only floats.
- Arithmetic is IEEE round-to-nearest (-ffp-contract=off -fno-fast-math): what a GPU
  computes with --fmad=false; --use_fast_math and --prec-*=false are not emulated.
- An array argument is passed as the address of its first element, like CuPy does:
  a non-contiguous view is not copied, so the kernel must index it by its strides.
- Dynamic shared memory, warp intrinsics, atomics and textures are not emulated.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import subprocess
import tempfile

import numpy as np

from ..errors import DarknetError
from .cuda_source import Param, strip_comments

EMULATOR_VERSION = "1"
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_shim.h")
CXX_FLAGS = ("-O2", "-fopenmp", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-std=c++17",
             "-fvisibility=hidden", "-fno-semantic-interposition")
# nvcc/NVRTC options that change nothing the emulator computes.
_IGNORED = re.compile(r"^--?(std=.*|fmad=.*|arch=.*|gpu-architecture=.*|use_fast_math|prec-div=.*|"
                      r"prec-sqrt=.*|lineinfo|ftz=false|extra-device-vectorization|restrict|dopt=.*)$")
_FTZ = re.compile(r"^--?ftz=true$")
_PASSED = re.compile(r"^-[DUI].+$")

_CTYPES = {
    np.float32: ctypes.c_float, np.float64: ctypes.c_double,
    np.int8: ctypes.c_int8, np.uint8: ctypes.c_uint8, np.int16: ctypes.c_int16, np.uint16: ctypes.c_uint16,
    np.int32: ctypes.c_int32, np.uint32: ctypes.c_uint32, np.int64: ctypes.c_int64, np.uint64: ctypes.c_uint64,
}
_LAUNCH_ERRORS = {
    1: "could not map the stacks of a block's threads",
    2: "the threads of a block passed __syncthreads a different number of times (undefined in CUDA)",
    3: "__syncthreads was reached in a kernel that the emulator runs as a flat loop",
}
_compiler_id: str | None = None


def device_name() -> str:
    return f"CUDA emulator on the CPU ({os.cpu_count()} cores, g++ and OpenMP)"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "darknetpy", "emu")


def compiler_flags(options: tuple[str, ...]) -> list[str]:
    """g++ flags for a module's nvcc options; an option the emulator does not know is an error."""
    flags = list(CXX_FLAGS)
    ftz = False
    for option in options:
        if _FTZ.match(option):
            ftz = True
        elif _PASSED.match(option):
            flags.append(option)
        elif not _IGNORED.match(option):
            raise DarknetError(f"the GPU emulator does not know the compile option {option!r}")
    flags.append(f"-DDARKNETPY_EMU_FTZ={int(ftz)}")
    return flags


# --- which kernels synchronise -------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_]\w*")
_FUNC_HEADER = re.compile(r"(\w+)\s*\([^(){};]*\)\s*(?:const\s*)?$", re.S)
# Scopes whose functions count: namespaces, extern "C" blocks, and classes (members).
_SCOPE_HEADER = re.compile(r'(?:\b(?:namespace|struct|class|union)\b[^{};()]*|extern\s+"C"\s*)$', re.S)
_BLOCK_WORDS = {"__syncthreads", "__shared__"}


def _functions(code: str) -> dict[str, str]:
    """Bodies of the functions (and member functions) of a file by name, overloads joined."""
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))
    bodies: dict[str, str] = {}
    _scan(code, bodies)
    return bodies


def _scan(code: str, bodies: dict[str, str]) -> None:
    start, i = 0, 0
    while i < len(code):
        c = code[i]
        if c in ";}":
            start = i + 1
        elif c == "{":
            end = _matching(code, i)
            header = code[start:i].strip()
            if _SCOPE_HEADER.search(header):
                _scan(code[i + 1:end], bodies)
            else:
                m = _FUNC_HEADER.search(header)
                if m:
                    bodies[m.group(1)] = bodies.get(m.group(1), "") + code[i + 1:end]
            i, start = end, end + 1
        i += 1


def _matching(code: str, open_index: int) -> int:
    depth = 0
    for j in range(open_index, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise DarknetError("unbalanced braces in a CUDA source")


def block_kernels(source: str, kernels) -> set[str]:
    """The kernels that can reach __syncthreads or __shared__ through the file's functions."""
    bodies = _functions(strip_comments(source))
    calls = {name: set(_IDENT.findall(body)) for name, body in bodies.items()}
    memo: dict[str, bool] = {}

    def reaches(name: str, path: frozenset) -> bool:
        if name in memo:
            return memo[name]
        words = calls.get(name, set())
        found = bool(words & _BLOCK_WORDS) or any(
            reaches(callee, path | {name}) for callee in words if callee in calls and callee not in path)
        memo[name] = found
        return found

    return {k for k in kernels if reaches(k, frozenset())}


# --- build ---------------------------------------------------------------------------

def launcher_source(kernels: dict[str, tuple[Param, ...]], blocks: set[str]) -> str:
    lines = ["", "// launchers generated by darknetpy.gpu.emulator"]
    for name, params in kernels.items():
        decl = "".join(f", {p.ctype} a{i}" for i, p in enumerate(params))
        call = ", ".join(f"a{i}" for i in range(len(params)))
        mode = "darknetpy_launch_blocks" if name in blocks else "darknetpy_launch_flat"
        lines.append(
            f'extern "C" __attribute__((visibility("default"))) int launch_{name}('
            f"unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz{decl}) {{\n"
            f"    return {mode}(dim3(gx, gy, gz), dim3(bx, by, bz), [=]() {{ {name}({call}); }});\n}}")
    return "\n".join(lines) + "\n"


def _compiler() -> str:
    global _compiler_id
    if _compiler_id is None:
        try:
            run = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise DarknetError(f"the GPU emulator needs g++ with OpenMP ({e})") from e
        _compiler_id = run.stdout.splitlines()[0] + " " + platform.machine()
    return _compiler_id


def build(path: str, source: str, kernels, options: tuple[str, ...]) -> str:
    """The cached shared library of a module, compiled first if it is not on disk."""
    flags = compiler_flags(options)
    with open(SHIM, encoding="utf-8") as f:
        shim = f.read()
    text = source + launcher_source(kernels, block_kernels(source, kernels))
    digest = hashlib.sha256("\0".join([EMULATOR_VERSION, _compiler(), shim, text, *flags]).encode()).hexdigest()
    directory = cache_dir()
    target = os.path.join(directory, f"{os.path.splitext(os.path.basename(path))[0]}-{digest[:24]}.so")
    if not os.path.exists(target):
        _compile(path, text, flags, directory, target)
    return target


def _compile(path: str, text: str, flags: list[str], directory: str, target: str) -> None:
    """g++ into a private temporary folder, then an atomic rename (safe with other processes)."""
    try:
        os.makedirs(directory, exist_ok=True)
        work = tempfile.mkdtemp(prefix="build-", dir=directory)
    except OSError as e:
        raise DarknetError(f"cannot write the GPU emulator's cache {directory}: {e.strerror}") from e
    try:
        cpp = os.path.join(work, "module.cpp")
        with open(cpp, "w", encoding="utf-8") as f:
            f.write(text)
        out = os.path.join(work, "module.so")
        run = subprocess.run(["g++", *flags, "-include", SHIM, "-o", out, cpp], capture_output=True, text=True)
        if run.returncode != 0:
            raise _compile_error(path, run.stderr)
        os.replace(out, target)
    finally:
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


def _compile_error(path: str, log: str) -> DarknetError:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    first = next((line for line in lines if "error" in line), lines[0] if lines else "no message")
    err = DarknetError(f"the GPU emulator could not compile {path}: {first}")
    err.log = log
    if hasattr(err, "add_note"):
        err.add_note(log)
    return err


# --- launch --------------------------------------------------------------------------

class EmulatedModule:
    """A module's shared library and its launchers with ctypes signatures."""

    array_type = np.ndarray

    def __init__(self, path: str, source: str, kernels: dict[str, tuple[Param, ...]], options: tuple[str, ...]):
        self.library = ctypes.CDLL(build(path, source, kernels, options))
        self.params = kernels
        self.launchers = {}
        for name, params in kernels.items():
            fn = getattr(self.library, f"launch_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_uint] * 6 + [
                ctypes.c_void_p if p.pointer else _CTYPES[p.dtype] for p in params]
            self.launchers[name] = fn

    def launch(self, name, grid, block, values, shared_mem):
        if shared_mem:
            raise ValueError(f"kernel {name}: dynamic shared memory is not emulated (shared_mem={shared_mem})")
        args = [v.ctypes.data if isinstance(v, np.ndarray) else v.item() for v in values]
        status = self.launchers[name](*grid, *block, *args)
        if status:
            raise RuntimeError(f"emulated kernel {name}: {_LAUNCH_ERRORS.get(status, f'error {status}')}")

