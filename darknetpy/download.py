"""`darknetpy download MODEL...`: the official cfg, weights and data files of Darknet's models.

    paths = download(["yolov2", "yolo9000"], dest=".")

Each model brings its cfg into DEST/cfg/, its weights into DEST/weights/, its .data file
into DEST/cfg/ (as in Darknet's tree) and the files that .data file and the cfg name
(names, labels, tree, map) into DEST/data/; every call also brings the two sample images
data/dog.jpg and data/horses.jpg. A file is fetched once per call whichever models need it.

Sources (the URL templates are `WEIGHTS_URL` and `TREE_URL` below):

- weights: https://pjreddie.com/media/files/<name>.weights
- everything else: https://raw.githubusercontent.com/pjreddie/darknet/master/<path>,
  e.g. cfg/yolov2.cfg, data/9k.tree

A mirror (the `mirror` argument, else the environment variable DARKNETPY_MIRROR) replaces
both: a local folder, or an http://, https:// or file:// base URL, laid out like DEST:

    MIRROR/weights/yolov2.weights      (every weights file under weights/)
    MIRROR/cfg/yolov2.cfg              (Darknet's tree: cfg/..., data/...)
    MIRROR/cfg/coco.data
    MIRROR/data/coco.names

so a folder filled by one `darknetpy download` serves as the mirror of another.

Transfer: in chunks, into NAME.part beside the final file; an existing NAME.part is
continued (an HTTP Range request, or a seek in a local mirror); the finished file is
checked (size and SHA-256, where the catalogue knows them) and renamed onto its final
name with os.replace, so no file is ever left under its final name half written or
failing its check. A file already present under its final name is skipped (when it
passes the check, where one is known; one that fails a known check is removed and
fetched again). Every failure is a DarknetError with one line naming the URL (or the
mirror's path) and the reason; NAME.part stays for a later resume, except after a size
or SHA-256 mismatch, when it is deleted.

Checksums: the catalogue's `size` and `sha256` fields are all None. pjreddie's files
were published without checksums, and none is invented here; so the official files are
checked only against the length the server announces. The checking code is exercised by
the tests with a catalogue whose files have known hashes.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable, TextIO

from .errors import DarknetError

WEIGHTS_URL = "https://pjreddie.com/media/files/{name}"
TREE_URL = "https://raw.githubusercontent.com/pjreddie/darknet/master/{path}"
MIRROR_ENV = "DARKNETPY_MIRROR"

CHUNK = 1 << 20          # bytes read and written at a time
CHUNK_REPORT = 1 << 20   # plain percentage lines (no terminal) only for files at least this big
TIMEOUT = 60.0           # seconds without data before an HTTP transfer fails
USER_AGENT = "darknetpy-download/0.1"


@dataclass(frozen=True)
class FileSpec:
    """One file: its path relative to DEST (and to a mirror), and its check where known."""

    path: str                      # "cfg/yolov2.cfg", "data/9k.tree", "weights/yolov2.weights"
    size: int | None = None        # bytes, where known (None for every official file)
    sha256: str | None = None      # lower-case hex, where known (None for every official file)

    def official_url(self) -> str:
        if self.path.startswith("weights/"):
            return WEIGHTS_URL.format(name=self.path[len("weights/"):])
        return TREE_URL.format(path=self.path)


@dataclass(frozen=True)
class Model:
    name: str
    files: tuple[FileSpec, ...]    # cfg, .data, data files, weights


def _model(name: str, data: str, *data_files: str, cfg: str | None = None) -> Model:
    files = [FileSpec(f"cfg/{cfg or name}.cfg"), FileSpec(f"cfg/{data}")]
    files += [FileSpec(f"data/{f}") for f in data_files]
    files.append(FileSpec(f"weights/{name}.weights"))
    return Model(name, tuple(files))


_COCO = ("coco.data", "coco.names")
_VOC = ("voc.data", "voc.names")
_IMAGENET = ("imagenet1k.data", "imagenet.shortnames.list", "imagenet.labels.list")

#: The catalogue. The data files are those that the cfg (tree=, map=) and its .data file
#: (names=, labels=, map=) name in Darknet's tree.
MODELS: dict[str, Model] = {m.name: m for m in (
    _model("yolov2", *_COCO),
    _model("yolov2-tiny", *_COCO),
    _model("yolov2-voc", *_VOC),
    _model("yolov2-tiny-voc", *_VOC),
    _model("yolo9000", "combine9k.data", "9k.names", "9k.labels", "9k.tree", "coco9k.map", "inet9k.map"),
    _model("darknet19", *_IMAGENET),
    _model("darknet19_448", *_IMAGENET),
    _model("yolov3", *_COCO),
    _model("yolov3-tiny", *_COCO),
    _model("yolov3-spp", *_COCO),
    _model("yolov3-voc", *_VOC),
    _model("darknet53", *_IMAGENET),
    # the first 75 layers of darknet53.weights, the backbone `detector train` starts YOLOv3 from
    Model("darknet53.conv.74", (FileSpec("cfg/darknet53.cfg"), FileSpec("weights/darknet53.conv.74"))),
    _model("resnet50", *_IMAGENET),
)}

#: Fetched by every call, whatever the models.
SAMPLES: tuple[FileSpec, ...] = (FileSpec("data/dog.jpg"), FileSpec("data/horses.jpg"))


@dataclass(frozen=True)
class Item:
    """One transfer: where from (a URL or a local path), where to, and the check."""

    source: str
    path: str
    size: int | None = None
    sha256: str | None = None


# ----------------------------------------------------------------------------- planning

def resolve_mirror(mirror: str | None = None) -> tuple[str, str] | None:
    """("url", base) or ("dir", folder) for a mirror; None for the official sources.

    `mirror` None means the environment variable DARKNETPY_MIRROR; an empty string (in the
    argument or the variable) means the official sources.
    """
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV, "")
    if not mirror:
        return None
    if "://" in mirror:
        parts = urllib.parse.urlsplit(mirror)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not parts.netloc:
                raise DarknetError(f"mirror {mirror}: no host in the URL")
            return "url", mirror.rstrip("/")
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise DarknetError(f"mirror {mirror}: a file:// URL must name a local path")
            mirror = urllib.request.url2pathname(parts.path)
        else:
            raise DarknetError(f"mirror {mirror}: use a folder or an http://, https:// or file:// URL")
    if not os.path.isdir(mirror):
        raise DarknetError(f"mirror {mirror}: no such folder")
    return "dir", mirror


def _source(spec: FileSpec, mirror: tuple[str, str] | None) -> str:
    if mirror is None:
        return spec.official_url()
    kind, base = mirror
    if kind == "url":
        return base + "/" + urllib.parse.quote(spec.path)
    return os.path.join(base, *spec.path.split("/"))


def model_files(models: Iterable[str], catalogue: dict[str, Model] | None = None,
                samples: tuple[FileSpec, ...] | None = None) -> list[FileSpec]:
    """The files the models need, each once: small files first (cfg, data, images), weights last."""
    catalogue = MODELS if catalogue is None else catalogue
    samples = SAMPLES if samples is None else samples
    models = list(models)
    if not models:
        raise DarknetError(f"name a model to download: {', '.join(catalogue)}")
    specs: dict[str, FileSpec] = {}
    for name in models:
        if name not in catalogue:
            raise DarknetError(f"unknown model {name!r}: choose from {', '.join(catalogue)}")
        for spec in catalogue[name].files:
            specs.setdefault(spec.path, spec)
    for spec in samples:
        specs.setdefault(spec.path, spec)
    return sorted(specs.values(), key=lambda s: s.path.startswith("weights/"))


def plan(models: Iterable[str], dest: str = ".", mirror: str | None = None,
         catalogue: dict[str, Model] | None = None) -> list[Item]:
    """What `download` would fetch, from where to where; reaches no network and writes nothing."""
    where = resolve_mirror(mirror)
    return [Item(_source(s, where), os.path.normpath(os.path.join(dest, *s.path.split("/"))), s.size, s.sha256)
            for s in model_files(models, catalogue)]


# ----------------------------------------------------------------------------- transfer

def download(models: list[str], dest: str = ".", mirror: str | None = None, progress: bool = True,
             out: TextIO | None = None, catalogue: dict[str, Model] | None = None,
             before_weights: Callable[[list[str]], None] | None = None) -> list[str]:
    """Fetch every file the models need into DEST; return the paths written (skipped ones excluded).

    mirror: a folder or base URL laid out like DEST (see the module's doc); None reads
    DARKNETPY_MIRROR; "" forces the official sources. progress: report on `out` (default:
    sys.stderr at call time), with a bar when `out` is a terminal, plain lines otherwise.
    catalogue: replaces MODELS (the tests give one with known checksums).
    before_weights: called with the paths of the cfg files once every file but the
    weights is in place (the CLI starts compiling the kernels then, while the weights
    download). Stops at the first failure with a one-line DarknetError, leaving no folder
    it created empty.
    """
    items = plan(models, dest, mirror, catalogue)
    written = []
    created: list[str] = []
    cfgs = [item.path for item in items if item.path.endswith(".cfg")]
    try:
        for item in items:
            if before_weights is not None and item.path.endswith(".weights"):
                before_weights(cfgs)
                before_weights = None
            created += _missing_folders(os.path.dirname(item.path))
            if fetch(item.source, item.path, size=item.size, sha256=item.sha256, progress=progress, out=out):
                written.append(item.path)
    except BaseException:
        _remove_empty(created)
        raise
    if before_weights is not None:
        before_weights(cfgs)
    return written


def _missing_folders(folder: str) -> list[str]:
    """The folders that creating `folder` would create, outermost first."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing[::-1]


def _remove_empty(folders: list[str]) -> None:
    """After a failure: remove the folders this run created that are still empty (a
    partial download keeps its folder, for resuming), innermost first."""
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:  # not empty, or already gone
            pass


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _mismatch(path: str, size: int | None, sha256: str | None) -> str | None:
    """Why the file fails its check, or None when it passes (or nothing is known)."""
    actual = os.path.getsize(path)
    if size is not None and actual != size:
        return f"size mismatch: {actual} bytes, expected {size}"
    if sha256 is not None:
        digest = sha256_file(path)
        if digest != sha256.lower():
            return f"SHA-256 mismatch: {digest}, expected {sha256.lower()}"
    return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fetch(source: str, path: str, size: int | None = None, sha256: str | None = None,
          progress: bool = True, out: TextIO | None = None) -> bool:
    """Bring `source` (an http(s) URL or a local file) to `path`; True if written, False if skipped."""
    out = sys.stderr if out is None else out
    say = (lambda line: print(line, file=out, flush=True)) if progress else (lambda line: None)
    try:
        if os.path.isfile(path):
            why = _mismatch(path, size, sha256)
            if why is None:
                say(f"skip {path}: present" + (" and checked" if size is not None or sha256 else ""))
                return False
            say(f"{path}: {why}; fetching it again")
            os.unlink(path)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        part = path + ".part"
        offset = os.path.getsize(part) if os.path.isfile(part) else 0
        if size is not None and offset > size:
            _unlink(part)
            offset = 0
        if size is None or offset < size:
            say(f"get {source}" + (f" (resuming at {offset} bytes)" if offset else "") + f" -> {path}")
            bar = _Progress(os.path.basename(path), out, progress)
            try:
                if _is_url(source):
                    _copy_http(source, part, offset, bar)
                else:
                    _copy_local(source, part, offset, bar)
            finally:
                bar.finish()                      # end the bar's line, even on failure
        why = _mismatch(part, size, sha256)
        if why is not None:
            _unlink(part)
            raise DarknetError(f"{source}: {why}")
        os.replace(part, path)
    except OSError as e:
        raise DarknetError(f"{path}: cannot write: {e.strerror or e}") from None
    say(f"saved {path} ({os.path.getsize(path)} bytes)")
    return True


def _copy_local(source: str, part: str, offset: int, bar: "_Progress") -> None:
    try:
        src = open(source, "rb")
    except FileNotFoundError:
        raise DarknetError(f"{source}: not in the mirror (no such file)") from None
    except OSError as e:
        raise DarknetError(f"{source}: cannot read: {e.strerror or e}") from None
    with src:
        total = os.fstat(src.fileno()).st_size
        if offset > total:       # a .part longer than the source: not a prefix of it
            offset = 0
        src.seek(offset)
        with open(part, "ab" if offset else "wb") as dst:
            bar.start(offset, total)
            done = offset
            while True:
                try:
                    block = src.read(CHUNK)
                except OSError as e:
                    raise DarknetError(f"{source}: cannot read: {e.strerror or e}") from None
                if not block:
                    break
                dst.write(block)
                done += len(block)
                bar.update(done)
            dst.flush()
            os.fsync(dst.fileno())
    if done != total:
        raise DarknetError(f"{source}: read {done} of {total} bytes (file changed while copying?)")


def _open_http(url: str, offset: int):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)


def _connection_error(url: str, e: BaseException) -> DarknetError:
    if isinstance(e, urllib.error.HTTPError):
        return DarknetError(f"{url}: HTTP {e.code} {e.reason}")
    if isinstance(e, urllib.error.URLError):
        reason = e.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return DarknetError(f"{url}: connection timed out")
        return DarknetError(f"{url}: cannot connect: {getattr(reason, 'strerror', None) or reason}")
    if isinstance(e, (TimeoutError, socket.timeout)):
        return DarknetError(f"{url}: connection timed out")
    return DarknetError(f"{url}: connection failed: {getattr(e, 'strerror', None) or e or type(e).__name__}")


def _range_total(content_range: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from 'bytes A-B/T' or 'bytes */T'; None where absent or unknown."""
    if not content_range:
        return None, None
    try:
        unit, rest = content_range.strip().split(None, 1)
        span, total = rest.split("/", 1)
        first = None if span.strip() == "*" else int(span.split("-", 1)[0])
        return first, None if total.strip() == "*" else int(total)
    except ValueError:
        return None, None


def _copy_http(url: str, part: str, offset: int, bar: "_Progress") -> None:
    while True:
        try:
            resp = _open_http(url, offset)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:         # the range starts at or past the end
                _, total = _range_total(e.headers.get("Content-Range"))
                e.close()
                if total == offset:              # the .part is the whole file already
                    return
                _unlink(part)                    # not a prefix of this file: start over
                offset = 0
                continue
            e.close()
            raise _connection_error(url, e) from None
        except (OSError, http.client.HTTPException) as e:
            raise _connection_error(url, e) from None
        with resp:
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.strip().isdigit() else None
            if offset and resp.status == 206:
                first, total = _range_total(resp.headers.get("Content-Range"))
                if first != offset:              # not the range asked for: start over
                    _unlink(part)
                    offset = 0
                    continue
                if total is None and length is not None:
                    total = offset + length
            elif resp.status in (200, 203) or (resp.status == 206 and not offset):
                offset = 0                       # the server ignored the range: the whole file
                total = length
                if resp.status == 206:
                    first, total = _range_total(resp.headers.get("Content-Range"))
                    if first not in (0, None):
                        raise DarknetError(f"{url}: unexpected partial answer ({resp.headers.get('Content-Range')})")
            else:
                raise DarknetError(f"{url}: HTTP {resp.status} {resp.reason}")
            done = offset
            with open(part, "ab" if offset else "wb") as dst:
                bar.start(offset, total)
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise DarknetError(f"{url}: connection lost after {done} of "
                                           f"{total if total is not None else '?'} bytes: "
                                           f"{getattr(e, 'strerror', None) or e or type(e).__name__}") from None
                    if not block:
                        break
                    dst.write(block)
                    done += len(block)
                    bar.update(done)
                dst.flush()
                os.fsync(dst.fileno())
            if total is not None and done != total:
                raise DarknetError(f"{url}: connection closed after {done} of {total} bytes")
            return


class _Progress:
    """A bar on a terminal; a line per 10% on anything else (files of 1 MiB or more); or nothing."""

    def __init__(self, label: str, out: TextIO, enabled: bool):
        self.label, self.out, self.enabled = label, out, enabled
        try:
            self.tty = enabled and out.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.total = None
        self.shown = -1
        self.last = 0.0
        self.done = 0
        self.started = False

    def start(self, offset: int, total: int | None) -> None:
        self.total, self.done, self.started = total, offset, True
        self.shown = self._tenth(offset)
        self.last = 0.0
        self._draw(force=True)

    def _tenth(self, done: int) -> int:
        return done * 10 // self.total if self.total else -1

    def update(self, done: int) -> None:
        self.done = done
        self._draw()

    def finish(self) -> None:
        if self.tty and self.started:
            self._draw(force=True)
            self.out.write("\n")
            self.out.flush()
            self.tty = False                      # one newline even if finish is called twice

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if not force and now - self.last < 0.1:
                return
            self.last = now
            mb = self.done / 1e6
            if self.total:
                frac = min(self.done / self.total, 1.0)
                fill = int(frac * 30)
                text = f"\r  {self.label} [{'#' * fill}{'.' * (30 - fill)}] {frac * 100:5.1f}% " \
                       f"{mb:.1f}/{self.total / 1e6:.1f} MB"
            else:
                text = f"\r  {self.label} {mb:.1f} MB"
            self.out.write(text)
            self.out.flush()
        elif self.total and self.total >= CHUNK_REPORT:
            tenth = self._tenth(self.done)
            if tenth > self.shown:
                self.shown = tenth
                print(f"  {self.label}: {min(tenth * 10, 100)}%", file=self.out, flush=True)


__all__ = ["MODELS", "SAMPLES", "FileSpec", "Model", "Item", "WEIGHTS_URL", "TREE_URL", "MIRROR_ENV",
           "download", "fetch", "plan", "model_files", "resolve_mirror", "sha256_file"]
