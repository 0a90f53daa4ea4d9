"""Every darknetpy/gpu/*.cu file compiles for sm_90 with nvcc and with the emulator's g++,
needs no host header under NVRTC, and no exact kernel contains a floating-point FMA.

A .cu file declares, in comment lines:
    // darknetpy: options -ftz=true          one set of options a module loads it with
                                             (besides the defaults; one line per set)
    // darknetpy: allow-fma name [name...]   kernels allowed FMAs (fast mode, or
                                             code that calls fmaf/fma by design)
The PTX of each kernel, and of every .func it calls, must hold no fma/mad on
f16/f32/f64 unless the kernel is allowed; integer mad.lo/mad.wide are fine.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from darknetpy.gpu import cuda_source, runtime

GPU_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "darknetpy", "gpu")
SOURCES = sorted(glob.glob(os.path.join(GPU_DIR, "*.cu")))
NVCC = shutil.which("nvcc") or next((p for p in ["/usr/local/cuda/bin/nvcc"] if os.path.exists(p)), None)
MARKER = re.compile(r"^\s*//\s*darknetpy:\s*(options|allow-fma)\b(.*)$")
FLOAT_FMA = re.compile(r"^\s*(?:@!?%\w+\s+)?((?:fma|mad)(?:\.\w+)*\.f(?:16|32|64))\b")
PTX_FUNCTION = re.compile(r"^\s*(?:\.visible\s+|\.weak\s+|\.extern\s+)*\.(entry|func)\s+(?:\([^)]*\)\s*)?(\w+)", re.M)
PTX_CALL = re.compile(r"\bcall(?:\.uni)?\s+(?:\([^)]*\),\s*)?(\w+)")


def declarations(path: str) -> tuple[list[tuple[str, ...]], set[str]]:
    """(option sets, allowed kernels) declared by the file's marker lines."""
    option_sets, allowed = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = MARKER.match(line)
            if m and m.group(1) == "options":
                option_sets.append(tuple(m.group(2).split()))
            elif m:
                allowed.update(m.group(2).split())
    return option_sets, allowed


def variants(path: str) -> list[tuple[str, ...]]:
    option_sets, _ = declarations(path)
    return [runtime.compile_options(o) for o in [()] + [s for s in option_sets if s]]


def ptx_functions(ptx: str) -> dict[str, tuple[str, str]]:
    """name -> (kind, body) for each .entry and .func defined in a PTX file."""
    found = {}
    for m in PTX_FUNCTION.finditer(ptx):
        start = ptx.find("{", m.end())
        semicolon = ptx.find(";", m.end())
        if start < 0 or 0 <= semicolon < start:
            continue  # a declaration (parameter lists hold no ';'), not a definition
        depth = 0
        for end in range(start, len(ptx)):
            depth += {"{": 1, "}": -1}.get(ptx[end], 0)
            if depth == 0:
                break
        found[m.group(2)] = (m.group(1), ptx[start:end])
    return found


def fma_lines(ptx: str) -> dict[str, list[str]]:
    """Each entry's floating-point fma/mad instructions, its callees' included."""
    functions = ptx_functions(ptx)

    def reach(name, seen):
        body = functions[name][1]
        lines = [line.strip() for line in body.splitlines() if FLOAT_FMA.match(line)]
        for callee in PTX_CALL.findall(body):
            if callee in functions and callee not in seen:
                seen.add(callee)
                lines += [f"{callee}: {line}" for line in reach(callee, seen)]
        return lines

    return {name: reach(name, {name}) for name, (kind, _) in functions.items() if kind == "entry"}


# Names that nvcc's device code gets from host headers and NVRTC (CuPy's compiler) lacks.
HOST_ONLY = re.compile(r"\b(INFINITY|NAN|HUGE_VALF?|FLT_(?:MAX|MIN|EPSILON)|DBL_(?:MAX|MIN|EPSILON)|"
                       r"U?INT_(?:MAX|MIN)|U?LLONG_(?:MAX|MIN)|M_(?:PI|E|LN2|SQRT2)|u?int(?:8|16|32|64)_t|"
                       r"std::\w+)\b")


def nvrtc_view(path: str) -> str:
    """The source as NVRTC preprocesses it (approximately): no system headers, its macros."""
    run = subprocess.run(["g++", "-E", "-P", "-x", "c++", "-std=c++17", "-nostdinc", "-undef", "-D__CUDACC__",
                          "-D__CUDACC_RTC__", "-D__CUDA_ARCH__=900", "-", "-o", "-"],
                         input=cuda_source.expand_source(path), capture_output=True, text=True)
    assert run.returncode == 0, f"{ids(path)} under NVRTC's macros:\n{run.stderr}"
    return run.stdout


def nvcc_ptx(path: str, options: tuple[str, ...], folder: str) -> str:
    source = os.path.join(folder, os.path.basename(path))
    with open(source, "w", encoding="utf-8") as f:
        f.write(cuda_source.expand_source(path))   # what NVRTC is given: the includes inlined
    ptx = source[:-3] + ".ptx"
    run = subprocess.run([NVCC, "-ptx", "-arch=sm_90", *options, "-o", ptx, source], capture_output=True, text=True)
    assert run.returncode == 0, f"nvcc {' '.join(options)} {os.path.basename(path)}:\n{run.stderr}"
    with open(ptx, encoding="utf-8") as f:
        return f.read()


def ids(path):
    return os.path.basename(path)


def test_there_are_kernel_sources():
    assert SOURCES, f"no .cu files in {GPU_DIR}"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_markers_name_kernels_of_the_file(path):
    _, allowed = declarations(path)
    kernels = cuda_source.parse_kernels(cuda_source.expand_source(path))
    assert kernels, f"{ids(path)} defines no extern \"C\" __global__ kernel"
    assert allowed <= set(kernels), f"allow-fma names no kernel of {ids(path)}: {sorted(allowed - set(kernels))}"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_nvcc_ptx_has_no_fma_in_exact_kernels(path, tmp_path):
    if NVCC is None:
        pytest.skip("nvcc is not installed")
    _, allowed = declarations(path)
    kernels = set(cuda_source.parse_kernels(cuda_source.expand_source(path)))
    for options in variants(path):
        ptx = nvcc_ptx(path, options, str(tmp_path))
        fmas = fma_lines(ptx)
        assert kernels <= set(fmas), f"kernels missing from the PTX: {sorted(kernels - set(fmas))}"
        bad = {k: lines[:3] for k, lines in fmas.items() if lines and k not in allowed}
        assert not bad, f"{ids(path)} with {' '.join(options)}: FMA in exact kernels: {bad}"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_nvrtc_needs_no_host_header(path):
    """nvcc (above) includes cuda_runtime.h and the host's headers; NVRTC does not."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    names = sorted(set(HOST_ONLY.findall(nvrtc_view(path))))
    assert not names, f"{ids(path)} uses names NVRTC does not define: {names}"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_emulator_compiles(path, monkeypatch):
    monkeypatch.setattr(runtime, "_emulate_override", True)
    for options in variants(path):
        module = runtime.load_module(path, options)
        for name in module.kernels:
            module.function(name)


def test_fma_scan_sees_calls_and_ignores_integer_mad():
    ptx = """
.func (.param .b32 r) helper(.param .b32 a)
{
	fma.rn.f32 	%f3, %f1, %f2, %f1;
	ret;
}
.visible .entry exact(.param .u64 p)
{
	mad.lo.s32 	%r3, %r1, %r2, %r1;
	call.uni (retval0), helper, (param0);
	ret;
}
.visible .entry plain(.param .u64 p)
{
	mad.wide.s32 	%rd4, %r5, 4, %rd1;
	@%p1 mul.rn.f64 	%fd1, %fd2, %fd3;
	ret;
}
.func (.param .b32 r) later(.param .b32 a)
;
.visible .entry guarded(.param .u64 p)
{
	@!%p2 fma.rn.ftz.f32 	%f3, %f1, %f2, %f1;
}
"""
    fmas = fma_lines(ptx)
    assert fmas["plain"] == []
    assert fmas["exact"] == ["helper: fma.rn.f32 \t%f3, %f1, %f2, %f1;"]
    assert len(fmas["guarded"]) == 1
