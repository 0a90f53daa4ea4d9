// [shortcut] and [upsample] as darknetpy/cpu/shortcut.py computes them; ftz reproduces the
// stock build's DAZ/FTZ by hand (darknet_math.cuh), so this compiles without -ftz.

#include "darknet_math.cuh"

// One thread per summed element (k, j, i) of the overlap: out[k, j*sample, i*sample] =
// alpha*out + beta*add[k, j*stride, i*stride], each product and the sum one float rounding.
extern "C" __global__ void shortcut_sum(float* out, int c2, int h2, int w2, const float* add, int c1, int h1,
                                        int w1, float alpha, float beta, int ftz)
{
    int stride = w1 / w2 > 1 ? w1 / w2 : 1;
    int sample = w2 / w1 > 1 ? w2 / w1 : 1;
    int minw = w1 < w2 ? w1 : w2, minh = h1 < h2 ? h1 : h2, minc = c1 < c2 ? c1 : c2;
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)minc * minh * minw)
        return;
    int i = (int)(t % minw);
    int j = (int)(t / minw % minh);
    long long k = t / minw / minh;
    float* o = out + (k * h2 + (long long)j * sample) * w2 + (long long)i * sample;
    float a = add[(k * h1 + (long long)j * stride) * w1 + (long long)i * stride];
    *o = dn_add(dn_mul(alpha, *o, ftz != 0), dn_mul(beta, a, ftz != 0), ftz != 0);
}

// One thread per output (k, j, i) of out (c, h*stride, w*stride) = scale * x[k, j/stride, i/stride].
extern "C" __global__ void upsample(const float* x, int c, int h, int w, int stride, float scale, float* out,
                                    int ftz)
{
    int oh = h * stride, ow = w * stride;
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)c * oh * ow)
        return;
    int i = (int)(t % ow);
    int j = (int)(t / ow % oh);
    long long k = t / ow / oh;
    out[t] = dn_mul(scale, x[(k * h + j / stride) * w + i / stride], ftz != 0);
}
