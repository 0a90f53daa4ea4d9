// The region layer's logistic part, as darknetpy/cpu/region.py applies it: entries 0 and 1
// of every anchor, the objectness (entry `coords`) unless background, and the classes
// when there is neither softmax nor tree. The CPU twin runs activate_array over slices
// which, in odd layouts (fewer than two entries per anchor, coords < 2), overlap: an
// element then gets the logistic once per slice covering it, as here.
// Fused multiply-adds occur only inside dn_exp (glibc's FMA build of exp uses them).
// darknetpy: allow-fma region_logistic

#include "darknet_math.cuh"

// out = x with the logistic applied, per element, as many times as the CPU's slices
// cover it; x and out are the flat [anchor][entry][spatial] arrays of `size` floats.
extern "C" __global__ void region_logistic(const float* x, float* out, int size, int spatial, int entries,
                                           int coords, int background, int class_logistic, int ftz)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= size)
        return;
    long long anchor_size = (long long)entries * spatial;
    long long a = t / anchor_size;
    long long off = t - a * anchor_size;
    long long e = off / spatial;
    int times = (off < 2LL * spatial) + (a > 0 && off + anchor_size < 2LL * spatial)
              + (!background && e == coords) + (class_logistic && e > coords);
    float v = x[t];
    for (int i = 0; i < times; i++)
        v = dn_logistic(v, ftz != 0);
    out[t] = v;
}
