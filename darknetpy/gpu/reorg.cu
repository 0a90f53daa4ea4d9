// reorg as darknetpy/cpu/reorg.py computes it (Darknet's reorg_cpu with batch 1): a copy.

// One thread per element of the layer's input (c, h, w); out_index reads the array as
// (c/stride^2, h*stride, w*stride). `reverse` is the layer's (reorg_cpu's `forward`).
extern "C" __global__ void reorg(const float* x, int w, int h, int c, int stride, int reverse, float* out)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)w * h * c)
        return;
    int i = (int)(t % w);
    int j = (int)(t / w % h);
    int k = (int)(t / w / h);
    int out_c = c / (stride * stride);
    int c2 = k % out_c;
    int offset = k / out_c;
    long long h2 = (long long)j * stride + offset / stride;
    long long w2 = (long long)i * stride + offset % stride;
    long long out_index = w2 + (long long)w * stride * (h2 + (long long)h * stride * c2);
    if (reverse)
        out[out_index] = x[t];
    else
        out[t] = x[out_index];
}
