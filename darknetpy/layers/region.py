"""[region]: YOLOv2's output layer (logistic boxes and objectness, softmax or tree classes).

YOLO9000's WordNet tree softmax: Darknet's GPU build computes, for every anchor and
cell, one softmax per tree group over that group's class entries; that is what this
layer computes by default. Darknet's CPU build (`compat="darknet-cpu"`) gets it wrong
in two ways: it offsets each group by its class index instead of index * cells, so the
groups it normalises are strided slices running across anchors and entries, overlapping
one another; and it divides by `temperature`, which `parse_region` never sets (0), so
every group it touches becomes NaN. The result: NaN over anchor 0's boxes, objectness
and first ~460 classes, raw logits in every other class entry.

Training (`step.train`): the loss of Darknet's forward_region_layer fills `step.delta`,
`self.cost` and the printed `Region Avg IOU ...` line (cpu/region_loss.py). The backward
is the GPU build's (logistic gradient, then added into the source's delta); Darknet's
CPU build has an empty one, which `compat="darknet-cpu"` keeps.
"""
import numpy as np

from ..cfg import atof
from ..errors import DataError
from ..kernels import (REGION_AVG_IOU, REGION_BAD_CELL, REGION_CLASS, REGION_COST, REGION_NO_OBJ, REGION_OBJ,
                       REGION_OK, REGION_RECALL)
from ..tree import read_tree
from .base import Layer
from .paths import read_map, resolve

COMPAT = (None, "darknet-cpu")

# The -Ofast prior term divides an anchor by the grid size with rcpps plus one Newton
# step, whose value depends on the CPU: these are the reference CPU's (an AMD EPYC, the
# training kit's `ofast_rcp`), as float32 bit patterns by grid size. Other sizes use the
# exact quotient (their rcpps value is not known).
OFAST_RCP = {2: 0x3EFFFFFF, 3: 0x3EAAAAAB, 4: 0x3E7FFFFF, 5: 0x3E4CCCCC, 6: 0x3E2AAAAB, 7: 0x3E124924,
             13: 0x3D9D89D9, 19: 0x3D579435}
NO_INDEX = np.zeros(0, np.int32)


def ofast_reciprocal(size: int) -> np.float32:
    """The float `1/size` of the -Ofast prior term (see OFAST_RCP)."""
    bits = OFAST_RCP.get(size)
    if bits is None:
        return np.float32(1.0) / np.float32(size)
    return np.uint32(bits).view(np.float32)


def printed(value) -> str:
    """printf's %f of a float: NaN as glibc prints it (-nan when the sign bit is set)."""
    v = np.float32(value)
    if np.isnan(v):
        return "-nan" if np.signbit(v) else "nan"
    return "%f" % float(v)


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
        for key in ("log", "sqrt", "max", "classfix", "absolute", "random"):
            s.get_int(key, 0)
        s.get_float("jitter", 0)
        self.rescore = s.get_int("rescore", 0) != 0
        self.bias_match = s.get_int("bias_match", 0) != 0
        self.thresh = np.float32(s.get_float("thresh", .5))
        self.coord_scale = np.float32(s.get_float("coord_scale", 1))
        self.object_scale = np.float32(s.get_float("object_scale", 1))
        self.noobject_scale = np.float32(s.get_float("noobject_scale", 1))
        self.mask_scale = np.float32(s.get_float("mask_scale", 1))
        self.class_scale = np.float32(s.get_float("class_scale", 1))
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
        out = step.kernels.region(step.x, self.num, self.classes, self.coords, self.background, self.softmax, tree,
                                  self.compat == "darknet-cpu", step.numerics.vector, step.numerics.ftz, step.out)
        if step.train:
            self.train_loss(step, out)
        return out

    def train_loss(self, step, out):
        """Darknet's forward_region_layer with net.train: delta, cost, the printed line."""
        n = out.shape[0]
        c, h, w = self.out_shape
        flat_out = np.ascontiguousarray(out).reshape(n, -1)
        delta = step.delta.reshape(n, -1)
        truth = np.ascontiguousarray(step.truth, np.float32).reshape(n, -1)
        tree = self.tree
        cmap = np.asarray(self.map if self.map is not None else [], np.int32)
        stats = np.zeros(6, np.float32)
        counts = np.zeros(4, np.int64)
        vector = step.numerics.vector
        status = step.kernels.region_loss(
            flat_out, delta, truth, w, h, self.num, self.classes, self.coords, self.biases, tree is not None,
            tree.parent if tree else NO_INDEX, tree.group if tree else NO_INDEX,
            tree.group_offset if tree else NO_INDEX, tree.group_size if tree else NO_INDEX,
            self.map is not None, cmap, self.background, self.rescore, self.bias_match, not self.softmax,
            self.thresh, self.coord_scale, self.object_scale, self.noobject_scale, self.class_scale,
            self.mask_scale, int(step.seen), ofast_reciprocal(w), ofast_reciprocal(h), vector,
            step.numerics.ftz, stats, counts)
        if status != REGION_OK:
            what = "lies outside the grid" if status == REGION_BAD_CELL else "has a class outside the layer's"
            raise DataError(f"layer {self.index} (region): truth {counts[3]} of image {counts[2]} {what}")
        self.cost = stats[REGION_COST]
        if step.log is not None:
            s = stats
            step.log(f"Region Avg IOU: {printed(s[REGION_AVG_IOU])}, Class: {printed(s[REGION_CLASS])}, "
                     f"Obj: {printed(s[REGION_OBJ])}, No Obj: {printed(s[REGION_NO_OBJ])}, "
                     f"Avg Recall: {printed(s[REGION_RECALL])},  count: {counts[0]}")

    def backward(self, step):
        """The GPU build's backward_region_layer_gpu; the stock CPU build's is empty."""
        if self.compat == "darknet-cpu":
            return
        n = step.out.shape[0]
        c, h, w = self.out_shape
        source = step.source_deltas[0] if step.source_deltas else None
        target = source.reshape(n, -1) if source is not None else np.zeros((0, 0), np.float32)
        step.kernels.region_backward(step.out.reshape(n, -1), step.delta.reshape(n, -1), target, h * w, self.num,
                                     self.classes + self.coords + 1, self.coords, self.background,
                                     step.numerics.vector, step.numerics.ftz)

    def update(self, *args, **kwargs):
        """No parameters to learn (the anchors are fixed)."""
