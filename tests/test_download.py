"""darknetpy.download against mirrors built at run time from the reference kit's Darknet tree.

Nothing here reaches the internet: every transfer goes to a temporary folder or to an
http.server on 127.0.0.1 (a guard fixture refuses any other host). The weights in the
mirrors are small fake files; the cfg, .data, names, tree, map and image files are copied
from the kit (../shared/reference/darknet), never stored in this repository.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darknetpy import download as dl
from darknetpy.errors import DarknetError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KIT = Path(os.environ.get("DARKNETPY_KIT", SHARED / "reference"))
KIT_V3 = Path(os.environ.get("DARKNETPY_KIT_V3", SHARED / "reference-v3"))
TREE = KIT / "darknet"
TREES = (TREE, KIT_V3 / "darknet")    # the YOLOv2 kit's Darknet files, then the YOLOv3 kit's
pytestmark = pytest.mark.skipif(not all((t / "cfg").is_dir() and (t / "data").is_dir() for t in TREES),
                                reason=f"the kits' Darknet trees not found at {TREES[0]} and {TREES[1]} "
                                       f"(set DARKNETPY_KIT, DARKNETPY_KIT_V3)")


def tree_file(rel: str) -> Path:
    """A file of Darknet's tree as the kits hold it (the first kit that has it)."""
    return next((t / rel for t in TREES if (t / rel).is_file()), TREE / rel)

BIG = "yolov2"                 # its fake weights span several chunks
BIG_SIZE = 300_001
SMALL_SIZE = 4_099


def fake_weights(name: str) -> bytes:
    n = BIG_SIZE if name == BIG else SMALL_SIZE
    return random.Random(name).randbytes(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A mirror laid out as documented: weights/<name>.weights, cfg/..., data/... (read only by tests)."""
    root = tmp_path_factory.mktemp("mirror")
    for spec in dl.model_files(dl.MODELS):
        target = root / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec.path.startswith("weights/"):
            target.write_bytes(fake_weights(Path(spec.path).stem))
        else:
            shutil.copyfile(tree_file(spec.path), target)
    return root


def expected(mirror: Path, rel: str) -> bytes:
    return (mirror / rel).read_bytes()


def checked_catalogue(mirror: Path, **override) -> dict[str, dl.Model]:
    """MODELS with every size and SHA-256 filled in from the mirror (then `override`: path -> FileSpec kwargs)."""
    out = {}
    for name, model in dl.MODELS.items():
        files = []
        for spec in model.files:
            data = expected(mirror, spec.path)
            spec = replace(spec, size=len(data), sha256=sha(data))
            files.append(replace(spec, **override.get(spec.path, {})))
        out[name] = dl.Model(name, tuple(files))
    return out


# ----------------------------------------------------------------------------- loopback server

class Handler(BaseHTTPRequestHandler):
    """Serves the mirror; honours `Range: bytes=N-` unless told not to; can cut a body short."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        srv = self.server
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        rng = self.headers.get("Range")
        srv.requests.append((rel, rng))
        f = srv.root / rel
        if rel in srv.missing or ".." in rel.split("/") or not f.is_file():
            self.send_error(404)
            return
        data = f.read_bytes()
        status, start = 200, 0
        if rng and srv.honour_range:
            assert rng.startswith("bytes=") and rng.endswith("-"), rng
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if rel in srv.cut:
            self.wfile.write(body[:srv.cut[rel]])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(mirror):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.root = mirror
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def http(server):
    """The loopback server's base URL, its behaviour reset for this test."""
    server.requests, server.missing, server.cut, server.honour_range = [], set(), {}, True
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Refuse any URL that is not on 127.0.0.1; no official mirror from the environment; small chunks."""
    real = urllib.request.urlopen

    def guarded(req, *a, **k):
        url = req.full_url if isinstance(req, urllib.request.Request) else req
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"test tried to reach {url}"
        return real(req, *a, **k)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setattr(dl, "CHUNK", 1 << 16)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- catalogue and plan

def _keys(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


@pytest.mark.parametrize("name", sorted(dl.MODELS))
def test_catalogue_brings_every_file_the_cfg_and_data_name(name):
    paths = [s.path for s in dl.MODELS[name].files]
    if name == "darknet53.conv.74":   # a backbone for training: the cfg it goes with, no .data
        assert paths == ["cfg/darknet53.cfg", "weights/darknet53.conv.74"]
        return
    assert paths[0] == f"cfg/{name}.cfg" and paths[-1] == f"weights/{name}.weights"
    datas = [p for p in paths if p.endswith(".data")]
    assert len(datas) == 1 and datas[0].startswith("cfg/")
    named = []
    for f in (tree_file(paths[0]), tree_file(datas[0])):
        keys = _keys(f)
        named += [v for k in ("names", "labels", "tree", "map") for v in keys.get(k, [])]
    assert named, name
    assert sorted(set(named)) == sorted(p for p in paths if p.startswith("data/"))
    for p in paths[:-1]:
        assert tree_file(p).is_file(), p
    assert all(s.size is None and s.sha256 is None for s in dl.MODELS[name].files)   # none invented


def test_catalogue_models_and_samples():
    assert sorted(dl.MODELS) == sorted(["yolov2", "yolov2-tiny", "yolov2-voc", "yolov2-tiny-voc", "yolo9000",
                                        "darknet19", "darknet19_448", "yolov3", "yolov3-tiny", "yolov3-spp",
                                        "yolov3-voc", "darknet53", "darknet53.conv.74", "resnet50"])
    assert [s.path for s in dl.SAMPLES] == ["data/dog.jpg", "data/horses.jpg"]
    assert dl.model_files(["yolo9000"])[-1].path == "weights/yolo9000.weights"   # weights come last
    assert {"cfg/combine9k.data", "data/9k.tree", "data/coco9k.map", "data/inet9k.map", "data/9k.names",
            "data/9k.labels"} <= {s.path for s in dl.model_files(["yolo9000"])}


def test_plan_official_urls(tmp_path):
    items = dl.plan(["yolov2-tiny", "yolov2", "yolov2"], str(tmp_path), mirror="")
    got = {os.path.relpath(i.path, tmp_path): i.source for i in items}
    raw = "https://raw.githubusercontent.com/pjreddie/darknet/master/"
    assert got == {
        "cfg/yolov2-tiny.cfg": raw + "cfg/yolov2-tiny.cfg",
        "cfg/yolov2.cfg": raw + "cfg/yolov2.cfg",
        "cfg/coco.data": raw + "cfg/coco.data",
        "data/coco.names": raw + "data/coco.names",
        "data/dog.jpg": raw + "data/dog.jpg",
        "data/horses.jpg": raw + "data/horses.jpg",
        "weights/yolov2-tiny.weights": "https://pjreddie.com/media/files/yolov2-tiny.weights",
        "weights/yolov2.weights": "https://pjreddie.com/media/files/yolov2.weights",
    }
    assert len(items) == len(got)                        # each file once
    assert [os.path.relpath(i.path, tmp_path).split("/")[0] for i in items][-2:] == ["weights", "weights"]
    assert dl.plan(["darknet19"], ".", mirror="")[0].path == os.path.join("cfg", "darknet19.cfg")


def test_plan_mirror_forms(tmp_path, monkeypatch):
    item = lambda m: dl.plan(["darknet19_448"], "d", mirror=m)       # noqa: E731
    assert item(str(tmp_path))[-1].source == str(tmp_path / "weights" / "darknet19_448.weights")
    assert item(tmp_path.as_uri() + "/")[0].source == str(tmp_path / "cfg" / "darknet19_448.cfg")
    assert item("https://example.org/m/")[-1].source == "https://example.org/m/weights/darknet19_448.weights"
    assert item("http://127.0.0.1:8/x")[1].source == "http://127.0.0.1:8/x/cfg/imagenet1k.data"
    monkeypatch.setenv(dl.MIRROR_ENV, "http://127.0.0.1:9")
    assert item(None)[0].source == "http://127.0.0.1:9/cfg/darknet19_448.cfg"
    assert item("")[0].source.startswith("https://raw.githubusercontent.com/")          # "" forces official


@pytest.mark.parametrize("models, words", [
    (["yolov4"], ["unknown model 'yolov4'", "yolov2-tiny-voc", "darknet19_448", "yolov3-spp"]),
    (["yolov2", "nope"], ["unknown model 'nope'"]),
    ([], ["name a model", "yolo9000"]),
])
def test_unknown_model(tmp_path, models, words):
    with pytest.raises(DarknetError) as e:
        dl.download(models, str(tmp_path), mirror=str(tmp_path), progress=False)
    msg = one_line(e)
    assert all(w in msg for w in words), msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mirror, words", [
    ("/no/such/mirror/folder", ["no such folder"]),
    ("ftp://127.0.0.1/x", ["http://", "file://"]),
    ("http:///x", ["no host"]),
    ("file://elsewhere/x", ["local path"]),
])
def test_bad_mirror(tmp_path, mirror, words):
    with pytest.raises(DarknetError) as e:
        dl.download(["yolov2"], str(tmp_path), mirror=mirror, progress=False)
    msg = one_line(e)
    assert mirror in msg and all(w in msg for w in words), msg


# ----------------------------------------------------------------------------- local mirror

def assert_tree(dest: Path, mirror: Path, models) -> None:
    for spec in dl.model_files(models):
        assert (dest / spec.path).read_bytes() == expected(mirror, spec.path), spec.path
    assert not list(dest.rglob("*.part"))
    assert not list(dest.rglob(".tmp*"))


def test_local_mirror_all_models_then_skip(tmp_path, mirror):
    dest = tmp_path / "dest"
    out = io.StringIO()
    written = dl.download(list(dl.MODELS), str(dest), mirror=str(mirror), out=out)
    assert sorted(written) == sorted(str(dest / s.path) for s in dl.model_files(dl.MODELS))
    assert_tree(dest, mirror, dl.MODELS)
    assert set(p.relative_to(dest).parts[0] for p in dest.rglob("*") if p.is_file()) == {"cfg", "data", "weights"}
    assert "saved" in out.getvalue()
    # Everything present: nothing written, each file reported as skipped.
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    out = io.StringIO()
    assert dl.download(["yolo9000", "darknet19"], str(dest), mirror=str(mirror), out=out) == []
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    assert out.getvalue().count("skip ") == len(dl.model_files(["yolo9000", "darknet19"]))


def test_present_file_is_kept_even_if_different_when_no_check_known(tmp_path, mirror):
    dest = tmp_path
    (dest / "cfg").mkdir()
    (dest / "cfg" / "yolov2-tiny.cfg").write_text("mine\n")
    written = dl.download(["yolov2-tiny"], str(dest), mirror=str(mirror), progress=False)
    assert str(dest / "cfg" / "yolov2-tiny.cfg") not in written
    assert (dest / "cfg" / "yolov2-tiny.cfg").read_text() == "mine\n"
    assert (dest / "weights" / "yolov2-tiny.weights").read_bytes() == fake_weights("yolov2-tiny")


def test_file_url_mirror_from_environment(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv(dl.MIRROR_ENV, mirror.as_uri())
    dl.download(["yolov2-tiny-voc"], str(tmp_path), progress=False)
    assert_tree(tmp_path, mirror, ["yolov2-tiny-voc"])


@pytest.mark.parametrize("cut", [0, 1, 65_536, BIG_SIZE - 1, BIG_SIZE])
def test_local_resume(tmp_path, mirror, cut):
    data = fake_weights(BIG)
    part = tmp_path / "weights" / f"{BIG}.weights.part"
    part.parent.mkdir()
    part.write_bytes(data[:cut])
    out = io.StringIO()
    dl.download([BIG], str(tmp_path), mirror=str(mirror), out=out)
    assert (tmp_path / "weights" / f"{BIG}.weights").read_bytes() == data
    assert not part.exists()
    if cut:
        assert f"resuming at {cut} bytes" in out.getvalue()


def test_local_missing_file(tmp_path, mirror):
    partial = tmp_path / "mirror"
    shutil.copytree(mirror, partial)
    (partial / "data" / "9k.tree").unlink()
    dest = tmp_path / "dest"
    with pytest.raises(DarknetError) as e:
        dl.download(["yolo9000"], str(dest), mirror=str(partial), progress=False)
    assert one_line(e) == f"{partial / 'data' / '9k.tree'}: not in the mirror (no such file)"
    assert not (dest / "data" / "9k.tree").exists()


# ----------------------------------------------------------------------------- HTTP mirror

def test_http_mirror(tmp_path, mirror, http, server):
    written = dl.download(["yolov2", "yolo9000"], str(tmp_path), mirror=http + "/", progress=False)
    assert len(written) == len(dl.model_files(["yolov2", "yolo9000"]))
    assert_tree(tmp_path, mirror, ["yolov2", "yolo9000"])
    assert all(rng is None for _, rng in server.requests)
    assert sorted(rel for rel, _ in server.requests) == sorted(s.path for s in dl.model_files(["yolov2", "yolo9000"]))


@pytest.mark.parametrize("honour_range", [True, False])
def test_http_resume(tmp_path, mirror, http, server, honour_range):
    server.honour_range = honour_range
    data = fake_weights(BIG)
    part = tmp_path / "weights" / f"{BIG}.weights.part"
    part.parent.mkdir()
    part.write_bytes(data[:123_457])
    dl.download([BIG], str(tmp_path), mirror=http, progress=False)
    assert (tmp_path / "weights" / f"{BIG}.weights").read_bytes() == data
    assert not part.exists()
    assert (f"weights/{BIG}.weights", "bytes=123457-") in server.requests   # a Range request was sent


def test_http_part_already_complete(tmp_path, mirror, http, server):
    """A .part holding the whole file: the server answers 416 with the total; the file is just renamed."""
    data = fake_weights(BIG)
    part = tmp_path / "weights" / f"{BIG}.weights.part"
    part.parent.mkdir()
    part.write_bytes(data)
    dl.download([BIG], str(tmp_path), mirror=http, progress=False)
    assert (tmp_path / "weights" / f"{BIG}.weights").read_bytes() == data
    assert server.requests[-1] == (f"weights/{BIG}.weights", f"bytes={BIG_SIZE}-")


def test_http_part_longer_than_file_starts_over(tmp_path, mirror, http):
    data = fake_weights(BIG)
    part = tmp_path / "weights" / f"{BIG}.weights.part"
    part.parent.mkdir()
    part.write_bytes(data + b"junk")
    dl.download([BIG], str(tmp_path), mirror=http, progress=False)
    assert (tmp_path / "weights" / f"{BIG}.weights").read_bytes() == data


def test_http_404_one_line_no_file(tmp_path, mirror, http, server):
    server.missing.add("data/coco9k.map")
    with pytest.raises(DarknetError) as e:
        dl.download(["yolo9000"], str(tmp_path), mirror=http, progress=False)
    assert one_line(e) == f"{http}/data/coco9k.map: HTTP 404 Not Found"
    assert not (tmp_path / "data" / "coco9k.map").exists()
    assert not (tmp_path / "weights" / "yolo9000.weights").exists()      # stopped at the first failure


def test_http_connection_cut_keeps_part_then_resumes(tmp_path, mirror, http, server):
    rel = f"weights/{BIG}.weights"
    server.cut[rel] = 100_000
    with pytest.raises(DarknetError) as e:
        dl.download([BIG], str(tmp_path), mirror=http, progress=False)
    assert one_line(e) == f"{http}/{rel}: connection closed after 100000 of {BIG_SIZE} bytes"
    assert not (tmp_path / rel).exists()
    assert (tmp_path / (rel + ".part")).read_bytes() == fake_weights(BIG)[:100_000]
    server.cut.clear()
    dl.download([BIG], str(tmp_path), mirror=http, progress=False)
    assert (tmp_path / rel).read_bytes() == fake_weights(BIG)
    assert server.requests[-1] == (rel, "bytes=100000-")


def test_http_connection_refused(tmp_path):
    with socket.socket() as s:                  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(DarknetError) as e:
        dl.download(["yolov2-tiny"], str(tmp_path), mirror=url, progress=False)
    msg = one_line(e)
    assert msg.startswith(f"{url}/cfg/yolov2-tiny.cfg: cannot connect: "), msg
    assert not (tmp_path / "cfg" / "yolov2-tiny.cfg").exists()


# ----------------------------------------------------------------------------- checks

@pytest.mark.parametrize("kind", ["local", "http"])
def test_known_checksums_pass(tmp_path, mirror, http, kind):
    source = str(mirror) if kind == "local" else http
    cat = checked_catalogue(mirror)
    written = dl.download(["yolov2-voc"], str(tmp_path), mirror=source, progress=False, catalogue=cat)
    assert len(written) == len(dl.model_files(["yolov2-voc"]))
    assert_tree(tmp_path, mirror, ["yolov2-voc"])
    # Present and passing: skipped. Present and failing: removed and fetched again.
    w = tmp_path / "weights" / "yolov2-voc.weights"
    good = w.read_bytes()
    w.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    out = io.StringIO()
    written = dl.download(["yolov2-voc"], str(tmp_path), mirror=source, out=out, catalogue=cat)
    assert written == [str(w)]
    assert "SHA-256 mismatch" in out.getvalue() and "fetching it again" in out.getvalue()
    assert w.read_bytes() == fake_weights("yolov2-voc")


@pytest.mark.parametrize("kind", ["local", "http"])
def test_sha256_mismatch_leaves_nothing(tmp_path, mirror, http, kind):
    source = str(mirror) if kind == "local" else http
    rel = "weights/yolov2-voc.weights"
    cat = checked_catalogue(mirror, **{rel: {"sha256": "0" * 64}})
    with pytest.raises(DarknetError) as e:
        dl.download(["yolov2-voc"], str(tmp_path), mirror=source, progress=False, catalogue=cat)
    url = f"{mirror / rel}" if kind == "local" else f"{http}/{rel}"
    assert one_line(e) == f"{url}: SHA-256 mismatch: {sha(fake_weights('yolov2-voc'))}, expected {'0' * 64}"
    assert not (tmp_path / rel).exists()
    assert not (tmp_path / (rel + ".part")).exists()
    assert (tmp_path / "cfg" / "yolov2-voc.cfg").is_file()      # files before it were fine


def test_size_mismatch_leaves_nothing(tmp_path, mirror, http):
    rel = "data/voc.names"
    cat = checked_catalogue(mirror, **{rel: {"size": 5}})
    with pytest.raises(DarknetError) as e:
        dl.download(["yolov2-tiny-voc"], str(tmp_path), mirror=http, progress=False, catalogue=cat)
    assert "size mismatch" in one_line(e) and f"{http}/{rel}" in str(e.value)
    assert not (tmp_path / rel).exists() and not (tmp_path / (rel + ".part")).exists()


def test_corrupt_part_is_deleted_when_hash_known(tmp_path, mirror):
    rel = f"weights/{BIG}.weights"
    cat = checked_catalogue(mirror)
    part = tmp_path / (rel + ".part")
    part.parent.mkdir()
    part.write_bytes(b"\xff" * 1000)                # right length prefix, wrong bytes
    with pytest.raises(DarknetError) as e:
        dl.download([BIG], str(tmp_path), mirror=str(mirror), progress=False, catalogue=cat)
    assert "SHA-256 mismatch" in one_line(e)
    assert not part.exists() and not (tmp_path / rel).exists()
    dl.download([BIG], str(tmp_path), mirror=str(mirror), progress=False, catalogue=cat)   # clean retry
    assert (tmp_path / rel).read_bytes() == fake_weights(BIG)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, BIG_SIZE + 10), via_http=st.booleans())
def test_resume_any_offset(tmp_path_factory, mirror, server, cut, via_http):
    server.requests, server.missing, server.cut, server.honour_range = [], set(), {}, True
    dest = tmp_path_factory.mktemp("resume")
    data = fake_weights(BIG)
    target = dest / "yolov2.weights"
    Path(str(target) + ".part").write_bytes((data + b"xxxxxxxxxx")[:cut])
    source = (f"http://127.0.0.1:{server.server_address[1]}/weights/{BIG}.weights" if via_http
              else str(mirror / "weights" / f"{BIG}.weights"))
    assert dl.fetch(source, str(target), size=len(data), sha256=sha(data), progress=False)
    assert target.read_bytes() == data and not Path(str(target) + ".part").exists()


# ----------------------------------------------------------------------------- progress

class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_lines_and_bar(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(dl, "CHUNK_REPORT", 1000)
    monkeypatch.setattr(dl, "CHUNK", 4096)                  # finer than 10%: every step is shown
    src = str(mirror / "weights" / f"{BIG}.weights")
    out = io.StringIO()
    dl.fetch(src, str(tmp_path / "a.weights"), out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"get {src} -> {tmp_path / 'a.weights'}"
    assert [l for l in lines if l.startswith("  a.weights: ")] == [f"  a.weights: {p}%" for p in range(10, 101, 10)]
    assert lines[-1] == f"saved {tmp_path / 'a.weights'} ({BIG_SIZE} bytes)"
    assert "\r" not in out.getvalue()

    tty = Tty()
    dl.fetch(src, str(tmp_path / "b.weights"), out=tty)
    assert "\r  b.weights [" in tty.getvalue() and "100.0%" in tty.getvalue()

    quiet = Tty()
    dl.fetch(src, str(tmp_path / "c.weights"), out=quiet, progress=False)
    assert quiet.getvalue() == ""

    failed = Tty()                                   # a missing source: no bar drawn, one line raised
    with pytest.raises(DarknetError):
        dl.fetch(src + ".missing", str(tmp_path / "d.weights"), out=failed)
    assert "\r" not in failed.getvalue() and not (tmp_path / "d.weights").exists()
    assert (tmp_path / "c.weights").read_bytes() == fake_weights(BIG)


def test_progress_goes_to_stderr_by_default(tmp_path, mirror, capsys):
    dl.download(["yolov2-tiny"], str(tmp_path), mirror=str(mirror))
    cap = capsys.readouterr()
    assert cap.out == "" and "saved" in cap.err
