"""hierarchy_predictions / hierarchy_top_prediction on a small handmade tree."""
from __future__ import annotations

import numpy as np
import pytest

from darknetpy.tree import hierarchy_predictions, hierarchy_top_prediction, read_tree

F32 = np.float32

# index name parent      groups: 0 = {0, 1} (roots), 1 = {2, 3} (children of 0),
TREE = """r0 -1
r1 -1
a 0
b 0
c 1
d 2
e 2
"""  # 2 = {4} (child of 1), 3 = {5, 6} (children of 2); leaves 3, 4, 5, 6

RAW = [0.6, 0.4, 0.7, 0.3, 1.0, 0.2, 0.8]


@pytest.fixture
def tree(tmp_path):
    p = tmp_path / "tiny.tree"
    p.write_text(TREE)
    t = read_tree(str(p))
    assert t.groups == 4 and list(t.child) == [1, 2, 3, -1, -1, -1, -1]
    return t


def test_hierarchy_predictions_products(tree):
    p = np.array(RAW, np.float32)
    hierarchy_predictions(p, tree.n, tree, False, 1)
    r = [F32(v) for v in RAW]
    a = r[2] * r[0]
    expected = [r[0], r[1], a, r[3] * r[0], r[4] * r[1], r[5] * a, r[6] * a]
    assert p.view(np.uint32).tolist() == np.array(expected, np.float32).view(np.uint32).tolist()


def test_hierarchy_predictions_only_leaves_and_stride(tree):
    # classes interleaved with stride 3, starting at offset 1; other entries untouched
    buf = np.full(1 + 3 * tree.n, 9.0, np.float32)
    buf[1::3] = RAW
    hierarchy_predictions(buf, tree.n, tree, True, 3, offset=1)
    ref = np.array(RAW, np.float32)
    hierarchy_predictions(ref, tree.n, tree, True, 1)
    assert buf[1::3].tolist() == ref.tolist()
    assert ref[:3].tolist() == [0, 0, 0] and (ref[3:] > 0).all()
    assert (np.delete(buf, np.arange(1, buf.size, 3)) == 9).all()


def test_hierarchy_predictions_flush_to_zero(tree):
    base = np.array([1e-20, 1e-39, 1e-20, -1e-20, np.inf, 1, 1], np.float32)
    p = base.copy()
    hierarchy_predictions(p, tree.n, tree, False, 1)
    assert p[2] == 0 and not np.signbit(p[2])    # 1e-40 flushed
    assert p[3] == 0 and np.signbit(p[3])        # -1e-40 flushed to -0
    assert np.isnan(p[4])                        # subnormal parent read as 0: 0 * inf
    q = base.copy()
    hierarchy_predictions(q, tree.n, tree, False, 1, ftz=False)
    assert q[2] == F32(1e-20) * F32(1e-20) and 0 < q[2] < 2.0 ** -126
    assert q[3] < 0
    assert q[4] == np.inf


@pytest.mark.parametrize("thresh,expected", [
    (0.3, 6),   # 0.6 -> 0.6*0.7 = 0.42 -> 0.42*0.8 = 0.336 > 0.3: the leaf e
    (0.4, 2),   # 0.336 fails in group 3 (d, e): the parent of that group, a
    (0.5, 0),   # 0.42 fails in group 1 (a, b): the parent of that group, r0
    (0.7, 0),   # 0.6 fails in the root group: the root group's best entry, r0
    (0.5999, 0),
])
def test_hierarchy_top_prediction(tree, thresh, expected):
    p = np.array(RAW, np.float32)
    assert hierarchy_top_prediction(p, tree, thresh, 1) == expected
    p[1] = 0.65  # r1 now wins the root group; its only child c has 1.0
    assert hierarchy_top_prediction(p, tree, 0.6, 1) == 4
    assert hierarchy_top_prediction(p, tree, 0.7, 1) == 1


def test_hierarchy_top_prediction_ties_nan_and_zeros(tree):
    p = np.array([0.5, 0.5, 0.9, 0.9, 1, 1, 1], np.float32)
    assert hierarchy_top_prediction(p, tree, 0.1, 1) == 5  # first of equal maxima
    p = np.array([np.nan, 0.2, 0.5, 0.5, 1, 1, 1], np.float32)
    assert hierarchy_top_prediction(p, tree, 0.1, 1) == 4  # NaN never wins; r1 -> c
    p = np.zeros(tree.n, np.float32)
    assert hierarchy_top_prediction(p, tree, 0.0, 1) == 0  # max stays 0 at index 0
    # float32 path product: 0.6f*0.7f is not > 0.42f, so a (index 2) is not reached
    p = np.array(RAW, np.float32)
    t = F32(0.6) * F32(0.7)
    assert hierarchy_top_prediction(p, tree, float(t), 1) == 0
    assert hierarchy_top_prediction(p, tree, float(np.nextafter(t, F32(0))), 1) == 2


def test_stride_and_offset(tree):
    buf = np.zeros(2 + 4 * tree.n, np.float32)
    buf[2::4] = RAW
    assert hierarchy_top_prediction(buf, tree, 0.3, 4, offset=2) == 6


def test_argument_checks(tree):
    with pytest.raises(TypeError):
        hierarchy_predictions(np.array(RAW), tree.n, tree, False, 1)
    with pytest.raises(ValueError):
        hierarchy_predictions(np.zeros(3, np.float32), tree.n, tree, False, 1)
    with pytest.raises(ValueError):
        hierarchy_top_prediction(np.zeros(3, np.float32), tree, 0.5, 1)
