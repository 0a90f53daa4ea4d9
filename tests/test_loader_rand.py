"""glibc rand() and Darknet's rand helpers against the data kit (../shared/reference-data)."""
import json
import os

import numpy as np
import pytest

from darknetpy.loader.rand import GlibcRand, NormalSpare, rand_int, rand_normal, rand_scale, rand_uniform

KIT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference-data")
pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(KIT, "manifest.json")), reason="data kit absent")


def manifest():
    with open(os.path.join(KIT, "manifest.json")) as f:
        return json.load(f)


def test_glibc_rand_every_kit_seed():
    seeds = manifest()["glibc_rand"]["seeds"]
    assert len(seeds) >= 8
    for seed, want in seeds.items():
        rng = GlibcRand(int(seed))
        got = [rng.rand() for _ in range(10000)]
        assert got[:20] == want["first20"], seed
        assert got[-1] == want["value_10000"], seed


def test_helpers_seed1():
    lines = manifest()["helpers_seed1"]
    rng = GlibcRand(1)
    spare = NormalSpare()
    got = []
    for _ in range(6):
        got.append(f"rand_uniform(-0.3,0.3) {float(rand_uniform(rng, np.float32(-0.3), np.float32(0.3))).hex()}")
    for _ in range(3):
        got.append(f"rand_uniform(5,-2) {float(rand_uniform(rng, 5, -2)).hex()}")
    for s in ("1.5", "0.75"):
        for _ in range(6):
            got.append(f"rand_scale({s}) {float(rand_scale(rng, np.float32(float(s)))).hex()}")
    for lo, hi, k in ((32, 112, 4), (112, 32, 2)):
        for _ in range(k):
            got.append(f"rand_int({lo},{hi}) {rand_int(rng, lo, hi)}")
    normals = [rand_normal(rng, spare) for _ in range(4)]
    nxt = rng.rand()
    assert len(lines) == len(got) + 5, lines[len(got):]
    for want, have in zip(lines, got):
        wk, wv = want.rsplit(" ", 1)
        hk, hv = have.rsplit(" ", 1)
        assert wk.replace(" ", "") == hk.replace(" ", "")
        assert float.fromhex(wv) == float.fromhex(hv) if "0x" in wv else int(wv) == int(hv), (want, have)
    for want, value in zip(lines[len(got):len(got) + 4], normals):
        assert float.fromhex(want.rsplit(" ", 1)[1]) == value, (want, value.hex())
    assert int(lines[-1].rsplit(" ", 1)[1], 0) == nxt


def test_state_restore_continues_the_stream():
    rng = GlibcRand(42)
    [rng.rand() for _ in range(100)]
    saved = json.loads(json.dumps(rng.state()))
    want = [rng.rand() for _ in range(50)]
    other = GlibcRand(3)
    other.restore(saved)
    assert [other.rand() for _ in range(50)] == want
