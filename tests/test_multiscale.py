"""Multi-scale training (`random=1`): the loop's resize_network keeps every parameter,
momentum buffer, rolling statistic, `seen`, `t` and the running loss, and a resized
network computes what a network built at that size computes."""
import numpy as np
import pytest

from darknetpy.train.init import darknet_init
from darknetpy.train.loop import RunOptions, Session, train_batch
from test_resume import CFG

ROWS = 4     # batch=4, subdivisions=2: 2 datums of 2 images


def session(folder, w=32, h=32):
    folder.mkdir()
    cfg = folder / "tiny.cfg"
    cfg.write_text(CFG.replace("width=32", f"width={w}").replace("height=32", f"height={h}"))
    s = Session(str(cfg), RunOptions(deterministic=True))
    s.print_line = lambda line: None
    darknet_init(s.net.model, 7)
    s.start()
    return s


def batch(seed, size):
    """ROWS images and their truths (two boxes each: x, y, w, h, class)."""
    rng = np.random.default_rng(seed)
    X = rng.random((ROWS, 3, size, size), dtype=np.float32)
    y = np.zeros((ROWS, 30 * 5), np.float32)
    for r in range(ROWS):
        for b in range(2):
            y[r, 5 * b:5 * b + 5] = [*rng.uniform(0.2, 0.8, 2), *rng.uniform(0.1, 0.4, 2), rng.integers(0, 4)]
    return X, y


def state(s):
    """Everything training carries from one iteration to the next, as bytes."""
    t = s.trainer
    params = [(i, name, p.value.tobytes(), None if p.updates is None else p.updates.tobytes())
              for i, layer in enumerate(s.net.layers) for name, p in sorted(layer.params.items())]
    return params, t.executor.seen, t.executor.t, t.avg_loss.tobytes(), s.net.model.header.seen


def test_resizing_away_and_back_changes_nothing(tmp_path):
    """Train, resize to 64x64 and back, train on: bit-identical to a run that never resized.
    A state resize_network dropped (a momentum buffer, a rolling mean, seen, t) would differ."""
    moved, still = session(tmp_path / "a"), session(tmp_path / "b")
    for s in (moved, still):
        for k in range(2):
            train_batch(s.trainer, *batch(k, 32))
    moved.resize(64, 64)
    assert moved.size == (64, 64) and moved.net.layers[-1].out_shape == (18, 16, 16)
    moved.resize(32, 32)
    for s in (moved, still):
        train_batch(s.trainer, *batch(2, 32))
    assert moved.trainer.executor.seen == 3 * ROWS
    assert state(moved) == state(still)


@pytest.mark.parametrize("size", [64, 96])
def test_a_resized_network_trains_as_one_built_at_that_size(tmp_path, size):
    """resize_network to size x size, then a training step: the same bits as a network whose
    cfg says that size, started from the same parameters."""
    resized = session(tmp_path / "a")
    resized.resize(size, size)
    built = session(tmp_path / "b", size, size)
    X, y = batch(5, size)
    losses = [train_batch(s.trainer, X, y) for s in (resized, built)]
    assert losses[0].tobytes() == losses[1].tobytes()
    assert state(resized) == state(built)
    assert resized.trainer.outputs[-1].shape == built.trainer.outputs[-1].shape
    assert np.array_equal(resized.trainer.outputs[-1], built.trainer.outputs[-1])
