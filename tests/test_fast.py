"""The fast numerics (not bit-exact: Winograd and FMA on the CPU, cuBLAS on the GPU)
against the exact pass on the reference kit: the output layer's output within 1e-4 of
exact's (relative to its largest value), and the same printed lines unless a value sits
on a threshold. On the CPU the first case of each model runs by default, the rest are
slow; on the GPU (test_gpu.gpu marks) every case."""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import kit
from darknetpy.detect import percent, box_iou, classifier_lines
from darknetpy.network import Network
from test_gpu import DEVICE, gpu, in_kit_darknet

FAST_TOLERANCE = 1e-4
KIT = [pytest.mark.skipif(not kit.available(), reason=kit.MISSING)]


@functools.lru_cache(maxsize=1)
def fast_network(model_name: str, compat: str | None, device: str) -> Network:
    with in_kit_darknet():
        return Network(kit.cfg_path(model_name), kit.weights(kit.model(model_name)["weights"]),
                       numerics="fast", compat=compat, warn=None, device=device)


def exact_and_fast(c: dict, device: str):
    """The exact run (kit.run_case on `device`) in the flavor whose lines the CLI prints,
    and fast mode's output layer's output on the same input."""
    flavor = kit.reference_flavor(c["model"])
    run = kit.run_case(c, flavor, device=device)
    compat = kit.FLAVOR_SETTINGS[flavor][1] if "yolo9000" in c["model"] else None
    net = fast_network(c["model"], compat, device)
    with in_kit_darknet():
        fast = net.forward(run.input)
    return run, np.asarray(fast).reshape(run.output.shape)


def fast_params():
    """Every case on the GPU; on the CPU the first case of each model (the others: slow)."""
    params, seen = [], set()
    for c in kit.cases():
        params.append(pytest.param(c["id"], DEVICE, id=f"{c['id']}-gpu", marks=gpu))
    for c in kit.cases():
        marks = [pytest.mark.slow] if c["model"] in seen else []
        seen.add(c["model"])
        params.append(pytest.param(c["id"], "cpu", id=f"{c['id']}-cpu", marks=marks + KIT))
    return params


def names_of(model_name: str) -> list[str]:
    return (kit.KIT / kit.model(model_name)["names"]).read_text().split("\n")


def rel_error(out: np.ndarray, ref: np.ndarray) -> float:
    """max|out - ref| / max|ref| over the finite values; inf where NaNs sit differently."""
    out, ref = out.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    if not np.array_equal(np.isnan(out), np.isnan(ref)):
        return float("inf")
    finite = ~np.isnan(ref)
    return float(np.max(np.abs(out[finite] - ref[finite])) / (np.max(np.abs(ref[finite])) or 1.0))


@pytest.mark.parametrize("case_id,device", fast_params())
def test_fast_output_within_tolerance_of_exact(case_id, device):
    run, fast = exact_and_fast(kit.case(case_id), device)
    err = rel_error(fast, run.output)
    assert err < FAST_TOLERANCE, f"fast mode's output is {err:.2e} from exact's (max|fast - exact| / max|exact|)"


def boxes_close(a, b, tol: float) -> bool:
    """Centres within `tol` (image-relative units), w and h within `tol` relative: they are
    exp(output), so an absolute error e in the output is a relative error e in them."""
    a, b = np.array(a, np.float64), np.array(b, np.float64)
    return bool(np.all(np.abs(a[:2] - b[:2]) <= tol) and np.all(np.abs(a[2:] - b[2:]) <= tol * np.abs(a[2:])))


def straddles(a: float, b: float, t: float) -> bool:
    return bool((np.float32(a) > np.float32(t)) != (np.float32(b) > np.float32(t)))


def printed(dets, thresh: float) -> dict:
    """(detection index, class) -> probability of every printed line."""
    return {(d.index, k): d.prob(k) for d in dets for k in d.classes_above(thresh)}


def differences(net, exact, fast, w: int, h: int, thresh: float, hier: float, nms: float, tol: float):
    """Lists (on a threshold, unexplained) of the ways fast mode's printed detections differ
    from exact's. On a threshold: probabilities within `tol` of each other that fall on
    opposite sides of `thresh` or of a printed rounding boundary, boxes whose IoU falls on
    opposite sides of `nms` (or that overlap such a box), order swaps of such near-equal
    probabilities. Everything else is unexplained: a real difference."""
    de, df = (net.detections(o.copy(), w, h, thresh, hier, nms) for o in (exact, fast))
    pre_e, pre_f = ({d.index: d for d in net.detections(o.copy(), w, h, thresh, hier, 0, printed_only=False)}
                    for o in (exact, fast))
    # every probability, also those at or below thresh (which the detections hold as 0)
    raw_e, raw_f = ({d.index: d for d in net.detections(o.copy(), w, h, 0.0, hier, 0, printed_only=False)}
                    for o in (exact, fast))
    pe, pf = printed(de, thresh), printed(df, thresh)
    moved = {i for i, _ in pe.keys() ^ pf.keys()}
    on, off = [], []
    for i, k in sorted(pe.keys() | pf.keys()):
        a, b = float(raw_e[i].prob(k)), float(raw_f[i].prob(k))
        where = f"detection {i} class {k} box {tuple(float(v) for v in pre_e[i].bbox)}: exact {a!r}, fast {b!r}"
        near = abs(a - b) <= tol
        if (i, k) in pe and (i, k) in pf:
            if "%.0f" % percent(pe[i, k]) != "%.0f" % percent(pf[i, k]):
                (on if near else off).append(f"{where}: printed percent on a rounding boundary")
            elif not boxes_close(pre_e[i].bbox, pre_f[i].bbox, tol):
                off.append(f"{where}: boxes differ, fast {tuple(float(v) for v in pre_f[i].bbox)}")
            continue
        side = "exact" if (i, k) in pe else "fast"
        if near and straddles(a, b, thresh):
            on.append(f"{where}: printed by {side} only, on thresh {thresh}")
            continue
        others = [j for j, x in pre_e.items() if j != i and k in x.probs and k in pre_f[j].probs]
        flips = [j for j in others if straddles(box_iou(pre_e[i].bbox, pre_e[j].bbox),
                                                box_iou(pre_f[i].bbox, pre_f[j].bbox), nms)]
        cascade = [j for j in others if j in moved and box_iou(pre_e[i].bbox, pre_e[j].bbox) > nms]
        if near and (flips or cascade):
            on.append(f"{where}: printed by {side} only, NMS IoU on {nms} with detection {(flips or cascade)[0]}")
        else:
            off.append(f"{where}: printed by {side} only")
    order_e = [key for key in (
        (d.index, k) for d in de for k in d.classes_above(thresh)) if key in pf]
    order_f = [key for key in (
        (d.index, k) for d in df for k in d.classes_above(thresh)) if key in pe]
    for (ie, ke), (jf, kf) in zip(order_e, order_f):
        if (ie, ke) != (jf, kf):
            text = f"order: exact prints detection {ie} class {ke} where fast prints detection {jf} class {kf}"
            k = sort_class(pre_e[ie], pre_e[jf]) if ie != jf else None
            if k is None:
                off.append(text)
            else:
                a, b = float(pre_e[ie].prob(k)), float(pre_e[jf].prob(k))
                (on if abs(a - b) <= tol else off).append(f"{text}: class {k} sorts them, exact {a!r} and {b!r}")
            break
    return on, off


def sort_class(a, b) -> int | None:
    """The class whose sort last ordered detections a and b (do_nms_sort sorts stably by each
    class's probability in turn: the last class where they differ decides), or None."""
    for k in sorted(set(a.probs) | set(b.probs), reverse=True):
        if a.prob(k) != b.prob(k):
            return k
    return None


@pytest.mark.parametrize("case_id,device", fast_params())
def test_fast_detections_and_lines_equal_exact(case_id, device):
    """Fast mode prints exact's lines; a difference must come from a value that sits on a
    threshold (reported as a warning, with the box) and never from anything else."""
    c = kit.case(case_id)
    run, fast = exact_and_fast(c, device)
    exact = run.output
    net = kit.network(c["model"], kit.reference_flavor(c["model"]), device=device)
    names = names_of(c["model"])
    tol = FAST_TOLERANCE * max(1.0, float(np.nanmax(np.abs(exact))))
    if kit.model(c["model"])["kind"] == "classifier":
        le, lf = classifier_lines(exact, names), classifier_lines(fast, names)
        if le != lf:
            close = np.max(np.abs(fast.astype(np.float64) - exact)) <= tol
            assert close, f"fast mode prints {lf}, exact {le}"
            warnings.warn(f"{case_id}: top-5 lines on a rounding boundary or near tie: exact {le}, fast {lf}")
        return
    w, h = run.image_size
    hier, nms = (float(kit.manifest()["detector_settings"][k]) for k in ("hier_thresh", "nms"))
    for thresh in map(float, kit.manifest()["detector_settings"]["thresholds"]):
        on, off = differences(net, exact, fast, w, h, thresh, hier, nms, tol)
        assert not off, f"thresh {thresh}: fast mode's detections differ from exact's:\n" + "\n".join((off + on)[:20])
        if on:
            warnings.warn(f"{case_id} thresh {thresh}: values on a threshold:\n" + "\n".join(on[:20]))


def test_differences_tell_a_threshold_from_a_real_difference(tmp_path):
    """The fast-mode comparison on the CPU with made-up 'fast' outputs: noise that moves a
    probability across thresh is on a threshold; a changed class logit is a real difference."""
    from test_many import write_tiny_model

    net = Network(*write_tiny_model(tmp_path), warn=None)
    exact = net.forward(np.random.default_rng(5).random((3, 32, 32), dtype=np.float32))
    fast = exact * (1 + np.float32(1e-6) * np.random.default_rng(6).standard_normal(exact.shape, np.float32))
    tol = FAST_TOLERANCE * float(np.abs(exact).max())
    raw = [{(d.index, k): p for d in net.detections(o.copy(), 64, 48, 0.0, 0.5, 0, printed_only=False)
            for k, p in d.probs.items()} for o in (exact, fast)]
    (i, k), a, b = max(((key, raw[0][key], raw[1][key]) for key in raw[0] if raw[0][key] != raw[1][key]),
                       key=lambda t: min(t[1], t[2]))
    thresh = (float(a) + float(b)) / 2
    on, off = differences(net, exact, fast, 64, 48, thresh, 0.5, 0.45, tol)
    assert off == [] and any(f"detection {i} class {k}" in line and "on thresh" in line for line in on), on
    changed = exact.copy()
    changed.reshape(2, 7, -1)[i // 256, 5 + k, i % 256] -= 3     # the class logit of (anchor, cell) = i
    on, off = differences(net, exact, changed, 64, 48, min(float(a), float(b)) * 0.9, 0.5, 0.45, tol)
    assert any(f"detection {i} class {k}" in line and "printed by exact only" in line for line in off), (on, off)


def _first_cpu_cases():
    seen, params = set(), []
    for c in kit.cases():
        if c["model"] not in seen:
            seen.add(c["model"])
            params.append(pytest.param(c["id"], id=c["id"], marks=KIT))
    return params


@pytest.mark.parametrize("case_id", _first_cpu_cases())
def test_fast_forward_in_the_arena_equals_the_kept_pass(case_id):
    """In fast numerics too, `forward` (Winograd layers with their epilogue and 2x2/2
    maxpool in the output transform, no output of their own) gives the bits of the pass
    that keeps every output (epilogue and pool as passes of their own)."""
    from darknetpy.cpu import winograd

    c = kit.case(case_id)
    flavor = kit.reference_flavor(c["model"])
    run = kit.run_case(c, flavor)
    compat = kit.FLAVOR_SETTINGS[flavor][1] if "yolo9000" in c["model"] else None
    net = fast_network(c["model"], compat, "cpu")
    with in_kit_darknet():
        out = np.asarray(net.forward(run.input))
        kept = net.forward_layers(run.input, keep=True)[net.output_layer.index]
    fused_winograd = [i for i in net.fused_pools
                      if isinstance(net.executor.state[i][0], winograd.WinogradWeights)]
    assert fused_winograd, "no Winograd layer was fused with its maxpool"
    assert out.tobytes() == np.asarray(kept).tobytes()
