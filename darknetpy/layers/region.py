"""[region]: YOLOv2's output layer (logistic boxes and objectness, softmax or tree classes).

YOLO9000's WordNet tree softmax: Darknet's GPU build computes, for every anchor and
cell, one softmax per tree group over that group's class entries; that is what this
layer computes by default. Darknet's CPU build (`compat="darknet-cpu"`) gets it wrong
in two ways: it offsets each group by its class index instead of index * cells, so the
groups it normalises are strided slices running across anchors and entries, overlapping
one another; and it divides by `temperature`, which `parse_region` never sets (0), so
every group it touches becomes NaN. The result: NaN over anchor 0's boxes, objectness
and first ~460 classes, raw logits in every other class entry.
"""
import numpy as np

from ..cfg import atof
from ..tree import read_tree
from .base import Layer
from .paths import read_map, resolve

COMPAT = (None, "darknet-cpu")


class Region(Layer):
    type = "region"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        s = section
        c, h, w = self.in_shape
        self.coords = s.get_int("coords", 4)
        self.classes = s.get_int("classes", 20)
        self.num = self.positive("num", 1)
        if self.coords < 0 or self.classes < 0:
            raise self.error("coords and classes must not be negative")
        entries = self.classes + self.coords + 1
        if h * w * self.num * entries != self.inputs:
            raise self.error(f"num={self.num} x (classes={self.classes} + coords={self.coords} + 1) = "
                             f"{self.num * entries} channels expected, the input has {c}")
        for key in ("log", "sqrt", "max", "rescore", "classfix", "absolute", "random", "bias_match"):
            s.get_int(key, 0)
        for key in ("jitter", "thresh", "coord_scale", "object_scale", "noobject_scale", "mask_scale",
                    "class_scale"):
            s.get_float(key, 0)
        self.softmax = s.get_int("softmax", 0) != 0
        self.background = s.get_int("background", 0) != 0
        tree_path = resolve(s, "tree")
        self.tree = read_tree(tree_path) if tree_path else None
        if self.tree is not None and self.tree.n != self.classes:
            raise self.error(f"tree {tree_path} has {self.tree.n} classes, classes={self.classes}", "tree")
        map_path = resolve(s, "map")
        self.map = read_map(map_path) if map_path else None
        self.biases = np.full(2 * self.num, 0.5, np.float32)
        anchors = s.get_list("anchors", atof)
        if anchors is not None:
            if len(anchors) > 2 * self.num:
                raise self.error(f"{len(anchors)} anchor values for num={self.num} (at most {2 * self.num})",
                                 "anchors")
            self.biases[:len(anchors)] = anchors
        self.compat = build.compat

    def summary(self):
        return "detection"

    def forward(self, step):
        tree = (self.tree.group_offset, self.tree.group_size) if self.tree is not None else None
        return step.kernels.region(step.x, self.num, self.classes, self.coords, self.background, self.softmax, tree,
                                   self.compat == "darknet-cpu", step.numerics.vector, step.numerics.ftz, step.out)
