"""The `darknetpy` command: Darknet's verbs, with Darknet's flags where Darknet has them."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys

import numpy as np

from .errors import DarknetError
from .fileio import atomic_write


def _numerics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet",
                   help="darknet: the stock -Ofast build bit for bit (default); ieee: the build "
                        "without fast-math; fast: BLAS convolutions, not bit-exact")
    p.add_argument("--compat", choices=("darknet-cpu",), default=None,
                   help="darknet-cpu: YOLO9000's tree softmax as the stock CPU build computes it "
                        "(NaN over anchor 0); default: as Darknet's GPU build computes it")
    p.add_argument("--decoder", choices=("stb", "opencv"), default="stb",
                   help="JPEG decoder: stb (Darknet's, default) or opencv (libjpeg)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: NUMBA_NUM_THREADS or all)")


def _set_threads(n: int | None) -> None:
    if n is None:
        return
    import numba

    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise DarknetError(f"--threads {n}: choose 1 to {numba.config.NUMBA_NUM_THREADS}")
    numba.set_num_threads(n)


def _load(args, weights=True):
    from .network import Network

    _set_threads(getattr(args, "threads", None))
    return Network(args.cfg, args.weights if weights else None, numerics=args.numerics, compat=args.compat)


def cmd_summary(args) -> int:
    from .network import Network

    net = Network(args.cfg, None, warn=sys.stderr)
    print("\n".join(net.summary_lines()))
    return 0


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, "<f4"), allow_pickle=False)
    return buf.getvalue()


def cmd_dump(args) -> int:
    net = _load(args)
    x = net.load_input(args.image, args.decoder)
    outputs = net.forward_layers(x)
    os.makedirs(args.out, exist_ok=True)

    def save(name: str, a: np.ndarray) -> None:
        data = _npy_bytes(a)
        atomic_write(os.path.join(args.out, name), lambda f: f.write(data))

    save("input.npy", x)
    records = []
    for layer, out in zip(net.layers, outputs):
        name = f"layer_{layer.index:03d}.npy"
        shaped = out.reshape(layer.out_shape)
        save(name, shaped)
        records.append({"index": layer.index, "type": layer.type, "shape": list(layer.out_shape),
                        "file": name, "sha256": hashlib.sha256(np.ascontiguousarray(out, "<f4").tobytes()).hexdigest()})
    index = {"cfg": args.cfg, "weights": args.weights, "image": args.image, "numerics": args.numerics,
             "compat": args.compat, "input": {"shape": list(x.shape), "file": "input.npy",
                                              "sha256": hashlib.sha256(x.astype("<f4").tobytes()).hexdigest()},
             "layers": records}
    text = json.dumps(index, indent=1) + "\n"
    atomic_write(os.path.join(args.out, "layers.json"), lambda f: f.write(text.encode()))
    print(f"wrote {len(records)} layers and the input to {args.out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darknetpy", description="Darknet (YOLOv2, YOLO9000, Darknet-19) in Python, "
                                     "bit for bit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("summary", help="print Darknet's layer table for a cfg, with BFLOPs")
    p.add_argument("cfg", metavar="CFG")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("dump", help="run an image through the network and save every layer's output")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for input.npy, layer_NNN.npy, layers.json")
    _numerics_args(p)
    p.set_defaults(func=cmd_dump)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DarknetError as e:
        print(f"darknetpy: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("darknetpy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
