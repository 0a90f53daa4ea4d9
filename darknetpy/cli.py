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
                        "without fast-math; fast: Winograd and FMA convolutions, not bit-exact")
    p.add_argument("--compat", choices=("darknet-cpu",), default=None,
                   help="darknet-cpu: YOLO9000's tree softmax as the stock CPU build computes it "
                        "(NaN over anchor 0); default: as Darknet's GPU build computes it")
    p.add_argument("--decoder", choices=("stb", "opencv"), default="stb",
                   help="JPEG decoder: stb (Darknet's, default) or opencv (libjpeg)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: NUMBA_NUM_THREADS or all)")
    p.add_argument("--gpu", "-i", type=int, default=None, metavar="N", dest="gpu",
                   help="run on CUDA device N (needs CuPy: pip install 'darknet-exact[gpu]'); default: the CPU")
    p.add_argument("-nogpu", action="store_true", help="run on the CPU even if --gpu/-i is given (as Darknet's flag)")
    p.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                   help="refuse networks needing more than SIZE bytes (e.g. 4G; default: the available memory)")


def _size(text: str) -> int:
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    number, unit = text.rstrip("BbiI").upper(), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 4G or 512M") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the size must be positive")
    return int(value)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


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
    return Network(args.cfg, args.weights if weights else None, numerics=args.numerics, compat=args.compat,
                   max_memory=args.max_memory, device=_device(args))


def _device(args) -> str:
    if args.gpu is None or args.nogpu:
        return "cpu"
    if args.gpu < 0:
        raise DarknetError(f"--gpu {args.gpu}: a CUDA device index is 0 or more")
    return f"cuda:{args.gpu}"


def cmd_summary(args) -> int:
    from .network import Network

    if not args.profile:
        print("\n".join(Network(args.cfg, None, warn=sys.stderr).summary_lines()))
        return 0
    _set_threads(args.threads)
    net = Network(args.cfg, args.weights, numerics=args.numerics, device=_device(args), warn=sys.stderr)
    x = np.random.default_rng(0).random(net.options.inputs, dtype=np.float32)
    print("\n".join(profile_lines(net, net.profile(x, args.repeat))))
    return 0


def profile_lines(net, seconds: list[float]) -> list[str]:
    """The layer table with each layer's ms, share of the pass and GFLOP/s."""
    total = sum(seconds)
    lines = net.summary_lines()[:-1]
    width = max(map(len, lines)) + 2
    lines[0] = f"{lines[0]:<{width}s}      ms      %  GFLOP/s"
    for i, (layer, s) in enumerate(zip(net.layers, seconds)):
        rate = f"{layer.bflops() / s:9.1f}" if layer.bflops() and s > 0 else ""
        if i - 1 in net.fused_pools:
            rate = "  (with the convolution above)"
        lines[i + 1] = f"{lines[i + 1]:<{width}s}{1e3 * s:8.2f} {100 * s / total:6.1f} {rate}".rstrip()
    flops = sum(layer.bflops() for layer in net.layers)
    lines.append(f"Total BFLOPs {flops:.3f}   {1e3 * total:.1f} ms per forward pass ({net.numerics.name}, "
                 f"{net.device}), median of each layer over the passes")
    return lines


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, "<f4"), allow_pickle=False)
    return buf.getvalue()


def _output_dir(path: str) -> None:
    """Create the dump folder first, so a bad -o fails before the forward pass."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise DarknetError(f"{path}: exists and is not a folder") from None
    except OSError as e:
        raise DarknetError(f"{path}: cannot create the output folder: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DarknetError(f"{path}: the output folder is not writable")


def cmd_dump(args) -> int:
    net = _load(args)
    x = net.load_input(args.image, args.decoder)
    _output_dir(args.out)
    outputs = net.forward_layers(x)

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


def _names_for(net, data_path: str | None, args) -> list[str]:
    """Names from the .data file's `names` (as Darknet), else by class count for `detect`."""
    from .data import NAMES_BY_CLASSES, get_labels, read_data_cfg, resolve

    bases = [args.cfg] + ([data_path] if data_path else [])
    if data_path:
        options = read_data_cfg(data_path)
        name_list = options.get("names") or options.get("labels") or "data/names.list"
        names = get_labels(resolve(name_list, bases, "names file"))
    else:
        guess = NAMES_BY_CLASSES.get(net.classes)
        if guess is None:
            print(f"darknetpy: no names file is known for {net.classes} classes: printing class numbers",
                  file=sys.stderr)
            return [str(i) for i in range(net.classes)]
        path, label = guess
        names = get_labels(resolve(path, bases, "names file"))
        print(f"darknetpy: {net.classes} classes: using the {label} names from {path}", file=sys.stderr)
    if len(names) < net.classes:
        raise DarknetError(f"{net.cfg_path} has {net.classes} classes but the names file has only {len(names)} names")
    return names


def _image_paths(args):
    """The images named on the command line, or, like Darknet, paths typed on stdin."""
    if args.images:
        yield from args.images
        return
    while True:
        print("Enter Image Path: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        line = line.rstrip("\n")
        if line:
            yield line


def _detection_json(path, im_shape, dets, names, thresh) -> dict:
    from .many import detection_dicts

    h, w = im_shape[1], im_shape[2]
    return {"image": path, "path": path, "width": w, "height": h,
            "detections": detection_dicts(dets, names, thresh, w, h)}


def _save_prediction(im, dets, names, thresh, out_name: str) -> None:
    import cv2

    from .draw import draw_detections

    rgb = np.clip(np.rint(im * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    drawn = draw_detections(rgb, dets, names, thresh)
    ok, data = cv2.imencode(".jpg", drawn[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise DarknetError(f"{out_name}: could not encode the predictions image")
    atomic_write(out_name, lambda f: f.write(data.tobytes()))


def _run_detector(args, data_path: str | None) -> int:
    import time

    from .errors import ImageError

    if _many_mode(args):
        return _run_many(args, data_path)
    net = _load(args)
    print("\n".join(net.summary_lines()), file=sys.stderr)
    names = _names_for(net, data_path, args)
    failures, results = 0, []
    paths = list(args.images) if args.images else None
    for n, path in enumerate(_image_paths(args)):
        try:
            im = net.image(path, args.decoder)
            start = time.time()
            dets = net.detect(im, thresh=args.thresh, hier_thresh=args.hier, nms=args.nms)
        except (ImageError, OSError) as e:
            print(f"darknetpy: error: {e}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: Predicted in {time.time() - start:f} seconds.")
        from .detect import detection_lines
        for line in detection_lines(dets, names, args.thresh):
            print(line)
        if args.json is not None:
            results.append(_detection_json(path, im.shape, dets, names, args.thresh))
        if not args.no_draw:
            name = args.out or "predictions"
            if paths is not None and len(paths) > 1:
                name = f"{name}-{n}-{os.path.splitext(os.path.basename(path))[0]}"
            _save_prediction(im, dets, names, args.thresh, name + ".jpg")
    if args.json is not None:
        text = "".join(json.dumps(r) + "\n" for r in results)
        if args.json == "-":
            sys.stdout.write(text)
        else:
            atomic_write(args.json, lambda f: f.write(text.encode()))
    return 2 if failures else 0


def _many_mode(args) -> bool:
    """Folders, globs, videos, `-`, or the flags that only the many-input mode has: run
    many.py's pipeline. Image files alone (or none: the prompt) keep Darknet's own loop."""
    from .many import needs_batch_mode

    if any(getattr(args, k) is not None for k in ("outdir", "batch", "every", "ray", "workers", "loaders", "loader")):
        return True
    return any(needs_batch_mode(a) for a in args.images)


def _run_many(args, data_path: str | None) -> int:
    from . import many

    if args.workers is not None and args.ray is None:
        raise many.UsageError("--workers N is the number of Ray actors: use it with --ray")
    if args.ray is not None and _device(args) != "cpu":
        raise many.UsageError("--gpu is not supported with --ray (the Ray actors run on the CPU)")
    if args.ray is not None and args.outdir is not None:
        raise many.UsageError("--outdir is not supported with --ray (the actors return detections, not drawings)")
    if args.ray is not None:
        from .ray_actor import ray_available

        if not ray_available():
            raise many.UsageError("--ray needs Ray, which is not installed: pip install 'darknet-exact[ray]'")
    sources = many.plan_inputs(args.images)  # usage errors before the network is loaded
    net = _load(args)
    print("\n".join(net.summary_lines()), file=sys.stderr)
    names = _names_for(net, data_path, args)
    net.require_detector()
    if args.ray is not None:
        from .ray_actor import run_ray

        return run_ray(args, sources, names, data_path)
    return many.run_many(net, names, sources, thresh=args.thresh, hier_thresh=args.hier, nms=args.nms,
                          decoder=args.decoder, json_target=args.json, outdir=args.outdir, every=args.every or 1,
                          batch=args.batch or 1, workers=args.loaders or 2, kind=args.loader or "thread")


def cmd_detect(args) -> int:
    return _run_detector(args, None)


def cmd_detector(args) -> int:
    if args.action != "test":
        raise DarknetError(f"detector {args.action}: only 'detector test' is supported (no training)")
    return _run_detector(args, args.data)


def cmd_classifier(args) -> int:
    from .data import read_data_cfg
    from .errors import ImageError

    if args.action != "predict":
        raise DarknetError(f"classifier {args.action}: only 'classifier predict' is supported")
    net = _load(args)
    print("\n".join(net.summary_lines()), file=sys.stderr)
    names = _names_for(net, args.data, args)
    top = args.t or int(read_data_cfg(args.data).get("top", "1") or 1)
    failures = 0
    import time
    from .detect import percent
    for path in _image_paths(args):
        try:
            start = time.process_time()
            ranked = net.classify(path, top, args.decoder)
        except (ImageError, OSError) as e:
            print(f"darknetpy: error: {e}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: Predicted in {time.process_time() - start:f} seconds.", file=sys.stderr)
        for index, prob in ranked:
            print("%5.2f%%: %s" % (percent(prob), names[index]))
    return 2 if failures else 0


def cmd_download(args) -> int:
    from .download import download

    written = download(args.models, dest=args.dest, mirror=args.mirror, progress=not args.quiet)
    print(f"darknetpy: {len(written)} files written under {args.dest}", file=sys.stderr)
    return 0


def _batch_or_dynamic(text: str) -> int | None:
    return None if text == "dynamic" else _positive(text)


def _size_or_dynamic(text: str) -> tuple[int, int] | str | None:
    if text in ("dynamic", "cfg"):
        return None if text == "dynamic" else text
    w, x, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 416x416, nor 'dynamic'") from None
    if not x or min(size) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 416x416, nor 'dynamic'")
    return size


def _export_names(net, args) -> list[str] | None:
    """The class names kept in the model: the .data file's, else found by class count as
    `detect` finds them; none when neither is there."""
    from .data import NAMES_BY_CLASSES, find_file, get_labels

    if args.data:
        return _names_for(net, args.data, args)
    guess = NAMES_BY_CLASSES.get(net.classes)
    path = find_file(guess[0], [args.cfg]) if guess else None
    names = get_labels(path) if path else []
    return names if len(names) >= net.classes else None


def _writable_file(path: str) -> None:
    """Fail before the work when `path` cannot be written (the write itself is atomic)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DarknetError(f"{path}: is a folder, not a file name")
    if not os.path.isdir(folder):
        raise DarknetError(f"{path}: cannot write: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DarknetError(f"{path}: cannot write: the folder {folder} is not writable")


def cmd_dump_train(args) -> int:
    from .train.dump import cmd_dump_train as run

    return run(args)


def cmd_dump_batch(args) -> int:
    from .loader.dump import run

    return run(args)


def cmd_export(args) -> int:
    from .export import save_onnx
    from .network import Network

    _writable_file(args.out)
    net = Network(args.cfg, args.weights, warn=sys.stderr)
    size = (net.width, net.height) if args.size == "cfg" else args.size
    names = _export_names(net, args)
    outputs = save_onnx(net, args.out, opset=args.opset, batch=args.batch, size=size, decode=args.decode,
                        hier_thresh=args.hier, names=names)
    batch = "dynamic" if args.batch is None else args.batch
    shape = "dynamic" if size is None else f"{size[0]}x{size[1]}"
    outputs = ", ".join(outputs)
    kept = f"{len(names)} class names" if names else "no class names (--data DATA names them)"
    print(f"darknetpy: wrote {args.out}: opset {args.opset}, batch {batch}, input {shape}, outputs {outputs}, "
          f"{kept}", file=sys.stderr)
    return 0


def _detector_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-thresh", type=float, default=0.5, help="print and draw classes with probability above this (.5)")
    p.add_argument("-hier", type=float, default=0.5, help="YOLO9000: threshold to descend the tree (.5)")
    p.add_argument("-nms", type=float, default=0.45, help="non-maximum suppression IoU (.45; 0 turns it off)")
    p.add_argument("-out", default=None, metavar="NAME", help="save the drawn image as NAME.jpg (predictions.jpg; "
                                                                 "image files only: with many inputs use --outdir)")
    p.add_argument("--json", default=None, metavar="FILE", help="JSON Lines, one object per image or video frame "
                                                                 "(- for stdout); with many inputs each line is "
                                                                 "written as its image completes")
    p.add_argument("--no-draw", action="store_true", help="do not write the predictions image")
    g = p.add_argument_group("many images (folders, globs, videos, - for paths on stdin)")
    g.add_argument("--outdir", default=None, metavar="DIR",
                   help="draw the predictions into DIR, with the inputs' relative paths (video: DIR/STEM/frame_N.jpg)")
    g.add_argument("--batch", "-batch", type=_positive, default=None, metavar="N",
                   help="images per Network.forward_batch call, N prepared ahead (on a GPU they run side by "
                        "side, one CUDA stream each; on the CPU one after another)")
    g.add_argument("--every", type=_positive, default=None, metavar="K", help="video: every K-th frame (1)")
    g.add_argument("--loaders", type=_positive, default=None, metavar="N",
                   help="workers decoding and letterboxing ahead of the network (2)")
    g.add_argument("--loader", choices=("thread", "process"), default=None,
                   help="thread (default) or process workers for decoding")
    g.add_argument("--ray", default=None, metavar="local|ADDRESS",
                   help="run on Ray (pip install 'darknet-exact[ray]'): 'local' starts one here, else a cluster "
                        "address (ray://host:10001 or auto)")
    g.add_argument("--workers", type=_positive, default=None, metavar="N", help="Ray actors, one network each (1)")


_PATHS_HELP = ("images, folders (walked for images), globs, videos, or - for paths on stdin "
               "(none: prompt for paths on stdin, as Darknet)")


def _model_args(p: argparse.ArgumentParser, action: str | None, paths_help: str) -> None:
    """[ACTION DATA] CFG WEIGHTS PATH...: Darknet's positional arguments."""
    if action is not None:
        p.add_argument("action", metavar=action, choices=(action,))
        p.add_argument("data", metavar="DATA")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("images", metavar="PATH", nargs="*", help=paths_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darknetpy", description="Darknet (YOLOv2, YOLO9000, Darknet-19) in Python, "
                                     "bit for bit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("detect", help="detect objects like './darknet detect' (names chosen by class count)")
    _model_args(p, None, _PATHS_HELP)
    _detector_flags(p)
    _numerics_args(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("detector", help="'./darknet detector test|valid|recall|map|calc_anchors DATA ...'")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("test", help="'./darknet detector test DATA CFG WEIGHTS [IMAGE]'")
    p.add_argument("data", metavar="DATA")
    _model_args(p, None, _PATHS_HELP)
    _detector_flags(p)
    _numerics_args(p)
    p.set_defaults(func=cmd_detector)
    _evaluation_parsers(actions)
    from .train.loop import add_classifier_train, add_detector_train

    add_detector_train(actions)

    p = sub.add_parser("classifier", help="'./darknet classifier predict|train DATA CFG WEIGHTS [IMAGE]'")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("predict", help="'./darknet classifier predict DATA CFG WEIGHTS [IMAGE]'")
    p.add_argument("data", metavar="DATA")
    _model_args(p, None, "images (none: read paths from stdin)")
    p.add_argument("-t", type=int, default=0, metavar="TOP", help="how many classes to print (the .data file's top=)")
    _numerics_args(p)
    p.set_defaults(func=cmd_classifier)
    add_classifier_train(actions)

    from .download import MODELS

    p = sub.add_parser("download", help="fetch the official cfg, weights, names, tree and sample images")
    p.add_argument("models", metavar="MODEL", nargs="+", choices=sorted(MODELS),
                   help=f"one or more of: {', '.join(sorted(MODELS))}")
    p.add_argument("--dest", default=".", help="folder that gets cfg/, weights/ and data/ (default: .)")
    p.add_argument("--mirror", default=None, help="a folder or URL laid out like DEST (default: $DARKNETPY_MIRROR, "
                                                  "else the official sources)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("summary", help="print Darknet's layer table for a cfg, with BFLOPs (--profile: and ms)")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None,
                   help="with --profile: the weights to time with (default: zeros)")
    p.add_argument("--profile", action="store_true", help="time each layer on a random input")
    p.add_argument("--repeat", type=_positive, default=3, help="--profile: timed passes per layer (3)")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--gpu", "-i", type=int, default=None, metavar="N", dest="gpu", help="time on CUDA device N")
    p.add_argument("-nogpu", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("dump", help="run an image through the network and save every layer's output")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for input.npy, layer_NNN.npy, layers.json")
    _numerics_args(p)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("dump-train", help="train K datums as the training kit does and write every tensor's SHA-256 "
                                          "per stage (stages.json), final.weights and lines.txt")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("--x", required=True, metavar="X.npy", help="the inputs: batch x subdivisions rows")
    p.add_argument("--y", required=True, metavar="Y.npy", help="the truths, one row per input")
    p.add_argument("--datums", type=_positive, default=1, metavar="K", help="datums to train (1)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for stages.json, final.weights, lines.txt")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet")
    p.add_argument("--compat", choices=("darknet-cpu",), default=None,
                   help="darknet-cpu: the stock CPU build (empty region backward, YOLO9000's NaN tree)")
    p.set_defaults(func=cmd_dump_train)

    p = sub.add_parser("dump-batch", help="one training-data loader call after srand(S): X.npy, y.npy, batch.json")
    from .loader.dump import add_arguments as dump_batch_arguments

    dump_batch_arguments(p)
    p.set_defaults(func=cmd_dump_batch)

    p = sub.add_parser("export", help="write the network as an ONNX model, Darknet's semantics kept "
                                      "(--decode: boxes and scores)")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("-o", "--out", required=True, metavar="FILE.onnx", help="the ONNX file (written atomically)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17; 13 or later)")
    p.add_argument("--batch", type=_batch_or_dynamic, default=1, metavar="N|dynamic", help="batch size (1)")
    p.add_argument("--size", type=_size_or_dynamic, default="cfg", metavar="WxH|dynamic",
                   help="input width x height (default: the cfg's)")
    p.add_argument("--decode", action="store_true",
                   help="outputs boxes (relative to the image, for the input image_size), scores and objectness "
                        "in place of the output layer's output")
    p.add_argument("-hier", type=float, default=0.5, help="--decode, YOLO9000: threshold to descend the tree (.5)")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="a .data file whose names= are the class names kept in the model (default: by class count)")
    p.set_defaults(func=cmd_export)

    from .train.partial import cmd_partial

    p = sub.add_parser("partial", help="'./darknet partial CFG WEIGHTS OUT N': the first N layers (seen = 0)")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("out", metavar="OUT", help="the new .weights file (written atomically)")
    p.add_argument("n", metavar="N", type=int, help="layers to keep, e.g. 23 for darknet19_448.conv.23")
    p.set_defaults(func=cmd_partial)
    return parser


def _evaluation_flags(p: argparse.ArgumentParser, batch: bool = True) -> None:
    p.add_argument("data", metavar="DATA", help="the .data file (valid=, names=, results=, eval=, map=)")
    p.add_argument("cfg", metavar="CFG")
    p.add_argument("weights", metavar="WEIGHTS")
    if batch:
        p.add_argument("--batch", "-batch", type=_positive, default=1, metavar="N",
                       help="images per Network.forward_batch call (side by side on a GPU)")
    p.add_argument("--loaders", type=_positive, default=2, metavar="N",
                   help="workers decoding images ahead of the network (2)")
    _numerics_args(p)


def _evaluation_parsers(actions) -> None:
    """`detector valid|recall|map|calc_anchors` (darknetpy/evaluate)."""
    p = actions.add_parser("valid", help="'./darknet detector valid': results files for every valid= image")
    _evaluation_flags(p)
    p.add_argument("-out", default=None, metavar="PREFIX",
                   help="file name prefix (comp4_det_test_; eval=coco: the file name, coco_results)")
    p.set_defaults(func=cmd_detector_valid)

    p = actions.add_parser("recall", help="'./darknet detector recall': proposals, IoU and recall per image")
    _evaluation_flags(p, batch=False)
    p.add_argument("--json", default=None, metavar="FILE", help="the totals and per-image numbers as JSON (- for stdout)")
    p.set_defaults(func=cmd_detector_recall)

    p = actions.add_parser("map", help="mean average precision on the valid= images (AlexeyAB's 'detector map')")
    _evaluation_flags(p)
    p.add_argument("--iou", "-iou_thresh", type=float, default=0.5, metavar="T", help="IoU threshold (.5)")
    p.add_argument("--points", "-points", type=int, default=0, choices=(0, 11, 101),
                   help="0: area under the curve (VOC2010+, default); 11: VOC2007; 101: COCO mAP@[.5:.95] "
                        "(pycocotools)")
    p.add_argument("-thresh", type=float, default=0.25, help="confidence for the TP/FP, precision and recall (.25)")
    p.add_argument("--json", default=None, metavar="FILE", help="mAP, iou, points and per-class numbers as JSON "
                                                                 "(- for stdout)")
    p.set_defaults(func=cmd_detector_map)

    p = actions.add_parser("calc_anchors", help="anchors by k-means (1 - IoU) over the train= labels")
    p.add_argument("data", metavar="DATA", help="the .data file (train=)")
    p.add_argument("-num_of_clusters", type=_positive, default=5, metavar="K", help="anchors (5)")
    p.add_argument("-width", type=_positive, required=True, metavar="W", help="network input width, e.g. 416")
    p.add_argument("-height", type=_positive, required=True, metavar="H", help="network input height, e.g. 416")
    p.add_argument("--seed", type=int, default=0, help="k-means++ seed (0)")
    p.add_argument("--json", default=None, metavar="FILE", help="anchors (pixels) and avg_iou as JSON (- for stdout)")
    p.add_argument("--show", default=None, metavar="FILE.png",
                   help="plot the boxes, the anchors and the average IoU for k = 1..10 (matplotlib)")
    p.set_defaults(func=cmd_detector_calc_anchors)


def _write_json(target: str | None, obj: dict) -> None:
    if target is None:
        return
    text = json.dumps(obj, indent=1) + "\n"
    if target == "-":
        sys.stdout.write(text)
    else:
        atomic_write(target, lambda f: f.write(text.encode()))


def _evaluation_network(args, key: str = "valid"):
    """The network and a progress bar, the dataset checked (list, images) before the
    network is loaded."""
    from .evaluate import open_dataset
    from .many import Progress

    dataset = open_dataset(args.data, key)
    net = _load(args)
    print("\n".join(net.summary_lines()), file=sys.stderr)
    net.require_detector()
    return net, Progress(len(dataset.images))


def cmd_detector_valid(args) -> int:
    from .evaluate import valid

    net, bar = _evaluation_network(args)
    result = valid(args.data, net, out=args.out, batch=args.batch, loaders=args.loaders, decoder=args.decoder,
                   progress=bar)
    bar.summary()
    where = os.path.dirname(result.files[0]) or "."
    print(f"darknetpy: {result.detections} detections in {len(result.files)} files under {where}/", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_detector_recall(args) -> int:
    from .evaluate import recall

    net, bar = _evaluation_network(args)
    out = sys.stderr if args.json == "-" else sys.stdout
    result = recall(args.data, net, loaders=args.loaders, decoder=args.decoder, progress=bar, echo=out)
    bar.summary()
    print(result.summary(), file=out)
    _write_json(args.json, result.to_json())
    return 1 if any(i.error for i in result.images) else 0


def cmd_detector_map(args) -> int:
    from .evaluate import map as mean_ap

    if args.points == 101:
        from .evaluate.coco import require_pycocotools

        require_pycocotools()
    net, bar = _evaluation_network(args)
    result = mean_ap(args.data, net, iou=args.iou, points=args.points, thresh=args.thresh, batch=args.batch,
                     loaders=args.loaders, decoder=args.decoder, progress=bar)
    bar.summary()
    out = sys.stderr if args.json == "-" else sys.stdout
    print("\n".join(result.lines()), file=out)
    _write_json(args.json, result.to_json())
    return 1 if result.failed else 0


def cmd_detector_calc_anchors(args) -> int:
    from .evaluate.anchors import anchors, plot_png, require_matplotlib

    if args.show is not None:
        require_matplotlib()
    result = anchors(args.data, args.num_of_clusters, args.width, args.height, seed=args.seed)
    out = sys.stderr if args.json == "-" else sys.stdout
    print("\n".join(result.lines()), file=out)
    _write_json(args.json, result.to_json())
    if args.show is not None:
        png = plot_png(result)
        atomic_write(args.show, lambda f: f.write(png))
        print(f"darknetpy: plot written to {args.show}", file=sys.stderr)
    return 0


def _numba_without_scipy_linalg() -> None:
    """Numba's first kernel (compiled or loaded from its cache) imports numba.np.arraymath,
    which imports scipy.linalg only to learn whether np.dot may call BLAS: about 0.17 s and
    17 MiB of a `detect`, where SciPy is installed. darknetpy's kernels call no BLAS and the
    CLI runs no other Numba code, so the CLI lets that check fail; scipy.linalg itself stays
    importable."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules["scipy.linalg"] = None
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules["scipy.linalg"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _numba_without_scipy_linalg()
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
