// im2col in Darknet's layout: out[(ch*size + ky)*size + kx][y*out_w + x] is the input
// pixel (ch, y*stride + ky - pad, x*stride + kx - pad), or 0.0f outside the image.
// One thread per output element.

extern "C" __global__ void im2col(const float* im, int channels, int h, int w, int size, int stride,
                                  int pad, int out_h, int out_w, float* out)
{
    const long long spatial = (long long)out_h * out_w;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= channels * size * size * spatial)
        return;
    const int row = (int)(i / spatial);
    const int col = (int)(i - row * spatial);
    const int kx = row % size;
    const int ky = row / size % size;
    const int ch = row / size / size;
    const int iy = ky + col / out_w * stride - pad;
    const int ix = kx + col % out_w * stride - pad;
    const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
    out[i] = inside ? im[((long long)ch * h + iy) * w + ix] : 0.0f;
}
