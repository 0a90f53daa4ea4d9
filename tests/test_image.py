"""Image loading and Darknet's resize/letterbox arithmetic."""
import cv2
import numpy as np
import pytest

import kit
from darknetpy.errors import ImageError
from darknetpy.image import letterbox_image, letterbox_size, load_image_color, resize_image


def ref_resize(im, w, h):
    """Darknet's resize_image written with numpy float32 scalars, pixel by pixel."""
    f = np.float32
    c, ih, iw = im.shape
    part = np.zeros((c, ih, w), np.float32)
    ws = f(iw - 1) / f(w - 1) if w > 1 else f(0)
    hs = f(ih - 1) / f(h - 1) if h > 1 else f(0)
    for x in range(w):
        if x == w - 1 or iw == 1:
            part[:, :, x] = im[:, :, iw - 1]
        else:
            sx = f(x) * ws
            ix = int(sx)
            dx = sx - f(ix)
            part[:, :, x] = (f(1) - dx) * im[:, :, ix] + dx * im[:, :, ix + 1]
    out = np.zeros((c, h, w), np.float32)
    for r in range(h):
        sy = f(r) * hs
        iy = int(sy)
        dy = sy - f(iy)
        out[:, r] = (f(1) - dy) * part[:, iy]
        if r != h - 1 and ih != 1:
            out[:, r] = out[:, r] + dy * part[:, iy + 1]
    return out


@pytest.mark.parametrize("src,dst", [((3, 7, 5), (11, 4)), ((1, 1, 9), (4, 3)), ((2, 6, 1), (3, 9)),
                                     ((3, 23, 37), (416, 260))])
def test_resize_matches_darknet_formula(src, dst):
    im = np.random.default_rng(0).random(src, dtype=np.float32)
    got = resize_image(im, *dst)
    assert got.tobytes() == ref_resize(im, *dst).tobytes()


def test_letterbox_size_and_padding():
    assert letterbox_size(768, 576, 416, 416) == (416, 312)
    assert letterbox_size(37, 23, 128, 128) == (128, 79)
    im = np.ones((3, 23, 37), np.float32)
    boxed = letterbox_image(im, 128, 128)
    assert boxed.shape == (3, 128, 128)
    assert np.all(boxed[:, :24] == 0.5) and np.all(boxed[:, 103:] == 0.5)
    # Darknet's (1-dy)*a + dy*a is not always a: the pasted rows are only close to 1
    assert np.all(np.abs(boxed[:, 24:24 + 79] - 1) < 1e-5)


def test_gray_and_rgba_become_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    im = load_image_color(tmp_path / "g.png")
    assert im.shape == (3, 3, 4) and np.all(im[0] == im[1]) and np.all(im[1] == im[2])
    assert im[0, 1, 1] == np.float32(100 / 255.0)
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 7
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    im = load_image_color(tmp_path / "a.png")
    assert im.shape == (3, 2, 2)
    assert im[0, 0, 0] == np.float32(200 / 255.0) and im[2, 0, 0] == np.float32(10 / 255.0)


@pytest.mark.parametrize("content,reason", [(None, "cannot read image"), (b"", "empty file"),
                                            (b"not an image at all", "not an image")])
def test_bad_images_raise_image_error(tmp_path, content, reason):
    p = tmp_path / "x.png"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        load_image_color(p)
    with pytest.raises(ImageError, match="is a directory"):
        load_image_color(tmp_path)


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_every_kit_image_float_and_input_hash():
    checked = set()
    for c in kit.cases():
        r = c["results"]["stock"]
        key = (c["image"], r["net"]["w"], r["net"]["h"])
        if key in checked:
            continue
        checked.add(key)
        im = load_image_color(kit.image_path(c))
        assert kit.sha256_f32(im) == r["image_float"]["sha256"], c["id"]
        x = letterbox_image(im, r["net"]["w"], r["net"]["h"])
        assert kit.sha256_f32(x) == r["input"]["sha256"], c["id"]
