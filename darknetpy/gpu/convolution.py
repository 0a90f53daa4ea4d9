"""The convolutional layer's forward pass on the GPU: GEMM (implicit im2col when exact),
then the epilogue. Same functions and results as darknetpy/cpu/convolution.py."""
from . import activations, gemm, runtime
from .im2col import im2col


def workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact=True, filters=0):
    """Floats of workspace `convolution` needs: only fast mode's im2col matrix (exact
    mode reads the image itself)."""
    if size == 1 or exact:
        return 0
    return c // groups * size * size * out_h * out_w


def prepare_weights(weights, in_shape, size, stride, pad, groups, exact):
    """The weights as they are: every GPU path takes the array."""
    return weights


def maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride, pool_pad,
                    exact=True):
    """No fused convolution + maxpool on the GPU: its memory is not the bottleneck there."""
    return False


def convolution(x, weights, groups, size, stride, pad, out_hw, workspace, exact, out=None):
    """x (c, h, w) -> (filters, out_h*out_w), before bias, batch norm and activation.

    `weights` is (filters, c/groups*size*size). As in Darknet, a 1x1 kernel reads the
    input buffer directly as the (k, n) matrix. Exact mode reads the other kernels'
    B straight from x (gemm.conv_exact; `workspace` unused); fast mode im2cols into
    `workspace` (allocated here if None or too small) for cuBLAS. `out`: a buffer of
    filters*out_h*out_w floats to write into (an arena place), not overlapping x.
    """
    c, h, w = x.shape
    filters = weights.shape[0]
    m, cg = filters // groups, c // groups
    k, n = cg * size * size, out_hw[0] * out_hw[1]
    out = runtime.empty((filters, n)) if out is None else out.reshape(filters, n)
    flat = x.reshape(-1)
    multiply = gemm.gemm_exact if exact else gemm.gemm_fast
    for g in range(groups):
        a, dst = weights[g * m:(g + 1) * m], out[g * m:(g + 1) * m]
        image = x[g * cg:(g + 1) * cg]
        if size == 1:
            start = g * cg * h * w
            multiply(a, flat[start:start + k * n].reshape(k, n), dst)
        elif exact:
            gemm.conv_exact(a, image, size, stride, pad, out_hw, dst)
        else:
            if workspace is None or workspace.size < k * n:
                workspace = runtime.empty(k * n)
            b = workspace[:k * n].reshape(k, n)
            im2col(image, size, stride, pad, b)
            multiply(a, b, dst)
    return out


def epilogue(out, bn, biases, activation, ftz, exact=True):
    """Batch norm (or bias) and activation in place on out (filters, spatial).

    exact=False (fast mode) runs the single-precision FMA epilogue instead."""
    use_bn = bn is not None
    mean, variance, scales = bn if use_bn else (biases,) * 3
    if exact:
        activations.batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, activation, ftz)
    else:
        activations.epilogue_fast(out, mean, variance, scales, biases, use_bn, activation)


def convolution_epilogue(x, weights, groups, size, stride, pad, out_hw, workspace, exact,
                         bn, biases, activation, ftz, out=None):
    """`convolution` then `epilogue` (the fast one in fast mode)."""
    out = convolution(x, weights, groups, size, stride, pad, out_hw, workspace, exact, out)
    epilogue(out, bn, biases, activation, ftz, exact)
    return out
