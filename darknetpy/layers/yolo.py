"""[yolo]: YOLOv3's detection layer. Its forward pass is the logistic (glibc's double exp)
of x, y, objectness and every class of each anchor, w and h left raw: what the region
layer computes with coords=4, no softmax and no tree, so it runs the same kernel."""
import numpy as np

from ..cfg import atof, atoi
from .base import Layer
from .paths import read_map, resolve


class Yolo(Layer):
    type = "yolo"
    writes_output = True
    coords = 4

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        s = section
        self.classes = s.get_int("classes", 20)
        self.total = self.positive("num", 1)
        if self.classes < 0:
            raise self.error(f"classes={self.classes} must not be negative", "classes")
        mask = s.get_list("mask", atoi)
        self.mask = list(range(self.total)) if mask is None else mask
        self.num = len(self.mask)
        for m in self.mask:
            if not 0 <= m < self.total:
                raise self.error(f"mask names anchor {m}, but num={self.total} anchors exist", "mask")
        if c != self.num * (self.classes + 5):
            raise self.error(f"(classes={self.classes} + 5) x {self.num} masked anchors = "
                             f"{self.num * (self.classes + 5)} channels expected, the input has {c}", "classes")
        for key in ("max", "random"):
            s.get_int(key, 0)
        for key, default in (("jitter", .2), ("ignore_thresh", .5), ("truth_thresh", 1)):
            setattr(self, key, s.get_float(key, default))
        map_path = resolve(s, "map")
        self.map = read_map(map_path) if map_path else None
        self.biases = np.full(2 * self.total, 0.5, np.float32)
        anchors = s.get_list("anchors", atof)
        if anchors is not None:
            if len(anchors) > 2 * self.total:
                raise self.error(f"{len(anchors)} anchor values for num={self.total} (at most {2 * self.total})",
                                 "anchors")
            self.biases[:len(anchors)] = anchors

    def summary(self):
        return "yolo"

    def forward(self, step):
        n = step.numerics
        return step.kernels.region(step.x, self.num, self.classes, self.coords, False, False, None, False, n.vector,
                                   n.ftz, step.out)
