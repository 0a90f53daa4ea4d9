"""darknetpy.ray_actor on a local Ray (pip install 'darknet-exact[ray]'): the same detections
as the one-process path, for a `path` and a `bytes` column, and `detect --ray local`."""
import json
import os
import subprocess
import sys

import pytest

try:
    import ray
    import ray.data
except ImportError:
    ray = None

pytestmark = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'darknet-exact[ray]')")

from test_many import ENV, write_image, write_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray")
    cfg, weights = write_tiny_model(folder)
    for i in range(50):
        write_image(folder / "images" / f"{i:03d}.{'png' if i % 3 else 'jpg'}", 20 + i, 60 - i, i)
    (folder / "images" / "025b.png").write_bytes(b"not an image")
    return cfg, weights, folder / "images"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def single_process(cfg, weights, paths):
    """The local pipeline's records (identical to Network.detect: test_many checks that)."""
    from darknetpy import many
    from darknetpy.network import Network

    net = Network(cfg, weights, warn=None)
    items = [many.Item(i, str(p), p.name) for i, p in enumerate(paths)]
    return {r.item.path: (r.error is not None, many.record(r, ["0", "1"], 0.2).get("detections"))
            for r in many.detect_many(net, items, thresh=0.2)}


def normalised(rows):
    """{path: (failed, detections)} whatever order the rows came in."""
    return {r["path"]: (bool(r["error"]), None if r["error"] else r["detections"]) for r in rows}


@pytest.mark.parametrize("column", ["path", "bytes"])
def test_map_batches_equals_the_single_process_path(setup, local_ray, column):
    from darknetpy.ray_actor import Detector, _plain

    cfg, weights, folder = setup
    paths = sorted(folder.iterdir())
    assert len(paths) == 51
    if column == "path":
        ds = ray.data.from_items([{"path": str(p)} for p in paths])
    else:
        ds = ray.data.from_items([{"path": str(p), "bytes": p.read_bytes()} for p in paths])
    out = ds.map_batches(Detector, batch_size=8, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=2),
                         num_cpus=1, fn_constructor_kwargs=dict(cfg=str(cfg), weights=str(weights), names=["0", "1"],
                                                                thresh=0.2, threads=1))
    rows = [_plain(r) for r in out.iter_rows()]
    assert len(rows) == 51
    got = normalised(rows)
    want = single_process(cfg, weights, paths)
    assert got == want
    bad = next(r for r in rows if r["path"].endswith("025b.png"))
    assert "not an image" in bad["error"] and bad["width"] == -1 and bad["detections"] == []
    good = next(r for r in rows if r["path"].endswith("001.png"))
    assert (good["width"], good["height"]) == (21, 59) and good["error"] == ""


def test_cli_ray_local_writes_the_same_json_lines(setup, tmp_path):
    cfg, weights, folder = setup
    local = tmp_path / "local.jsonl"
    distributed = tmp_path / "ray.jsonl"
    r = subprocess.run([sys.executable, "-m", "darknetpy", "detect", str(cfg), str(weights), str(folder), "--json",
                        str(local), "-thresh", "0.2"], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 1, r.stderr  # 025b.png fails
    r = subprocess.run([sys.executable, "-m", "darknetpy", "detect", str(cfg), str(weights), str(folder), "--json",
                        str(distributed), "-thresh", "0.2", "--ray", "local", "--workers", "2", "--threads", "1"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1].startswith("darknetpy: 51 images, 1 failed, ")
    assert distributed.read_text() == local.read_text()
    records = [json.loads(line) for line in local.read_text().splitlines()]
    assert [os.path.basename(rec["path"]) for rec in records] == sorted(os.listdir(folder))
