"""The reference kit (../shared/reference): where it is, its manifest, its weights."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KIT = Path(os.environ.get("DARKNETPY_KIT", REPO.parent / "shared" / "reference"))
CACHE = Path(os.environ.get("DARKNETPY_KIT_CACHE", REPO / ".cache" / "kit-weights"))
MISSING = f"reference kit not found at {KIT} (set DARKNETPY_KIT)"


def available() -> bool:
    return (KIT / "manifest.json").is_file()


@functools.lru_cache(maxsize=None)
def manifest() -> dict:
    return json.loads((KIT / "manifest.json").read_text())


def cases() -> list[dict]:
    return manifest()["cases"] if available() else []


def case(case_id: str) -> dict:
    return next(c for c in cases() if c["id"] == case_id)


def model(name: str) -> dict:
    return manifest()["models"][name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights(file_name: str) -> Path:
    """Regenerate a kit weights file with the kit's make_weights.py (once), checking its SHA-256."""
    spec = manifest()["make_weights"]["files"][file_name]
    path = CACHE / file_name
    if path.is_file() and path.stat().st_size == spec["size"] and sha256_file(path) == spec["sha256"]:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    args = [sys.executable, str(KIT / "make_weights.py"), str(KIT / spec["cfg"]), str(tmp),
            "--seed", str(spec["seed"]), "--version", spec["version"], "--head-gain", str(spec["head_gain"])]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    digest = sha256_file(tmp)
    if digest != spec["sha256"]:
        tmp.unlink()
        raise AssertionError(f"make_weights.py wrote {file_name} with SHA-256 {digest}, manifest says {spec['sha256']}")
    tmp.replace(path)
    return path


def cfg_path(model_name: str) -> Path:
    return KIT / model(model_name)["cfg"]


def image_path(c: dict) -> Path:
    return KIT / c["image"]


def sha256_f32(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, "<f4").tobytes()).hexdigest()


def sha256_nan_canonical(a: np.ndarray) -> str:
    a = np.array(a, "<f4")
    a[np.isnan(a)] = np.frombuffer(np.uint32(0x7FC00000).tobytes(), "<f4")[0]
    return hashlib.sha256(a.tobytes()).hexdigest()


def layer_matches(record: dict, out: np.ndarray) -> bool:
    if "sha256_nan_canonical" in record:
        return sha256_nan_canonical(out) == record["sha256_nan_canonical"]
    return sha256_f32(out) == record["sha256"]


def first_mismatch(records: list[dict], outputs: list[np.ndarray]) -> str | None:
    """None when every layer matches; else a line naming the first differing layer."""
    for record in records:
        out = outputs[record["index"]]
        if layer_matches(record, out):
            continue
        idx = np.asarray(record["sample_index"])
        want = np.array([float.fromhex(s) for s in record["samples"]], np.float32)
        got = out[idx]
        diff = np.nanmax(np.abs(got.astype(np.float64) - want)) if np.any(got != want) else 0.0
        return (f"layer {record['index']} ({record['type']}) differs: max abs diff over the kit's "
                f"{idx.size} samples {diff:g}")
    return None
