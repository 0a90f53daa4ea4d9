"""Fuzz darknetpy's readers through their real entry points: anything a file can cause must
be a `DarknetError` (one line), never another exception, a hang or a crash.

    python bench/fuzz.py [--n 10000] [--kinds cfg,weights,image-stb,image-opencv]
                         [--seed 0] [--timeout 10] [--engine auto|atheris|random]
                         [--max-time 14400] [--warm-up 240] [--seeds DIR]

Kinds and entry points:

* cfg: kit cfgs (cfg/*.cfg, cfg-small/*.cfg) mutated line by line (numbers to 0,
  negative, 100000, 2**31; sections deleted, duplicated, retyped; keys added; garbage
  bytes) and small random networks -> `Network(path, None, warn=None, max_memory=2**30)`,
  then `summary_lines()`, and for networks of a few MFLOPs `forward_layers` and, for a
  [region] output, `detections`.
* weights: a small cfg's .weights with random headers (major/minor/revision up to and
  past 1000, negative), truncations, extra bytes, NaN/inf floats -> `Network(cfg, path)`,
  forward, and `save_weights` (must give back the bytes it read).
* image-stb, image-opencv: kit PNG/JPEG files and small ones from cv2.imencode
  (progressive, restart markers, every chroma subsampling, 16-bit and RGBA PNG),
  mutated structure-aware (JPEG segments and SOF sizes, PNG chunks with fixed CRCs),
  truncated, or random -> `load_image_color(path, decoder)` and `letterbox_image`.

Every input runs in a worker subprocess (NUMBA_NUM_THREADS=1), cwd the kit's darknet/
folder so `tree=`/`map=` resolve. An input that uses more than --timeout seconds of CPU is
a hang: RLIMIT_CPU sends SIGXCPU, which ends the worker even inside a Numba kernel (CPU
time, so that a busy shared machine or `nice -n 19` does not make slow inputs look hung);
one blocked for 6 x --timeout of wall time (at least 60 s) is a hang too (a C-level
`faulthandler.dump_traceback_later`, which needs no GIL). A worker killed by a signal or by libFuzzer's RSS
limit (4 GiB) is a crash; any exception other than DarknetError is a crash, and so is a
DarknetError whose message is empty or spans lines. The parent restarts the worker and
saves each failing input under the work folder.

Before counting, a worker runs each seed once (the warm-up: loading or compiling the Numba
kernels takes seconds, which is no input's fault) under the same limits, with --warm-up
more seconds of CPU (and 3 x that of wall time) for the compiling. A seed that hangs or
kills the worker there, or when it runs counted, is a hang or a crash like any input:
counted once, saved, and left out of the restarted worker's seeds. A counted input that
runs out of time while Numba compiles a kernel for it (new argument types) is not counted
then: the next worker runs it in its warm-up, then counts it (a hang only if it hangs again).
Each kind has
--max-time seconds of wall time in all (its workers and restarts): past it the worker is
stopped, the input it was running is not counted, and the report says how far it got.

Engine: atheris (libFuzzer, coverage-guided on darknetpy's pure-Python code: Numba
kernels cannot be instrumented) with this file's structure-aware mutator as libFuzzer's
custom mutator; without atheris, the same mutator seeded from --seed over a pool of
inputs ("random"). Prints a markdown table, then the crashes with tracebacks.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = Path(os.environ.get("DARKNETPY_KIT", REPO.parent / "shared" / "reference"))
KINDS = ("cfg", "weights", "image-stb", "image-opencv")
RSS_LIMIT_MB = 4096
# extra CPU seconds a seed may take in the warm-up: the slowest kit cfg compiled its
# kernels from a cold cache in 86 s of CPU on the 2-core development machine
WARM_UP_S = 240
EXIT_NO_SEEDS = 3  # a worker whose every seed hung or crashed: nothing left to mutate
COMPILING = " in _compile_for_args"  # Numba's dispatcher compiling for new argument types
INTERESTING = [0, 1, -1, 2, 3, 7, 16, 255, 256, 999, 1000, 1001, 65535, 65536, 100000, 2**31 - 1, 2**31,
               -2**31, 2**32, 2**63]

# ----------------------------------------------------------------------------------------
# Generic byte mutations
# ----------------------------------------------------------------------------------------


def _rand_bytes(r: random.Random, n: int) -> bytes:
    return bytes(r.getrandbits(8) for _ in range(n))


def mutate_bytes(r: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One of a dozen byte-level edits (flips, inserts, deletes, splices, integers)."""
    b = bytearray(data)
    n = len(b)
    op = r.randrange(11)
    if n == 0 or op == 0:
        return bytes(b) + _rand_bytes(r, r.randint(1, 64))
    i = r.randrange(n)
    j = min(n, i + r.choice([1, 2, 4, 8, 64, 1024]))
    if op == 1:
        for _ in range(r.randint(1, 8)):
            k = r.randrange(n)
            b[k] ^= 1 << r.randrange(8)
    elif op == 2:
        b[i] = r.choice([0, 0xFF, 0x7F, 0x80, 1])
    elif op == 3:
        b[i:i] = _rand_bytes(r, r.randint(1, 32))
    elif op == 4:
        del b[i:j]
    elif op == 5:
        b[i:i] = b[i:j]
    elif op == 6:
        b = b[:r.randrange(n)]
    elif op == 7:
        other = r.choice(pool)
        k = r.randrange(len(other) + 1)
        b = b[:i] + other[k:]
    elif op == 8:
        v = r.choice(INTERESTING) & 0xFFFFFFFF
        fmt = r.choice(["<I", ">I", "<H", ">H"])
        v &= 0xFFFF if fmt[1] == "H" else 0xFFFFFFFF
        packed = struct.pack(fmt, v)
        b[i:i + len(packed)] = packed
    elif op == 9:
        for k in range(i, j):
            b[k] = r.getrandbits(8)
    else:
        b = b[:i] + b[j:] + b[i:j]
    return bytes(b)


# ----------------------------------------------------------------------------------------
# cfg text
# ----------------------------------------------------------------------------------------

NUMBERS = ["0", "-1", "-3", "1", "2", "3", "5", "100000", str(2**31), str(2**31 - 1), str(-2**31), "99999999999",
           "1e9", ".5", "-0", "nan", "inf", "-inf", "1e-40", "3.5", "0x10", "+7", "", "abc"]
KEYS = ["filters", "size", "stride", "pad", "padding", "groups", "activation", "batch_normalize", "width", "height",
        "channels", "inputs", "batch", "subdivisions", "layers", "classes", "num", "coords", "anchors", "softmax",
        "background", "temperature", "reverse", "flatten", "extra", "probability", "type", "tree", "map", "flipped",
        "dontloadscales", "binary", "xnor", "numload", "dontload", "bias_match", "absolute"]
PATHS = ["data/9k.tree", "data/coco9k.map", "data/coco.names", "data/9k.names", "data/inet9k.map",
         "cfg/yolov2.cfg", "data/dog.jpg", "data", "/dev/zero", "/dev/null", "nope.tree", "../data/9k.tree"]
ACTIVATIONS = ["leaky", "linear", "relu", "logistic", "elu", "ramp", "tanh", "plse", "stair", "hardtan", "lhtan",
               "loggy", "relie", "selu", "bogus"]
HEADERS = ["[net]", "[convolutional]", "[conv]", "[maxpool]", "[avgpool]", "[route]", "[reorg]", "[region]",
           "[softmax]", "[cost]", "[dropout]", "[shortcut]", "[upsample]", "[yolo]", "[connected]", "[bogus]", "[",
           "[]"]


def _value_for(r: random.Random, key: str) -> str:
    if key in ("tree", "map"):
        return r.choice(PATHS)
    if key == "activation":
        return r.choice(ACTIVATIONS)
    if key in ("layers", "anchors"):
        return ",".join(r.choice(NUMBERS[:10]) for _ in range(r.randint(1, 5)))
    return r.choice(NUMBERS) if r.random() < 0.5 else str(r.randint(-2, 40))


def generate_cfg(r: random.Random) -> str:
    """A small random network: mostly valid, so that forward passes run too."""
    w, h, c = r.randint(1, 40), r.randint(1, 40), r.randint(1, 4)
    lines = ["[net]", f"width={w}", f"height={h}", f"channels={c}"]
    for _ in range(r.randint(1, 8)):
        kind = r.choice(["convolutional"] * 4 + ["maxpool"] * 2 + ["avgpool", "route", "reorg", "softmax",
                                                                   "dropout", "cost", "region", "shortcut",
                                                                   "upsample", "yolo"])
        lines.append(f"[{kind}]")
        if kind == "convolutional":
            lines += [f"filters={r.randint(1, 16)}", f"size={r.choice([1, 1, 3, 3, 5, 2])}",
                      f"stride={r.choice([1, 1, 2, 3])}", f"pad={r.randint(0, 1)}",
                      f"activation={r.choice(ACTIVATIONS)}", f"batch_normalize={r.randint(0, 1)}"]
            if r.random() < 0.2:
                lines.append(f"groups={r.choice([1, 2, 3, 4])}")
            if r.random() < 0.1:
                lines.append("flipped=1")
        elif kind == "maxpool":
            lines += [f"size={r.randint(1, 4)}", f"stride={r.randint(1, 3)}"]
            if r.random() < 0.2:
                lines.append(f"padding={r.randint(-3, 4)}")
        elif kind == "route":
            lines.append("layers=" + ",".join(str(-r.randint(1, 3)) for _ in range(r.randint(1, 2))))
        elif kind == "reorg":
            lines += [f"stride={r.randint(1, 3)}", f"reverse={int(r.random() < 0.3)}"]
        elif kind == "softmax":
            lines.append(f"groups={r.choice([1, 1, 2, 3])}")
            if r.random() < 0.2:
                lines.append(f"temperature={r.choice(['0', '0.5', '2', '-1'])}")
        elif kind == "dropout":
            lines.append(f"probability={r.random():.2f}")
        elif kind == "region":
            num, classes = r.randint(1, 3), r.randint(0, 5)
            # a matching 1x1 conv just before, most of the time
            if r.random() < 0.8:
                lines[-1:] = ["[convolutional]", f"filters={num * (classes + 5)}", "size=1", "activation=linear",
                              "[region]"]
            lines += [f"num={num}", f"classes={classes}", "coords=4", f"softmax={r.randint(0, 1)}",
                      "anchors=" + ",".join(f"{r.uniform(0.1, 5):.3f}" for _ in range(2 * num))]
        elif kind == "shortcut":
            lines += [f"from={-r.randint(1, 4)}", f"activation={r.choice(ACTIVATIONS)}"]
        elif kind == "upsample":
            lines.append(f"stride={r.choice([1, 2, 2, 3, 0, -2])}")
        elif kind == "yolo":
            total, classes = r.randint(1, 6), r.randint(0, 5)
            mask = r.sample(range(total), r.randint(1, total))
            if r.random() < 0.8:   # a matching 1x1 conv just before, most of the time
                lines[-1:] = ["[convolutional]", f"filters={len(mask) * (classes + 5)}", "size=1",
                              "activation=linear", "[yolo]"]
            lines += [f"mask={','.join(map(str, mask))}", f"num={total}", f"classes={classes}",
                      "anchors=" + ",".join(str(r.randint(1, 60)) for _ in range(2 * total))]
    return "\n".join(lines) + "\n"


def _sections(lines: list[str]) -> list[tuple[int, int]]:
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("[")] + [len(lines)]
    return [(starts[k], starts[k + 1]) for k in range(len(starts) - 1)]


def mutate_cfg(r: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """Line- and section-level cfg edits; now and then a byte edit or a fresh network."""
    roll = r.random()
    if roll < 0.08:
        return generate_cfg(r).encode()
    if roll < 0.18:
        return mutate_bytes(r, data, pool)
    lines = data.decode("utf-8", "replace").split("\n")
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        op = r.randrange(10)
        i = r.randrange(len(lines)) if lines else 0
        if op <= 2 and lines:  # a number or a value
            key, eq, _ = lines[i].partition("=")
            if eq:
                lines[i] = f"{key}={_value_for(r, key.strip())}"
        elif op == 3 and lines:
            del lines[i]
        elif op == 4 and lines:
            lines.insert(i, lines[i])
        elif op == 5:
            key = r.choice(KEYS)
            lines.insert(i, f"{key}={_value_for(r, key)}")
        elif op == 6:
            secs = _sections(lines)
            if secs:
                a, b = r.choice(secs)
                chunk = lines[a:b]
                if r.random() < 0.5:
                    del lines[a:b]
                else:
                    lines[a:a] = chunk
        elif op == 7:
            secs = _sections(lines)
            if secs:
                a, _ = r.choice(secs)
                lines[a] = r.choice(HEADERS)
        elif op == 8 and lines:
            lines[i] = lines[i] + r.choice(["\r", "\t", " x", "#", "=", "==1", "\u00e9", "\ufffd", "\x00", ","])
        else:
            secs = _sections(lines)
            if len(secs) > 2:  # move a section
                a, b = r.choice(secs[1:])
                chunk = lines[a:b]
                del lines[a:b]
                k = r.choice(_sections(lines))[0] if _sections(lines) else 0
                lines[k:k] = chunk
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def cfg_seeds() -> list[bytes]:
    paths = sorted(glob.glob(str(KIT / "darknet" / "cfg" / "*.cfg")) + glob.glob(str(KIT / "cfg-small" / "*.cfg")))
    seeds = [Path(p).read_bytes() for p in paths]
    r = random.Random(1)
    seeds += [generate_cfg(r).encode() for _ in range(24)]
    return seeds


# ----------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------

WEIGHTS_CFG = """[net]
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
filters=6
size=1
flipped=1
activation=linear
[convolutional]
batch_normalize=1
dontloadscales=1
filters=5
size=3
stride=2
pad=1
activation=relu
[avgpool]
[softmax]
"""
# floats: 4 + 12 + 4*27 = 124; 6 + 6*4 = 30; 5 + 5*54 = 275
WEIGHTS_FLOATS = 124 + 30 + 275
HEADER_VERSIONS = [(0, 1, 0), (0, 2, 0), (1, 0, 0), (0, 2, 5), (1000, 2, 0), (0, 1000, 5), (1001, 1001, 1)]


def _header(major: int, minor: int, revision: int, seen: int) -> bytes:
    head = struct.pack("<iii", major, minor, revision)
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    return head + (struct.pack("<Q", seen % 2**64) if wide else struct.pack("<i", (seen + 2**31) % 2**32 - 2**31))


def weights_seeds() -> list[bytes]:
    r = random.Random(2)
    seeds = []
    for version in HEADER_VERSIONS:
        body = struct.pack(f"<{WEIGHTS_FLOATS}f", *(r.uniform(-2, 2) for _ in range(WEIGHTS_FLOATS)))
        seeds.append(_header(*version, r.choice([0, 12345, 2**40])) + body)
    return seeds


def mutate_weights(r: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    op = r.randrange(8)
    if op == 0 and len(b) >= 12:  # header fields
        for k in range(3):
            if r.random() < 0.5:
                v = r.choice(INTERESTING + [r.getrandbits(32)])
                b[4 * k:4 * k + 4] = struct.pack("<I", v % 2**32)
    elif op == 1:  # rebuild the header around the body of another version
        body = b[r.choice([16, 20]):]
        version = [r.choice([0, 1, 2, 9, 10, 999, 1000, 1001, 5000, -1, 2**31 - 1, -2**31]) for _ in range(3)]
        b = bytearray(_header(*version, r.getrandbits(40)) + body)
    elif op == 2:  # truncate near a boundary (header, layer) or anywhere
        cut = r.choice([r.randrange(len(b) + 1), r.choice([0, 4, 8, 12, 15, 16, 17, 19, 20, 21]),
                        20 + 4 * r.choice([4, 16, 124, 154, 429]) + r.randint(-5, 5)])
        b = b[:max(cut, 0)]
    elif op == 3:  # extra bytes
        b += _rand_bytes(r, r.choice([1, 2, 3, 4, 5, 8, 100, 4000]))
    elif op == 4 and len(b) > 24:  # special floats
        for _ in range(r.randint(1, 20)):
            k = 20 + 4 * r.randrange((len(b) - 20) // 4)
            v = r.choice([float("nan"), float("inf"), float("-inf"), 1e-45, -0.0, 3.4e38, 1e-39])
            b[k:k + 4] = struct.pack("<f", v)
    elif op == 5:
        return r.choice(pool)[:r.randrange(64)] if r.random() < 0.5 else _rand_bytes(r, r.randrange(64))
    else:
        return mutate_bytes(r, bytes(b), pool)
    return bytes(b)


# ----------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------

def _synthetic(r: random.Random, h: int, w: int, c: int, depth=None):
    import numpy as np
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255 // max(w - 1, 1) + y * 97) % 256
    noise = np.array([r.getrandbits(8) for _ in range(h * w * c)], np.uint8).reshape(h, w, c) // 4
    im = (base[:, :, None] + noise).astype(np.uint8)
    if depth == 16:
        im = im.astype(np.uint16) * 257
    return im[:, :, 0] if c == 1 else im


def image_seeds() -> list[bytes]:
    import cv2
    r = random.Random(3)
    seeds = []
    for p in ["gray_50x40.png", "odd_37x23.png", "rgba_41x29.png", "dog.png"]:
        if (KIT / "images" / p).is_file():
            seeds.append((KIT / "images" / p).read_bytes())
    for p in ["dog.jpg", "giraffe.jpg"]:
        if (KIT / "darknet" / "data" / p).is_file():
            seeds.append((KIT / "darknet" / "data" / p).read_bytes())
    sampling = [getattr(cv2, n) for n in ("IMWRITE_JPEG_SAMPLING_FACTOR_411", "IMWRITE_JPEG_SAMPLING_FACTOR_420",
                                          "IMWRITE_JPEG_SAMPLING_FACTOR_422", "IMWRITE_JPEG_SAMPLING_FACTOR_440",
                                          "IMWRITE_JPEG_SAMPLING_FACTOR_444")
                if hasattr(cv2, n)]
    for k, (h, w) in enumerate([(1, 1), (8, 8), (13, 17), (33, 47), (16, 64), (40, 9)]):
        for c in (1, 3):
            im = _synthetic(r, h, w, c)
            params = [cv2.IMWRITE_JPEG_QUALITY, r.choice([5, 50, 90, 100])]
            if sampling and c == 3:
                params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling[k % len(sampling)]]
            if k % 2:
                params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
            if k % 3 == 2:
                params += [cv2.IMWRITE_JPEG_RST_INTERVAL, 1]
            if k % 4 == 3:
                params += [cv2.IMWRITE_JPEG_OPTIMIZE, 1]
            ok, buf = cv2.imencode(".jpg", im, params)
            if ok:
                seeds.append(buf.tobytes())
        for c, depth in ((1, None), (3, None), (4, None), (3, 16), (1, 16)):
            ok, buf = cv2.imencode(".png", _synthetic(r, h, w, c, depth))
            if ok:
                seeds.append(buf.tobytes())
    ok, buf = cv2.imencode(".bmp", _synthetic(r, 5, 7, 3))
    seeds.append(buf.tobytes())
    return seeds


def _jpeg_segments(b: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of the length-prefixed segments before the first SOS's data."""
    out, i = [], 2
    while i + 4 <= len(b) and b[i] == 0xFF:
        m = b[i + 1]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        length = (b[i + 2] << 8) | b[i + 3]
        out.append((m, i, min(len(b), i + 2 + length)))
        if m == 0xDA:
            break
        i += 2 + length
    return out


def _png_chunks(b: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, end including the CRC."""
    out, i = [], 8
    while i + 12 <= len(b):
        length = struct.unpack(">I", b[i:i + 4])[0]
        end = i + 12 + length
        if end > len(b):
            break
        out.append((b[i + 4:i + 8], i, end))
        i = end
    return out


def _fix_png_crc(b: bytearray, start: int, end: int) -> None:
    b[end - 4:end] = struct.pack(">I", zlib.crc32(bytes(b[start + 4:end - 4])) & 0xFFFFFFFF)


def mutate_image(r: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    roll = r.random()
    if roll < 0.05:
        head = r.choice([b"", b"\xff\xd8", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM"])
        return head + _rand_bytes(r, r.randrange(300))
    if roll < 0.2:
        return bytes(b[:r.randrange(len(b) + 1)])
    if data[:2] == b"\xff\xd8" and roll < 0.6:
        segs = _jpeg_segments(data)
        if segs:
            m, s, e = r.choice(segs)
            op = r.randrange(6)
            sofs = [seg for seg in segs if seg[0] in (0xC0, 0xC1, 0xC2)]
            if op == 0 and sofs:  # frame size, precision, components, sampling, tables
                _, s, e = sofs[0]
                field = r.choice([(s + 5, ">H"), (s + 7, ">H"), (s + 4, "B"), (s + 9, "B"), (s + 11, "B"),
                                  (s + 12, "B"), (s + 14, "B")])
                v = r.choice([0, 1, 2, 3, 4, 8, 16, 0x11, 0x22, 0x41, 0xFF, 0x4000, 0xFFFF, r.getrandbits(16)])
                v &= 0xFFFF if field[1] == ">H" else 0xFF
                packed = struct.pack(field[1], v)
                b[field[0]:field[0] + len(packed)] = packed
            elif op == 1:  # segment length
                b[s + 2:s + 4] = struct.pack(">H", r.choice([0, 1, 2, 3, e - s - 3, e - s - 1, 0xFFFF]) % 0x10000)
            elif op == 2:  # inside a segment
                for _ in range(r.randint(1, 4)):
                    k = r.randrange(s + 2, max(s + 3, e))
                    if k < len(b):
                        b[k] = r.choice([0, 1, 0xFF, r.getrandbits(8)])
            elif op == 3:
                del b[s:e]
            elif op == 4:
                b[s:s] = b[s:e]
            else:  # marker bytes in the entropy data, or the end cut
                k = r.randrange(segs[-1][2], max(segs[-1][2] + 1, len(b)))
                b[k:k] = r.choice([b"\xff\xd0", b"\xff\xd9", b"\xff\xdd\x00\x04\x00\x01", b"\xff\xff", b"\xff"])
            return bytes(b)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and roll < 0.6:
        chunks = _png_chunks(data)
        if chunks:
            t, s, e = r.choice(chunks)
            if r.random() < 0.4 and chunks[0][0] == b"IHDR":
                t, s, e = chunks[0]
                field = r.choice([(s + 8, ">I"), (s + 12, ">I"), (s + 16, "B"), (s + 17, "B"), (s + 20, "B")])
                v = r.choice([0, 1, 2, 3, 4, 6, 8, 16, 255, 30000, 65535, 2**31 - 1, 2**32 - 1])
                v &= 0xFF if field[1] == "B" else 0xFFFFFFFF
                packed = struct.pack(field[1], v)
                b[field[0]:field[0] + len(packed)] = packed
            elif e - s > 12:
                for _ in range(r.randint(1, 4)):
                    k = r.randrange(s + 8, e - 4)
                    b[k] = r.getrandbits(8)
            if r.random() < 0.9:
                _fix_png_crc(b, s, e)
            return bytes(b)
    return mutate_bytes(r, bytes(b), pool)


# ----------------------------------------------------------------------------------------
# The worker: one process runs inputs of one kind, one at a time, and logs each outcome
# ----------------------------------------------------------------------------------------

class Worker:
    def __init__(self, kind: str, work: Path, quota: int, timeout: float, warm_up: float = WARM_UP_S,
                 seeds_dir: str | None = None, skip: frozenset[int] = frozenset(), replay: str | None = None):
        import faulthandler

        import numpy as np

        self.np = np
        self.kind, self.work, self.quota, self.timeout, self.warm_up_s = kind, work, quota, timeout, warm_up
        self.skip = skip  # seeds that hung or killed an earlier worker: counted once already
        self.replay = Path(replay).read_bytes() if replay else None  # an input cut short by a compile
        self.done = 0
        self.input = work / f"input-{kind}" / ("input.cfg" if kind == "cfg" else "input.weights"
                                              if kind == "weights" else "input.img")
        self.input.parent.mkdir(exist_ok=True)
        self.busy = work / f"busy-{kind}"  # exists while an input runs: a death then is that input's
        self.scratch = work / f"scratch-{kind}"
        self.scratch.mkdir(exist_ok=True)
        self.crashes = work / "crashes"
        self.crashes.mkdir(exist_ok=True)
        self.results = open(work / f"results-{kind}.jsonl", "a")
        self.hang_log = open(work / f"hang-{kind}.txt", "a")
        self.fault_log = open(work / f"fault-{kind}.txt", "a")
        faulthandler.enable(self.fault_log)
        # the CPU-time limit of an input: SIGXCPU, which kills the process even inside a
        # Numba kernel; faulthandler first writes where it was, into the hang log
        faulthandler.register(signal.SIGXCPU, file=self.hang_log, chain=True)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        self.faulthandler = faulthandler
        if seeds_dir:
            self.seeds = [p.read_bytes() for p in sorted(Path(seeds_dir).iterdir()) if p.is_file()]
        else:
            self.seeds = {"cfg": cfg_seeds, "weights": weights_seeds}.get(kind, image_seeds)()
        if not self.seeds:
            sys.exit(f"{kind}: no seeds")
        self.mutator = {"cfg": mutate_cfg, "weights": mutate_weights}.get(kind, mutate_image)
        if kind == "weights":
            self.cfg = work / "weights.cfg"
            self.cfg.write_text(WEIGHTS_CFG)

    def write_input(self, data: bytes) -> None:
        """A new file (inode) per input: a Network still mapping the last one is unaffected."""
        tmp = self.input.with_name(self.input.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.input)

    def guard(self, data: bytes, what: str, extra: float = 0.0) -> None:
        """Write the input and arm its limits: --timeout (+ extra) seconds of CPU, and of
        wall time 6 x --timeout (at least 60 s) + 3 x extra. `what` goes into the busy
        marker, so that the parent knows which seed (if one) a dead worker was running."""
        self.write_input(data)
        self.busy.write_text(what)
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used + self.timeout + extra), resource.RLIM_INFINITY))
        # wall clock: an input blocked without using the CPU (a wait, a lock) is a hang too
        self.faulthandler.dump_traceback_later(max(6 * self.timeout, 60) + 3 * extra, exit=True, file=self.hang_log)

    def unguard(self) -> None:
        """Disarm the limits; the busy marker stays until the outcome is written."""
        self.faulthandler.cancel_dump_traceback_later()
        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def run_one(self, data: bytes, what: str = "") -> None:
        from darknetpy.errors import DarknetError

        self.guard(data, what)
        start = time.process_time()
        record = {"o": "s"}
        self.note = None
        try:
            if self.target():
                record["fwd"] = 1
            if self.note:
                record["note"] = self.note
        except DarknetError as e:
            message = str(e)
            if message and "\n" not in message:
                record = {"o": "e"}
                if str(self.input) not in message and not (self.kind == "weights" and str(self.cfg) in message):
                    record["unnamed"] = message
            else:
                record = self.crash(e, "DarknetError message is empty or spans lines", data)
        except Exception as e:  # noqa: BLE001 - that is what the fuzzer looks for
            record = self.crash(e, None, data)
        finally:
            record["t"] = round(time.process_time() - start, 4)
            self.unguard()
        if what == "replay":  # the parent stops asking for it
            record["replay"] = 1
        self.results.write(json.dumps(record) + "\n")
        self.results.flush()
        self.busy.unlink()
        self.done += 1
        if self.done >= self.quota:
            self.results.close()
            os._exit(0)

    def crash(self, e: BaseException, why: str | None, data: bytes) -> dict:
        import traceback
        saved = self.crashes / f"{self.kind}-{os.getpid()}-{self.done}{self.input.suffix}"
        saved.write_bytes(data)
        return {"o": "c", "type": type(e).__name__, "msg": (why or str(e))[:500], "file": str(saved),
                "tb": "".join(traceback.format_exception(type(e), e, e.__traceback__))[-4000:]}

    def target(self) -> bool:
        """Run the input; True when a forward pass ran too (cfg, weights)."""
        if self.kind == "cfg":
            return self.target_cfg()
        if self.kind == "weights":
            return self.target_weights()
        return self.target_image("stb" if self.kind == "image-stb" else "opencv")

    def target_cfg(self) -> bool:
        from darknetpy.network import Network

        net = Network(self.input, None, warn=None, max_memory=2**30)
        net.summary_lines()
        nbytes = sum(n for _, n in net.memory_estimate())
        if nbytes < 32 * 2**20 and sum(layer.bflops() for layer in net.layers) < 0.02:
            size = int(self.np.prod(net.layers[0].in_shape))  # what load_input gives a (c, h, w) network
            if size < 1:
                self.note = f"a network built with input shape {net.layers[0].in_shape} (inputs={net.options.inputs})"
                return False
            x = self.np.random.default_rng(0).random(size, dtype=self.np.float32)
            outputs = net.forward_layers(x)
            found = net.model.detection_layers
            if found and net.width and net.height:
                net.detections([outputs[layer.index].reshape(layer.out_shape).copy() for layer in found], 100, 80,
                               thresh=0.2)
            return True
        return False

    def target_weights(self) -> bool:
        from darknetpy.network import Network

        net = Network(self.cfg, self.input, warn=None)
        net.forward(self.np.full(8 * 8 * 3, 0.5, self.np.float32))
        out = self.scratch / "round.weights"
        net.save_weights(out)
        written = out.read_bytes()
        data = self.input.read_bytes()
        if data[:len(written)] != written:
            raise AssertionError("save_weights does not give back the bytes it read")
        return True

    def target_image(self, decoder: str) -> bool:
        from darknetpy.image import letterbox_image, load_image_color

        im = load_image_color(self.input, decoder)
        letterbox_image(im, 32, 24)
        return False

    def mutate(self, data: bytes, max_size: int, seed: int) -> bytes:
        r = random.Random(seed)
        if r.random() < 0.1 and self.atheris is not None:
            out = self.atheris.Mutate(data, max(len(data), 1))
        else:
            out = self.mutator(r, data, self.seeds)
        return out[:max_size]

    def safe_mutate(self, data: bytes, max_size: int, seed: int) -> bytes:
        """A mutator bug must not end the run (nor be blamed on an input)."""
        try:
            return self.mutate(data, max_size, seed)
        except Exception as e:  # noqa: BLE001
            print(f"fuzz: mutator error {type(e).__name__}: {e}", file=sys.stderr)
            return mutate_bytes(random.Random(seed), data, self.seeds)[:max_size]

    def live_seeds(self) -> list[tuple[int, bytes]]:
        return [(k, data) for k, data in enumerate(self.seeds) if k not in self.skip]

    def warm_up(self) -> None:
        """Run the seeds once, uncounted, with --warm-up more seconds for loading (or
        compiling) the Numba kernels, which is no input's fault. A hang or a dead worker
        is still caught (the parent counts it against the seed); an exception is counted
        when the seed runs for real. An input to replay comes last."""
        inputs = [(f"seed {k}", data) for k, data in self.live_seeds()]
        for what, data in inputs + ([("replay", self.replay)] if self.replay is not None else []):
            self.guard(data, f"{what} (warm-up)", self.warm_up_s)
            try:
                self.target()
            except Exception:  # noqa: BLE001 - counted when the seed runs for real
                pass
            finally:
                self.unguard()
            self.busy.unlink()

    def run(self, engine: str, seed: int) -> None:
        self.atheris = None
        if not self.live_seeds():
            print(f"fuzz: {self.kind}: every seed hung or crashed", file=sys.stderr)
            sys.exit(EXIT_NO_SEEDS)
        self.warm_up()
        if self.replay is not None:
            self.run_one(self.replay, "replay")
        if engine == "atheris":
            self.run_atheris(seed)
        r = random.Random(seed)
        pool = [data for _, data in self.live_seeds()]
        for k, data in self.live_seeds():
            self.run_one(data, f"seed {k}")
        while True:
            data = r.choice(pool)
            for _ in range(r.choice([1, 1, 2, 3])):
                data = self.safe_mutate(data, 1 << 30, r.getrandbits(32))
            self.run_one(data)
            if r.random() < 0.05:  # keep some mutants, so that edits accumulate
                pool.append(data)
                if len(pool) > 500:
                    kept = len(self.live_seeds())
                    pool.pop(kept + r.randrange(len(pool) - kept))

    def run_atheris(self, seed: int) -> None:
        import atheris

        self.atheris = atheris
        instrument_darknetpy(atheris)
        corpus = self.work / f"corpus-{self.kind}"
        if not corpus.is_dir():
            corpus.mkdir()
            for k, data in enumerate(self.seeds):
                (corpus / f"seed-{k:03d}").write_bytes(data)
        for k in self.skip:  # libFuzzer runs its corpus first: not a seed counted already
            (corpus / f"seed-{k:03d}").unlink(missing_ok=True)
        max_len = max(len(s) for s in self.seeds) + 4096
        # libFuzzer's own timeout is a backstop: the faulthandler watchdog fires first
        argv = [sys.argv[0], f"-seed={seed + 1}", f"-runs={self.quota * 2 + 1000}", f"-max_len={max_len}",
                f"-timeout={int(max(6 * self.timeout, 60)) + 60}", f"-rss_limit_mb={RSS_LIMIT_MB}", "-handle_segv=0",
                "-handle_bus=0", "-handle_abrt=0", "-handle_fpe=0", "-handle_ill=0",
                f"-artifact_prefix={self.work}/libfuzzer-", "-print_final_stats=1", str(corpus)]
        atheris.Setup(argv, lambda data: self.run_one(bytes(data)), custom_mutator=self.safe_mutate)
        atheris.Fuzz()


def instrument_darknetpy(atheris) -> None:
    """Coverage for darknetpy's plain Python functions and methods; Numba dispatchers (and
    the functions they compile) are left alone, as instrumented bytecode cannot be compiled."""
    import importlib
    import inspect
    import pkgutil
    import types

    import darknetpy

    for info in pkgutil.walk_packages(darknetpy.__path__, "darknetpy."):
        if info.name.startswith(("darknetpy.gpu", "darknetpy.cli", "darknetpy.download", "darknetpy.__main__")):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - optional modules
            continue
        for obj in list(vars(module).values()):
            funcs = []
            if isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
                funcs = [obj]
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for member in vars(obj).values():
                    if isinstance(member, property):
                        member = member.fget
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, types.FunctionType):
                        funcs.append(member)
            for f in funcs:
                try:
                    atheris.instrument_func(f)
                except Exception:  # noqa: BLE001 - an odd code object: leave it uninstrumented
                    pass


# ----------------------------------------------------------------------------------------
# The parent: run each kind's workers, restart them after a hang or crash, report
# ----------------------------------------------------------------------------------------

def engine_name(engine: str) -> str:
    if engine == "atheris":
        import importlib.metadata
        version = importlib.metadata.version("atheris")
        return f"atheris {version} (libFuzzer, coverage-guided on darknetpy's Python code, structure-aware mutator)"
    return "seeded random structure-aware mutator"


def _tail(path: Path, since: int, limit: int = 3000) -> str:
    with open(path, "rb") as f:
        f.seek(since)
        return f.read().decode("utf-8", "replace")[-limit:]


def run_kind(kind: str, args, work: Path) -> dict:
    stats = {"kind": kind, "tried": 0, "e": 0, "s": 0, "c": 0, "h": 0, "crashes": [], "unnamed": {}, "slowest": 0.0}
    results = work / f"results-{kind}.jsonl"
    results.touch()
    read_pos = 0
    restarts = 0
    skip: set[int] = set()
    replay = None  # an input to run again after its kernels are compiled
    deadline = time.monotonic() + args.max_time
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    while stats["tried"] < args.n:
        logs = {name: work / f"{name}-{kind}.txt" for name in ("hang", "fault", "worker")}
        for p in logs.values():
            p.touch()
        marks = {name: p.stat().st_size for name, p in logs.items()}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--n", str(args.n - stats["tried"]),
               "--seed", str(args.seed * 1000 + restarts), "--timeout", str(args.timeout), "--engine", args.engine,
               "--work", str(work), "--warm-up", str(args.warm_up), "--skip", ",".join(map(str, sorted(skip)))]
        if args.seeds:
            cmd += ["--seeds", str(Path(args.seeds).resolve())]
        if replay is not None:
            cmd += ["--replay", str(replay)]
        with open(logs["worker"], "ab") as log:
            proc = subprocess.Popen(cmd, cwd=KIT / "darknet" if (KIT / "darknet").is_dir() else work, env=env,
                                    stdout=log, stderr=log)
            try:
                rc = proc.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
                stats["stopped"] = args.max_time
        with open(results) as f:
            f.seek(read_pos)
            chunk = f.read()
            read_pos = f.tell()
        for line in chunk.splitlines():
            rec = json.loads(line)
            stats["tried"] += 1
            stats[rec["o"]] += 1
            stats["slowest"] = max(stats["slowest"], rec["t"])
            stats["fwd"] = stats.get("fwd", 0) + rec.get("fwd", 0)
            if rec["o"] == "c":
                stats["crashes"].append(rec)
            if "note" in rec:
                stats.setdefault("notes", {}).setdefault(rec["note"], 0)
                stats["notes"][rec["note"]] += 1
            if "unnamed" in rec:
                stats["unnamed"].setdefault(rec["unnamed"][:120], 0)
                stats["unnamed"][rec["unnamed"][:120]] += 1
            if "replay" in rec:
                replay = None
        busy = work / f"busy-{kind}"
        if "stopped" in stats:  # the wall-clock bound: the input in flight is no input's fault
            busy.unlink(missing_ok=True)
            print(f"fuzz: {kind}: stopped at the {args.max_time:g} s wall-clock bound after {stats['tried']} inputs",
                  file=sys.stderr)
            break
        if rc == 0:
            continue
        if rc == EXIT_NO_SEEDS:
            print(f"fuzz: {kind}: every seed hung or crashed; stopping", file=sys.stderr)
            break
        restarts += 1
        if not busy.exists():  # died between inputs: the harness's fault, not an input's
            print(f"fuzz: {kind} worker died between inputs (exit status {rc}); restarting:\n"
                  f"{_tail(logs['worker'], marks['worker'], 1500)}", file=sys.stderr)
            if restarts > 20:
                sys.exit(f"{kind}: the worker keeps dying between inputs")
            continue
        what = busy.read_text()
        busy.unlink()
        hang = _tail(logs["hang"], marks["hang"])
        inflight = work / f"input-{kind}"
        current = next((p for p in inflight.glob("input.*") if not p.name.endswith(".tmp")), None)
        outcome = "h" if hang.strip() or rc == -signal.SIGXCPU else "c"
        suffix = current.suffix if current else ""
        if (outcome == "h" and COMPILING in _tail(logs["hang"], marks["hang"], 1 << 20) and current is not None
                and "warm-up" not in what and what != "replay"):  # a first compile, not the input's time
            replay = work / f"replay-{kind}{suffix}"
            shutil.copyfile(current, replay)
            stats["compiles"] = stats.get("compiles", 0) + 1
            continue
        if what.startswith("replay"):
            replay = None
        if what.startswith("seed "):  # counted now: the next worker leaves it out
            skip.add(int(what.split()[1]))
        if not chunk and restarts >= 3 and stats["tried"] < restarts:
            sys.exit(f"{kind}: the worker dies before running any input:\n{_tail(logs['worker'], marks['worker'])}")
        saved = work / "crashes" / f"{'hang' if outcome == 'h' else 'died'}-{kind}-{restarts}{suffix}"
        if current is not None:
            shutil.copyfile(current, saved)
        stats["tried"] += 1
        stats[outcome] += 1
        detail = hang or _tail(logs["fault"], marks["fault"]) or _tail(logs["worker"], marks["worker"])
        if outcome == "c":
            stats["crashes"].append({"o": "c", "type": f"worker died (exit status {rc})", "msg": what, "file": str(saved),
                                     "tb": detail})
        else:
            stats.setdefault("hangs", []).append({"file": str(saved), "tb": hang, "what": what})
        if restarts > args.n // 10 + 50:
            print(f"{kind}: too many worker deaths, stopping", file=sys.stderr)
            break
    return stats


def report(all_stats: list[dict], engine: str, args, work: Path, elapsed: float) -> str:
    lines = [f"Fuzzing darknetpy: {engine}; seed {args.seed}, hang = over {args.timeout:g} s of CPU, "
             f"RSS limit {RSS_LIMIT_MB // 1024} GiB (atheris), {elapsed / 60:.0f} min", "",
             "| kind | inputs tried | clean errors (DarknetError) | successes | crashes | hangs |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in all_stats:
        lines.append(f"| {s['kind']} | {s['tried']} | {s['e']} | {s['s']} | {s['c']} | {s['h']} |")
    lines.append("")
    for s in all_stats:
        if "stopped" in s:
            lines.append(f"{s['kind']}: stopped at the wall-clock bound ({s['stopped']:g} s) after {s['tried']} of "
                         f"{args.n} inputs")
    lines.append("slowest input per kind (CPU seconds): " + ", ".join(f"{s['kind']} {s['slowest']:.2f} s" for s in all_stats))
    lines.append("inputs that ran out of time compiling a kernel, run again after it: " + ", ".join(
        f"{s['kind']} {s.get('compiles', 0)}" for s in all_stats))
    lines.append("successes that also ran a forward pass: " + ", ".join(
        f"{s['kind']} {s.get('fwd', 0)}" for s in all_stats if s["kind"] in ("cfg", "weights")))
    for s in all_stats:
        if s["unnamed"]:
            lines.append(f"\n{s['kind']}: DarknetError messages not naming the input file (count, message):")
            for msg, count in sorted(s["unnamed"].items(), key=lambda kv: -kv[1])[:8]:
                lines.append(f"  {count:6d}  {msg}")
    for s in all_stats:
        if s.get("notes"):
            lines.append(f"\n{s['kind']}: successes to look at (count, what):")
            for note, count in sorted(s["notes"].items(), key=lambda kv: -kv[1])[:8]:
                lines.append(f"  {count:6d}  {note}")
    for s in all_stats:
        groups: dict = {}
        for rec in s["crashes"]:
            tb_lines = [ln for ln in rec["tb"].splitlines() if ln.strip().startswith("File ")]
            key = (rec["type"], tb_lines[-1].strip() if tb_lines else rec["msg"][:80])
            groups.setdefault(key, []).append(rec)
        for (kind_type, where), recs in list(groups.items())[:args.show]:
            lines += ["", f"### {s['kind']}: {kind_type} x{len(recs)} ({where})", f"input: {recs[0]['file']}",
                      "```", recs[0]["msg"], recs[0]["tb"].rstrip(), "```"]
        for h in s.get("hangs", [])[:args.show]:
            what = f" ({h['what']})" if h.get("what") else ""
            lines += ["", f"### {s['kind']}: hang{what}, input {h['file']}", "```", h["tb"].rstrip()[-2000:], "```"]
    lines.append(f"\nwork folder (inputs that failed are in crashes/): {work}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10000, help="inputs per kind (default 10000)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {','.join(KINDS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it counts as a hang")
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--max-time", type=float, default=14400.0,
                   help="seconds of wall time per kind, its workers and restarts together (default 4 h)")
    p.add_argument("--warm-up", type=float, default=WARM_UP_S,
                   help=f"more CPU seconds a seed may take in the warm-up, to compile kernels (default {WARM_UP_S})")
    p.add_argument("--seeds", default=None, help="a folder whose files are the seeds (default: built in, per kind)")
    p.add_argument("--skip", default="", help=argparse.SUPPRESS)
    p.add_argument("--replay", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help="work folder (default: a new temporary folder, kept)")
    p.add_argument("--show", type=int, default=5, help="crash kinds to print per input kind")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.engine == "auto":
        try:
            import atheris
            args.engine = "atheris" if atheris else "random"
        except ImportError:
            args.engine = "random"
    if args.worker:
        skip = frozenset(int(k) for k in args.skip.split(",") if k)
        Worker(args.worker, Path(args.work), args.n, args.timeout, args.warm_up, args.seeds, skip,
               args.replay).run(args.engine, args.seed)
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        p.error(f"unknown kinds {sorted(unknown)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="darknetpy-fuzz-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    all_stats = [run_kind(kind, args, work) for kind in kinds]
    text = report(all_stats, engine_name(args.engine), args, work, time.time() - start)
    print(text)
    (work / "report.md").write_text(text + "\n")
    return 1 if any(s["c"] or s["h"] for s in all_stats) else 0


if __name__ == "__main__":
    sys.exit(main())
