// The subset of CUDA C++ that darknetpy's kernels may use, for g++ on the CPU.
//
// The emulator (emulator.py) force-includes this header before a kernel file and
// appends one launcher per kernel (the launch section at the end says how blocks and
// threads run). `__shared__` arrays are function-static and thread_local: a block
// runs whole on one OS thread, so its CUDA threads share them, and blocks running at
// the same time on other OS threads have their own.
//
// Arithmetic is IEEE float/double with round-to-nearest (the build uses
// -ffp-contract=off -fno-fast-math), which is what CUDA's __*_rn intrinsics and
// plain operators compiled with --fmad=false compute.
#pragma once

#include <cassert>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <math.h>
#include <omp.h>

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

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
struct __attribute__((aligned(8))) uint2 { unsigned x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };

static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return {x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
static inline double2 make_double2(double x, double y) { return {x, y}; }

// Per-thread indices; grid and block shapes are set once per launch. They have
// external (hidden) linkage so that the compiler reloads them after a fiber switch.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
static const int warpSize = 32;

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

// Float to integer as the GPU converts (cvt.*.s32/s64/u32): NaN gives 0, values out
// of range saturate. A plain C cast `(int)x` is also saturating on the GPU but gives
// INT_MIN (or garbage for unsigned) on x86: kernels that can meet NaN or out-of-range
// values must not rely on plain casts.
template <typename I>
static inline I darknetpy_to_int(double rounded) {
    if (rounded != rounded) return 0;
    if (rounded <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (rounded >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)rounded;
}
static inline int __float2int_rn(float v) { return darknetpy_to_int<int>(nearbyint((double)v)); }
static inline int __float2int_rz(float v) { return darknetpy_to_int<int>(trunc((double)v)); }
static inline int __float2int_rd(float v) { return darknetpy_to_int<int>(floor((double)v)); }
static inline int __float2int_ru(float v) { return darknetpy_to_int<int>(ceil((double)v)); }
static inline unsigned __float2uint_rn(float v) { return darknetpy_to_int<unsigned>(nearbyint((double)v)); }
static inline unsigned __float2uint_rz(float v) { return darknetpy_to_int<unsigned>(trunc((double)v)); }
static inline int __double2int_rn(double v) { return darknetpy_to_int<int>(nearbyint(v)); }
static inline int __double2int_rz(double v) { return darknetpy_to_int<int>(trunc(v)); }
static inline int __double2int_rd(double v) { return darknetpy_to_int<int>(floor(v)); }
static inline long long __float2ll_rn(float v) { return darknetpy_to_int<long long>(nearbyint((double)v)); }
static inline long long __float2ll_rz(float v) { return darknetpy_to_int<long long>(trunc((double)v)); }
static inline long long __double2ll_rn(double v) { return darknetpy_to_int<long long>(nearbyint(v)); }
static inline long long __double2ll_rz(double v) { return darknetpy_to_int<long long>(trunc(v)); }
static inline long long __double2ll_rd(double v) { return darknetpy_to_int<long long>(floor(v)); }
static inline float __int2float_rn(int v) { return (float)v; }
static inline float __uint2float_rn(unsigned v) { return (float)v; }
static inline float __ll2float_rn(long long v) { return (float)v; }
static inline double __int2double_rn(int v) { return (double)v; }
static inline double __ll2double_rn(long long v) { return (double)v; }
static inline float __double2float_rn(double v) { return (float)v; }
static inline float __saturatef(float v) { return v >= 1.0f ? 1.0f : (v > 0.0f ? v : 0.0f); }

// CUDA's min/max overloads: same-type ones, and mixed signedness or width as CUDA
// promotes them (to the unsigned or wider type; float with double gives double).
#define DARKNETPY_MINMAX(R, A, B)                                         \
    static inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; } \
    static inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
DARKNETPY_MINMAX(int, int, int)
DARKNETPY_MINMAX(unsigned, unsigned, unsigned)
DARKNETPY_MINMAX(unsigned, int, unsigned)
DARKNETPY_MINMAX(unsigned, unsigned, int)
DARKNETPY_MINMAX(long, long, long)
DARKNETPY_MINMAX(unsigned long, unsigned long, unsigned long)
DARKNETPY_MINMAX(long long, long long, long long)
DARKNETPY_MINMAX(unsigned long long, unsigned long long, unsigned long long)
DARKNETPY_MINMAX(unsigned long long, long long, unsigned long long)
DARKNETPY_MINMAX(unsigned long long, unsigned long long, long long)
#undef DARKNETPY_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax(a, b); }
static inline double min(double a, float b) { return fmin(a, b); }
static inline double max(double a, float b) { return fmax(a, b); }

// Fast-math intrinsics, for fast mode only: the GPU's approximations give other bits.
// (__expf, __logf, __log2f, __powf, __sinf, __cosf, __tanf are glibc's own aliases.)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
static inline double rsqrt(double v) { return 1.0 / sqrt(v); }

template <typename T>
static inline T __ldg(const T* p) { return *p; }

static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz((unsigned)v); }
static inline int __ffs(int v) { return __builtin_ffs(v); }

using std::abs;
using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// --- launches: used by the launchers that the emulator generates ---------------------
//
// A kernel that does not synchronise runs as one flat OpenMP loop over all (block,
// thread) pairs. One that does (it can reach __syncthreads or __shared__) runs its
// blocks in an OpenMP loop, each block whole on one OS thread: the block's threads
// are fibers (own stacks, switched by hand) run in order until each has returned or
// reached __syncthreads, then again, until all have returned. (So between two barriers
// a block's threads run one after another in index order: a race there gives one
// fixed answer here and varying ones on a GPU; see DARKNETPY_GPU_EMULATE_ORDER.) A thread that has returned no longer
// counts at a barrier (as on Volta and later), so a divergent __syncthreads cannot
// hang; the launch fails if the threads of a block passed a different number of
// barriers, which CUDA leaves undefined.

#include <sys/mman.h>
#include <unistd.h>
#include <atomic>
#include <mutex>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#ifndef DARKNETPY_EMU_FTZ
#define DARKNETPY_EMU_FTZ 0
#endif

enum { DARKNETPY_OK = 0, DARKNETPY_NO_STACKS = 1, DARKNETPY_DIVERGED = 2, DARKNETPY_FLAT_SYNC = 3 };

// FTZ and DAZ set (the module was compiled with -ftz=true) or cleared, for one OS thread.
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

static inline uint3 darknetpy_index(unsigned long long i, dim3 shape) {
    return uint3{(unsigned)(i % shape.x), (unsigned)(i / shape.x % shape.y), (unsigned)(i / shape.x / shape.y)};
}

#if defined(__x86_64__)
// darknetpy_switch(&save, load): push the callee-saved registers, store the stack
// pointer in *save, load `load` as the stack pointer, pop, return there. MXCSR and
// the x87 control word are not switched: all fibers of an OS thread share them.
extern "C" void darknetpy_switch(void** save, void* load);
asm(".text\n"
    ".globl darknetpy_switch\n"
    ".hidden darknetpy_switch\n"
    ".type darknetpy_switch, @function\n"
    "darknetpy_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size darknetpy_switch, .-darknetpy_switch\n");
#else
#error "the GPU emulator's fibers are written for x86-64"
#endif

struct darknetpy_fiber {
    void* sp;
    long long syncs;
    bool done;
};

// The fibers of the block that an OS thread is running, and their stacks.
struct darknetpy_team {
    static constexpr size_t STACK = 256 * 1024;
    char* stacks = nullptr;
    size_t capacity = 0;
    std::vector<darknetpy_fiber> fibers;
    void* scheduler = nullptr;
    int current = -1;  // -1: not running a block
    void (*run)(const void*) = nullptr;
    const void* kernel = nullptr;

    bool reserve(size_t threads) {
        if (threads <= capacity) return true;
        release();
        void* p = mmap(nullptr, threads * STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return false;
        stacks = (char*)p;
        capacity = threads;
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        for (size_t i = 0; i < threads; ++i) mprotect(stacks + i * STACK, page, PROT_NONE);  // guard
        fibers.resize(threads);
        return true;
    }
    void release() {
        if (stacks) munmap(stacks, capacity * STACK);
        stacks = nullptr;
        capacity = 0;
    }
    ~darknetpy_team() { release(); }
};
inline thread_local darknetpy_team darknetpy_here;
inline std::atomic<bool> darknetpy_flat_sync{false};
// DARKNETPY_GPU_EMULATE_ORDER=reverse runs a block's threads from the last to the
// first between barriers: a kernel whose result changes with it has a race.
inline bool darknetpy_reverse = false;
// One launch at a time per module: the grid and block shapes are globals.
inline std::mutex darknetpy_launch_lock;

static __attribute__((noinline, used)) void darknetpy_fiber_entry() {
    darknetpy_team& team = darknetpy_here;
    team.run(team.kernel);
    darknetpy_fiber& self = team.fibers[team.current];
    self.done = true;
    darknetpy_switch(&self.sp, team.scheduler);
    __builtin_trap();  // a finished fiber is never resumed
}

// A fresh stack whose first switch "returns" into darknetpy_fiber_entry, with the
// stack pointer aligned as right after a call.
static inline void* darknetpy_fiber_stack(char* base, size_t size) {
    uintptr_t top = ((uintptr_t)(base + size)) & ~(uintptr_t)15;
    void** sp = (void**)(top - 16);
    sp[0] = (void*)&darknetpy_fiber_entry;
    sp[1] = nullptr;
    sp -= 6;
    for (int i = 0; i < 6; ++i) sp[i] = nullptr;
    return sp;
}

static inline void __syncthreads() {
    darknetpy_team& team = darknetpy_here;
    if (team.current < 0) {
        darknetpy_flat_sync = true;
        return;
    }
    darknetpy_fiber& self = team.fibers[team.current];
    ++self.syncs;
    darknetpy_switch(&self.sp, team.scheduler);
}

template <typename Kernel>
static void darknetpy_invoke(const void* kernel) { (*(const Kernel*)kernel)(); }

// One block on this OS thread; false if its threads passed different numbers of barriers.
template <typename Kernel>
static bool darknetpy_run_block(darknetpy_team& team, const Kernel& kernel, unsigned long long b) {
    const int threads = (int)(blockDim.x * blockDim.y * blockDim.z);
    blockIdx = darknetpy_index(b, gridDim);
    team.run = &darknetpy_invoke<Kernel>;
    team.kernel = &kernel;
    for (int i = 0; i < threads; ++i)
        team.fibers[i] = {darknetpy_fiber_stack(team.stacks + i * team.STACK, team.STACK), 0, false};
    for (bool live = true; live;) {
        live = false;
        for (int k = 0; k < threads; ++k) {
            const int i = darknetpy_reverse ? threads - 1 - k : k;
            if (team.fibers[i].done) continue;
            team.current = i;
            threadIdx = darknetpy_index(i, blockDim);
            darknetpy_switch(&team.scheduler, team.fibers[i].sp);
            live |= !team.fibers[i].done;
        }
    }
    team.current = -1;
    for (int i = 1; i < threads; ++i)
        if (team.fibers[i].syncs != team.fibers[0].syncs) return false;
    return true;
}

template <typename Kernel>
static int darknetpy_launch_blocks(dim3 grid, dim3 block, Kernel kernel) {
    std::lock_guard<std::mutex> hold(darknetpy_launch_lock);
    gridDim = grid;
    blockDim = block;
    const char* order = getenv("DARKNETPY_GPU_EMULATE_ORDER");
    darknetpy_reverse = order && strcmp(order, "reverse") == 0;
    const long long blocks = (long long)grid.x * grid.y * grid.z;
    std::atomic<int> status{DARKNETPY_OK};
#pragma omp parallel
    {
        darknetpy_fpenv env;
        darknetpy_team& team = darknetpy_here;
        const bool ready = team.reserve((size_t)block.x * block.y * block.z);
        if (!ready) status = DARKNETPY_NO_STACKS;
#pragma omp for schedule(dynamic)
        for (long long b = 0; b < blocks; ++b)
            if (ready && !darknetpy_run_block(team, kernel, (unsigned long long)b)) status = DARKNETPY_DIVERGED;
    }
    return status;
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
    return darknetpy_flat_sync ? DARKNETPY_FLAT_SYNC : DARKNETPY_OK;
}
