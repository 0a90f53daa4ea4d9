"""The GPU pool, reorg, softmax and region kernels against their CPU twins, bit for bit.

Every test runs on the CUDA-on-CPU emulator (small shapes; skipped without g++) and again,
marked `gpu`, with CuPy on a real GPU (skipped without one). Inputs mix normal values with
subnormals, signed zeros, infinities, NaNs with payloads and values whose exponentials
overflow or underflow; each runs with ftz (the stock build's FTZ/DAZ) on and off and, for
the softmax, with the -Ofast `vector` arithmetic on and off.
"""
import shutil

import numpy as np
import pytest

import kit
from darknetpy.cpu import pool as cpu_pool
from darknetpy.cpu import region as cpu_region
from darknetpy.cpu import reorg as cpu_reorg
from darknetpy.cpu import softmax as cpu_softmax
from darknetpy.gpu import pool, region, reorg, runtime, softmax
from darknetpy.tree import read_tree

F32 = np.float32
FINITE = np.array([0.0, -0.0, 1e-40, -1e-40, 1.1754942e-38, -1.1754942e-38, 1.1754944e-38, 3e38, -3e38,
                   88.8, -88.8, 104.0, -104.0, 1e-30, 0.5, -0.5], F32)
DEFAULT_NAN = np.array([0xFFC00000], np.uint32).view(F32)
# Where two different NaNs meet in one operation, x86 returns its first operand's, and
# which operand comes first is the compiler's choice (register allocation, unrolling), so
# the CPU twin's payload there is not a property of Darknet's arithmetic. Operations that
# can combine NaNs therefore get only x86's default NaN (what invalid operations make) or
# a single payload; the others get every kind.
SPECIALS = np.concatenate([FINITE, np.array([np.inf, -np.inf], F32), DEFAULT_NAN])
PAYLOAD_NANS = np.array([0x7FC00000, 0x7FC12345, 0x7FA00001, 0xFF812345], np.uint32).view(F32)
TOGGLE = [False, True]


@pytest.fixture(scope="module", params=["emulator", pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request):
    if request.param == "emulator" and shutil.which("g++") is None:
        pytest.skip("the GPU emulator needs g++")
    if request.param == "cuda" and not runtime.available():
        pytest.skip("needs CuPy and a CUDA device")
    old = runtime._emulate_override
    runtime.emulate(request.param == "emulator")
    yield request.param
    runtime._emulate_override = old


def values(rng, shape, scale=4.0, specials=0.08, payloads=False):
    """Normal values times `scale`, a fraction replaced by SPECIALS (and PAYLOAD_NANS)."""
    x = (rng.standard_normal(shape) * scale).astype(F32)
    flat = x.reshape(-1)
    picks = rng.random(flat.size) < specials
    pool = np.concatenate([SPECIALS, PAYLOAD_NANS]) if payloads else SPECIALS
    flat[picks] = rng.choice(pool, int(picks.sum()))
    return x


def assert_same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    diff = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert diff.size == 0, "%d of %d differ, first at %d: %#x vs %#x" % (
        diff.size, got.size, diff[0], got.reshape(-1).view(np.uint32)[diff[0]],
        want.reshape(-1).view(np.uint32)[diff[0]])


def on_gpu(fn, *arrays):
    """Upload the arrays, call fn with them, download them all again."""
    dev = [runtime.upload(a) for a in arrays]
    fn(*dev)
    return [runtime.download(d) for d in dev]


# ------------------------------------------------------------------------------ pool, reorg

@pytest.mark.parametrize("c,h,w,size,stride,pad", [
    (3, 13, 13, 2, 1, 1), (4, 8, 8, 2, 2, 1), (2, 7, 5, 3, 2, 2), (2, 6, 6, 3, 1, 0), (3, 5, 9, 1, 1, 0),
    (2, 6, 7, 3, 3, -3), (2, 31, 5, 2**31 - 1, 3, 2**31 - 2), (3, 6, 7, 100000, 1, 99999)])
@pytest.mark.parametrize("ftz", TOGGLE)
def test_maxpool_matches_cpu(backend, c, h, w, size, stride, pad, ftz):
    rng = np.random.default_rng(c * h + w)
    out_h, out_w = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    tiny = (rng.standard_normal((c, h, w)) * 2e-38).astype(F32)  # subnormals next to normals
    for x in (values(rng, (c, h, w), specials=0.2, payloads=True), tiny):
        want = np.zeros((c, out_h, out_w), F32)
        cpu_pool.maxpool(x, size, stride, pad, want, ftz)
        _, got = on_gpu(lambda a, o: pool.maxpool(a, size, stride, pad, o, ftz), x, np.zeros_like(want))
        assert_same(got, want)


def test_maxpool_compares_subnormals_as_zero_under_daz(backend):
    """DAZ decides which tap wins; the winner keeps its own bits."""
    x = np.array([[[1e-40, 2e-40], [-2.0, -3.0]]], F32)
    got = {}
    for ftz in TOGGLE:
        _, got[ftz] = on_gpu(lambda a, o: pool.maxpool(a, 2, 2, 0, o, ftz), x, np.zeros((1, 1, 1), F32))
    assert got[True][0, 0, 0] == F32(1e-40) and got[False][0, 0, 0] == F32(2e-40)


@pytest.mark.parametrize("c,h,w", [(5, 8, 8), (16, 7, 3), (8, 13, 13), (4, 1, 1)])
@pytest.mark.parametrize("reciprocal", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_avgpool_matches_cpu(backend, c, h, w, reciprocal, ftz):
    rng = np.random.default_rng(h * w)
    x = values(rng, (c, h, w), specials=0.03)
    x[0] = rng.standard_normal((h, w)).astype(F32) * F32(1e-37)  # sums and means near FLT_MIN
    want = np.zeros(c, F32)
    cpu_pool.avgpool(x, want, reciprocal, ftz)
    _, got = on_gpu(lambda a, o: pool.avgpool(a, o, reciprocal, ftz), x, np.zeros_like(want))
    assert_same(got, want)


@pytest.mark.parametrize("w,h,c,stride", [(6, 4, 8, 2), (4, 4, 18, 3), (2, 2, 4, 2), (3, 5, 4, 1)])
@pytest.mark.parametrize("forward", TOGGLE)
def test_reorg_matches_cpu(backend, w, h, c, stride, forward):
    x = np.arange(w * h * c, dtype=F32)
    want = np.full(x.size, -1.0, F32)
    cpu_reorg.reorg(x, w, h, c, stride, forward, want)
    _, got = on_gpu(lambda a, o: reorg.reorg(a, w, h, c, stride, forward, o), x, np.full(x.size, -1.0, F32))
    assert_same(got, want)


# ------------------------------------------------------------------------------ softmax

def cpu_groups(x, n, batch, batch_offset, groups, group_offset, stride, temp, vector, ftz):
    out = x.copy()
    cpu_softmax.softmax_groups(x, n, batch, batch_offset, groups, group_offset, stride, F32(temp), out,
                               vector, ftz)
    return out


def gpu_groups(x, n, batch, batch_offset, groups, group_offset, stride, temp, vector, ftz):
    _, out = on_gpu(lambda a, o: softmax.softmax_groups(a, n, batch, batch_offset, groups, group_offset,
                                                        stride, F32(temp), o, vector, ftz), x, x.copy())
    return out


# (n, batch, batch_offset, groups, group_offset, stride) of a region layer (anchors, entries,
# spatial) and of a softmax layer (inputs split into groups).
def region_geometry(classes, anchors=3, spatial=6, coords=4):
    entries = classes + coords + 1
    return (classes, anchors, entries * spatial, spatial, 1, spatial), anchors * entries * spatial


def layer_geometry(inputs, groups):
    n = inputs // groups
    return (n, 1, inputs, groups, n, 1), inputs


GEOMETRIES = [region_geometry(c) for c in (3, 10, 11, 12, 13, 14, 20, 80)] + [
    region_geometry(20, anchors=5, spatial=4, coords=5),
    layer_geometry(1000, 1), layer_geometry(60, 4), layer_geometry(33, 3), layer_geometry(7, 7)]


@pytest.mark.parametrize("geometry,size", GEOMETRIES)
@pytest.mark.parametrize("vector", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_softmax_groups_matches_cpu(backend, geometry, size, vector, ftz):
    rng = np.random.default_rng(size)
    for scale, specials, temp in [(4.0, 0.0, 1.0), (40.0, 0.02, 1.0), (4.0, 0.0, 0.5), (30.0, 0.0, 2.0)]:
        x = values(rng, size, scale, specials)
        args = geometry + (temp, vector, ftz)
        assert_same(gpu_groups(x, *args), cpu_groups(x, *args))


@pytest.mark.parametrize("vector", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_softmax_groups_with_specials_and_zero_temperature(backend, vector, ftz):
    """Dense specials; a NaN with a payload as the only NaN source of a group; temperature 0,
    which the stock tree code divides by."""
    rng = np.random.default_rng(7)
    geometry, size = region_geometry(13, anchors=2, spatial=40)
    n, batch, batch_offset, groups, group_offset, stride = geometry
    x = values(rng, size, 20.0, 0.15)
    payload = values(rng, size, 20.0, 0.0)
    for g in range(groups):
        picks = rng.choice(n, 4, replace=False)
        payload[g * group_offset + picks * stride] = np.concatenate([rng.choice(FINITE, 3),
                                                                     PAYLOAD_NANS[g % 4:g % 4 + 1]])
    for data, temp in [(x, 1.0), (x, 0.0), (payload, 1.0), (payload, 2.0)]:
        args = geometry + (temp, vector, ftz)
        assert_same(gpu_groups(data, *args), cpu_groups(data, *args))


def test_softmax_vector_lane_and_fallback_sums(backend):
    """Exponentials on both sides of the libmvec lane limit, in the lanes and the remainder."""
    n = 15
    x = np.array([0.0, -87.0, -87.4, -88.0, -100.0, -103.5, -104.5, -1e-40, -20.0, -60.0, -87.33655,
                  -87.33654, -103.28, -103.98, -0.1], F32)
    for ftz in TOGGLE:
        args = (n, 1, n, 1, n, 1, 1.0, True, ftz)
        assert_same(gpu_groups(x, *args), cpu_groups(x, *args))


def synthetic_tree(tmp_path):
    """A tree shaped like 9k.tree: a root group, nested groups of 1 to 15 children."""
    rng = np.random.default_rng(3)
    parents = [-1] * 4
    while len(parents) < 90:
        parent = int(rng.integers(0, len(parents)))
        if parent in parents:
            continue
        parents += [parent] * int(rng.choice([1, 2, 3, 5, 11, 12, 13, 15]))
    path = tmp_path / "synthetic.tree"
    path.write_text("".join(f"n{i:03d} {p}\n" for i, p in enumerate(parents)))
    return read_tree(str(path))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return synthetic_tree(tmp_path_factory.mktemp("tree"))


@pytest.mark.parametrize("layout", ["region", "softmax"])
@pytest.mark.parametrize("vector", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_softmax_tree_matches_cpu(backend, tree, layout, vector, ftz):
    assert tree.group_size.max() >= 11 and tree.group_size.min() == 1
    if layout == "region":
        anchors, spatial, coords = 3, 5, 4
        entries = tree.n + coords + 1
        base, batch, inputs = (coords + 1) * spatial, anchors, entries * spatial
        size = anchors * inputs
    else:
        base, spatial, batch, inputs = 0, 1, 1, tree.n
        size = inputs
    x = values(np.random.default_rng(11), size, 10.0, 0.01)
    for temp in (1.0, 0.5):
        args = (base, spatial, batch, inputs, tree.group_offset, tree.group_size, F32(temp))
        want = x.copy()
        cpu_softmax.softmax_tree(x, *args, want, vector, ftz)
        _, got = on_gpu(lambda a, o: softmax.softmax_tree(a, *args, o, vector, ftz), x, x.copy())
        assert_same(got, want)


# ------------------------------------------------------------------------------ region

REGIONS = {  # anchors, (h, w), classes, coords, background, softmax
    "yolov2": (5, (3, 4), 80, 4, False, True),
    "voc": (5, (2, 2), 20, 4, False, True),
    "background": (3, (2, 3), 12, 4, True, True),
    "logistic classes": (2, (3, 3), 6, 4, False, False),
    "few classes": (4, (2, 2), 3, 4, False, True),
    "no classes, no coords": (3, (2, 2), 0, 0, False, False),
    "one coord": (2, (2, 3), 3, 1, False, False),
}


def run_region(x, *args):
    want = cpu_region.region(x, *args, np.empty_like(x))
    dev = runtime.upload(x)
    got = runtime.download(region.region(dev, *args, runtime.empty(x.shape)))
    assert_same(got, want)
    return got


@pytest.mark.parametrize("name", sorted(REGIONS))
@pytest.mark.parametrize("vector", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_region_matches_cpu(backend, name, vector, ftz):
    anchors, (h, w), classes, coords, background, use_softmax = REGIONS[name]
    size = anchors * (classes + coords + 1) * h * w
    x = values(np.random.default_rng(len(name)), size, 12.0, 0.05, payloads=not use_softmax)
    x[:4] = [-100.0, -700.0, 1e-40, -89.0]  # logistic outputs below FLT_MIN, a subnormal input
    run_region(x, anchors, h * w, classes, coords, background, use_softmax, None, False, vector, ftz)


@pytest.mark.parametrize("compat", TOGGLE)
@pytest.mark.parametrize("vector", TOGGLE)
@pytest.mark.parametrize("ftz", TOGGLE)
def test_region_tree_matches_cpu(backend, tree, compat, vector, ftz):
    """The tree softmax as Darknet's GPU build computes it, and the stock CPU build's
    overlapping groups with temperature 0 (NaN where they reach, raw input elsewhere)."""
    anchors, spatial, coords = 3, 6, 4
    size = anchors * (tree.n + coords + 1) * spatial
    x = values(np.random.default_rng(5), size, 10.0, 0.02)
    got = run_region(x, anchors, spatial, tree.n, coords, False, False,
                     (tree.group_offset, tree.group_size), compat, vector, ftz)
    if compat:
        cells = anchors * spatial
        starts = coords + 1 + np.concatenate([[0], np.cumsum(tree.group_size)[:-1]])
        reach = int((starts + tree.group_size * cells).max())
        assert np.all(got.view(np.uint32)[coords + 1:reach] == 0xFFC00000)


def test_region_stock_tree_rejects_a_short_input(backend, tree):
    """Where the stock CPU code would read past the input, both backends refuse."""
    x = np.zeros(60, F32)
    args = (1, 1, tree.n, 4, False, False, (tree.group_offset, tree.group_size), True, True, True)
    with pytest.raises(ValueError):
        cpu_region.region(x, *args, np.empty_like(x))
    with pytest.raises(ValueError):
        region.region(runtime.upload(x), *args, runtime.empty(x.shape))


# ------------------------------------------------------------------------------ real sizes

def kit_tree():
    path = kit.KIT / "darknet" / "data" / "9k.tree"
    if not path.is_file():
        pytest.skip(kit.MISSING)
    return read_tree(str(path))


@pytest.mark.parametrize("compat", TOGGLE)
def test_region_9k_tree_at_128(backend, compat):
    """YOLO9000 at 128x128 (4x4 cells, 3 anchors, 9418 classes) with the real 9k.tree; the
    stock CPU code leaves NaN on exactly [5, 13295), as the kit records."""
    tree = kit_tree()
    anchors, spatial, coords = 3, 16, 4
    x = values(np.random.default_rng(9), anchors * (tree.n + coords + 1) * spatial, 6.0, 0.0)
    got = run_region(x, anchors, spatial, tree.n, coords, False, False, (tree.group_offset, tree.group_size),
                     compat, True, True)
    if compat:
        nan = np.flatnonzero(got.view(np.uint32) == 0xFFC00000)
        assert nan[0] == 5 and nan[-1] == 13294 and nan.size == 13290


@pytest.mark.gpu
@pytest.mark.parametrize("ftz", TOGGLE)
def test_full_size_layers_on_gpu(backend, ftz):
    """yolov2-608's region, darknet19's 1000-way softmax and yolo9000-544's tree region."""
    if backend != "cuda":
        pytest.skip("full sizes are for the real GPU")
    rng = np.random.default_rng(1)
    x = values(rng, 5 * 85 * 19 * 19, 8.0, 0.001)
    run_region(x, 5, 19 * 19, 80, 4, False, True, None, False, True, ftz)
    x = values(rng, 1000, 8.0, 0.0)
    args = layer_geometry(1000, 1)[0] + (1.0, True, ftz)
    assert_same(gpu_groups(x, *args), cpu_groups(x, *args))
    tree = kit_tree()
    x = values(rng, 3 * (tree.n + 5) * 17 * 17, 6.0, 0.001)
    for compat in TOGGLE:
        run_region(x, 3, 17 * 17, tree.n, 4, False, False, (tree.group_offset, tree.group_size), compat,
                   True, ftz)
