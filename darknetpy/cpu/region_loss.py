"""The region layer's training loss and backward on the CPU (Darknet's region_layer.c).

`region_loss` is the part of `forward_region_layer` after the activations when
`net.train` is set: the no-object and prior terms of every anchor, the best anchor of
each truth with its box, objectness and class deltas, YOLO9000's classification-only
truths, the cost `mag_array(delta)^2` and the averages of the printed line. It follows
the C source statement by statement, in float32 (every operation rounded), with the
departures of the stock `-Ofast` build where `vector` is set:
* the prior term's `anchor / w` is `anchor * r`, `r` the float "reciprocal" the CPU's
  `rcpps` plus one Newton step gives (passed in: it depends on the CPU);
* `(i + .5) / w` is a double product by the reciprocal `1.0 / w`;
* `tw = logf(...)` (glibc's float logf) instead of `(float)log((double)...)`;
* the cost's sum of squares uses 4 SSE lanes (H4 + tail), sequential otherwise;
* the printed averages over `count` are products by one float reciprocal.
`region_backward` is the GPU build's `backward_region_layer_gpu`: the logistic gradient
on x, y and objectness, then the whole delta added into the source's delta.
No fastmath (no FMA, no reassociation); FTZ/DAZ come from MXCSR (fpenv) as in -Ofast.
"""
import math

import numpy as np
from numba import njit

from . import fpenv

F32 = np.float32

# What region_loss reports besides the arrays it writes.
OK, BAD_CELL, BAD_CLASS = 0, 1, 2
# The slots of `stats` (float32): the five printed averages, then the cost.
AVG_IOU, CLASS, OBJ, NO_OBJ, RECALL, COST = range(6)
PRIOR_SEEN = 12800   # forward_region_layer's prior term runs while *net->seen < 12800


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _overlap(x1, w1, x2, w2):
    half = F32(0.5)
    l1 = x1 - w1 * half
    l2 = x2 - w2 * half
    left = l1 if l1 > l2 else l2
    r1 = x1 + w1 * half
    r2 = x2 + w2 * half
    right = r1 if r1 < r2 else r2
    return right - left


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def box_iou(ax, ay, aw, ah, bx, by, bw, bh):
    """box.c's box_iou: intersection 0 when an overlap is negative (a NaN overlap is kept)."""
    ow = _overlap(ax, aw, bx, bw)
    oh = _overlap(ay, ah, by, bh)
    if ow < 0 or oh < 0:
        inter = F32(0.0)
    else:
        inter = ow * oh
    union = (aw * ah + bw * bh) - inter
    return inter / union


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def region_box(o, biases, n, index, i, j, lw, lh, stride):
    """get_region_box: x, y as float quotients; w, h as double exp * anchor / size."""
    x = (F32(i) + o[index]) / F32(lw)
    y = (F32(j) + o[index + stride]) / F32(lh)
    w = F32(math.exp(np.float64(o[index + 2 * stride])) * np.float64(biases[2 * n]) / np.float64(lw))
    h = F32(math.exp(np.float64(o[index + 3 * stride])) * np.float64(biases[2 * n + 1]) / np.float64(lh))
    return x, y, w, h


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _log(v, vector):
    if vector:
        return math.log(v)            # float32 argument: glibc's logf
    return F32(math.log(np.float64(v)))


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def delta_region_box(tx, ty, tw, th, o, biases, n, index, i, j, lw, lh, d, scale, stride, vector):
    """Box deltas `scale * (target - out)` of one anchor; returns the IoU of its box with the truth."""
    px, py, pw, ph = region_box(o, biases, n, index, i, j, lw, lh, stride)
    iou = box_iou(px, py, pw, ph, tx, ty, tw, th)
    gx = tx * F32(lw) - F32(i)
    gy = ty * F32(lh) - F32(j)
    gw = _log(tw * F32(lw) / biases[2 * n], vector)
    gh = _log(th * F32(lh) / biases[2 * n + 1], vector)
    d[index] = scale * (gx - o[index])
    d[index + stride] = scale * (gy - o[index + stride])
    d[index + 2 * stride] = scale * (gw - o[index + 2 * stride])
    d[index + 3 * stride] = scale * (gh - o[index + 3 * stride])
    return iou


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def delta_region_class(o, d, index, cls, classes, use_tree, parent, group, group_offset, group_size,
                       scale, stride, tag):
    """Class deltas of one anchor; returns what Darknet adds to avg_cat."""
    one = F32(1.0)
    zero = F32(0.0)
    if use_tree:
        pred = one
        while cls >= 0:
            pred = pred * o[index + stride * cls]
            g = group[cls]
            offset = group_offset[g]
            for k in range(group_size[g]):
                e = index + stride * (offset + k)
                d[e] = scale * (zero - o[e])
            e = index + stride * cls
            d[e] = scale * (one - o[e])
            cls = parent[cls]
        return pred
    if d[index] != 0 and tag:
        e = index + stride * cls
        d[e] = scale * (one - o[e])
        return zero
    cat = zero
    for n in range(classes):
        e = index + stride * n
        d[e] = scale * ((one if n == cls else zero) - o[e])
        if n == cls:
            cat = o[e]
    return cat


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def hierarchy_probability(o, index, parent, cls, stride):
    p = F32(1.0)
    while cls >= 0:
        p = p * o[index + cls * stride]
        cls = parent[cls]
    return p


@njit(cache=True, fastmath=False, error_model="numpy")
def sum_squares(a, vector):
    """mag_array's float sum of a[i]*a[i]: 4 lanes + tail (-Ofast) or sequential."""
    n = a.size
    if not vector or n < 4:
        s = F32(0.0)
        for k in range(n):
            s = s + a[k] * a[k]
        return s
    v0 = F32(0.0)
    v1 = F32(0.0)
    v2 = F32(0.0)
    v3 = F32(0.0)
    m = n - n % 4
    for k in range(0, m, 4):
        v0 = v0 + a[k] * a[k]
        v1 = v1 + a[k + 1] * a[k + 1]
        v2 = v2 + a[k + 2] * a[k + 2]
        v3 = v3 + a[k + 3] * a[k + 3]
    s = (v0 + v2) + (v1 + v3)
    for k in range(m, n):
        s = s + a[k] * a[k]
    return s


@njit(cache=True, fastmath=False, error_model="numpy")
def region_loss(out, delta, truth, lw, lh, num, classes, coords, biases, use_tree, parent, group,
                group_offset, group_size, use_map, cmap, background, rescore, bias_match, tag,
                thresh, coord_scale, object_scale, noobject_scale, class_scale, mask_scale, seen,
                prior_rw, prior_rh, vector, ftz, stats, counts):
    """out, delta: (batch, outputs) float32 (delta zeroed); truth: (batch, truths).

    Writes delta, stats (AVG_IOU..COST) and counts (count, class_count). Returns OK, or
    BAD_CELL / BAD_CLASS (with counts[2] = the image, counts[3] = the truth) where C would
    index outside the layer's arrays.
    """
    old = fpenv.enter(ftz)
    batch = out.shape[0]
    cells = lw * lh
    entries = classes + coords + 1
    tstride = coords + 1
    ntruth = min(30, truth.shape[1] // tstride)
    zero = F32(0.0)
    one = F32(1.0)
    avg_iou = zero
    recall = zero
    avg_cat = zero
    avg_obj = zero
    avg_anyobj = zero
    count = 0
    class_count = 0
    status = OK
    t = 0
    for b in range(batch):
        o = out[b]
        d = delta[b]
        tr = truth[b]
        if use_tree:
            onlyclass = False
            for t in range(ntruth):
                if tr[t * tstride] == 0:
                    break
                cls = int(tr[t * tstride + coords])
                if tr[t * tstride] > F32(100000) and tr[t * tstride + 1] > F32(100000):
                    if cls < 0 or cls >= classes:
                        status = BAD_CLASS
                        break
                    maxp = zero
                    maxi = 0
                    for n in range(num * cells):
                        obj = (n // cells) * cells * entries + coords * cells + n % cells
                        scale = o[obj]
                        d[obj] = noobject_scale * (zero - o[obj])
                        p = scale * hierarchy_probability(o, obj + cells, parent, cls, cells)
                        if p > maxp:
                            maxp = p
                            maxi = n
                    obj = (maxi // cells) * cells * entries + coords * cells + maxi % cells
                    avg_cat = avg_cat + delta_region_class(o, d, obj + cells, cls, classes, True, parent, group,
                                                           group_offset, group_size, class_scale, cells, tag)
                    d[obj] = zero
                    class_count += 1
                    onlyclass = True
                    break
            if status != OK:
                counts[2] = b
                counts[3] = t
                break
            if onlyclass:
                continue
        for j in range(lh):
            for i in range(lw):
                for n in range(num):
                    index = n * cells * entries + j * lw + i
                    px, py, pw, ph = region_box(o, biases, n, index, i, j, lw, lh, cells)
                    best_iou = zero
                    for t in range(ntruth):
                        k = t * tstride
                        if tr[k] == 0:
                            break
                        iou = box_iou(px, py, pw, ph, tr[k], tr[k + 1], tr[k + 2], tr[k + 3])
                        if iou > best_iou:
                            best_iou = iou
                    obj = index + coords * cells
                    avg_anyobj = avg_anyobj + o[obj]
                    d[obj] = noobject_scale * (zero - o[obj])
                    if background:
                        d[obj] = noobject_scale * (one - o[obj])
                    if best_iou > thresh:
                        d[obj] = zero
                    if seen < PRIOR_SEEN:
                        if vector:
                            cx = F32((i + 0.5) * (1.0 / lw))
                            cy = F32((j + 0.5) * (1.0 / lh))
                            aw = biases[2 * n] * prior_rw
                            ah = biases[2 * n + 1] * prior_rh
                        else:
                            cx = F32((i + 0.5) / lw)
                            cy = F32((j + 0.5) / lh)
                            aw = biases[2 * n] / F32(lw)
                            ah = biases[2 * n + 1] / F32(lh)
                        delta_region_box(cx, cy, aw, ah, o, biases, n, index, i, j, lw, lh, d, F32(0.01),
                                         cells, vector)
        for t in range(ntruth):
            k = t * tstride
            tx = tr[k]
            if tx == 0:
                break
            ty = tr[k + 1]
            tw = tr[k + 2]
            th = tr[k + 3]
            gx = tx * F32(lw)
            gy = ty * F32(lh)
            if not (gx > -1 and gx < lw and gy > -1 and gy < lh):
                status = BAD_CELL
                break
            i = int(gx)
            j = int(gy)
            best_iou = zero
            best_n = 0
            for n in range(num):
                index = n * cells * entries + j * lw + i
                px, py, pw, ph = region_box(o, biases, n, index, i, j, lw, lh, cells)
                if bias_match:
                    pw = biases[2 * n] / F32(lw)
                    ph = biases[2 * n + 1] / F32(lh)
                iou = box_iou(zero, zero, pw, ph, zero, zero, tw, th)
                if iou > best_iou:
                    best_iou = iou
                    best_n = n
            index = best_n * cells * entries + j * lw + i
            iou = delta_region_box(tx, ty, tw, th, o, biases, best_n, index, i, j, lw, lh, d,
                                   coord_scale * (F32(2) - tw * th), cells, vector)
            if coords > 4:
                mask = index + 4 * cells
                mscale = F32(int(mask_scale))
                for m in range(coords - 4):
                    d[mask + m * cells] = mscale * (tr[k + 5 + m] - o[mask + m * cells])
            if iou > F32(0.5):
                recall = recall + one
            avg_iou = avg_iou + iou
            obj = index + coords * cells
            avg_obj = avg_obj + o[obj]
            d[obj] = object_scale * (one - o[obj])
            if rescore:
                d[obj] = object_scale * (iou - o[obj])
            if background:
                d[obj] = object_scale * (zero - o[obj])
            cls = int(tr[k + coords])
            if use_map:
                if cls < 0 or cls >= cmap.size:
                    status = BAD_CLASS
                    break
                cls = cmap[cls]
            if cls < 0 or cls >= classes:
                status = BAD_CLASS
                break
            avg_cat = avg_cat + delta_region_class(o, d, index + (coords + 1) * cells, cls, classes, use_tree,
                                                   parent, group, group_offset, group_size, class_scale, cells,
                                                   tag)
            count += 1
            class_count += 1
        if status != OK:
            counts[2] = b
            counts[3] = t
            break
    if status == OK:
        mag = F32(math.sqrt(np.float64(sum_squares(delta.reshape(-1), vector))))
        stats[COST] = mag * mag
        fcount = F32(count)
        if vector:
            r = one / fcount
            stats[AVG_IOU] = avg_iou * r
            stats[OBJ] = avg_obj * r
            stats[RECALL] = recall * r
        else:
            stats[AVG_IOU] = avg_iou / fcount
            stats[OBJ] = avg_obj / fcount
            stats[RECALL] = recall / fcount
        stats[CLASS] = avg_cat / F32(class_count)
        stats[NO_OBJ] = avg_anyobj / F32(lw * lh * num * batch)
        counts[0] = count
        counts[1] = class_count
    fpenv.leave(old)
    return status


@njit(cache=True, fastmath=False, error_model="numpy")
def region_backward(out, delta, source_delta, cells, num, entries, coords, background, vector, ftz):
    """backward_region_layer_gpu: delta of x, y (and coords past 4) and objectness times the
    logistic gradient, in place ((1-o)*(o*delta) under -Ofast, delta*((1-o)*o) otherwise);
    then source_delta += delta (all three (batch, outputs) float32; source_delta may alias none)."""
    old = fpenv.enter(ftz)
    one = F32(1.0)
    for b in range(out.shape[0]):
        o = out[b]
        d = delta[b]
        for n in range(num):
            base = n * cells * entries
            for e in range(entries):
                if e < 2 or (4 <= e < coords) or (e == coords and not background):
                    for s in range(cells):
                        k = base + e * cells + s
                        if vector:
                            d[k] = (one - o[k]) * (o[k] * d[k])
                        else:
                            d[k] = d[k] * ((one - o[k]) * o[k])
        if source_delta.shape[0]:
            sd = source_delta[b]
            for k in range(d.size):
                sd[k] = sd[k] + d[k]
    fpenv.leave(old)
