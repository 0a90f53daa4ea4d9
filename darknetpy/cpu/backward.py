"""Darknet's training arithmetic on the CPU: reductions, GEMMs, col2im, pooling.

Every function follows the loop order of Darknet's C source or, where `vector` is set,
what gcc -Ofast made of it (see ../shared/reference-train/README.md "Vectorised
reductions"): the H4 pattern (four float lanes over the first 4*floor(n/4) elements,
combined (v0 + v2) + (v1 + v3), the rest added one by one) and gemm_nt's variant that
folds the remainder into the lanes. No fastmath: each operation rounds as in C.
"""
import math

import numpy as np
from numba import njit, prange

from . import fpenv
from .gemm import gemm_exact, gemm_fast

F32 = np.float32
FLT_MAX = F32(3.4028234663852886e38)


@njit(inline="always", fastmath=False)
def _h4(a, start, n):
    """The four lanes of a[start:start + 4*floor(n/4)] combined: (v0 + v2) + (v1 + v3)."""
    v0 = v1 = v2 = v3 = F32(0.0)
    for k in range(start, start + n - n % 4, 4):
        v0 += a[k]
        v1 += a[k + 1]
        v2 += a[k + 2]
        v3 += a[k + 3]
    return (v0 + v2) + (v1 + v3)


@njit(cache=True, fastmath=False)
def sum_array(a, vector):
    """Darknet's sum_array: H4 + tail under -Ofast, a sequential float sum without."""
    n = a.size
    s = _h4(a, 0, n) if vector else F32(0.0)
    for k in range(n - n % 4 if vector else 0, n):
        s += a[k]
    return s


@njit(cache=True, fastmath=False)
def backward_bias(bias_updates, delta, vector, ftz):
    """bias_updates[c] += sum_array(delta[b, c]) for each image b, channel c (delta (n, c, s))."""
    old = fpenv.enter(ftz)
    _backward_bias(bias_updates, delta, vector)
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _backward_bias(bias_updates, delta, vector):
    for b in range(delta.shape[0]):
        for c in range(delta.shape[1]):
            bias_updates[c] += sum_array(delta[b, c], vector)


@njit(cache=True, fastmath=False)
def backward_scale(x_norm, delta, vector, scale_updates, ftz):
    """backward_scale_cpu: per channel s = 0; per image s += H4 of delta*x_norm, then the
    tail products one by one (sequential without `vector`); scale_updates[c] += s."""
    old = fpenv.enter(ftz)
    _backward_scale(x_norm, delta, vector, scale_updates)
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _backward_scale(x_norm, delta, vector, scale_updates):
    n, c, spatial = delta.shape
    prod = np.empty(spatial, np.float32)
    for f in range(c):
        s = F32(0.0)
        for b in range(n):
            for k in range(spatial):
                prod[k] = delta[b, f, k] * x_norm[b, f, k]
            head = spatial - spatial % 4 if vector else 0
            if vector:
                s = s + _h4(prod, 0, spatial)
            for k in range(head, spatial):
                s += prod[k]
        scale_updates[f] += s


@njit(cache=True, parallel=True, fastmath=False)
def mean_variance(x, mean, variance, ftz):
    """Batch statistics of x (n, c, s): sequential float sums in (b, s) order, mean times
    f32(1/(n*s)), variance accumulated in double and rounded each step, times f32(1/(n*s - 1)).
    Channels in parallel (each channel's sums keep their order)."""
    for f in prange(x.shape[1]):
        old = fpenv.enter(ftz)
        _mean_variance(x, f, mean, variance)
        fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _mean_variance(x, f, mean, variance):
    n, c, spatial = x.shape
    scale = F32(1.0 / (n * spatial))
    vscale = F32(1.0 / (n * spatial - 1))
    s = F32(0.0)
    for b in range(n):
        for k in range(spatial):
            s += x[b, f, k]
    m = s * scale
    mean[f] = m
    acc = F32(0.0)
    for b in range(n):
        for k in range(spatial):
            d = np.float64(x[b, f, k] - m)
            acc = F32(np.float64(acc) + d * d)
    variance[f] = acc * vscale


@njit(cache=True, fastmath=False)
def normalize(x, mean, variance, vector, out, ftz):
    """normalize_cpu: f32((x - mean) / (sqrt(var) + 1e-6f)) in double; under -Ofast the
    first 4*floor(s/4) of each row multiply by the double reciprocal."""
    old = fpenv.enter(ftz)
    _normalize(x, mean, variance, vector, out)
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _normalize(x, mean, variance, vector, out):
    n, c, spatial = x.shape
    eps = np.float64(F32(1e-6))
    head = spatial - spatial % 4 if vector else 0
    for b in range(n):
        for f in range(c):
            den = np.sqrt(np.float64(variance[f])) + eps
            inv = 1.0 / den
            m = mean[f]
            for k in range(head):
                out[b, f, k] = F32(np.float64(x[b, f, k] - m) * inv)
            for k in range(head, spatial):
                out[b, f, k] = F32(np.float64(x[b, f, k] - m) / den)


@njit(cache=True, parallel=True, fastmath=False)
def batchnorm_deltas(x, mean, variance, delta, vector, mean_delta, variance_delta, ftz):
    """mean_delta_cpu and variance_delta_cpu (sequential sums in (b, s) order); under
    -Ofast pow(e, -1.5) is 1/(e*sqrt(e)) and the -0.5 multiplies first. Channels in parallel."""
    for f in prange(x.shape[1]):
        old = fpenv.enter(ftz)
        _batchnorm_deltas(x, f, mean, variance, delta, vector, mean_delta, variance_delta)
        fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _batchnorm_deltas(x, f, mean, variance, delta, vector, mean_delta, variance_delta):
    n, c, spatial = x.shape
    s1 = F32(0.0)
    for b in range(n):
        for k in range(spatial):
            s1 += delta[b, f, k]
    e = np.float64(variance[f] + F32(1e-5))
    mean_delta[f] = F32(np.float64(s1) * (-1.0 / np.sqrt(e)))
    s2 = F32(0.0)
    m = mean[f]
    for b in range(n):
        for k in range(spatial):
            s2 += (x[b, f, k] - m) * delta[b, f, k]
    if vector:
        variance_delta[f] = F32((np.float64(s2) * -0.5) * (1.0 / (e * np.sqrt(e))))
    else:
        variance_delta[f] = F32(np.float64(s2) * (-0.5 * e ** -1.5))


@njit(cache=True, fastmath=False)
def normalize_delta(x, mean, variance, mean_delta, variance_delta, vector, delta, ftz):
    """normalize_delta_cpu in place on delta (n, c, s). -Ofast: three groupings (the
    vectorised head of each row, its tail, rows of at most 3); else the C expression."""
    old = fpenv.enter(ftz)
    _normalize_delta(x, mean, variance, mean_delta, variance_delta, vector, delta)
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _normalize_delta(x, mean, variance, mean_delta, variance_delta, vector, delta):
    n, c, spatial = x.shape
    count = n * spatial
    inv_n = 1.0 / np.float64(count)
    two_n = inv_n + inv_n
    head = spatial - spatial % 4 if spatial > 3 else 0
    for b in range(n):
        for f in range(c):
            e = np.float64(variance[f] + F32(1e-5))
            sq = np.sqrt(e)
            vd = np.float64(variance_delta[f])
            m = mean[f]
            if vector:
                cm = np.float64(mean_delta[f] * F32(F32(1.0) / F32(count)))
                inv_sq = 1.0 / sq
                vdn = (vd + vd) * inv_n
                if spatial > 3:
                    for k in range(head):
                        d = np.float64(x[b, f, k] - m)
                        delta[b, f, k] = F32(d * vdn + (np.float64(delta[b, f, k]) * inv_sq + cm))
                    for k in range(head, spatial):
                        d = np.float64(x[b, f, k] - m)
                        delta[b, f, k] = F32(((d * vd) * two_n + cm) + np.float64(delta[b, f, k]) / sq)
                else:
                    for k in range(spatial):
                        d = np.float64(x[b, f, k] - m)
                        delta[b, f, k] = F32((d * vd) * two_n + (np.float64(delta[b, f, k]) / sq + cm))
            else:
                cm = np.float64(mean_delta[f] / F32(count))
                for k in range(spatial):
                    d = np.float64(x[b, f, k] - m)
                    delta[b, f, k] = F32((np.float64(delta[b, f, k]) / sq + ((vd * 2.0) * d) / count) + cm)


def gemm_nt_add(a, b, vector, exact, c, ftz):
    """c[i, j] = sum_k a[i, k]*b[j, k] + c[i, j] (Darknet's gemm_nt, ALPHA = BETA = 1).
    Not exact: one fused multiply-add GEMM on b transposed.

    Under -Ofast the sum is four lanes, lane r adding the products of k = r, r + 4, ...
    below 4*floor(K/4) in order, combined with the remainder folded in (README's gemm_nt
    pattern); without, one sequential sum. Each lane is a sequential sum from +0, which is
    what the exact GEMM computes: lane r is gemm_exact of a's and b's every fourth column
    from r, and a small kernel combines the lanes. c is done in column blocks so that the
    lanes stay in cache. a (M, K), b (N, K), c (M, N) rows contiguous."""
    if not exact:
        gemm_fast(a, np.ascontiguousarray(b.T), c, accumulate=True, ftz=ftz)
        return
    m, k = a.shape
    lanes = 4 if vector else 1
    head = k - k % 4 if vector else k
    block = max(NT_MIN_COLUMNS, NT_LANE_FLOATS // max(1, lanes * m))
    a_lanes = [np.ascontiguousarray(a[:, r:head:lanes]) for r in range(lanes)]
    tail_a = np.ascontiguousarray(a[:, head:])
    sums = np.empty((lanes, m, min(block, b.shape[0])), np.float32)
    for j0 in range(0, b.shape[0], block):
        bj = b[j0:j0 + block]
        part = sums[:, :, :bj.shape[0]]
        for r in range(lanes):
            gemm_exact(a_lanes[r], np.ascontiguousarray(bj[:, r:head:lanes].T), part[r], ftz=ftz)
        _gemm_nt_combine(part, tail_a, np.ascontiguousarray(bj[:, head:].T), c[:, j0:j0 + bj.shape[0]], ftz)


NT_LANE_FLOATS = 1 << 20   # floats of lane sums per column block (4 MiB)
NT_MIN_COLUMNS = 64


@njit(cache=True, parallel=True, fastmath=False)
def _gemm_nt_combine(sums, tail_a, tail_b, c, ftz):
    """c[i, j] = lanes combined + c[i, j], the K % 4 tail products folded in as gcc -Ofast
    folds them. sums (lanes, M, N) (rows contiguous); tail_a (M, rem); tail_b (rem, N); c (M, N)."""
    lanes, rem, n = sums.shape[0], tail_a.shape[1], c.shape[1]
    for i in prange(c.shape[0]):
        old = fpenv.enter(ftz)
        row = c[i]
        if lanes == 1:
            s0 = sums[0, i]
            for j in range(n):
                row[j] = s0[j] + row[j]
        else:
            s0, s1, s2, s3 = sums[0, i], sums[1, i], sums[2, i], sums[3, i]
            if rem == 0:
                for j in range(n):
                    row[j] = ((s0[j] + s2[j]) + (s1[j] + s3[j])) + row[j]
            elif rem == 1:
                a0, b0 = tail_a[i, 0], tail_b[0]
                for j in range(n):
                    row[j] = (((s0[j] + s2[j]) + (s1[j] + s3[j])) + a0 * b0[j]) + row[j]
            elif rem == 2:
                a0, a1, b0, b1 = tail_a[i, 0], tail_a[i, 1], tail_b[0], tail_b[1]
                for j in range(n):
                    row[j] = (((s0[j] + s2[j]) + a0 * b0[j]) + ((s1[j] + s3[j]) + a1 * b1[j])) + row[j]
            else:
                a0, a1, a2 = tail_a[i, 0], tail_a[i, 1], tail_a[i, 2]
                b0, b1, b2 = tail_b[0], tail_b[1], tail_b[2]
                for j in range(n):
                    row[j] = ((((s0[j] + s2[j]) + a0 * b0[j]) + ((s1[j] + s3[j]) + a1 * b1[j]))
                              + a2 * b2[j]) + row[j]
        fpenv.leave(old)


def gemm_tn_beta0(a, b, exact, c, ftz):
    """Darknet's gemm with TA=1, BETA=0: c *= 0 (a real multiply: signs and NaNs survive),
    then c[i, j] += a[k, i]*b[k, j] for k in order: the exact GEMM's accumulate mode,
    which goes on from c's value in that order. It needs one operand transposed: a, or
    b and c (c^T = b^T a, the same products and sums); whichever copies fewer floats
    (a: a layer's weights; b and c: its delta and a column matrix). a (K, M), b (K, N),
    c (M, N) rows contiguous. Not exact: c = the fused multiply-add GEMM's product."""
    gemm = gemm_exact if exact else gemm_fast
    if exact:
        np.multiply(c, F32(0.0), out=c)
    if a.size <= b.size + 2 * c.size:
        gemm(np.ascontiguousarray(a.T), b, c, accumulate=exact, ftz=ftz)
        return
    ct = np.ascontiguousarray(c.T) if exact else np.empty(c.shape[::-1], np.float32)
    gemm(np.ascontiguousarray(b.T), a, ct, accumulate=exact, ftz=ftz)
    c[...] = ct.T


@njit(cache=True, parallel=True, fastmath=False)
def col2im_add(col, c, h, w, size, stride, pad, im, ftz):
    """col2im_cpu: each im2col row (channel, ky, kx) in order added into im (c, h, w).
    Channels in parallel: a channel's rows only add into that channel, in order."""
    for ch in prange(c):
        old = fpenv.enter(ftz)
        _col2im_add(col, ch, h, w, size, stride, pad, im)
        fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _col2im_add(col, ch, h, w, size, stride, pad, im):
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    for row in range(ch * size * size, (ch + 1) * size * size):
        kx = row % size
        ky = (row // size) % size
        for y in range(out_h):
            iy = ky + y * stride - pad
            if iy < 0 or iy >= h:
                continue
            for x in range(out_w):
                ix = kx + x * stride - pad
                if 0 <= ix < w:
                    im[ch, iy, ix] += col[row, y * out_w + x]


@njit(cache=True, parallel=True, fastmath=False)
def maxpool_indexes(x, size, stride, pad, out, indexes, ftz):
    """forward_maxpool_layer: out and the flat input index (image offset included) of the
    first strict maximum in window order; taps outside the input are -FLT_MAX. Channels
    of every image in parallel."""
    nb, c = x.shape[0], x.shape[1]
    for bk in prange(nb * c):
        old = fpenv.enter(ftz)
        _maxpool_indexes(x, size, stride, pad, out, indexes, bk // c, bk % c)
        fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _maxpool_indexes(x, size, stride, pad, out, indexes, b, k):
    nb, c, h, w = x.shape
    _, _, out_h, out_w = out.shape
    off = -(pad // 2)
    flat = x.reshape(-1)
    for i in range(out_h):
        for j in range(out_w):
            best = -FLT_MAX
            best_i = -1
            for dy in range(size):
                for dx in range(size):
                    cy = off + i * stride + dy
                    cx = off + j * stride + dx
                    index = cx + w * (cy + h * (k + b * c))
                    valid = 0 <= cy < h and 0 <= cx < w
                    v = flat[index] if valid else -FLT_MAX
                    if v > best:
                        best = v
                        best_i = index
            out[b, k, i, j] = best
            indexes[b, k, i, j] = best_i


@njit(cache=True, fastmath=False)
def maxpool_backward(indexes, delta, prev_delta, ftz):
    """prev_delta[indexes[i]] += delta[i], i in increasing order."""
    old = fpenv.enter(ftz)
    _maxpool_backward(indexes, delta, prev_delta)
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def _maxpool_backward(indexes, delta, prev_delta):
    idx = indexes.reshape(-1)
    d = delta.reshape(-1)
    p = prev_delta.reshape(-1)
    for i in range(idx.size):
        p[idx[i]] += d[i]


# f32(-_ZGVbN2v_log((double)p)) where it differs from f32(-log((double)p)): an exhaustive
# run of glibc 2.36's libmvec over every positive finite float32 found these two, no more.
LIBMVEC_LOG_LOSS = {float.fromhex("0x1.827a74p-7"): float.fromhex("0x1.1c2b1ep+2"),
                    float.fromhex("0x1.2f1fd6p+3"): float.fromhex("-0x1.1fcbcep+1")}
FLT_MIN = F32(1.1754943508222875e-38)


def log_loss(p, vector: bool, ftz: bool) -> np.float32:
    """softmax_x_ent_cpu's loss for a truth != 0: f32(-log((double)p)); `vector`: the
    element is in the -Ofast loop's libmvec part (2-lane `_ZGVbN2v_log`); `ftz`: a
    subnormal p reads as zero (DAZ)."""
    p = float(np.float32(p))
    if ftz and abs(p) < FLT_MIN:
        p = math.copysign(0.0, p)
    if vector and p in LIBMVEC_LOG_LOSS:
        return F32(LIBMVEC_LOG_LOSS[p])
    if p > 0:
        return F32(-math.log(p))
    return F32(math.inf if p == 0 else math.nan)



@njit(cache=True, fastmath=False)
def axpy(alpha, x, y, ftz):
    """y += alpha*x (flat float32 arrays), Darknet's axpy_cpu."""
    old = fpenv.enter(ftz)
    for i in range(y.size):
        y[i] += alpha * x[i]
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def scal(alpha, x, ftz):
    """x *= alpha, Darknet's scal_cpu."""
    old = fpenv.enter(ftz)
    for i in range(x.size):
        x[i] *= alpha
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def scale_add_bias(x, scales, biases, use_scales, ftz):
    """scale_bias (if use_scales) then add_bias over x (n, c, s)."""
    old = fpenv.enter(ftz)
    n, c, spatial = x.shape
    for b in range(n):
        for f in range(c):
            for k in range(spatial):
                v = x[b, f, k]
                if use_scales:
                    v = v * scales[f]
                x[b, f, k] = v + biases[f]
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def scale_channels(x, scales, ftz):
    """scale_bias on a delta (n, c, s)."""
    old = fpenv.enter(ftz)
    n, c, spatial = x.shape
    for b in range(n):
        for f in range(c):
            for k in range(spatial):
                x[b, f, k] *= scales[f]
    fpenv.leave(old)


LINEAR, LEAKY, LOGISTIC, RELU = 0, 1, 2, 3


@njit(cache=True, fastmath=False)
def gradient(out, delta, kind, vector, ftz):
    """gradient_array on flat arrays: leaky delta *= (o > 0 ? 1 : .1f); relu (o > 0);
    logistic (1-o)*o, under -Ofast as (1 - o)*(o*delta); linear: unchanged."""
    old = fpenv.enter(ftz)
    one = F32(1.0)
    for i in range(delta.size):
        o = out[i]
        if kind == LEAKY:
            delta[i] *= one if o > 0 else F32(0.1)
        elif kind == RELU:
            delta[i] *= one if o > 0 else F32(0.0)
        elif kind == LOGISTIC:
            if vector:
                delta[i] = (one - o) * (o * delta[i])
            else:
                delta[i] *= (one - o) * o
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def add_into(x, y, scale, use_scale, divide, ftz):
    """y += x (flat), or y += x * scale, or (divide) y += x / scale."""
    old = fpenv.enter(ftz)
    for i in range(y.size):
        if divide:
            y[i] += x[i] / scale
        elif use_scale:
            y[i] += x[i] * scale
        else:
            y[i] += x[i]
    fpenv.leave(old)


@njit(cache=True, fastmath=False)
def subtract(t, p, out, ftz):
    """out = t - p (flat), softmax_x_ent_cpu's delta."""
    old = fpenv.enter(ftz)
    for i in range(out.size):
        out[i] = t[i] - p[i]
    fpenv.leave(old)
