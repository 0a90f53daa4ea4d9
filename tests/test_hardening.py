"""Robustness: whatever a downloaded file holds, darknetpy raises DarknetError (one line) or
works; the CLI exits 2 with one error line; writes are atomic; nothing runs code from input;
a cold Numba cache survives two processes compiling at once. (bench/fuzz.py runs the same
entry points on many more inputs.)"""
import json
import os
import signal
import struct
import subprocess
import sys
import time
import tokenize
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kit
from darknetpy.errors import DarknetError, ImageError, WeightsError
from darknetpy.fileio import atomic_write
from darknetpy.image import load_image_color, to_float_chw
from darknetpy.network import Network

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, NUMBA_NUM_THREADS="1")

CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=3
size=1
flipped=1
activation=linear
[avgpool]
[softmax]
"""
FLOATS = (4 + 12 + 4 * 27) + (3 + 3 * 4)


def cli(*args, cwd=None, timeout=120, env=ENV):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("darknetpy: error:")]


def header(major, minor, revision, seen=0) -> bytes:
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    return struct.pack("<iii", major, minor, revision) + (struct.pack("<Q", seen) if wide else struct.pack("<I", seen))


# --------------------------------------------------------------------------------------
# cfg values (the cfg property tests are in tests/test_cfg.py)
# --------------------------------------------------------------------------------------

def test_cfg_numbers_of_thousands_of_digits_are_cfg_errors_with_short_messages():
    """Regression (bench/fuzz.py): int() raised ValueError past 4300 digits."""
    from darknetpy.cfg import parse_cfg_text
    from darknetpy.errors import CfgError

    s = parse_cfg_text("[net]\nwidth=" + "9" * 5000 + "\nz=" + "0" * 5000 + "7x\nf=1" + "0" * 5000 + "\n", "x.cfg")[0]
    with pytest.raises(CfgError, match=r"^x.cfg:2: width=9{40}\.\.\. is out of range$"):
        s.get_int("width", 0)
    assert s.get_int("z", 0) == 7  # leading zeros, as C's atoi reads them
    with pytest.raises(CfgError, match=r"x.cfg:4: f=10{39}\.\.\. is out of range"):
        s.get_float("f", 0)


@pytest.mark.parametrize("value", ["\u0663", "\uff11\uff12", "\u0661.5"])
def test_cfg_non_ascii_digits_are_not_numbers(value):
    """C's atoi/atof read ASCII digits only; Python's int() would take any Unicode digit."""
    from darknetpy.cfg import parse_cfg_text
    from darknetpy.errors import CfgError

    s = parse_cfg_text(f"[net]\na={value}\n", "x.cfg")[0]
    with pytest.raises(CfgError, match="is not"):
        s.get_int("a", 0)
    with pytest.raises(CfgError, match="is not a number"):
        s.get_float("a", 0)


@pytest.mark.parametrize("value,expected", [("0x10", 16.0), ("-0x1.8p1", -3.0), ("0x.8", 0.5), ("0x", 0.0),
                                            ("0x1p-99999", 0.0), ("0xg", 0.0), ("1.5e", 1.5)])
def test_cfg_floats_read_as_glibc_atof_reads_them(value, expected):
    from darknetpy.cfg import parse_cfg_text

    assert parse_cfg_text(f"[net]\na={value}\n")[0].get_float("a", 7) == expected


def test_cfg_hex_float_past_the_range_is_a_cfg_error():
    from darknetpy.cfg import parse_cfg_text
    from darknetpy.errors import CfgError

    with pytest.raises(CfgError, match="a=0x1p99999 is out of range"):
        parse_cfg_text("[net]\na=0x1p99999\n")[0].get_float("a", 0)


# --------------------------------------------------------------------------------------
# Weights bytes
# --------------------------------------------------------------------------------------

_ints = st.one_of(st.sampled_from([0, 1, 2, 9, 10, 999, 1000, 1001, 5000, -1, 2**31 - 1, -2**31]),
                  st.integers(-2**31, 2**31 - 1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(major=_ints, minor=_ints, revision=_ints, seen=st.integers(0, 2**32 - 1),
       floats=st.one_of(st.integers(0, FLOATS + 3), st.just(FLOATS)), extra=st.binary(max_size=7),
       special=st.lists(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e-45, 3.4e38]), max_size=4))
def test_weights_headers_lengths_and_values(tmp_path_factory, major, minor, revision, seen, floats, extra, special):
    """Any header, any length, any float values: loads (and runs, and saves the same bytes)
    or raises WeightsError naming the file."""
    d = tmp_path_factory.mktemp("w")
    cfg, w = d / "t.cfg", d / "t.weights"
    cfg.write_text(CFG)
    body = np.linspace(-1, 1, floats, dtype="<f4")
    k = min(len(special), floats)
    body[:k] = special[:k]
    data = header(major, minor, revision, seen) + body.tobytes() + extra
    w.write_bytes(data)
    try:
        net = Network(cfg, w, warn=None)
    except WeightsError as e:
        assert str(e).startswith(str(w)) and "\n" not in str(e)
        return
    net.forward(np.full(8 * 8 * 3, 0.5, np.float32))
    out = d / "back.weights"
    net.save_weights(out)
    written = out.read_bytes()
    assert data[:len(written)] == written


_TRUNCATE = """
import os, sys
import numpy as np
from darknetpy.network import Network
net = Network(sys.argv[1], sys.argv[2], warn=None)
os.truncate(sys.argv[2], 20)  # what `cp new.weights old.weights` does first
out = net.forward(np.full(8 * 8 * 3, 0.5, np.float32))
print(out.size)
"""


def test_weights_file_truncated_while_in_use_does_not_kill_the_process(tmp_path):
    """Regression: the weights were memory-mapped, so a forward pass after the file was
    truncated in place died of SIGBUS."""
    cfg, weights, _ = _tiny(tmp_path)
    r = subprocess.run([sys.executable, "-c", _TRUNCATE, str(cfg), str(weights)], capture_output=True, text=True,
                       env=ENV, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.strip() == "3"


# --------------------------------------------------------------------------------------
# Image bytes
# --------------------------------------------------------------------------------------

def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(5)
    im = (rng.random((13, 17, 3)) * 255).astype(np.uint8)
    seeds = [cv2.imencode(".png", im)[1].tobytes(), cv2.imencode(".png", im[:, :, 0])[1].tobytes(),
             cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 60])[1].tobytes(),
             cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
             cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_RST_INTERVAL, 1,
                                       cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422])[1]
             .tobytes()]
    return seeds


SEEDS = _seed_images()
_edit = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "cut"]), st.floats(0, 1),
                  st.integers(0, 255), st.integers(1, 16))


def _apply(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for op, where, value, n in edits:
        i = int(where * len(b))
        if op == "flip" and b:
            b[min(i, len(b) - 1)] ^= 1 << (value % 8)
        elif op == "set" and b:
            b[min(i, len(b) - 1)] = value
        elif op == "insert":
            b[i:i] = bytes([value]) * n
        elif op == "delete":
            del b[i:i + n]
        elif op == "cut":
            del b[i:]
    return bytes(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), edits=st.lists(_edit, min_size=1, max_size=4),
       decoder=st.sampled_from(["stb", "opencv"]))
def test_mutated_png_and_jpeg_load_or_raise_image_error(tmp_path_factory, seed, edits, decoder):
    p = tmp_path_factory.mktemp("im") / "x.img"
    p.write_bytes(_apply(SEEDS[seed], edits))
    try:
        im = load_image_color(p, decoder)
    except ImageError as e:
        assert str(e).startswith(str(p)) and "\n" not in str(e)
        return
    assert im.dtype == np.float32 and im.shape[0] == 3 and im.min() >= 0 and im.max() <= 1


@pytest.mark.parametrize("decoder", ["stb", "opencv"])
def test_image_header_over_opencvs_limits_is_an_image_error(tmp_path, decoder):
    """Regression (bench/fuzz.py): a BMP whose header claims 16 million rows made OpenCV
    raise cv2.error from an assertion instead of returning None."""
    data = bytearray(cv2.imencode(".bmp", np.zeros((5, 7, 3), np.uint8))[1].tobytes())
    data[22:26] = struct.pack("<i", 0x01000005)
    p = tmp_path / "tall.bmp"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="not an image OpenCV can decode") as e:
        load_image_color(p, decoder)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("height", [40000, 2**31 - 1])
def test_png_header_with_huge_size_and_valid_crc(tmp_path, height):
    data = bytearray(SEEDS[0])
    data[20:24] = struct.pack(">I", height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    p = tmp_path / "huge.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError):
        load_image_color(p, "opencv")


@pytest.mark.parametrize("decoder", ["stb", "opencv"])
def test_png_chunk_longer_than_the_file_is_refused_before_opencv_allocates_it(tmp_path, decoder):
    """Regression (bench/fuzz.py): a 68-byte PNG declaring a 4 GB IDAT made OpenCV allocate
    and zero 4 GB for 17 s before failing."""
    data = bytearray(SEEDS[0])
    idat = data.index(b"IDAT") - 4
    data[idat:idat + 4] = struct.pack(">I", 0xFD00000B)
    p = tmp_path / "x.png"
    p.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(ImageError, match=r"corrupt PNG: chunk b'IDAT' of 4244635659 bytes runs past the end"):
        load_image_color(p, decoder)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("decoder", ["stb", "opencv"])
def test_jpeg_frame_far_too_large_for_its_bytes_is_corrupt_for_both_decoders(tmp_path, decoder):
    """Regression (bench/fuzz.py): libjpeg pads a cut-short scan, so a 631-byte JPEG declaring
    16384x16384 decoded through OpenCV to 768 MB (then 3 GB as float32)."""
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 16384, 16384)
    p = tmp_path / "x.jpg"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt JPEG: .*far too large for"):
        load_image_color(p, decoder)


def test_image_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    import darknetpy.image
    monkeypatch.setattr(darknetpy.image, "available_memory", lambda: 1000)
    for name, data in (("x.png", SEEDS[0]), ("x.jpg", SEEDS[2])):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageError, match=rf"{name}: a 17x13 image needs 0 MiB as RGB and float32, more than"):
            load_image_color(p)


def test_to_float_chw_is_darknets_division():
    pixels = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    want = (pixels.astype(np.float64) / 255.0).astype(np.float32).transpose(2, 0, 1)
    got = to_float_chw(pixels)
    assert got.flags.c_contiguous and got.tobytes() == np.ascontiguousarray(want).tobytes()


# --------------------------------------------------------------------------------------
# The CLI: absurd sizes and user errors, one line, exit 2
# --------------------------------------------------------------------------------------

def _tiny(tmp_path):
    cfg, weights, image = tmp_path / "t.cfg", tmp_path / "t.weights", tmp_path / "i.png"
    cfg.write_text(CFG)
    weights.write_bytes(header(0, 2, 0) + np.linspace(-1, 1, FLOATS, dtype="<f4").tobytes())
    cv2.imwrite(str(image), np.full((6, 9, 3), 90, np.uint8))
    return cfg, weights, image


@pytest.mark.parametrize("command", ["summary", "dump"])
def test_cli_refuses_a_100000x100000_network_quickly(tmp_path, command):
    cfg, weights, image = _tiny(tmp_path)
    cfg.write_text(CFG.replace("width=8\nheight=8", "width=100000\nheight=100000"))
    args = [command, cfg]
    if command == "dump":
        args += [weights, image, "-o", tmp_path / "out", "--max-memory", "1G"]
    start = time.perf_counter()
    r = cli(*args)
    assert time.perf_counter() - start < 30
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and f"{cfg}:5: layer 0" in errors[0] and "MiB" in errors[0], r.stderr
    assert not (tmp_path / "out").exists()


def _corrupt_jpeg(tmp_path, image):
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = b"\x00\x00\x00\x10"  # height 0
    image.write_bytes(bytes(data))


@pytest.mark.parametrize("case", ["cfg_with_nul", "weights_is_a_directory", "image_is_a_directory", "corrupt_jpeg",
                                  "header_only_weights", "truncated_png"])
def test_cli_more_user_errors_are_one_line_and_exit_2(tmp_path, case):
    """Beyond tests/test_cli.py's missing/broken/truncated cases."""
    cfg, weights, image = _tiny(tmp_path)
    args = ["dump", cfg, weights, image, "-o", tmp_path / "out"]
    if case == "cfg_with_nul":
        cfg.write_bytes(CFG.encode() + b"\0\0")
    elif case == "weights_is_a_directory":
        args[2] = tmp_path
    elif case == "image_is_a_directory":
        args[3] = tmp_path
    elif case == "corrupt_jpeg":
        image = tmp_path / "bad.jpg"
        _corrupt_jpeg(tmp_path, image)
        args[3] = image
    elif case == "header_only_weights":
        weights.write_bytes(header(0, 2, 0))
    else:
        image.write_bytes(image.read_bytes()[:-20])
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(error_lines(r.stderr)) == 1, r.stderr
    if case == "truncated_png":  # and no OpenCV log lines besides
        assert r.stderr.strip().count("\n") == 0, r.stderr
    assert not (tmp_path / "out" / "layers.json").exists()


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------

def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old contents")

    def write(f):
        f.write(b"half of the new")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(str(p), write)
    assert p.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]

    def fail(f):
        f.write(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(DarknetError, match="cannot write: No space left on device"):
        atomic_write(str(p), fail)
    assert p.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_atomic_write_gives_new_files_the_usual_mode_and_keeps_an_existing_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "new.bin"), lambda f: f.write(b"1"))
        assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o644
        old = tmp_path / "old.bin"
        old.write_bytes(b"0")
        old.chmod(0o640)
        atomic_write(str(old), lambda f: f.write(b"1"))
        assert old.stat().st_mode & 0o777 == 0o640 and old.read_bytes() == b"1"
    finally:
        os.umask(umask)


def test_atomic_write_into_a_missing_folder_is_a_darknet_error(tmp_path):
    with pytest.raises(DarknetError, match="cannot write"):
        atomic_write(str(tmp_path / "nope" / "f.bin"), lambda f: f.write(b"1"))


def _check_dump_folder(out: Path) -> int:
    """Every file under a final name is complete; returns how many .npy files there are."""
    if not out.exists():
        return 0
    names = os.listdir(out)
    complete = set()
    for name in names:
        if name.startswith(".tmp-"):
            continue  # a temporary file: never under a final name
        path = out / name
        if name.endswith(".npy"):
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                offset = f.tell()
            assert path.stat().st_size == offset + int(np.prod(shape)) * dtype.itemsize, name
            a = np.load(path, allow_pickle=False)
            assert a.dtype == np.float32 and a.shape == shape
            complete.add(name)
    for name in names:
        if name == "layers.json":
            index = json.loads((out / name).read_text())
            listed = [index["input"]["file"]] + [rec["file"] for rec in index["layers"]]
            assert set(listed) <= complete
        else:
            assert name.startswith(".tmp-") or name.endswith(".npy"), name
    return len(complete)


_STALL = """
import os, sys, time
from darknetpy.cli import main
count, fsync = [0], os.fsync
def stall(fd):
    fsync(fd)
    count[0] += 1
    if count[0] == int(sys.argv[1]):
        print("stalled", flush=True)
        time.sleep(600)
os.fsync = stall
sys.exit(main(sys.argv[2:]))
"""


def _kit_dump_args(out):
    model = kit.model("yolov2-128")
    image = next(kit.image_path(c) for c in kit.cases() if c["model"] == "yolov2-128")
    return ["dump", kit.cfg_path("yolov2-128"), kit.weights(model["weights"]), image, "-o", out]


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
@pytest.mark.parametrize("nth", [1, 12, 34])  # the input, a layer, layers.json (33 .npy files before it)
def test_dump_killed_while_a_file_is_written_leaves_no_partial_file(tmp_path, nth):
    """Stop the CLI right after the n-th file's data is on disk but before its rename,
    then SIGKILL it: the file must not appear under its final name."""
    out = tmp_path / "out"
    args = [sys.executable, "-c", _STALL, str(nth)] + [str(a) for a in _kit_dump_args(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=kit.KIT / "darknet")
    try:
        assert proc.stdout.readline() == "stalled\n", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert _check_dump_folder(out) == nth - 1
    temps = [n for n in os.listdir(out) if n.startswith(".tmp-")]
    assert len(temps) == 1 and temps[0].endswith("layers.json" if nth == 34 else ".npy")
    assert not (out / "layers.json").exists()


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_dump_killed_at_several_moments_leaves_only_complete_files(tmp_path):
    """The real CLI, SIGKILLed as soon as the folder has something in it, then after some
    layer files appear: whatever is left under a final name is complete."""
    killed = 0
    for threshold in (1, 8):
        out = tmp_path / f"out{threshold}"
        proc = subprocess.Popen([sys.executable, "-m", "darknetpy", *map(str, _kit_dump_args(out))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=kit.KIT / "darknet")
        try:
            while proc.poll() is None:
                if out.is_dir() and len(os.listdir(out)) >= threshold:
                    proc.send_signal(signal.SIGKILL)
                    killed += 1
                    break
                time.sleep(0.0005)
            proc.wait(timeout=60)
        finally:
            proc.kill()
        _check_dump_folder(out)
    assert killed, "the dump finished before it could be killed"


# --------------------------------------------------------------------------------------
# No code from input
# --------------------------------------------------------------------------------------

def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    with open(path, "rb") as f:
        return [t for t in tokenize.tokenize(f.readline)
                if t.type not in (tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE,
                                  tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)]


def _call_args(tokens, i) -> str:
    """The source of the call's arguments starting at tokens[i] == '('."""
    depth, parts = 0, []
    for t in tokens[i:]:
        depth += t.string in "([{" and t.type == tokenize.OP
        depth -= t.string in ")]}" and t.type == tokenize.OP
        parts.append(t.string)
        if depth == 0:
            break
    return "".join(parts)


def test_package_never_runs_code_from_input():
    sources = sorted((REPO / "darknetpy").rglob("*.py"))
    assert len(sources) > 10
    problems = []
    for path in sources:
        tokens = _code_tokens(path)
        for i, t in enumerate(tokens):
            prev = tokens[i - 1].string if i else ""
            nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
            where = f"{path.relative_to(REPO)}:{t.start[0]}"
            if t.type != tokenize.NAME:
                continue
            if t.string in ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"):
                problems.append(f"{where}: {t.string}")
            if t.string in ("eval", "exec", "__import__") and nxt == "(" and prev != ".":
                problems.append(f"{where}: {t.string}(")
            if t.string == "load" and prev == "." and nxt == "(" and i >= 2 and tokens[i - 2].string in ("np", "numpy"):
                if "allow_pickle=False" not in _call_args(tokens, i + 1):
                    problems.append(f"{where}: np.load without allow_pickle=False")
            if t.string == "load" and prev == "." and i >= 2 and tokens[i - 2].string in ("yaml", "torch"):
                problems.append(f"{where}: {tokens[i - 2].string}.load")
    assert not problems, problems


def test_the_code_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nx = eval('1')\nnp.load(p)\nnp.load(p, allow_pickle=False)\n"
                   "# eval(comment) np.load(x)\ns = 'exec(1)'\nm.eval()\n")
    tokens = _code_tokens(bad)
    names = [t.string for t in tokens if t.type == tokenize.NAME]
    assert "pickle" in names and names.count("eval") == 2 and names.count("exec") == 0
    loads = [i for i, t in enumerate(tokens) if t.string == "load"]
    assert ["allow_pickle=False" in _call_args(tokens, i + 1) for i in loads] == [False, True]


# --------------------------------------------------------------------------------------
# A cold Numba cache, two processes at once
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_with_an_empty_numba_cache_both_succeed(tmp_path):
    cfg, weights, image = _tiny(tmp_path)
    env = dict(ENV, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))

    def start(name):
        return subprocess.Popen([sys.executable, "-m", "darknetpy", "dump", cfg, weights, image, "-o", tmp_path / name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    t0 = time.perf_counter()
    procs = [start("a"), start("b")]
    results = [p.communicate(timeout=900) for p in procs]
    cold = time.perf_counter() - t0
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    index_a = json.loads((tmp_path / "a" / "layers.json").read_text())
    index_b = json.loads((tmp_path / "b" / "layers.json").read_text())
    assert [r["sha256"] for r in index_a["layers"]] == [r["sha256"] for r in index_b["layers"]]
    assert index_a["input"]["sha256"] == index_b["input"]["sha256"]
    cache_files = list((tmp_path / "numba-cache").rglob("*.nbi"))
    assert cache_files and list((tmp_path / "numba-cache").rglob("*.nbc"))

    t0 = time.perf_counter()
    p = start("c")
    _, err = p.communicate(timeout=900)
    warm = time.perf_counter() - t0
    assert p.returncode == 0, err
    index_c = json.loads((tmp_path / "c" / "layers.json").read_text())
    assert [r["sha256"] for r in index_c["layers"]] == [r["sha256"] for r in index_a["layers"]]
    assert warm < cold / 2, (warm, cold)
    assert sorted(q.name for q in (tmp_path / "numba-cache").rglob("*.nbi")) == sorted(q.name for q in cache_files)
