"""Images as Darknet sees them: `load_image_color`, `resize_image`, `letterbox_image`.

An image is float32 (c, h, w), values `(float)(u8 / 255.)`. PNG and other formats are
decoded by OpenCV; JPEG by default with darknetpy's port of stb_image's decoder (the
one Darknet uses), because libjpeg's output differs from stb's by a few levels.
Resizing is Darknet's own bilinear arithmetic in float32, not OpenCV's.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit

from .memory import available_memory
from .errors import ImageError, ImageNotFoundError

DECODERS = ("stb", "opencv")


def read_bytes(path: str) -> bytes:
    """An image file's bytes, or one ImageError line naming the path."""
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise ImageNotFoundError(f"{path}: cannot read image: {e.strerror}", path) from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read image: {e.strerror}") from None
    if not data:
        raise ImageError(f"{path}: empty file, not an image")
    return data


def _check_memory(w: int, h: int, path: str) -> None:
    """A small file can hold a huge image (a PNG of zeros: zlib packs 1000:1): refuse one
    whose RGB and float32 copies cannot fit, rather than fail in the allocator or be killed."""
    need = h * w * 3 * 5
    if need > available_memory():
        raise ImageError(f"{path}: a {w}x{h} image needs {need / 2**20:.0f} MiB as RGB and float32, more than "
                         f"the memory available")


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_chunks_fit(data: bytes, path: str) -> None:
    """Every PNG chunk must end inside the file. OpenCV allocates (and zeroes) a chunk's
    declared length before reading it: a 68-byte file declaring a 4 GB IDAT took 4 GB and
    17 s before failing."""
    pos = len(_PNG)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            raise ImageError(f"{path}: corrupt PNG: chunk {kind!r} of {length} bytes runs past the end of the "
                             f"{len(data)}-byte file")
        if kind == b"IEND":
            return
        pos += 12 + length


def _jpeg_frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF marker, or None where the markers end first."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            return None
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def _jpeg_fits_its_data(data: bytes, path: str) -> None:
    """stb's work guard (jpeg.py) for libjpeg too: libjpeg pads a cut-short scan with gray,
    so a 631-byte JPEG declaring 16384x16384 decoded to 768 MB. A valid JPEG spends at
    least a bit per 8x8 block; more than 64 blocks per byte of file is corrupt."""
    size = _jpeg_frame_size(data)
    if size is not None:
        w, h = size
        blocks = ((w + 7) // 8) * ((h + 7) // 8)
        if blocks > 64 * len(data) + 65536:
            raise ImageError(f"{path}: corrupt JPEG: a {w}x{h} frame is far too large for {len(data)} bytes of data")


def _opencv_decode(data: bytes, path: str) -> np.ndarray:
    import cv2

    if data.startswith(_PNG):
        _png_chunks_fit(data, path)
    elif data[:2] == b"\xff\xd8":
        _jpeg_fits_its_data(data, path)

    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # a failure is our one error line, not OpenCV's log lines
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # OpenCV asserts on header sizes over its limits, among others
        reason = str(e).strip().splitlines()[0].rpartition("error: ")[2]
        raise ImageError(f"{path}: not an image OpenCV can decode ({reason})") from None
    finally:
        logging.setLogLevel(level)
    if pixels is None or pixels.size == 0:
        raise ImageError(f"{path}: not an image OpenCV can decode")
    _check_memory(pixels.shape[1], pixels.shape[0], path)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise ImageError(f"{path}: unsupported pixel type {pixels.dtype}")
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    channels = pixels.shape[2]
    if channels in (1, 2):
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, 2::-1])


def decode_rgb(data: bytes, path: str = "<bytes>", decoder: str = "stb") -> np.ndarray:
    """Bytes -> uint8 (h, w, 3) RGB, gray replicated and alpha dropped as stb_image does."""
    if decoder not in DECODERS:
        raise ImageError(f"unknown JPEG decoder {decoder!r} (choose from {', '.join(DECODERS)})")
    from .jpeg import decode_jpeg, is_jpeg

    if decoder == "stb" and is_jpeg(data):
        try:
            pixels = decode_jpeg(data)
        except ImageError as e:
            raise ImageError(f"{path}: {e}") from None
        _check_memory(pixels.shape[1], pixels.shape[0], path)
        return pixels
    return _opencv_decode(data, path)


def to_float_chw(pixels: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) -> float32 (3, h, w) with Darknet's `(float)(u8 / 255.)`.

    The lookup reads the pixels transposed, so the float image is built once, in place
    (no (h, w, 3) float intermediate: a large image needs half the memory)."""
    scale = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
    return np.ascontiguousarray(scale[np.asarray(pixels).transpose(2, 0, 1)])


def load_image_color(path: str | os.PathLike, decoder: str = "stb") -> np.ndarray:
    """Darknet's `load_image_color(path, 0, 0)`: float32 (3, h, w)."""
    path = os.fspath(path)
    return to_float_chw(decode_rgb(read_bytes(path), path, decoder))


@njit(cache=True, fastmath=False, error_model="numpy")
def _resize_kernel(im, w, h):
    c, ih, iw = im.shape
    part = np.empty((c, ih, w), np.float32)
    out = np.empty((c, h, w), np.float32)
    one = np.float32(1.0)
    w_scale = np.float32(iw - 1) / np.float32(w - 1) if w > 1 else np.float32(0.0)
    h_scale = np.float32(ih - 1) / np.float32(h - 1) if h > 1 else np.float32(0.0)
    for k in range(c):
        for r in range(ih):
            for x in range(w):
                if x == w - 1 or iw == 1:
                    part[k, r, x] = im[k, r, iw - 1]
                else:
                    sx = np.float32(x) * w_scale
                    ix = int(sx)
                    dx = sx - np.float32(ix)
                    part[k, r, x] = (one - dx) * im[k, r, ix] + dx * im[k, r, ix + 1]
    for k in range(c):
        for r in range(h):
            sy = np.float32(r) * h_scale
            iy = int(sy)
            dy = sy - np.float32(iy)
            for x in range(w):
                out[k, r, x] = (one - dy) * part[k, iy, x]
            if r == h - 1 or ih == 1:
                continue
            for x in range(w):
                out[k, r, x] = out[k, r, x] + dy * part[k, iy + 1, x]
    return out


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's `resize_image`: horizontal pass, then vertical, all in float32.

    Darknet divides by zero when the target is 1 pixel wide or high; here the scale is
    then 0, which is what Darknet's 1-pixel source branches compute.
    """
    if w < 1 or h < 1:
        raise ImageError(f"cannot resize an image to {w}x{h}")
    return _resize_kernel(np.ascontiguousarray(im, np.float32), int(w), int(h))


def letterbox_size(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """The size the image is resized to inside a w x h letterbox (C integer division)."""
    if np.float32(w) / np.float32(im_w) < np.float32(h) / np.float32(im_h):
        return w, max((im_h * w) // im_w, 1)
    return max((im_w * h) // im_h, 1), h


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's `letterbox_image`: keep the aspect ratio, pad with 0.5, centre."""
    c, im_h, im_w = im.shape
    new_w, new_h = letterbox_size(im_w, im_h, w, h)
    resized = resize_image(im, new_w, new_h)
    boxed = np.full((c, h, w), 0.5, np.float32)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    boxed[:, dy:dy + new_h, dx:dx + new_w] = resized
    return boxed
