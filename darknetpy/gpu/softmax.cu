// Darknet's softmax() in its two builds, as darknetpy/cpu/softmax.py computes it, one
// thread per softmax. Every operation goes through darknet_math.cuh (x86 NaN results,
// FTZ/DAZ by hand when ftz), so this compiles without -ftz and agrees with the emulator.
//
// vector (the stock -Ofast build): z = (x - max) * (1/temp); with n >= 11 the first
// 4*(n/4) exponentials are libmvec lanes summed in four interleaved partial sums,
// combined as (s0 + s2) + (s1 + s3), the rest glibc expf added in order; below 11
// everything is expf summed in order; then e * (1/sum).
// Otherwise (no fast-math): e = (float)exp((double)(x/temp - max/temp)), e / sum.
// Fused multiply-adds occur only inside dn_exp and dn_expf (glibc's FMA builds use them).
// darknetpy: allow-fma softmax_groups softmax_tree softmax_stock_tree

#include "darknet_math.cuh"

#define DN_FLT_MAX 3.40282346638528859811704183484516925e+38f

__device__ __forceinline__ float dn_softmax_exp(const float* x, long long i, float largest, float inv_t,
                                                bool lane, bool ftz)
{
    float z = dn_mul(dn_sub(x[i], largest, ftz), inv_t, ftz);
    return lane ? dn_vector_expf(z, ftz) : dn_expf(z, ftz);
}

// Darknet's softmax(x + xo, n, temp, stride, out + oo).
__device__ void dn_softmax(const float* x, long long xo, int n, float temp, long long stride, float* out,
                           long long oo, bool vector, bool ftz)
{
    float largest = -DN_FLT_MAX;
    for (int i = 0; i < n; i++) {
        float v = x[xo + i * stride];
        if (dn_gt(v, largest, ftz))
            largest = v;
    }
    if (!vector) {
        float total = 0.0f;
        float top = dn_div(largest, temp, ftz);
        for (int i = 0; i < n; i++) {
            float z = dn_sub(dn_div(x[xo + i * stride], temp, ftz), top, ftz);
            float e = dn_narrow(dn_exp(dn_widen(z, ftz), ftz), ftz);
            out[oo + i * stride] = e;
            total = dn_add(total, e, ftz);
        }
        for (int i = 0; i < n; i++)
            out[oo + i * stride] = dn_div(out[oo + i * stride], total, ftz);
        return;
    }
    float inv_t = dn_div(1.0f, temp, ftz);
    float total = 0.0f;
    int body = 0;
    if (n >= 11) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        body = n - n % 4;
        for (int i = 0; i < body; i += 4) {
            float e0 = dn_softmax_exp(x, xo + i * stride, largest, inv_t, true, ftz);
            float e1 = dn_softmax_exp(x, xo + (i + 1) * stride, largest, inv_t, true, ftz);
            float e2 = dn_softmax_exp(x, xo + (i + 2) * stride, largest, inv_t, true, ftz);
            float e3 = dn_softmax_exp(x, xo + (i + 3) * stride, largest, inv_t, true, ftz);
            out[oo + i * stride] = e0;
            out[oo + (i + 1) * stride] = e1;
            out[oo + (i + 2) * stride] = e2;
            out[oo + (i + 3) * stride] = e3;
            s0 = dn_add(s0, e0, ftz);
            s1 = dn_add(s1, e1, ftz);
            s2 = dn_add(s2, e2, ftz);
            s3 = dn_add(s3, e3, ftz);
        }
        total = dn_add(dn_add(s0, s2, ftz), dn_add(s1, s3, ftz), ftz);
    }
    for (int i = body; i < n; i++) {
        float e = dn_softmax_exp(x, xo + i * stride, largest, inv_t, false, ftz);
        out[oo + i * stride] = e;
        total = dn_add(total, e, ftz);
    }
    float inv_sum = dn_div(1.0f, total, ftz);
    for (int i = 0; i < n; i++)
        out[oo + i * stride] = dn_mul(out[oo + i * stride], inv_sum, ftz);
}

// Darknet's softmax_cpu: one softmax per (batch b, group g) at b*batch_offset + g*group_offset.
extern "C" __global__ void softmax_groups(const float* x, int n, int batch, int batch_offset, int groups,
                                          int group_offset, int stride, float temp, float* out, int vector,
                                          int ftz)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)batch * groups)
        return;
    long long b = t / groups, g = t % groups;
    long long o = b * batch_offset + g * group_offset;
    dn_softmax(x, o, n, temp, stride, out, o, vector != 0, ftz != 0);
}

// The tree softmax as Darknet's GPU build lays it out: per block b of `inputs` floats, tree
// group g and location s, a softmax over group_size[g] entries from
// base + b*inputs + group_offset[g]*spatial + s, stride spatial.
extern "C" __global__ void softmax_tree(const float* x, int base, int spatial, int batch, int inputs,
                                        const int* group_offset, const int* group_size, int groups, float temp,
                                        float* out, int vector, int ftz)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)batch * groups * spatial)
        return;
    long long s = t % spatial, g = t / spatial % groups, b = t / spatial / groups;
    long long o = base + b * inputs + (long long)group_offset[g] * spatial + s;
    dn_softmax(x, o, group_size[g], temp, spatial, out, o, vector != 0, ftz != 0);
}

// Darknet's CPU tree branch (stock build): for each tree group i in order, softmax_cpu over
// `cells` softmaxes of group_size[i] entries from count + c, stride cells, where count
// starts at `first` and grows by each group's size (not scaled by cells), temperature 0.
// The softmaxes of one group are disjoint; those of later groups overwrite earlier ones, so
// groups run in order, separated by barriers, in one block (a launch of grid 1).
extern "C" __global__ void softmax_stock_tree(const float* x, int first, int cells, const int* group_size,
                                              int groups, float* out, int vector, int ftz)
{
    long long count = first;
    for (int i = 0; i < groups; i++) {
        int n = group_size[i];
        for (int c = threadIdx.x; c < cells; c += blockDim.x)
            dn_softmax(x, count + c, n, 0.0f, cells, out, count + c, vector != 0, ftz != 0);
        count += n;
        __syncthreads();
    }
}
