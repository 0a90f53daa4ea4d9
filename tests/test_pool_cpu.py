"""The CPU maxpool against a numpy model of Darknet's loop: taps in window order, each
taken only when strictly greater than the running maximum (from -FLT_MAX); with ftz a
subnormal compares as zero (DAZ). Small (serial) and large (parallel) pools, odd sizes,
negative pads."""
import numpy as np
import pytest

from darknetpy.cpu import pool

TINY = np.float32(1.1754944e-38)


def model(x, size, stride, pad, ftz):
    c, h, w = x.shape
    offset = -(pad // 2) if pad >= 0 else (-pad) // 2
    out_h = (h + pad - size) // stride + 1
    out_w = (w + pad - size) // stride + 1
    best = np.full((c, out_h, out_w), pool.FLT_MAX * -1, np.float32)

    def flush(a):
        return np.where(np.abs(a) < TINY, np.float32(0), a) if ftz else a

    # the window rows and columns that reach the image in some window (the others are
    # all skipped taps: a window can be far larger than the image)
    for n in range(max(0, -offset - (out_h - 1) * stride), min(size, h - offset)):
        for m in range(max(0, -offset - (out_w - 1) * stride), min(size, w - offset)):
            ys = offset + np.arange(out_h) * stride + n
            xs = offset + np.arange(out_w) * stride + m
            valid = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
            taps = x[:, np.clip(ys, 0, h - 1)][:, :, np.clip(xs, 0, w - 1)]
            with np.errstate(invalid="ignore"):
                take = valid & (flush(taps) > flush(best))
            best = np.where(take, taps, best)
    return best


def sample(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 60), replace=False)
    specials = np.array([np.nan, -np.inf, np.inf, 0.0, -0.0, 1e-40, -1e-40, 3e-39], np.float32)
    flat[picks] = specials[np.arange(picks.size) % specials.size]
    return x


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("shape,size,stride,pad", [
    ((4, 12, 12), 2, 2, 1), ((3, 13, 13), 2, 1, 1), ((5, 11, 9), 3, 2, 2),
    ((2, 7, 10), 3, 1, 2), ((3, 9, 9), 2, 2, 0), ((2, 8, 8), 3, 3, -2), ((1, 5, 6), 5, 2, 4),
    ((16, 301, 300), 2, 2, 1), ((8, 200, 201), 3, 1, 2), ((2, 800, 700), 2, 2, 1), ((3, 901, 640), 2, 2, 1)])
def test_maxpool_matches_the_model(ftz, shape, size, stride, pad):
    """The last four are over SERIAL_MAX taps: their channels run in parallel, and the
    last two's, fewer than the units the threads need, by bands of rows (451 rows in 3
    bands: uneven)."""
    x = sample(shape, seed=size * 10 + stride)
    expected = model(x, size, stride, pad, ftz)
    out = np.empty(expected.shape, np.float32)
    pool.maxpool(x, size, stride, pad, out, ftz)
    assert np.array_equal(out.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("shape,size,stride,pad", [
    ((2, 31, 5), 2**31 - 1, 3, 2**31 - 2), ((3, 6, 7), 100000, 1, 99999), ((1, 4, 4), 2**31 - 1, 2**31 - 1, 2**31 - 2)])
def test_a_window_far_larger_than_the_image_takes_no_time(ftz, shape, size, stride, pad):
    """Regression (bench/fuzz.py, seed 20261207): a [maxpool] of size=2147483647 (and
    Darknet's default padding, size-1) visited each of the window's 2**62 taps, skipping
    them one by one; now only the taps in the image. Same bits as the model."""
    x = sample(shape, seed=7)
    expected = model(x, size, stride, pad, ftz)
    out = np.empty(expected.shape, np.float32)
    pool.maxpool(x, size, stride, pad, out, ftz)
    assert np.array_equal(out.view(np.uint32), expected.view(np.uint32))


def test_few_channels_run_by_bands_of_rows():
    assert pool.row_bands(2, 400, 2) == 4 and pool.row_bands(3, 451, 2) == 3
    assert pool.row_bands(8, 100, 2) == 1 and pool.row_bands(3, 2, 64) == 2
