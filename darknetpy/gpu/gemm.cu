// The convolution's exact GEMM, C = A * B, with Darknet's arithmetic: each output
// starts from +0.0f and adds A[m][k] * B[k][n] for k = 0, 1, ..., K-1 in that order,
// the product and the sum each rounded to float (__fmul_rn then __fadd_rn: never
// contracted into an FMA, whatever --fmad says).
//
// One block computes a BM x BN tile of C with 256 threads (64 for 32x32); each keeps a
// TM x TN tile of accumulators in registers for the whole k loop, so every output's
// k order is trivially sequential. A and B go through shared memory in slices of
// BK = 8 or 16 values of k, double-buffered: the next slice is read from global memory
// into registers while the current one is used, then stored to the other buffer
// (one barrier per slice). The last slice stops at K exactly, so every output gets
// exactly K products.
//
// B is either a matrix (gemm_exact_nn_*: im2col's output, or the input itself for a
// 1x1 convolution) or read straight from the image with im2col's index math
// (conv_exact_im2col_*: no workspace; padding taps are 0.0f, as im2col writes).
// See gemm.py's docstring for launch shapes and the performance model.

#define APAD 4

// A B source gives each thread the B values of one column n, at k, k + rows, ...,
// k + (L-1)*rows of the current slice (fetch), then moves k on by one slice
// (advance). Values past K or N are 0.0f and never used.

struct MatrixSource {
    const float* b;
    int ldb, K, N;
    const float* col;
    int k, rows, slice;
    bool valid;

    __device__ __forceinline__ void column(int n, int k0, int rows_, int slice_)
    {
        valid = n < N;
        col = b + (valid ? n : 0);
        k = k0;
        rows = rows_;
        slice = slice_;
    }

    template <int L>
    __device__ __forceinline__ void fetch(float (&r)[L]) const
    {
#pragma unroll
        for (int i = 0; i < L; ++i) {
            int kk = k + i * rows;
            r[i] = (valid && kk < K) ? col[(long long)kk * ldb] : 0.0f;
        }
    }

    __device__ __forceinline__ void advance() { k += slice; }
};

// A row k of the im2col matrix: channel, ky, kx (k = (ch*size + ky)*size + kx).
struct Tap {
    int ch, ky, kx;
};

// B read from the image: row k, column n of im2col's matrix is pixel
// (ch, y*stride + ky - pad, x*stride + kx - pad) of the image, n = y*out_w + x, or 0.0f
// outside it. The taps are stepped without divisions (only column() divides).
struct ImageSource {
    const float* im;
    int h, w, size, stride, pad, out_w, K, N;
    int iy0, ix0, k, rows, slice;
    bool valid;
    Tap at, row_step, slice_step;

    __device__ __forceinline__ Tap split(int kk) const
    {
        int taps = size * size;
        int ch = kk / taps;
        int r = kk - ch * taps;
        int ky = r / size;
        return Tap{ch, ky, r - ky * size};
    }

    // t += d, d a split() step: each digit carries at most once
    __device__ __forceinline__ void step(Tap& t, const Tap& d) const
    {
        t.kx += d.kx;
        if (t.kx >= size) {
            t.kx -= size;
            ++t.ky;
        }
        t.ky += d.ky;
        if (t.ky >= size) {
            t.ky -= size;
            ++t.ch;
        }
        t.ch += d.ch;
    }

    __device__ __forceinline__ void column(int n, int k0, int rows_, int slice_)
    {
        valid = n < N;
        int y = n / out_w;
        iy0 = y * stride - pad;
        ix0 = (n - y * out_w) * stride - pad;
        k = k0;
        rows = rows_;
        slice = slice_;
        at = split(k0);
        row_step = split(rows_);
        slice_step = split(slice_);
    }

    __device__ __forceinline__ float load(const Tap& t, int kk) const
    {
        int iy = iy0 + t.ky;
        int ix = ix0 + t.kx;
        if (!valid || kk >= K || (unsigned)iy >= (unsigned)h || (unsigned)ix >= (unsigned)w)
            return 0.0f;
        return im[((long long)t.ch * h + iy) * w + ix];
    }

    template <int L>
    __device__ __forceinline__ void fetch(float (&r)[L]) const
    {
        Tap t = at;
#pragma unroll
        for (int i = 0; i < L; ++i) {
            r[i] = load(t, k + i * rows);
            if (i + 1 < L)
                step(t, row_step);
        }
    }

    __device__ __forceinline__ void advance()
    {
        k += slice;
        step(at, slice_step);
    }
};

// Row (or column) of a thread's i-th output inside the tile: TM/4 runs of 4
// consecutive rows, BM/(TM/4) apart, so each run is one 128-bit shared load.
template <int B, int T>
__device__ __forceinline__ int tile_offset(int t, int i)
{
    constexpr int V = T < 4 ? T : 4;
    return (i / V) * (B / (T / V)) + t * V + i % V;
}

// One value of k: every accumulator of the thread gets one product, rounded, then
// one rounded sum.
template <int BM, int BN, int TM, int TN>
__device__ __forceinline__ void exact_step(float (&acc)[TM][TN], const float* as, const float* bs,
                                           int tx, int ty)
{
    float ar[TM], br[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
        ar[i] = as[tile_offset<BM, TM>(ty, i)];
#pragma unroll
    for (int j = 0; j < TN; ++j)
        br[j] = bs[tile_offset<BN, TN>(tx, j)];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
            acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(ar[i], br[j]));
}

template <int BM, int BN, int TM, int TN, int BK, class Source>
__device__ __forceinline__ void exact_block(int M, int N, int K, const float* __restrict__ a, int lda,
                                            Source src, float* __restrict__ c, int ldc,
                                            float (*as)[BK][BM + APAD], float (*bs)[BK][BN])
{
    constexpr int NT = (BM / TM) * (BN / TN);  // threads: one TM x TN tile each
    static_assert(BM * BK % NT == 0 && NT % BN == 0, "whole loads per thread");
    constexpr int AL = BM * BK / NT;
    constexpr int BL = BN * BK / NT;
    constexpr int AROWS = NT / BK;
    constexpr int BROWS = NT / BN;
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int ak = tid % BK, am = tid / BK;
    const int bn = tid % BN, bk = tid / BN;
    src.column(n0 + bn, bk, BROWS, BK);
    // this thread's A values: rows am + i*AROWS (those below M), column ak of each slice
    const int arows = M - m0 - am;
    const float* ap = a + (long long)(arows > 0 ? m0 + am : 0) * lda + ak;
    const long long astep = (long long)AROWS * lda;
    float ra[AL], rb[BL];
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0.0f;

    const int tiles = (K + BK - 1) / BK;
#pragma unroll
    for (int i = 0; i < AL; ++i)
        ra[i] = (i * AROWS < arows && ak < K) ? ap[i * astep] : 0.0f;
    src.fetch(rb);
#pragma unroll
    for (int i = 0; i < AL; ++i)
        as[0][ak][am + i * AROWS] = ra[i];
#pragma unroll
    for (int i = 0; i < BL; ++i)
        bs[0][bk + i * BROWS][bn] = rb[i];
    __syncthreads();

    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) {
            const int k1 = (t + 1) * BK;
#pragma unroll
            for (int i = 0; i < AL; ++i)
                ra[i] = (i * AROWS < arows && k1 + ak < K) ? ap[i * astep + k1] : 0.0f;
            src.advance();
            src.fetch(rb);
        }
        const int kn = K - t * BK < BK ? K - t * BK : BK;
        if (kn == BK) {
#pragma unroll
            for (int kk = 0; kk < BK; ++kk)
                exact_step<BM, BN, TM, TN>(acc, as[cur][kk], bs[cur][kk], tx, ty);
        } else {
            for (int kk = 0; kk < kn; ++kk)
                exact_step<BM, BN, TM, TN>(acc, as[cur][kk], bs[cur][kk], tx, ty);
        }
        if (more) {
#pragma unroll
            for (int i = 0; i < AL; ++i)
                as[cur ^ 1][ak][am + i * AROWS] = ra[i];
#pragma unroll
            for (int i = 0; i < BL; ++i)
                bs[cur ^ 1][bk + i * BROWS][bn] = rb[i];
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        int m = m0 + tile_offset<BM, TM>(ty, i);
        if (m >= M)
            continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            int n = n0 + tile_offset<BN, TN>(tx, j);
            if (n < N)
                c[(long long)m * ldc + n] = acc[i][j];
        }
    }
}

// The tile shapes of gemm.py's CONFIGS: BM x BN per block, TM x TN per thread, slices
// of BK (16 for the small tiles, whose per-slice loads weigh more).

extern "C" __global__ void __launch_bounds__(256, 2)
gemm_exact_nn_128x128(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                      float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][128 + APAD];
    alignas(16) __shared__ float bs[2][8][128];
    MatrixSource src{b, ldb, K, N};
    exact_block<128, 128, 8, 8, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256, 2)
conv_exact_im2col_128x128(int M, int N, int K, const float* a, int lda, const float* im, int h,
                          int w, int size, int stride, int pad, int out_w, float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][128 + APAD];
    alignas(16) __shared__ float bs[2][8][128];
    ImageSource src{im, h, w, size, stride, pad, out_w, K, N};
    exact_block<128, 128, 8, 8, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_exact_nn_128x64(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                     float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][128 + APAD];
    alignas(16) __shared__ float bs[2][8][64];
    MatrixSource src{b, ldb, K, N};
    exact_block<128, 64, 8, 4, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
conv_exact_im2col_128x64(int M, int N, int K, const float* a, int lda, const float* im, int h,
                         int w, int size, int stride, int pad, int out_w, float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][128 + APAD];
    alignas(16) __shared__ float bs[2][8][64];
    ImageSource src{im, h, w, size, stride, pad, out_w, K, N};
    exact_block<128, 64, 8, 4, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_exact_nn_64x64(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                    float* c, int ldc)
{
    alignas(16) __shared__ float as[2][16][64 + APAD];
    alignas(16) __shared__ float bs[2][16][64];
    MatrixSource src{b, ldb, K, N};
    exact_block<64, 64, 4, 4, 16>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
conv_exact_im2col_64x64(int M, int N, int K, const float* a, int lda, const float* im, int h,
                        int w, int size, int stride, int pad, int out_w, float* c, int ldc)
{
    alignas(16) __shared__ float as[2][16][64 + APAD];
    alignas(16) __shared__ float bs[2][16][64];
    ImageSource src{im, h, w, size, stride, pad, out_w, K, N};
    exact_block<64, 64, 4, 4, 16>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_exact_nn_32x128(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                     float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][32 + APAD];
    alignas(16) __shared__ float bs[2][8][128];
    MatrixSource src{b, ldb, K, N};
    exact_block<32, 128, 2, 8, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(256)
conv_exact_im2col_32x128(int M, int N, int K, const float* a, int lda, const float* im, int h,
                         int w, int size, int stride, int pad, int out_w, float* c, int ldc)
{
    alignas(16) __shared__ float as[2][8][32 + APAD];
    alignas(16) __shared__ float bs[2][8][128];
    ImageSource src{im, h, w, size, stride, pad, out_w, K, N};
    exact_block<32, 128, 2, 8, 8>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(64)
gemm_exact_nn_32x32(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                    float* c, int ldc)
{
    alignas(16) __shared__ float as[2][16][32 + APAD];
    alignas(16) __shared__ float bs[2][16][32];
    MatrixSource src{b, ldb, K, N};
    exact_block<32, 32, 4, 4, 16>(M, N, K, a, lda, src, c, ldc, as, bs);
}

extern "C" __global__ void __launch_bounds__(64)
conv_exact_im2col_32x32(int M, int N, int K, const float* a, int lda, const float* im, int h,
                        int w, int size, int stride, int pad, int out_w, float* c, int ldc)
{
    alignas(16) __shared__ float as[2][16][32 + APAD];
    alignas(16) __shared__ float bs[2][16][32];
    ImageSource src{im, h, w, size, stride, pad, out_w, K, N};
    exact_block<32, 32, 4, 4, 16>(M, N, K, a, lda, src, c, ldc, as, bs);
}
