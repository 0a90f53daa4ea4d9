"""darknetpy.gpu.runtime under the CUDA-on-CPU emulator, and its messages without CuPy."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from darknetpy.errors import DarknetError
from darknetpy.gpu import cuda_source, emulator, runtime

TOY = r"""
// Kernels exercising the emulated subset.
#include "toy_math.cuh"

extern "C" __global__ void saxpy(int n, float a, const float* __restrict__ x, float* __restrict__ y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" __global__ void __launch_bounds__(256) block_sum(const float* x, float* out, int n)
{
    __shared__ float part[256];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    part[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) part[t] = __fadd_rn(part[t], part[t + s]);
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = part[0];
}

extern "C" __global__ void transpose(const float* in, float* out, int rows, int cols)
{
    __shared__ float tile[16][17];
    int x = blockIdx.x * 16 + threadIdx.x;
    int y = blockIdx.y * 16 + threadIdx.y;
    for (int j = 0; j < 16; j += blockDim.y)
        if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
    barrier_in_helper();
    x = blockIdx.y * 16 + threadIdx.x;
    y = blockIdx.x * 16 + threadIdx.y;
    for (int j = 0; j < 16; j += blockDim.y)
        if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

extern "C" __global__ void where(int* out)
{
    long long b = blockIdx.x + gridDim.x * (blockIdx.y + (long long)gridDim.y * blockIdx.z);
    long long t = threadIdx.x + blockDim.x * (threadIdx.y + (long long)blockDim.y * threadIdx.z);
    long long i = b * blockDim.x * blockDim.y * blockDim.z + t;
    out[4 * i] = blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z;
    out[4 * i + 1] = threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z;
    out[4 * i + 2] = gridDim.x + 10 * gridDim.y + 100 * gridDim.z;
    out[4 * i + 3] = blockDim.x + 10 * blockDim.y + 100 * blockDim.z;
}

extern "C" __global__ void where_sync(int* out)
{
    __syncthreads();
    long long b = blockIdx.x + gridDim.x * (blockIdx.y + (long long)gridDim.y * blockIdx.z);
    long long t = threadIdx.x + blockDim.x * (threadIdx.y + (long long)blockDim.y * threadIdx.z);
    long long i = b * blockDim.x * blockDim.y * blockDim.z + t;
    out[2 * i] = blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z;
    out[2 * i + 1] = threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z;
}

extern "C" __global__ void halve(const float* x, float* y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] * 0.5f;
}

extern "C" __global__ void typed(double* out, double d, float f, unsigned u, long long ll,
                                 unsigned long long ull, const unsigned char* bytes)
{
    out[0] = d;
    out[1] = f;
    out[2] = u;
    out[3] = (double)ll;
    out[4] = (double)ull;
    out[5] = bytes[1];
}

extern "C" __global__ void halve_sync(const float* x, float* y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    __syncthreads();
    if (i < n) y[i] = x[i] * 0.5f;
}

extern "C" __global__ void shift_left(const float* x, float* y, int n)
{
    __shared__ float tile[65];
    int t = threadIdx.x, i = blockIdx.x * 64 + t;
    tile[t] = i < n ? x[i] : 0.0f;
    if (t == 0) tile[64] = i + 64 < n ? x[i + 64] : 0.0f;
    __syncthreads();
    if (i >= n) return;
    y[i] = tile[t + 1];
}

struct Block {
    __device__ void sync() const { __syncthreads(); }
};

extern "C" __global__ void reverse_in_place(float* y)
{
    int base = blockIdx.x * blockDim.x;
    float v = y[base + blockDim.x - 1 - threadIdx.x];
    Block().sync();
    y[base + threadIdx.x] = v;
}

extern "C" __global__ void to_int(const float* x, int* rn, int* rz, unsigned* u, long long* ll, int n)
{
    int i = threadIdx.x;
    if (i >= n) return;
    rn[i] = __float2int_rn(x[i]);
    rz[i] = __float2int_rz(x[i]);
    u[i] = __float2uint_rn(x[i]);
    ll[i] = __float2ll_rz(x[i]);
}

extern "C" __global__ void racy_shift(float* y)
{
    __shared__ float s[32];
    s[threadIdx.x] = threadIdx.x;
    __syncthreads();
    s[threadIdx.x] = s[(threadIdx.x + 1) % 32];  // no barrier between the read and the write
    __syncthreads();
    y[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void diverge(float* x)
{
    __shared__ float s[64];
    if (threadIdx.x == 3) return;
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    x[threadIdx.x] = s[0];
}
"""

TOY_MATH = r"""
#pragma once
__device__ __forceinline__ void barrier_in_helper() { __syncthreads(); }
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cu")
    (folder / "toy.cu").write_text(TOY)
    (folder / "toy_math.cuh").write_text(TOY_MATH)
    (folder / "broken.cu").write_text('extern "C" __global__ void broken(float* x)\n{\n    x[0] = undefined_name;\n}\n')
    return folder


@pytest.fixture(autouse=True)
def emulated(monkeypatch, tmp_path_factory):
    """The emulator on, with one compile cache for the whole test module."""
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(runtime, "_emulate_override", True)


@pytest.fixture()
def toy(sources):
    return runtime.load_module(str(sources / "toy.cu"))


def test_saxpy_matches_numpy_bit_for_bit(toy):
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    a = np.float32(1.7)
    want = a * x + y
    toy.function("saxpy")(((n + 127) // 128,), (128,), (n, a, x, y))
    assert y.tobytes() == want.tobytes()


def test_block_reduction_with_shared_memory(toy):
    rng = np.random.default_rng(1)
    blocks = 37                                   # several blocks at once on each OS thread
    n = (blocks - 1) * 256 + 17
    x = rng.standard_normal(n).astype(np.float32)
    out = np.zeros(blocks, np.float32)
    toy.function("block_sum")((blocks,), (256,), (x, out, n))
    padded = np.zeros(blocks * 256, np.float32)
    padded[:n] = x
    part = padded.reshape(blocks, 256).copy()
    s = 128
    while s:
        part[:, :s] = part[:, :s] + part[:, s:2 * s]
        s //= 2
    assert out.tobytes() == part[:, 0].tobytes()


def test_tile_transpose_through_a_device_helper(toy):
    a = np.arange(37 * 53, dtype=np.float32).reshape(37, 53)
    out = np.zeros((53, 37), np.float32)
    toy.function("transpose")((4, 3), (16, 4), (a, out, 37, 53))
    assert np.array_equal(out, a.T)


@pytest.mark.parametrize("kernel,fields", [("where", 4), ("where_sync", 2)])
def test_indices_of_a_3d_grid(toy, kernel, fields):
    grid, block = (3, 2, 2), (4, 3, 2)
    count = 12 * 24
    out = np.full(count * fields, -1, np.int32)
    toy.function(kernel)(grid, block, (out,))
    got = out.reshape(2, 2, 3, 2, 3, 4, fields)  # bz by bx tz ty tx field
    bz, by, bx, tz, ty, tx = np.indices((2, 2, 3, 2, 3, 4))
    assert np.array_equal(got[..., 0], bx + 10 * by + 100 * bz)
    assert np.array_equal(got[..., 1], tx + 10 * ty + 100 * tz)
    if fields == 4:
        assert (got[..., 2] == 3 + 20 + 200).all() and (got[..., 3] == 4 + 30 + 200).all()


def test_scalar_types_reach_the_kernel(toy):
    out = np.zeros(6, np.float64)
    data = np.array([7, 200, 9], np.uint8)
    toy.function("typed")((1,), (1,), (out, 0.1, np.float32(0.1), 2**32 - 1, -(2**40), np.uint64(2**63), data))
    assert out.tolist() == [0.1, float(np.float32(0.1)), 2**32 - 1, -(2**40), 2.0**63, 200]


@pytest.mark.parametrize("args,error,text", [
    ((np.zeros(1, np.float32), 1.0, np.float32(0), 0, 0, 0, np.zeros(2, np.uint8)), TypeError, "needs a float64 array"),
    ((np.zeros(1), 1.0, np.float32(0), 0, 0, 0, np.zeros(2, np.float32)), TypeError, "needs a uint8 array"),
    ((np.zeros(1), 1.0, 0.5, 0, 0, 0, np.zeros(2, np.uint8)), TypeError, "pass numpy.float32"),
    ((np.zeros(1), 1.0, np.float64(0), 0, 0, 0, np.zeros(2, np.uint8)), TypeError, "needs numpy.float32"),
    ((np.zeros(1), 1.0, np.float32(0), -1, 0, 0, np.zeros(2, np.uint8)), OverflowError, "out of range for uint32"),
    ((np.zeros(1), 1.0, np.float32(0), np.int32(1), 0, 0, np.zeros(2, np.uint8)), TypeError, "needs numpy.uint32"),
    ((np.zeros(1), 1.0, np.float32(0), True, 0, 0, np.zeros(2, np.uint8)), TypeError, "bool"),
    ((np.zeros(1), 1.0, np.float32(0), 0, 0, 0, [1, 2]), TypeError, "needs a numpy.ndarray"),
    ((np.zeros(1), 1.0, np.float32(0), 0, 0, 0), TypeError, "takes 7 arguments, got 6"),
])
def test_argument_errors(toy, args, error, text):
    with pytest.raises(error, match=text):
        toy.function("typed")((1,), (1,), args)


def test_python_int_beyond_int32_is_refused(toy):
    y = np.zeros(4, np.float32)
    with pytest.raises(OverflowError, match="out of range for int32"):
        toy.function("saxpy")((1,), (4,), (2**31, np.float32(1), y, y))


def test_launch_shape_errors(toy):
    y = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="more than 1024 threads"):
        toy.function("saxpy")((1,), (64, 32), (4, np.float32(1), y, y))
    with pytest.raises(ValueError, match="outside CUDA's limits"):
        toy.function("saxpy")((0,), (4,), (4, np.float32(1), y, y))
    with pytest.raises(ValueError, match="dynamic shared memory"):
        toy.function("saxpy")((1,), (4,), (4, np.float32(1), y, y), shared_mem=64)
    with pytest.raises(KeyError, match="no kernel 'nope'"):
        toy.function("nope")


def test_threads_may_return_after_the_last_barrier(toy):
    n = 150
    x = np.arange(n, dtype=np.float32)
    y = np.zeros(n, np.float32)
    toy.function("shift_left")((3,), (64,), (x, y, n))
    assert y.tolist() == list(range(1, n)) + [0.0]


def test_barrier_in_a_member_function_runs_in_block_mode(toy):
    y = np.arange(3 * 96, dtype=np.float32)
    toy.function("reverse_in_place")((3,), (96,), (y,))
    assert np.array_equal(y, np.arange(3 * 96, dtype=np.float32).reshape(3, 96)[:, ::-1].ravel())


def test_launches_from_two_python_threads(toy):
    import threading
    n = 4096
    results = {}

    def work(seed):
        x = np.full(n, seed, np.float32)
        ok = True
        for _ in range(30):
            y = np.ones(n, np.float32)
            toy.function("saxpy")((n // 256,), (256,), (n, np.float32(2), x, y))
            out = np.zeros(n // 256, np.float32)
            toy.function("block_sum")((n // 256,), (256,), (y, out, n))
            ok &= bool((y == 2 * seed + 1).all() and (out == 256 * (2 * seed + 1)).all())
        results[seed] = ok

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {1: True, 2: True}


TO_INT_IN = [np.nan, 2.5, -2.5, 3.5, -0.7, 1e10, -1e10, 4e9]
TO_INT_OUT = [  # PTX cvt: NaN gives 0, out of range saturates
    [0, 2, -2, 4, -1, 2**31 - 1, -2**31, 2**31 - 1],
    [0, 2, -2, 3, 0, 2**31 - 1, -2**31, 2**31 - 1],
    [0, 2, 0, 4, 0, 2**32 - 1, 0, 4000000000],
    [0, 2, -2, 3, 0, 10**10, -10**10, 4000000000],
]


def run_to_int(module):
    x = runtime.upload(np.array(TO_INT_IN, np.float32))
    outs = [runtime.xp().zeros(8, t) for t in (np.int32, np.int32, np.uint32, np.int64)]
    module.function("to_int")((1,), (8,), (x, *outs, 8))
    return [runtime.download(o).tolist() for o in outs]


def test_float_to_int_intrinsics_saturate_as_on_the_gpu(toy):
    assert run_to_int(toy) == TO_INT_OUT


def test_reverse_order_exposes_a_race(toy, monkeypatch):
    forward, reverse = np.zeros(32, np.float32), np.zeros(32, np.float32)
    toy.function("racy_shift")((1,), (32,), (forward,))
    monkeypatch.setenv("DARKNETPY_GPU_EMULATE_ORDER", "reverse")
    toy.function("racy_shift")((1,), (32,), (reverse,))
    assert forward.tolist() == list(range(1, 32)) + [1]   # only thread 31 reads a new value (thread 0's)
    assert reverse.tolist() == [0] * 32                    # each thread reads its successor's new value


def test_divergent_syncthreads_fails_instead_of_hanging(toy):
    with pytest.raises(RuntimeError, match="different number of times"):
        toy.function("diverge")((2,), (64,), (np.zeros(64, np.float32),))


def test_compile_error_names_the_file_and_gives_gxx_message(sources):
    with pytest.raises(DarknetError, match=r"could not compile .*broken\.cu: .*undefined_name") as info:
        runtime.load_module(str(sources / "broken.cu"))
    assert "\n" not in str(info.value)
    assert "broken.cu:3" in info.value.log


def test_unknown_option_is_refused(sources):
    with pytest.raises(DarknetError, match="does not know the compile option '--bogus'"):
        runtime.load_module(str(sources / "toy.cu"), ("--bogus",))


@pytest.mark.parametrize("kernel", ["halve", "halve_sync"])
def test_ftz_option_flushes_subnormals_and_restores_the_caller(sources, kernel):
    x = np.array([1e-38, 2e-38, 3e-38, 1.0], np.float32)   # 1e-38: a subnormal input (DAZ)
    plain, flushed = np.zeros(4, np.float32), np.zeros(4, np.float32)
    runtime.load_module(str(sources / "toy.cu")).function(kernel)((1,), (4,), (x, plain, 4))
    runtime.load_module(str(sources / "toy.cu"), ("-ftz=true",)).function(kernel)((1,), (4,), (x, flushed, 4))
    assert plain.tolist() == (x * np.float32(0.5)).tolist() and plain[0] != 0 and plain[2] != 0
    assert flushed.tolist() == [0.0, 0.0, float(np.float32(1.5e-38)), 0.5]  # 2e-38 * 0.5: subnormal (FTZ)
    assert np.float32(2e-38) * np.float32(0.5) != 0         # this thread's MXCSR is back as it was


def test_second_load_uses_the_disk_cache(sources, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = tmp_path / "one.cu"
    source.write_text('extern "C" __global__ void one(int* x) { x[threadIdx.x] = 1; }\n')
    module = runtime.load_module(str(source))
    assert runtime.load_module(str(source)) is module
    runtime.clear_cache()

    def no_compile(*args):
        raise AssertionError("compiled again")
    monkeypatch.setattr(emulator, "_compile", no_compile)
    x = np.zeros(3, np.int32)
    runtime.load_module(str(source)).function("one")((1,), (3,), (x,))
    assert x.tolist() == [1, 1, 1]
    assert [p.name for p in (tmp_path / "darknetpy" / "emu").iterdir()] == [
        os.path.basename(emulator.build(str(source), cuda_source.expand_source(str(source)),
                                        {"one": module.kernels["one"]}, module.options))]


def test_two_processes_compiling_at_once_share_one_library(tmp_path):
    source = tmp_path / "race.cu"
    source.write_text('extern "C" __global__ void race(int* x) { x[threadIdx.x] = 7; }\n')
    code = ("import numpy as np; from darknetpy.gpu import runtime; runtime.emulate(True); "
            f"x = np.zeros(2, np.int32); runtime.load_module({str(source)!r}).function('race')((1,), (2,), (x,)); "
            "assert x.tolist() == [7, 7]")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert [p.suffix for p in (tmp_path / "cache" / "darknetpy" / "emu").iterdir()] == [".so"]


def test_kernel_not_extern_c_is_refused(tmp_path):
    source = tmp_path / "mangled.cu"
    source.write_text("__global__ void k(float* x) { x[0] = 1; }\n")
    with pytest.raises(DarknetError, match='extern "C" __global__'):
        runtime.load_module(str(source))


def test_parse_kernels_reads_types_and_skips_comments():
    kernels = cuda_source.parse_kernels(
        '// extern "C" __global__ void commented(int a)\n'
        'extern "C" __global__ void k(const float* __restrict__ x, size_t n,\n'
        '                             unsigned int u, /* float f, */ double d) {}\n')
    assert list(kernels) == ["k"]
    assert [(p.name, np.dtype(p.dtype).name, p.pointer) for p in kernels["k"]] == [
        ("x", "float32", True), ("n", "uint64", False), ("u", "uint32", False), ("d", "float64", False)]


def test_block_kernels_follow_calls():
    source = ("__device__ void leaf() { __syncthreads(); }\n"
              "__device__ void mid() { leaf(); }\n"
              "namespace dm { __device__ float id(float v) { return v; } }\n"
              'extern "C" __global__ void a(float* x) { mid(); }\n'
              'extern "C" __global__ void b(float* x) { x[0] = dm::id(x[0]); }\n')
    assert emulator.block_kernels(source, cuda_source.parse_kernels(source)) == {"a"}
    members = ("struct Tile { float v; __device__ void wait() const { __syncthreads(); } };\n"
               'extern "C" __global__ void c(float* x) { Tile t{x[0]}; t.wait(); }\n')
    assert emulator.block_kernels(members, cuda_source.parse_kernels(members)) == {"c"}


def test_compile_options_defaults_give_way():
    assert runtime.compile_options() == ("-std=c++17", "--fmad=false")
    assert runtime.compile_options(("--fmad=true", "-ftz=true")) == ("-std=c++17", "--fmad=true", "-ftz=true")


def test_xp_empty_upload_download_under_the_emulator():
    assert runtime.xp() is np
    host = np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2]
    dev = runtime.upload(host)
    assert dev.flags.c_contiguous and np.array_equal(dev, host) and not np.shares_memory(dev, host)
    back = runtime.download(dev)
    assert np.array_equal(back, host) and not np.shares_memory(back, dev)
    assert runtime.empty((2, 5)).dtype == np.float32
    runtime.require(0)
    assert "emulator" in runtime.device_name()
    with pytest.raises(DarknetError, match=r"^--gpu 1: no such CUDA device \(the emulator has one, 0\)$"):
        runtime.require(1)


def _fake_cupy(count=None, error=None):
    def get_device_count():
        if error:
            raise error
        return count
    used = []
    cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count),
        Device=lambda i: types.SimpleNamespace(use=lambda: used.append(i)))
    return types.SimpleNamespace(cuda=cuda), used


def test_require_messages(monkeypatch):
    monkeypatch.setattr(runtime, "_emulate_override", False)
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(DarknetError) as info:
        runtime.require(0)
    assert str(info.value) == "--gpu needs CuPy: pip install 'darknet-exact[gpu]'"
    assert not runtime.available()

    fake, used = _fake_cupy(error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(DarknetError) as info:
        runtime.require(0)
    assert str(info.value) == ("--gpu: no usable CUDA device or driver "
                               "(cudaErrorNoDevice: no CUDA-capable device is detected)")

    fake, used = _fake_cupy(count=0)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(DarknetError, match=r"^--gpu: no CUDA device found$"):
        runtime.require(0)

    fake, used = _fake_cupy(count=2)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(DarknetError) as info:
        runtime.require(2)
    assert str(info.value) == "--gpu 2: no such CUDA device (found 2: 0..1)"
    runtime.require(1)
    assert used == [1]


def test_importing_darknetpy_does_not_import_cupy():
    code = ("import sys, darknetpy, darknetpy.backend, darknetpy.gpu, darknetpy.gpu.runtime; "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    env = dict(os.environ, DARKNETPY_GPU_EMULATE="0")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.fixture()
def gpu(monkeypatch):
    """A real CUDA device through CuPy (the emulator off)."""
    monkeypatch.setattr(runtime, "_emulate_override", False)
    if not runtime.available():
        pytest.skip("needs CuPy and a CUDA device")
    runtime.require(0)


@pytest.mark.gpu
def test_gpu_kernels_match_the_emulator(gpu, sources, monkeypatch):
    rng = np.random.default_rng(3)
    n = 5 * 256 + 3
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    a = np.float32(-0.3)
    module = runtime.load_module(str(sources / "toy.cu"))
    dy = runtime.upload(y)
    module.function("saxpy")((6,), (256,), (n, a, runtime.upload(x), dy))
    sums = runtime.empty(6)
    module.function("block_sum")((6,), (256,), (dy, sums, n))
    gpu_y, gpu_sums = runtime.download(dy), runtime.download(sums)
    assert runtime.device_name()

    monkeypatch.setattr(runtime, "_emulate_override", True)
    module = runtime.load_module(str(sources / "toy.cu"))
    module.function("saxpy")((6,), (256,), (n, a, x, y))
    emu_sums = np.zeros(6, np.float32)
    module.function("block_sum")((6,), (256,), (y, emu_sums, n))
    assert gpu_y.tobytes() == y.tobytes() and gpu_sums.tobytes() == emu_sums.tobytes()


@pytest.mark.gpu
def test_gpu_ftz_and_argument_checks(gpu, sources):
    x = runtime.upload(np.array([1e-38, 2e-38, 3e-38, 1.0], np.float32))
    out = runtime.empty(4)
    runtime.load_module(str(sources / "toy.cu"), ("-ftz=true",)).function("halve")((1,), (4,), (x, out, 4))
    assert runtime.download(out).tolist() == [0.0, 0.0, float(np.float32(1.5e-38)), 0.5]
    with pytest.raises(TypeError, match=r"needs a cupy\S*\.ndarray"):
        runtime.load_module(str(sources / "toy.cu")).function("halve")((1,), (4,), (np.zeros(4, np.float32), out, 4))


@pytest.mark.gpu
def test_gpu_float_to_int_intrinsics(gpu, sources):
    assert run_to_int(runtime.load_module(str(sources / "toy.cu"))) == TO_INT_OUT


@pytest.mark.gpu
def test_gpu_compile_error_is_one_line(gpu, sources):
    with pytest.raises(DarknetError, match=r"NVRTC could not compile .*broken\.cu: .*undefined_name") as info:
        runtime.load_module(str(sources / "broken.cu"))
    assert "\n" not in str(info.value)
