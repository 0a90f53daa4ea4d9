"""The reference kits (../shared/reference, ../shared/reference-v3): where they are, their
manifests, their weights, and one run per case.

The module-level names are the YOLOv2 kit's (`kit.cases()`, `kit.run_case(...)`);
`kit.V3` is the YOLOv3 kit, with the same methods.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darknetpy.image import load_image_color
from darknetpy.network import Network

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DARKNETPY_KIT_CACHE", REPO / ".cache" / "kit-weights"))

# flavor -> (numerics, compat for YOLO9000)
FLAVOR_SETTINGS = {"stock": ("darknet", "darknet-cpu"), "O2": ("ieee", "darknet-cpu"),
                   "fixed-tree": ("darknet", None)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def bits(v) -> str:
    return f"{int(np.float32(v).view(np.uint32)):08x}"


def view(dets):
    """Darknet's detection array as the kits record it: entries with a nonzero prob."""
    return [(pos, [bits(v) for v in d.bbox], bits(d.objectness),
             [[k, bits(v)] for k, v in sorted(d.probs.items())]) for pos, d in enumerate(dets) if d.probs]


def manifest_view(rec):
    return [(e["index"], e["bbox_bits"], e["objectness_bits"], [[k, b] for k, _, b in e["probs"]])
            for e in rec["dets"]]


def reference_flavor(model_name: str) -> str:
    """The flavor whose lines the CLI prints: the GPU build's tree for YOLO9000."""
    return "fixed-tree" if "yolo9000" in model_name else "stock"


@dataclass
class Run:
    input: np.ndarray
    mismatch: str | None   # None when every layer equals the kit's
    output: np.ndarray     # the output layer's output, (c, h, w)
    image_size: tuple[int, int]
    detection_outputs: list  # each detection layer's output, (c, h, w), in network order


_networks: dict = {}
_runs: dict = {}  # (kit, model, flavor, device, input hash) -> (first mismatch, outputs)


class Kit:
    """One reference kit: `root` holds its manifest.json, make_weights.py and darknet/."""

    def __init__(self, root: Path, env: str):
        self.root = root
        self.MISSING = f"reference kit not found at {root} (set {env})"

    def available(self) -> bool:
        return (self.root / "manifest.json").is_file()

    @functools.cached_property
    def _manifest(self) -> dict:
        return json.loads((self.root / "manifest.json").read_text())

    def manifest(self) -> dict:
        return self._manifest

    def cases(self) -> list[dict]:
        return self.manifest()["cases"] if self.available() else []

    def case(self, case_id: str) -> dict:
        return next(c for c in self.cases() if c["id"] == case_id)

    def model(self, name: str) -> dict:
        return self.manifest()["models"][name]

    def weights(self, file_name: str) -> Path:
        """Regenerate a kit weights file with the kit's make_weights.py (once), checking its SHA-256."""
        spec = self.manifest()["make_weights"]["files"][file_name]
        path = CACHE / file_name
        if path.is_file() and path.stat().st_size == spec["size"] and sha256_file(path) == spec["sha256"]:
            return path
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        args = [sys.executable, str(self.root / "make_weights.py"), str(self.root / spec["cfg"]), str(tmp),
                "--seed", str(spec["seed"]), "--version", spec["version"], "--head-gain", str(spec["head_gain"])]
        for key in ("yolo_obj_bias", "yolo_cls_bias"):
            if spec.get(key):
                args += ["--" + key.replace("_", "-"), str(spec[key])]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        digest = sha256_file(tmp)
        if digest != spec["sha256"]:
            tmp.unlink()
            raise AssertionError(f"make_weights.py wrote {file_name} with SHA-256 {digest}, manifest says "
                                 f"{spec['sha256']}")
        tmp.replace(path)
        return path

    def cfg_path(self, model_name: str) -> Path:
        return self.root / self.model(model_name)["cfg"]

    def image_path(self, c: dict) -> Path:
        return self.root / c["image"]

    def expected_layers(self, c: dict, flavor: str) -> list[dict]:
        if flavor == "fixed-tree":
            return c["results"]["fixed-tree"]["layers"]
        stock = c["results"]["stock"]["layers"]
        if flavor == "stock":
            return stock
        differing = {d["index"]: d for d in self.manifest()["flavors"][flavor]["results"][c["id"]]["differing_layers"]}
        records = []
        for rec in stock:
            if rec["index"] in differing:
                d = differing[rec["index"]]
                rec = {k: v for k, v in rec.items() if k not in ("sha256", "sha256_nan_canonical")}
                rec["sha256"] = d["sha256"]
                if "sha256_nan_canonical" in d:
                    rec["sha256_nan_canonical"] = d["sha256_nan_canonical"]
            records.append(rec)
        return records

    def network(self, model_name: str, flavor: str, device: str = "cpu") -> Network:
        """One network at a time, to bound memory (loading a network takes well under a second)."""
        numerics, compat = FLAVOR_SETTINGS[flavor]
        if "yolo9000" not in model_name:
            compat = None
        key = (str(self.root), model_name, numerics, compat, device)
        if key not in _networks:
            _networks.clear()
            _networks[key] = Network(self.cfg_path(model_name), self.weights(self.model(model_name)["weights"]),
                                     numerics=numerics, compat=compat, warn=None, device=device)
        return _networks[key]

    def run_case(self, c: dict, flavor: str, device: str = "cpu") -> Run:
        """Run a case in a flavor from the kit's darknet/ folder, once per distinct input."""
        cwd = os.getcwd()
        os.chdir(self.root / "darknet")
        try:
            net = self.network(c["model"], flavor, device)
            im = load_image_color(self.image_path(c))
            x = net.letterbox(im)
            key = (str(self.root), c["model"], flavor, device, hashlib.sha256(x.tobytes()).hexdigest())
            if key not in _runs:
                outputs = net.forward_layers(x)
                kept = [net.output_layer] + net.model.detection_layers
                _runs[key] = (first_mismatch(self.expected_layers(c, flavor), outputs),
                              [outputs[layer.index].reshape(layer.out_shape) for layer in kept])
        finally:
            os.chdir(cwd)
        mismatch, kept = _runs[key]
        return Run(x, mismatch, kept[0].copy(), (im.shape[2], im.shape[1]), [out.copy() for out in kept[1:]])


V2 = Kit(Path(os.environ.get("DARKNETPY_KIT", REPO.parent / "shared" / "reference")), "DARKNETPY_KIT")
V3 = Kit(Path(os.environ.get("DARKNETPY_KIT_V3", REPO.parent / "shared" / "reference-v3")), "DARKNETPY_KIT_V3")

KIT = V2.root
MISSING = V2.MISSING
available = V2.available
manifest = V2.manifest
cases = V2.cases
case = V2.case
model = V2.model
weights = V2.weights
cfg_path = V2.cfg_path
image_path = V2.image_path
expected_layers = V2.expected_layers
network = V2.network
run_case = V2.run_case
