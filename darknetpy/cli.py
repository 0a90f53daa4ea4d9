"""The `darknetpy` command: Darknet's verbs, with Darknet's flags where Darknet has them."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import time

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
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: NUMBA_NUM_THREADS or all)")
    p.add_argument("--gpu", "-i", type=int, default=None, metavar="N", dest="gpu",
                   help="run on CUDA device N (needs CuPy: pip install 'darknet-exact[gpu]'); default: the CPU")
    p.add_argument("-nogpu", action="store_true", help="run on the CPU even if --gpu/-i is given (as Darknet's flag)")
    p.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                   help="refuse networks needing more than SIZE bytes (e.g. 4G; default: the available memory)")
    p.add_argument("--allow-extra-weights", action="store_true",
                   help="read a weights file even when it is far larger than the cfg reads (normally refused as "
                        "another model's weights; a few trailing bytes are only a warning)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no layer table, names line or summary on stderr (errors and warnings stay)")


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
                   max_memory=args.max_memory, device=_device(args), allow_extra_weights=args.allow_extra_weights)


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


_DUMPED_LAYER = re.compile(r"^layer_\d{3,}\.npy$")


def _remove_stale_layers(folder: str, written: set[str]) -> None:
    """Remove the layer_NNN.npy files of an earlier dump that this one did not write (a
    larger network's), so that the folder holds one network's dump."""
    for name in os.listdir(folder):
        if _DUMPED_LAYER.match(name) and name not in written:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError as e:
                raise DarknetError(f"{os.path.join(folder, name)}: cannot remove an earlier dump's file: "
                                   f"{e.strerror}") from None


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
    _remove_stale_layers(args.out, {r["file"] for r in records})
    text = json.dumps(index, indent=1) + "\n"
    atomic_write(os.path.join(args.out, "layers.json"), lambda f: f.write(text.encode()))
    _say(args, f"wrote {len(records)} layers and the input to {args.out}")
    return 0


def _say(args, line: str) -> None:
    """An informative line on stderr (the layer table, the names used, the summary), which
    -q/--quiet drops; errors and warnings are always written."""
    if not getattr(args, "quiet", False):
        print(line, file=sys.stderr, flush=True)


def _names_for(net, data_path: str | None, args, kind: str = "detector") -> list[str]:
    """Names from the .data file's `names=` (as Darknet), else by class count for `detect`;
    checked against the network's classes (see data.read_names). The network keeps them
    (`Network.names`)."""
    from .data import NAMES_BY_CLASSES, names_by_class_count, names_path, read_names, resolve

    if data_path:
        path = names_path(data_path, kind)
    else:
        found = names_by_class_count(net.classes, args.cfg)
        if found is None and net.classes in NAMES_BY_CLASSES:
            resolve(NAMES_BY_CLASSES[net.classes][0], [args.cfg], "names file")  # the error naming where it looked
        if found is None:
            _say(args, f"darknetpy: no names file is known for {net.classes} classes: printing class numbers")
            return net.names
        path, label = found
        _say(args, f"darknetpy: {net.classes} classes: using the {label} names from {path}")
    net.names = read_names(path, net.classes, net.cfg_path, warn=sys.stderr)
    return net.names


def _writable_file(path: str, what: str) -> None:
    """Fail now, before the network runs, if `path` cannot be written (its folder missing
    or read-only, or a folder in its place)."""
    if os.path.isdir(path):
        raise DarknetError(f"{path}: is a folder; {what} needs a file name")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise DarknetError(f"{path}: cannot write {what}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise DarknetError(f"{path}: cannot write {what}: permission denied")


def _check_outputs(args, draw_to: str | None) -> None:
    """--json FILE, --outdir DIR and the drawing, checked before the work: one line, exit 2."""
    if getattr(args, "json", None) not in (None, "-"):
        _writable_file(args.json, "the JSON Lines")
    if getattr(args, "outdir", None) is not None:
        _output_dir(args.outdir)
    if draw_to is not None:
        _writable_file(draw_to, "the drawn image")


def _one_image(args) -> bool:
    """Whether the inputs are exactly one image file (not a folder, glob, video or -)."""
    from .many import needs_batch_mode

    return len(args.images) == 1 and not needs_batch_mode(args.images[0])


def _drawing(args) -> str | None:
    """Where the drawn image goes, by one rule: one image file (or each path typed at the
    prompt, as Darknet) is drawn into predictions.jpg, or NAME.jpg with -out NAME; with
    several inputs drawings are made only with --outdir DIR; --no-draw draws nothing."""
    from .many import UsageError

    if args.out is not None and (args.no_draw or args.outdir is not None):
        raise UsageError(f"-out {args.out}: not with {'--no-draw' if args.no_draw else '--outdir'}")
    if args.no_draw or args.outdir is not None:
        return None
    if args.images and not _one_image(args):
        if args.out is not None:
            raise UsageError(f"-out {args.out} names the drawing of one image: with several inputs use --outdir DIR")
        return None
    return (args.out or "predictions") + ".jpg"


def _check_ray(args) -> None:
    from .many import UsageError

    if args.workers is not None and args.ray is None:
        raise UsageError("--workers N is the number of Ray actors: use it with --ray")
    if args.ray is None:
        return
    if _device(args) != "cpu":
        raise UsageError("--gpu is not supported with --ray (the Ray actors run on the CPU)")
    if args.outdir is not None:
        raise UsageError("--outdir is not supported with --ray (the actors return detections, not drawings)")
    if not args.images:
        raise UsageError("--ray needs PATH arguments (the prompt reads paths one at a time)")
    from .ray_actor import ray_available

    if not ray_available():
        raise UsageError("--ray needs Ray, which is not installed: pip install 'darknet-exact[ray]'")


def _run_detector(args, data_path: str | None) -> int:
    """`detect` and `detector test`: every kind of input through many.py's pipeline (the
    prompt one path at a time), the usage and the outputs checked before the network is
    loaded."""
    from . import many

    _check_ray(args)
    sources = many.plan_inputs(args.images) if args.images else None
    draw_to = None if args.ray is not None else _drawing(args)
    _check_outputs(args, draw_to)
    net = _load(args)
    _say(args, "\n".join(net.summary_lines()))
    net.require_detector()
    names = _names_for(net, data_path, args)
    if args.ray is not None:
        from .ray_actor import run_ray

        return run_ray(args, sources, names, data_path)
    _prepare(net, args)
    return many.run_many(net, names, sources, thresh=args.thresh, hier_thresh=args.hier, nms=args.nms,
                         decoder=args.decoder, json_target=args.json, outdir=args.outdir, every=args.every or 1,
                         batch=args.batch or 1, workers=args.loaders or 2, kind=args.loader or "thread",
                         draw_to=draw_to, summary=not args.quiet)


def cmd_detect(args) -> int:
    return _run_detector(args, None)


def cmd_detector(args) -> int:
    return _run_detector(args, args.data)


def cmd_classifier(args) -> int:
    """`classifier predict`: the same inputs, --json and pipeline as `detect`."""
    from . import many
    from .data import read_data_cfg

    options = read_data_cfg(args.data)
    sources = many.plan_inputs(args.images) if args.images else None
    _check_outputs(args, None)
    net = _load(args)
    _say(args, "\n".join(net.summary_lines()))
    net.require_classifier()
    names = _names_for(net, args.data, args, "classifier")
    try:
        top = args.top or max(1, int(options.get("top") or 1))
    except ValueError:
        raise DarknetError(f"{args.data}: top={options['top']} is not a whole number") from None
    _prepare(net, args)
    return many.run_many(net, names, sources, top=top, decoder=args.decoder, json_target=args.json,
                         every=args.every or 1, batch=args.batch or 1, workers=args.loaders or 2,
                         kind=args.loader or "thread", summary=not args.quiet)


def _prepare(net, args) -> None:
    """A first run on this machine compiles the kernels in several processes (kernel_cache.py)."""
    from .kernel_cache import prepare

    prepare(net, args.cfg, args.numerics, args.compat)


def cmd_compile(args) -> int:
    """Compile the kernels each cfg needs, so that its first run starts at once."""
    from .kernel_cache import compile_in_child, compile_model

    if args.part:
        for cfg in args.cfgs:
            compile_in_child(cfg, args.numerics, args.compat, args.part)
        return 0
    for cfg in args.cfgs:
        seconds = compile_model(cfg, args.numerics, args.compat, warn=None)
        _say(args, f"darknetpy: kernels for {cfg} ({args.numerics}) ready in {seconds:.1f} s")
    return 0


def cmd_download(args) -> int:
    """Fetch the files; meanwhile (once the cfg and data files are in, while the weights
    download) compile the kernels the models need in a child process, so that the first
    detect after a download starts at once."""
    from .download import download
    from .kernel_cache import NOTICE, start_compile

    compiling = []
    start = time.perf_counter()

    def compile_kernels(cfgs: list[str]) -> None:
        if cfgs and not args.no_compile:
            compiling.append(start_compile(cfgs))

    try:
        written = download(args.models, dest=args.dest, mirror=args.mirror, progress=not args.quiet,
                           before_weights=compile_kernels)
    except BaseException:
        for proc in filter(None, compiling):
            proc.kill()
        raise
    print(f"darknetpy: {len(written)} files written under {args.dest}", file=sys.stderr)
    for proc in filter(None, compiling):
        if proc.poll() is None:
            print("darknetpy: waiting for the models' kernels to compile (once for this machine; --no-compile "
                  "skips it)...", file=sys.stderr, flush=True)
        _, err = proc.communicate()
        if proc.returncode == 0 and NOTICE in err:
            print(f"darknetpy: kernels compiled, the first detect will start at once ({time.perf_counter() - start:.0f}"
                  f" s since the download began)", file=sys.stderr)
        elif proc.returncode == 0:
            print("darknetpy: the kernels were compiled already", file=sys.stderr)
        else:
            lines = [line for line in err.splitlines() if line.strip()]
            print(f"darknetpy: warning: compiling the kernels failed ({lines[-1] if lines else proc.returncode}); "
                  f"the first run will compile them", file=sys.stderr)
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


def cmd_dump_train(args) -> int:
    from .train.dump import cmd_dump_train as run

    return run(args)


def cmd_dump_batch(args) -> int:
    from .loader.dump import run

    return run(args)


def cmd_export(args) -> int:
    from .export import save_onnx
    from .network import Network

    _writable_file(args.out, "the ONNX model")
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
    """Darknet's flags (single dash, as Darknet spells them; the double-dash forms work too)
    and the output options of `detect` and `detector test`."""
    p.add_argument("-thresh", "--thresh", type=float, default=0.5, metavar="T",
                   help="print and draw classes with probability above T (.5)")
    p.add_argument("-hier", "--hier", type=float, default=0.5, metavar="T",
                   help="YOLO9000: probability needed to descend the tree (.5)")
    p.add_argument("-nms", "--nms", type=float, default=0.45, metavar="T",
                   help="non-maximum suppression IoU (.45; 0 turns it off)")
    p.add_argument("-out", "--out", default=None, metavar="NAME",
                   help="drawing rule: one image file (or each path typed at the prompt) is drawn into "
                        "predictions.jpg, or NAME.jpg with -out NAME; several inputs are drawn only with "
                        "--outdir DIR (-out is then an error)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="JSON Lines, one object per image or video frame: path, width, height and the detections "
                        "(or error); - for stdout, which then gets nothing else. Each line is written as its "
                        "image completes")
    p.add_argument("--no-draw", action="store_true", help="draw nothing")
    _many_flags(p)
    g = p.add_argument_group("many inputs")
    g.add_argument("--outdir", default=None, metavar="DIR",
                   help="draw the predictions into DIR, with the inputs' relative paths (video: DIR/STEM/frame_N.jpg)")
    g.add_argument("--ray", default=None, metavar="local|ADDRESS",
                   help="run on Ray (pip install 'darknet-exact[ray]'): 'local' starts one here, else a cluster "
                        "address (ray://host:10001 or auto)")
    g.add_argument("--workers", type=_positive, default=None, metavar="N", help="Ray actors, one network each (1)")


def _many_flags(p: argparse.ArgumentParser) -> None:
    """The pipeline's options, shared by detect, detector test and classifier predict."""
    g = p.add_argument_group("pipeline")
    g.add_argument("--batch", "-batch", type=_positive, default=None, metavar="N",
                   help="images per Network.forward_batch call, N prepared ahead (on a GPU they run side by "
                        "side, one CUDA stream each; on the CPU one after another)")
    g.add_argument("--every", type=_positive, default=None, metavar="K", help="video: every K-th frame (1)")
    g.add_argument("--loaders", type=_positive, default=None, metavar="N",
                   help="workers decoding and letterboxing ahead of the network (2)")
    g.add_argument("--loader", choices=("thread", "process"), default=None,
                   help="thread (default) or process workers for decoding")


_PATHS_HELP = ("images, folders (walked for images), globs, videos, or - for paths on stdin "
               "(none: prompt for paths on stdin, as Darknet)")


def _model_args(p: argparse.ArgumentParser, paths_help: str, data: bool = False) -> None:
    """[DATA] CFG WEIGHTS PATH...: Darknet's positional arguments."""
    if data:
        p.add_argument("data", metavar="DATA", help="the .data file (names=, and top= for a classifier)")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
    # default=[]: argparse then names only the arguments really missing
    p.add_argument("images", metavar="PATH", nargs="*", default=[], help=paths_help)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="darknetpy", description="Darknet (YOLOv2, YOLOv3, YOLO9000, Darknet-19) "
                                     "in Python, bit for bit")
    parser.add_argument("--version", action="version", version=f"darknetpy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("detect", help="detect objects like './darknet detect' (names chosen by class count)",
                       description="Detect objects like './darknet detect CFG WEIGHTS [IMAGE]': Darknet's lines on "
                                   "stdout, the boxes drawn into predictions.jpg. Names are chosen by class count "
                                   "(80: data/coco.names, 20: voc.names, 9418: 9k.names, 1000: imagenet), looked "
                                   "for in the working directory and beside the cfg.")
    _model_args(p, _PATHS_HELP)
    _detector_flags(p)
    _numerics_args(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("detector", help="'./darknet detector test|valid|recall|map|calc_anchors DATA ...'",
                       description="Darknet's detector verbs. Each takes the .data file "
                                   "(names=, valid=, train=, ...) first; 'darknetpy detector VERB --help' "
                                   "describes one.")
    actions = p.add_subparsers(dest="action", metavar="VERB")
    actions.required = True
    p = actions.add_parser("test", help="'./darknet detector test DATA CFG WEIGHTS [IMAGE]'",
                           description="Detect objects like './darknet detector test DATA CFG WEIGHTS [IMAGE]': the "
                                       "names from DATA's names= line.")
    _model_args(p, _PATHS_HELP, data=True)
    _detector_flags(p)
    _numerics_args(p)
    p.set_defaults(func=cmd_detector)
    _evaluation_parsers(actions)
    from .train.loop import add_classifier_train, add_detector_train

    add_detector_train(actions)

    p = sub.add_parser("classifier", help="'./darknet classifier predict|train DATA CFG WEIGHTS [IMAGE]'",
                       description="Darknet's classifier verbs: predict, train.")
    actions = p.add_subparsers(dest="action", metavar="VERB")
    actions.required = True
    p = actions.add_parser("predict", help="the top classes of each image",
                           description="The top classes of each input, as './darknet classifier predict DATA CFG "
                                       "WEIGHTS [IMAGE]': '%5.2f%%: NAME' lines on stdout (with several inputs "
                                       "each after 'PATH: '), 'PATH: Predicted in ...' on stderr.")
    _model_args(p, _PATHS_HELP, data=True)
    p.add_argument("-t", "--top", type=_positive, default=None, metavar="K",
                   help="how many classes to print (default: DATA's top=, else 1)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="JSON Lines, one object per image or video frame: path, width, height and top (label, "
                        "class_id, prob), or error; - for stdout, which then gets nothing else")
    _many_flags(p)
    _numerics_args(p)
    p.set_defaults(func=cmd_classifier)
    add_classifier_train(actions)

    from .download import MODELS

    p = sub.add_parser("download", help="fetch the official cfg, weights, names, tree and sample images",
                       description="Fetch the official cfg, weights, names, tree and sample images of the models "
                                   "into DEST's cfg/, weights/ and data/ (resumed, checked, renamed when complete).")
    p.add_argument("models", metavar="MODEL", nargs="+", choices=sorted(MODELS),
                   help=f"one or more of: {', '.join(sorted(MODELS))}")
    p.add_argument("--dest", default=".", help="folder that gets cfg/, weights/ and data/ (default: .)")
    p.add_argument("--mirror", default=None, help="a folder or URL laid out like DEST (default: $DARKNETPY_MIRROR, "
                                                  "else the official sources)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-compile", action="store_true",
                   help="do not compile the models' kernels (done by default while the weights download, so that "
                        "the first detect starts at once)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("summary", help="print Darknet's layer table for a cfg, with BFLOPs (--profile: and ms)",
                       description="Darknet's layer table for a cfg, with BFLOPs; --profile times each layer.")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None,
                   help="with --profile: the weights to time with (default: zeros)")
    p.add_argument("--profile", action="store_true", help="time each layer on a random input")
    p.add_argument("--repeat", type=_positive, default=3, help="--profile: timed passes per layer (3)")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet",
                   help="--profile: the numerics to time (see detect --help)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="--profile: CPU threads")
    p.add_argument("--gpu", "-i", type=int, default=None, metavar="N", dest="gpu", help="time on CUDA device N")
    p.add_argument("-nogpu", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("dump", help="run an image through the network and save every layer's output",
                       description="Run an image through the network and save every layer's output as "
                                   "DIR/layer_NNN.npy, the input as DIR/input.npy and an index, DIR/layers.json.")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
    p.add_argument("image", metavar="IMAGE", help="the image to run")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for input.npy, layer_NNN.npy, layers.json "
                                                                    "(earlier layer_NNN.npy files there are removed)")
    _numerics_args(p)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("dump-train", help="train K datums as the training kit does and write every tensor's SHA-256 "
                                          "per stage (stages.json), final.weights and lines.txt",
                       description="Train K datums from fixed inputs as Darknet's train_network does and write "
                                   "the SHA-256 of every layer's tensors at every stage (DIR/stages.json), the "
                                   "weights saved at the end (DIR/final.weights) and the printed lines "
                                   "(DIR/lines.txt), for diffing against your own Darknet build.")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file (its [net] training keys are used)")
    p.add_argument("weights", metavar="WEIGHTS", help="the starting .weights file")
    p.add_argument("--x", required=True, metavar="X.npy", help="the inputs: batch x subdivisions rows")
    p.add_argument("--y", required=True, metavar="Y.npy", help="the truths, one row per input")
    p.add_argument("--datums", type=_positive, default=1, metavar="K", help="datums to train (1)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for stages.json, final.weights, lines.txt")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet",
                   help="darknet: the stock -Ofast build; ieee: built without fast-math (the kit's O2); "
                        "fast: not bit-exact")
    p.add_argument("--compat", choices=("darknet-cpu",), default=None,
                   help="darknet-cpu: the stock CPU build (empty region backward, YOLO9000's NaN tree)")
    p.set_defaults(func=cmd_dump_train)

    p = sub.add_parser("dump-batch", help="one training-data loader call after srand(S): X.npy, y.npy, batch.json",
                       description="One call of Darknet's training-data loader after srand(S), run from the "
                                   "folder the list's paths are relative to: writes DIR/X.npy, DIR/y.npy and "
                                   "DIR/batch.json (the paths picked, rand() calls, the next rand()).")
    from .loader.dump import add_arguments as dump_batch_arguments

    dump_batch_arguments(p)
    p.set_defaults(func=cmd_dump_batch)

    p = sub.add_parser("export", help="write the network as an ONNX model, Darknet's semantics kept "
                                      "(--decode: boxes and scores)",
                       description="Write the network as an ONNX model that computes what Darknet computes "
                                   "(the output layer's output, or with --decode boxes, scores and objectness).")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
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

    p = sub.add_parser("compile", help="compile the kernels a model needs, once (the first run otherwise does it)",
                       description="Compile the Numba kernels that detect, detector test or classifier predict "
                                   "of each CFG needs (in --numerics) into Numba's cache, so that the first run "
                                   "starts at once instead of compiling (about half a minute on 2 cores).")
    p.add_argument("cfgs", metavar="CFG", nargs="+", help="the models' .cfg files")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet",
                   help="the numerics to compile for (see detect --help)")
    p.add_argument("--compat", choices=("darknet-cpu",), default=None,
                   help="YOLO9000's tree as the stock CPU build computes it (see detect --help)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line when done")
    p.add_argument("--part", choices=("pooled", "convolutions", "side"), help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_compile)

    from .train.partial import cmd_partial

    p = sub.add_parser("partial", help="'./darknet partial CFG WEIGHTS OUT N': the first N layers (seen = 0)",
                       description="Write the first N layers of WEIGHTS (read with CFG) as a new weights file, as "
                                   "'./darknet partial' does (e.g. darknet19_448.conv.23 to start detector training).")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", help="the .weights file to cut")
    p.add_argument("out", metavar="OUT", help="the new .weights file (written atomically)")
    p.add_argument("n", metavar="N", type=int, help="layers to keep, e.g. 23 for darknet19_448.conv.23")
    p.set_defaults(func=cmd_partial)
    return parser


def _evaluation_flags(p: argparse.ArgumentParser, batch: bool = True) -> None:
    p.add_argument("data", metavar="DATA", help="the .data file (valid=, names=, results=, eval=, map=)")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
    if batch:
        p.add_argument("--batch", "-batch", type=_positive, default=1, metavar="N",
                       help="images per Network.forward_batch call (side by side on a GPU)")
    p.add_argument("--loaders", type=_positive, default=2, metavar="N",
                   help="workers decoding images ahead of the network (2)")
    _numerics_args(p)


def _evaluation_parsers(actions) -> None:
    """`detector valid|recall|map|calc_anchors` (darknetpy/evaluate)."""
    p = actions.add_parser("valid", help="'./darknet detector valid': results files for every valid= image",
                           description="Darknet's validate_detector: every valid= image of DATA at thresh .005 "
                                       "and nms .45, the results into DATA's results= folder (comp4_det_test_"
                                       "<class>.txt, or with eval=coco coco_results.json).")
    _evaluation_flags(p)
    p.add_argument("-out", default=None, metavar="PREFIX",
                   help="file name prefix (comp4_det_test_; eval=coco: the file name, coco_results)")
    p.set_defaults(func=cmd_detector_valid)

    p = actions.add_parser("recall", help="'./darknet detector recall': proposals, IoU and recall per image",
                           description="Darknet's validate_detector_recall: for each valid= image of DATA the "
                                       "objects found, proposals, mean best IoU and recall, then a summary.")
    _evaluation_flags(p, batch=False)
    p.add_argument("--json", default=None, metavar="FILE", help="the totals and per-image numbers as JSON (- for stdout)")
    p.set_defaults(func=cmd_detector_recall)

    p = actions.add_parser("map", help="mean average precision on the valid= images (AlexeyAB's 'detector map')",
                           description="Per-class average precision and mAP on the valid= images of DATA against "
                                       "their label files (AlexeyAB's 'detector map'), with TP, FP, precision and "
                                       "recall at -thresh.")
    _evaluation_flags(p)
    p.add_argument("--iou", "-iou_thresh", type=float, default=0.5, metavar="T", help="IoU threshold (.5)")
    p.add_argument("--points", "-points", type=int, default=0, choices=(0, 11, 101),
                   help="0: area under the curve (VOC2010+, default); 11: VOC2007; 101: COCO mAP@[.5:.95] "
                        "(pycocotools)")
    p.add_argument("-thresh", type=float, default=0.25, help="confidence for the TP/FP, precision and recall (.25)")
    p.add_argument("--json", default=None, metavar="FILE", help="mAP, iou, points and per-class numbers as JSON "
                                                                 "(- for stdout)")
    p.set_defaults(func=cmd_detector_map)

    p = actions.add_parser("calc_anchors", help="anchors by k-means (1 - IoU) over the train= labels",
                           description="Anchors for -width x -height by k-means++ with distance 1 - IoU over every "
                                       "box of DATA's train= label files, for [region] (grid cells) and [yolo] "
                                       "(pixels).")
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
    _say(args, "\n".join(net.summary_lines()))
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


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None):
    """parse_args, but an unknown option is reported by the verb's own parser (its usage,
    not the top-level one) with the nearest option it has."""
    import difflib

    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    verb = _verb_parser(parser, args)
    known = [o for action in verb._actions for o in action.option_strings]
    hints = []
    for word in extra:
        near = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.6) if word.startswith("-") else []
        if near:
            hints.append(f"{word}: did you mean {near[0]}?")
    verb.error(f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else ""))


def _verb_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The sub-parser that parsed `args` (detect, detector test, ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                return _verb_parser(action.choices[name], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    _numba_without_scipy_linalg()
    from .kernel_cache import install_notice
    from .kernel_clock import install_clock

    install_notice()
    install_clock()
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
