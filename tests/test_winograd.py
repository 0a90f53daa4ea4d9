"""Winograd F(2x2,3x3) (darknetpy/cpu/winograd.py) against a float64 convolution:
both schedules, blocks that start and end inside a tile row, odd and tiny images."""
import numpy as np
import pytest

from darknetpy.cpu import gemm, winograd

# (c, h, w, m): odd sizes (last tile row/column partial), H or W = 1, 2, 3, C = 1,
# M not a multiple of 8 or 16
SHAPES = [(1, 1, 1, 1), (1, 5, 7, 3), (3, 1, 9, 5), (2, 8, 1, 7), (4, 2, 3, 9), (5, 3, 2, 17),
          (16, 13, 11, 33), (7, 20, 21, 12), (32, 16, 16, 16), (9, 31, 17, 40)]


def reference(x, weights):
    """3x3, stride 1, pad 1 cross-correlation in float64, (m, h*w)."""
    c, h, w = x.shape
    m = weights.shape[0]
    xp = np.zeros((c, h + 2, w + 2))
    xp[:, 1:-1, 1:-1] = x
    g = weights.astype(np.float64).reshape(m, c, 3, 3)
    out = np.zeros((m, h, w))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("mc,chw->mhw", g[:, :, ky, kx], xp[:, ky:ky + h, kx:kx + w])
    return out.reshape(m, h * w)


def run(shape, seed):
    c, h, w, m = shape
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (c, h, w)).astype(np.float32)
    weights = rng.uniform(-1, 1, (m, 9 * c)).astype(np.float32)
    out = np.full((m, h * w), np.nan, np.float32)
    assert winograd.convolution3x3(x, winograd.transform_weights(weights), out) is out
    ref = reference(x, weights)
    return np.max(np.abs(out - ref)) / np.max(np.abs(ref)), out


@pytest.fixture(params=["blocks", "phases"])
def schedule(request, monkeypatch):
    """Force one schedule, with blocks of one micro-panel (48 tiles), so most
    images have several, starting and ending inside tile rows."""
    monkeypatch.setattr(winograd, "THREAD_BLOCK_FLOATS", 1)
    monkeypatch.setattr(winograd, "SHARED_BLOCK_FLOATS", 1)
    monkeypatch.setattr(winograd, "BLOCKS_PER_THREAD", 0 if request.param == "blocks" else 1 << 30)
    return request.param


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_reference(shape, threads, schedule):
    err, out = run(shape, sum(shape))
    assert np.isfinite(out).all()
    assert err < 1e-5


@pytest.mark.parametrize("shape", [(24, 40, 37, 20), (64, 19, 19, 72)], ids=["40x37", "19x19"])
def test_default_plan(shape, threads):
    """The default block sizes and schedule choice (one block or several)."""
    c, h, w, m = shape
    shared, t, workers = winograd.plan(c, h, w, m, threads)
    assert t * workers * 16 * (c + m) == winograd.workspace_floats(c, h, w, m, threads)
    err, _ = run(shape, 1)
    assert err < 1e-5


def test_many_blocks_schedule_is_used():
    """A wide layer at 2 threads takes the per-thread schedule (the other is tested
    by forcing it)."""
    assert not winograd.plan(32, 304, 304, 64, 2)[0]
    assert winograd.plan(1024, 19, 19, 1024, 2)[0]


def test_given_workspace_and_its_size():
    c, h, w, m = 6, 9, 10, 11
    rng = np.random.default_rng(3)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    weights = rng.standard_normal((m, 9 * c)).astype(np.float32)
    u = winograd.transform_weights(weights)
    ws = np.full(winograd.workspace_floats(c, h, w, m), np.nan, np.float32)
    out = winograd.convolution3x3(x, u, np.empty((m, h * w), np.float32), ws)
    ref = reference(x, weights)
    assert np.max(np.abs(out - ref)) / np.max(np.abs(ref)) < 1e-5


def test_weights_transform_and_packed_view():
    """U[xi] = (G g G^T)[xi], and packed(xi) multiplies like U[xi] itself."""
    rng = np.random.default_rng(4)
    m, c = 10, 3
    weights = rng.standard_normal((m, 9 * c)).astype(np.float32)
    u = winograd.transform_weights(weights)
    G = winograd.G
    g = weights.astype(np.float64).reshape(m, c, 3, 3)
    b = rng.standard_normal((c, 50)).astype(np.float32)
    for xi in (0, 5, 15):
        i, j = divmod(xi, 4)
        expect = np.einsum("k,mckl,l->mc", G[i], g, G[j])
        got = gemm.gemm_fast(u.packed(xi), b, np.empty((m, 50), np.float32))
        np.testing.assert_allclose(got, expect @ b, rtol=1e-4, atol=1e-4)


def unpacked(u, xi):
    """U[xi] (m, c) read back from the packed layout (gemm_blocking.pack_a_panels)."""
    m, c, mr = u.m, u.c, gemm.MR
    mp = -(-m // mr) * mr
    ap = u.ap[xi * u.stride:]
    out = np.empty((mp, c), np.float32)
    for pc in range(0, c, u.kcs):
        kc = min(u.kcs, c - pc)
        block = ap[pc * mp:pc * mp + mp * kc].reshape(mp // mr, kc, mr)
        out[:, pc:pc + kc] = block.transpose(0, 2, 1).reshape(mp, kc)
    return out


def float32_transform(weights):
    """G g G^T with numpy float32 arithmetic in transform_weights' order: columns
    first, each side (a, (a+b+c)/2, (a-b+c)/2, c) as (s = a + c, 0.5 * (s +- b))."""
    m, c = weights.shape[0], weights.shape[1] // 9
    g = weights.reshape(m, c, 3, 3)
    half = np.float32(0.5)

    def sides(a, b, d):
        s = a + d
        return [a, half * (s + b), half * (s - b), d]

    cols = sides(g[:, :, 0, :], g[:, :, 1, :], g[:, :, 2, :])     # (4) x (m, c, 3)
    return np.stack([np.stack(sides(r[..., 0], r[..., 1], r[..., 2])) for r in cols]).reshape(16, m, c)


@pytest.mark.parametrize("m, c", [(8, 8), (16, 24), (13, 21), (24, 300), (3, 5), (9, 1040)])
def test_weights_transform_bits(m, c):
    """The 8x8 vector kernel (whole panels, 8 channels at a time) and the one-kernel
    path (edges) give float32 G g G^T bit for bit, rows past m zero."""
    rng = np.random.default_rng(m * c)
    weights = rng.standard_normal((m, 9 * c)).astype(np.float32)
    u = winograd.transform_weights(weights)
    expect = float32_transform(weights)
    for xi in range(16):
        got = unpacked(u, xi)
        np.testing.assert_array_equal(got[:m], expect[xi])
        assert not got[m:].any()


def test_detects_a_wrong_kernel():
    """The reference comparison can fail: flipped weights (convolution instead of
    cross-correlation) are far off."""
    rng = np.random.default_rng(5)
    c, h, w, m = 3, 7, 6, 4
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    weights = rng.standard_normal((m, c, 3, 3)).astype(np.float32)
    flipped = np.ascontiguousarray(weights[:, :, ::-1, ::-1]).reshape(m, -1)
    out = winograd.convolution3x3(x, winograd.transform_weights(flipped), np.empty((m, h * w), np.float32))
    ref = reference(x, weights.reshape(m, -1))
    assert np.max(np.abs(out - ref)) / np.max(np.abs(ref)) > 0.1


def test_bad_arguments():
    u = winograd.transform_weights(np.ones((4, 18), np.float32))
    with pytest.raises(ValueError):
        winograd.convolution3x3(np.ones((3, 4, 4), np.float32), u, np.empty((4, 16), np.float32))
    with pytest.raises(ValueError):
        winograd.convolution3x3(np.ones((2, 4, 4), np.float32), u, np.empty((4, 15), np.float32))
    with pytest.raises(ValueError):
        winograd.transform_weights(np.ones((4, 10), np.float32))


def test_worth_it():
    assert not winograd.worth_it(3, 608, 608, 32)
    for c, h, w, m in [(32, 304, 304, 64), (256, 38, 38, 512), (1280, 19, 19, 1024)]:
        assert winograd.worth_it(c, h, w, m)
    assert not winograd.worth_it(512, 1, 1, 512)
    assert not winograd.worth_it(512, 3, 3, 512)
    assert not winograd.worth_it(32, 5, 5, 32)
    assert winograd.worth_it(256, 7, 7, 256)


EPILOGUE_SHAPES = [(5, 6, 8, 9), (16, 14, 10, 33), (7, 20, 22, 12), (9, 13, 11, 17)]


@pytest.mark.parametrize("shape", EPILOGUE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("use_bn,activation", [(True, "leaky"), (False, "linear"), (True, "logistic")])
@pytest.mark.parametrize("ftz", [False, True])
def test_epilogue_and_maxpool_in_the_output_transform(shape, threads, schedule, use_bn, activation, ftz):
    """The epilogue done in the output transform has the bits of the epilogue pass on
    its output; the 2x2/2 maxpool of even images done there (nothing else written) has
    the bits of pool.maxpool on that; subnormal values and ties so that ftz matters."""
    from darknetpy.cpu import activations, pool

    c, h, w, m = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-1, 1, (c, h, w)).astype(np.float32)
    x[0, :2] = np.float32(1e-39)
    weights = rng.uniform(-1, 1, (m, 9 * c)).astype(np.float32)
    weights[1] = 0.0
    biases = rng.standard_normal(m).astype(np.float32)
    biases[1] = np.float32(-2e-39)
    mean, scales = rng.standard_normal(m).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    variance = rng.uniform(0, 2, m).astype(np.float32)
    a = activations.CODES[activation]
    u = winograd.transform_weights(weights)
    plain = winograd.convolution3x3(x, u, np.empty((m, h * w), np.float32))
    activations.batchnorm_bias_activate(plain, mean, variance, scales, biases, use_bn, a, ftz)
    ep = (use_bn, mean, variance, scales, biases, a, ftz) if use_bn else (False, *[np.empty(0, np.float32)] * 3,
                                                                           biases, a, ftz)
    fused = winograd.convolution3x3(x, u, np.full((m, h * w), np.nan, np.float32), None, ep)
    assert np.array_equal(fused.view(np.uint32), plain.view(np.uint32))
    if h % 2 or w % 2:
        with pytest.raises(ValueError):
            winograd.convolution3x3(x, u, None, None, ep, np.empty((m, h // 2, w // 2), np.float32))
        return
    want = np.empty((m, h // 2, w // 2), np.float32)
    pool.maxpool(plain.reshape(m, h, w), 2, 2, 1, want, ftz)
    got = np.full_like(want, np.nan)
    assert winograd.convolution3x3(x, u, None, None, ep, got) is got
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
