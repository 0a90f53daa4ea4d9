// The subset of CUDA C++ that darknetpy's kernels may use, for g++ on the CPU.
//
// The emulator (emulator.py) force-includes this header before a kernel file and
// appends one launcher per kernel. Blocks run one after another; a block's threads
// are OpenMP threads (kernels that synchronise) or iterations of a flat parallel
// loop (kernels that do not). Because only one block runs at a time, `__shared__`
// arrays can be function-static: every thread of the running block sees the same
// array, and the next block reuses it after a barrier, as on the GPU.
//
// Arithmetic is IEEE float/double with round-to-nearest (the build uses
// -ffp-contract=off -fno-fast-math), which is what CUDA's __*_rn intrinsics and
// plain operators compiled with --fmad=false compute.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>
#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(16))) double2 { double x, y; };

static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return {x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
static inline double2 make_double2(double x, double y) { return {x, y}; }

// Per-thread indices; grid and block shapes are set once per launch.
static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static const int warpSize = 32;

// The barrier of the running block. Threads that have finished the kernel no longer
// count (as on Volta and later), so a divergent __syncthreads cannot hang; each thread
// counts the barriers it passed, and the launch fails if the counts of a block differ.
struct darknetpy_block_barrier {
    std::mutex lock;
    std::condition_variable wake;
    int live = 0, waiting = 0, finished = 0;
    long long first_count = -1;
    unsigned long long generation = 0;
    bool diverged = false;

    void start(int threads) {
        live = threads;
        waiting = finished = 0;
        first_count = -1;
    }
    void release() {
        waiting = 0;
        ++generation;
        wake.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> hold(lock);
        const unsigned long long gen = generation;
        if (++waiting == live) {
            release();
        } else {
            wake.wait(hold, [&] { return generation != gen; });
        }
    }
    void finish(long long count) {
        std::lock_guard<std::mutex> hold(lock);
        if (first_count < 0) first_count = count;
        if (count != first_count) diverged = true;
        --live;
        if (waiting > 0 && waiting == live) release();
    }
};
static darknetpy_block_barrier darknetpy_barrier;
static thread_local long long darknetpy_syncs = -1;  // -1: not in a block-mode launch
static std::atomic<bool> darknetpy_flat_sync{false};

static inline void __syncthreads() {
    if (darknetpy_syncs < 0) {
        darknetpy_flat_sync = true;
        return;
    }
    ++darknetpy_syncs;
    darknetpy_barrier.wait();
}

static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __drcp_rn(double a) { return 1.0 / a; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }

template <typename To, typename From>
static inline To darknetpy_bits(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between different sizes");
    To out;
    std::memcpy(&out, &v, sizeof out);
    return out;
}
static inline float __int_as_float(int v) { return darknetpy_bits<float>(v); }
static inline float __uint_as_float(unsigned v) { return darknetpy_bits<float>(v); }
static inline int __float_as_int(float v) { return darknetpy_bits<int>(v); }
static inline unsigned __float_as_uint(float v) { return darknetpy_bits<unsigned>(v); }
static inline long long __double_as_longlong(double v) { return darknetpy_bits<long long>(v); }
static inline double __longlong_as_double(long long v) { return darknetpy_bits<double>(v); }
static inline int __double2hiint(double v) { return (int)(__double_as_longlong(v) >> 32); }
static inline int __double2loint(double v) { return (int)(unsigned)__double_as_longlong(v); }
static inline double __hiloint2double(int hi, int lo) {
    return __longlong_as_double((long long)(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo));
}

static inline int __float2int_rn(float v) { return (int)nearbyintf(v); }
static inline int __float2int_rz(float v) { return (int)v; }
static inline int __float2int_rd(float v) { return (int)floorf(v); }
static inline int __float2int_ru(float v) { return (int)ceilf(v); }
static inline int __double2int_rn(double v) { return (int)nearbyint(v); }
static inline int __double2int_rz(double v) { return (int)v; }
static inline float __int2float_rn(int v) { return (float)v; }
static inline float __double2float_rn(double v) { return (float)v; }
static inline float __saturatef(float v) { return v >= 1.0f ? 1.0f : (v > 0.0f ? v : 0.0f); }

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }

template <typename T>
static inline T __ldg(const T* p) { return *p; }

static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz((unsigned)v); }
static inline int __ffs(int v) { return __builtin_ffs(v); }

// --- launches (used by the launchers the emulator generates) -------------------------

#ifndef DARKNETPY_EMU_FTZ
#define DARKNETPY_EMU_FTZ 0
#endif

// FTZ and DAZ set (the module was compiled with -ftz=true) or cleared for one thread.
struct darknetpy_fpenv {
#if defined(__x86_64__) || defined(__i386__)
    unsigned saved;
    darknetpy_fpenv() : saved(_mm_getcsr()) {
        _mm_setcsr(DARKNETPY_EMU_FTZ ? (saved | 0x8040u) : (saved & ~0x8040u));
    }
    ~darknetpy_fpenv() { _mm_setcsr(saved); }
#else
    static_assert(!DARKNETPY_EMU_FTZ, "-ftz=true is emulated on x86 only");
#endif
};

// One launch at a time per module: the grid globals and __shared__ statics are shared.
static std::mutex darknetpy_launch_lock;

static inline uint3 darknetpy_index(unsigned long long i, dim3 shape) {
    return uint3{(unsigned)(i % shape.x), (unsigned)(i / shape.x % shape.y), (unsigned)(i / shape.x / shape.y)};
}

template <typename Kernel>
static int darknetpy_launch_flat(dim3 grid, dim3 block, Kernel kernel) {
    std::lock_guard<std::mutex> hold(darknetpy_launch_lock);
    gridDim = grid;
    blockDim = block;
    darknetpy_flat_sync = false;
    const long long threads = (long long)block.x * block.y * block.z;
    const long long total = threads * grid.x * grid.y * grid.z;
#pragma omp parallel
    {
        darknetpy_fpenv env;
#pragma omp for schedule(static)
        for (long long i = 0; i < total; ++i) {
            blockIdx = darknetpy_index(i / threads, grid);
            threadIdx = darknetpy_index(i % threads, block);
            kernel();
        }
    }
    return darknetpy_flat_sync ? 3 : 0;
}

template <typename Kernel>
static int darknetpy_launch_blocks(dim3 grid, dim3 block, Kernel kernel) {
    std::lock_guard<std::mutex> hold(darknetpy_launch_lock);
    gridDim = grid;
    blockDim = block;
    const int threads = (int)(block.x * block.y * block.z);
    const long long blocks = (long long)grid.x * grid.y * grid.z;
    const int dynamic = omp_get_dynamic();
    omp_set_dynamic(0);
    bool short_team = false;
    darknetpy_barrier.diverged = false;
    darknetpy_barrier.start(threads);
#pragma omp parallel num_threads(threads)
    {
        if (omp_get_num_threads() != threads) {
#pragma omp single
            short_team = true;
        } else {
            darknetpy_fpenv env;
            threadIdx = darknetpy_index(omp_get_thread_num(), block);
            for (long long b = 0; b < blocks; ++b) {
                blockIdx = darknetpy_index(b, grid);
                darknetpy_syncs = 0;
                kernel();
                darknetpy_barrier.finish(darknetpy_syncs);
#pragma omp barrier
#pragma omp single
                darknetpy_barrier.start(threads);
            }
            darknetpy_syncs = -1;
        }
    }
    omp_set_dynamic(dynamic);
    if (short_team) return 1;
    return darknetpy_barrier.diverged ? 2 : 0;
}

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;
