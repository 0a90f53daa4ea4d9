// The convolution's epilogue (batch norm or bias, then the activation) and Darknet's
// activations, with darknetpy/cpu/activations.py's arithmetic step for step: a float
// input, C's promotions to double, glibc's exp (dn_exp), one rounding back to float.
//
// ftz reproduces the stock -Ofast build, whose MXCSR has DAZ and FTZ set: every SSE
// operation (float or double arithmetic, conversion, comparison) reads a subnormal
// operand as zero and writes a tiny result as zero. Each operation goes through Sse,
// which uses darknet_math.cuh's x86 operations (DAZ/FTZ by hand, x86's NaN results),
// so the kernels are compiled without -ftz and the GPU and the emulator agree. A value
// only passed through (LINEAR, HARDTAN's middle) is not an operation: it is not flushed.
//
// The exact kernels contain fused multiply-adds only inside dn_exp (glibc's FMA build
// of exp does them); epilogue_fast is fast mode's: single precision, fmaf, CUDA's expf.
// darknetpy: allow-fma activate_array batchnorm_bias_activate epilogue_fast

#include "darknet_math.cuh"

// Darknet's ACTIVATION enum order (darknetpy.cpu.activations.CODES; a test checks).
enum Activation { LOGISTIC, RELU, RELIE, LINEAR, RAMP, TANH, PLSE, LEAKY, ELU, LOGGY, STAIR, HARDTAN,
                  LHTAN, SELU };

// One x86 SSE operation each, under FTZ/DAZ when ftz.
struct Sse {
    bool ftz;

    __device__ __forceinline__ float add(float a, float b) const { return dn_add(a, b, ftz); }
    __device__ __forceinline__ float sub(float a, float b) const { return dn_sub(a, b, ftz); }
    __device__ __forceinline__ float mul(float a, float b) const { return dn_mul(a, b, ftz); }
    __device__ __forceinline__ double add(double a, double b) const { return dn_add(a, b, ftz); }
    __device__ __forceinline__ double sub(double a, double b) const { return dn_sub(a, b, ftz); }
    __device__ __forceinline__ double mul(double a, double b) const { return dn_mul(a, b, ftz); }
    __device__ __forceinline__ double div(double a, double b) const { return dn_div(a, b, ftz); }
    __device__ __forceinline__ double exp_(double a) const { return dn_exp(a, ftz); }
    __device__ __forceinline__ double wide(float x) const { return dn_widen(x, ftz); }
    __device__ __forceinline__ float narrow(double x) const { return dn_narrow(x, ftz); }
    // comparisons read subnormal operands as zero
    __device__ __forceinline__ float cmp(float x) const { return dn_daz(x, ftz); }

    // sqrtsd: a NaN keeps its payload, a negative operand gives the default NaN
    __device__ __forceinline__ double sqrt_(double a) const
    {
        a = dn_daz(a, ftz);
        if (dn_isnan(a))
            return dn_quiet(a);
        return a < 0.0 ? dn_double(DN_DEFAULT_NAN) : sqrt(a);
    }
};

// floor(v) as an int64, as x86's cvttsd2si gives it: INT64_MIN for NaN or out of range
// (a GPU's conversion saturates instead).
__device__ __forceinline__ long long x86_floor_int(double v)
{
    double f = floor(v);
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
        return (long long)(-9223372036854775807LL - 1);
    return (long long)f;
}

__device__ __forceinline__ float activate(float x, int a, Sse s)
{
    switch (a) {
    case LINEAR:
        return x;
    case LEAKY:
        return s.cmp(x) > 0.0f ? x : s.narrow(s.mul(0.1, s.wide(x)));
    case LOGISTIC:
        return s.narrow(s.div(1.0, s.add(1.0, s.exp_(dn_neg(s.wide(x))))));
    case RELU:
        return s.mul(x, s.cmp(x) > 0.0f ? 1.0f : 0.0f);
    case RELIE:
        return s.cmp(x) > 0.0f ? x : s.narrow(s.mul(0.01, s.wide(x)));
    case RAMP:
        return s.narrow(s.add(s.wide(s.mul(x, s.cmp(x) > 0.0f ? 1.0f : 0.0f)), s.mul(0.1, s.wide(x))));
    case TANH: {
        double e = s.exp_(s.wide(s.mul(2.0f, x)));
        return s.narrow(s.div(s.sub(e, 1.0), s.add(e, 1.0)));
    }
    case PLSE:
        if (s.cmp(x) < -4.0f)
            return s.narrow(s.mul(0.01, s.wide(s.add(x, 4.0f))));
        if (s.cmp(x) > 4.0f)
            return s.narrow(s.add(s.mul(0.01, s.wide(s.sub(x, 4.0f))), 1.0));
        return s.narrow(s.add(s.mul(0.125, s.wide(x)), 0.5));
    case ELU: {
        float ge = s.cmp(x) >= 0.0f ? 1.0f : 0.0f;
        double lt = s.cmp(x) < 0.0f ? 1.0 : 0.0;
        return s.narrow(s.add(s.wide(s.mul(ge, x)), s.mul(lt, s.sub(s.exp_(s.wide(x)), 1.0))));
    }
    case SELU: {
        double ge = s.cmp(x) >= 0.0f ? 1.0 : 0.0;
        double lt = s.cmp(x) < 0.0f ? 1.0 : 0.0;
        double pos = s.mul(s.mul(ge, 1.0507), s.wide(x));
        double neg = s.mul(s.mul(s.mul(lt, 1.0507), 1.6732), s.sub(s.exp_(s.wide(x)), 1.0));
        return s.narrow(s.add(pos, neg));
    }
    case LOGGY:
        return s.narrow(s.sub(s.div(2.0, s.add(1.0, s.exp_(dn_neg(s.wide(x))))), 1.0));
    case STAIR: {
        // Numba's math.floor returns an int64: both floors are integers here
        long long n = x86_floor_int(s.wide(x));
        long long half = x86_floor_int(s.div(s.wide(x), 2.0));
        if ((n & 1) == 0)
            return (float)half;
        return s.narrow(s.add(s.wide(s.sub(x, (float)n)), (double)half));
    }
    case HARDTAN:
        if (s.cmp(x) < -1.0f)
            return -1.0f;
        if (s.cmp(x) > 1.0f)
            return 1.0f;
        return x;
    case LHTAN:
        if (s.cmp(x) < 0.0f)
            return s.narrow(s.mul(0.001, s.wide(x)));
        if (s.cmp(x) > 1.0f)
            return s.narrow(s.add(s.mul(0.001, s.wide(s.sub(x, 1.0f))), 1.0));
        return x;
    }
    return x;
}

extern "C" __global__ void activate_array(float* x, long long n, int a, int ftz)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = activate(x[i], a, Sse{ftz != 0});
}

// out (filters, spatial); block row blockIdx.y is filter f.
extern "C" __global__ void batchnorm_bias_activate(float* out, int spatial, const float* mean,
                                                   const float* variance, const float* scales,
                                                   const float* biases, int use_bn, int a, int ftz)
{
    const int f = blockIdx.y;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= spatial)
        return;
    const Sse s{ftz != 0};
    float* p = out + (long long)f * spatial + i;
    float y;
    if (use_bn) {
        const double eps = (double)1e-6f;
        double d = s.add(s.sqrt_(s.wide(variance[f])), eps);
        float t = s.sub(*p, mean[f]);
        // the stock -Ofast build (ftz) normalises 4 elements at a time by multiplying by the
        // double reciprocal, and divides only the last spatial % 4 of each channel; the
        // reciprocal is the first operand, as in the CPU twin's code (x86 keeps the first
        // operand's payload when both are NaN)
        bool vector = ftz && i < (spatial & ~3);
        double q = vector ? s.mul(s.div(1.0, d), s.wide(t)) : s.div(s.wide(t), d);
        y = s.add(s.mul(s.narrow(q), scales[f]), biases[f]);
    } else {
        y = s.add(*p, biases[f]);
    }
    *p = activate(y, a, s);
}

__device__ __forceinline__ float activate_fast(float x, int a)
{
    switch (a) {
    case LINEAR:
        return x;
    case LEAKY:
        return x > 0.0f ? x : 0.1f * x;
    case LOGISTIC:
        return 1.0f / (1.0f + expf(-x));
    case RELU:
        return x > 0.0f ? x : 0.0f;
    case RELIE:
        return x > 0.0f ? x : 0.01f * x;
    case RAMP:
        return fmaf(0.1f, x, x > 0.0f ? x : 0.0f);
    case TANH:
        return tanhf(x);
    case ELU:
        return x >= 0.0f ? x : expf(x) - 1.0f;
    case SELU:
        return x >= 0.0f ? 1.0507f * x : 1.0507f * 1.6732f * (expf(x) - 1.0f);
    case LOGGY:
        return 2.0f / (1.0f + expf(-x)) - 1.0f;
    }
    return activate(x, a, Sse{false});
}

// Fast mode's epilogue: the batch norm folded into one multiply-add per element.
extern "C" __global__ void epilogue_fast(float* out, int spatial, const float* mean, const float* variance,
                                         const float* scales, const float* biases, int use_bn, int a)
{
    const int f = blockIdx.y;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= spatial)
        return;
    float* p = out + (long long)f * spatial + i;
    float y;
    if (use_bn) {
        float k = scales[f] / (sqrtf(variance[f]) + 1e-6f);
        y = fmaf(*p - mean[f], k, biases[f]);
    } else {
        y = *p + biases[f];
    }
    *p = activate_fast(y, a);
}
