// maxpool and avgpool as darknetpy/cpu/pool.py computes them; ftz reproduces the stock
// build's DAZ/FTZ by hand (darknet_math.cuh), so this compiles without -ftz.

#include "darknet_math.cuh"

#define DN_FLT_MAX 3.40282346638528859811704183484516925e+38f

// One thread per output (k, i, j) of x (c, h, w) -> out (c, out_h, out_w), window origin
// `offset`. Taps outside the image are skipped (not visited: a window can be far larger than
// the image); a tap replaces the running maximum (which starts at -FLT_MAX) only when
// strictly greater, so NaN taps are passed over; under DAZ a subnormal compares as zero but
// is stored as it is.
extern "C" __global__ void maxpool(const float* x, int c, int h, int w, int size, int stride, int offset,
                                   float* out, int out_h, int out_w, int ftz)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)c * out_h * out_w)
        return;
    int j = (int)(t % out_w);
    int i = (int)(t / out_w % out_h);
    long long k = t / out_w / out_h;
    float best = -DN_FLT_MAX;
    long long y0 = (long long)offset + (long long)i * stride, x0 = (long long)offset + (long long)j * stride;
    long long y1 = y0 + size < h ? y0 + size : h, x1 = x0 + size < w ? x0 + size : w;
    for (long long y = y0 > 0 ? y0 : 0; y < y1; y++) {
        for (long long xx = x0 > 0 ? x0 : 0; xx < x1; xx++) {
            float v = x[(k * h + y) * w + xx];
            if (dn_gt(v, best, ftz != 0))
                best = v;
        }
    }
    out[t] = best;
}

// One thread per channel: a float sum in order, then * (1/n) (the -Ofast build,
// reciprocal != 0) or / n.
extern "C" __global__ void avgpool(const float* x, int c, int n, float* out, int reciprocal, int ftz)
{
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= c)
        return;
    bool f = ftz != 0;
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s = dn_add(s, x[k * n + i], f);
    float count = (float)n;
    out[k] = reciprocal ? dn_mul(s, dn_div_rn(1.0f, count), f) : dn_div(s, count, f);
}
