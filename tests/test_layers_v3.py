"""YOLOv3's sections ([shortcut], [upsample], [yolo], multi-input [route]) in the cfg:
Darknet's summary lines, and one clear line (exit 2) for each section a user can get wrong.
"""
import subprocess
import sys

import numpy as np
import pytest

import kit
from darknetpy import load
from darknetpy.errors import CfgError

HEAD = "[net]\nwidth=16\nheight=16\nchannels=3\n"
CONV = "[convolutional]\nfilters={f}\nsize=1\nstride={s}\nactivation=leaky\n"


def run(*args):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def write(tmp_path, text):
    p = tmp_path / "n.cfg"
    p.write_text(text if text.startswith("[net]") else HEAD + text)
    return p


GOOD = (CONV.format(f=8, s=1) + CONV.format(f=8, s=1) + "[shortcut]\nfrom=-2\nactivation=linear\n"
        + CONV.format(f=4, s=2) + "[upsample]\nstride=2\n" + "[route]\nlayers=-1,2\n"
        + CONV.format(f=14, s=1) + "[yolo]\nmask=1,0\nanchors=10,13, 16,30, 33,23\nclasses=2\nnum=3\n")


def test_summary_lines_are_darknets(tmp_path):
    r = run("summary", write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # make_shortcut_layer, make_upsample_layer, make_route_layer, make_yolo_layer's fprintf
    assert lines[3] == "    2 res    0                  16 x  16 x   8   ->    16 x  16 x   8"
    assert lines[5] == "    4 upsample            2x     8 x   8 x   4   ->    16 x  16 x   4"
    assert lines[6] == "    5 route  4 2"
    assert lines[8] == "    7 yolo"


def test_a_yolo_network_detects_with_every_yolo_layer(tmp_path):
    net = load(str(write(tmp_path, GOOD)))
    assert [layer.type for layer in net.model.detection_layers] == ["yolo"]
    assert net.classes == 2
    outs = net.forward_detection(np.zeros((3, 16, 16), np.float32))
    assert [o.shape for o in outs] == [(14, 16, 16)]
    # zero weights: every logistic is 0.5, objectness 0.5 > .25 for every cell and anchor
    dets = net.detections(outs, 16, 16, thresh=0.25, nms=0, printed_only=False)
    assert len(dets) == 16 * 16 * 2 and [d.index for d in dets] == list(range(len(dets)))


@pytest.mark.parametrize("text, words", [
    (CONV.format(f=8, s=1) + "[shortcut]\nfrom=-5\n", ["n.cfg:", "from=-5 refers to layer -4"]),
    (CONV.format(f=8, s=1) + "[shortcut]\nfrom=3\n", ["from=3 refers to layer 3, which is not an earlier layer"]),
    (CONV.format(f=8, s=1) + "[shortcut]\n", ["must name the layer it adds (from=...)"]),
    ("[net]\nwidth=9\nheight=8\nchannels=3\n" + CONV.format(f=8, s=1) + CONV.format(f=8, s=2)
     + "[shortcut]\nfrom=0\n", ["layer 0 outputs 9x8, this layer's input is 5x4", "must scale alike"]),
    (CONV.format(f=8, s=1) + "[upsample]\nstride=0\n", ["stride=0 must be at least 1"]),
    (CONV.format(f=8, s=1) + "[upsample]\nstride=-2\n", ["stride=-2 must be at least 1"]),
    (CONV.format(f=14, s=1) + "[yolo]\nmask=1,5\nclasses=2\nnum=3\n", ["mask names anchor 5, but num=3"]),
    (CONV.format(f=15, s=1) + "[yolo]\nmask=1,0\nclasses=2\nnum=3\n", ["14 channels expected, the input has 15"]),
    (CONV.format(f=14, s=1) + "[yolo]\nmask=0,1\nclasses=2\nnum=2\nanchors=1,2,3,4,5,6\n",
     ["6 anchor values for num=2"]),
])
def test_bad_sections_give_one_line_and_exit_2(tmp_path, text, words):
    cfg = write(tmp_path, text)
    r = run("summary", cfg)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert all(w in lines[0] for w in words), lines[0]
    with pytest.raises(CfgError):
        load(str(cfg))


@pytest.mark.skipif(not kit.V3.available(), reason=kit.V3.MISSING)
def test_summary_of_yolov3_spp():
    r = run("summary", kit.V3.cfg_path("yolov3-spp-320"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1 + 83] == "   83 route  82 80 78 77"
    assert lines[1 + 80] == "   80 max          9 x 9 / 1    10 x  10 x 512   ->    10 x  10 x 512"
    assert sum(line.endswith(" yolo") for line in lines) == 3


def test_detection_layers_that_disagree_on_classes_are_one_clear_error(tmp_path):
    text = (CONV.format(f=14, s=1) + "[yolo]\nmask=1,0\nclasses=2\nnum=3\n"
            + "[route]\nlayers=-2\n" + CONV.format(f=16, s=1) + "[yolo]\nmask=0,1\nclasses=3\nnum=3\n")
    cfg = write(tmp_path, text)
    assert run("summary", cfg).returncode == 0          # a forward pass is fine; decoding is not
    net = load(str(cfg))
    with pytest.raises(CfgError, match=r"n.cfg:\d+: layer 1 \(yolo\) has classes=2, the last detection layer 4"):
        net.detections(net.forward_detection(np.zeros((3, 16, 16), np.float32)), 16, 16)
