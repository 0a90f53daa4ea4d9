"""The cfg parser: Darknet's syntax, its aliases and defaults, clear errors, fuzzed text."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kit
from darknetpy.cfg import SECTION_TYPES, parse_cfg_text, read_cfg
from darknetpy.errors import CfgError
from darknetpy.network import Network

TINY = """[net]
width=8
height = 8
channels=3

# a comment
; another
[conv]
filters=4
size=3
stride=1
pad=1
activation=leaky
[max]
size=2
stride=2
"""


def test_sections_aliases_and_whitespace():
    sections = parse_cfg_text(TINY, "tiny.cfg")
    assert [s.type for s in sections] == ["net", "convolutional", "maxpool"]
    assert sections[1].header == "[conv]" and sections[1].line == 8
    assert sections[0].get_int("height", 0) == 8
    assert sections[1].get_str("activation") == "leaky"


def test_tabs_spaces_and_crlf_are_stripped():
    sections = parse_cfg_text("[net]\r\nwidth = 1 6\r\n\tfilters\t=\t3\r\n", "x.cfg")
    assert sections[0].get_int("width", 0) == 16
    assert sections[0].get_int("filters", 0) == 3


def test_first_occurrence_wins_and_later_is_unused():
    s = parse_cfg_text("[net]\na=1\na=2\n")[0]
    assert s.get_int("a", 0) == 1
    assert [o.value for o in s.unused()] == ["2"]


def test_atoi_and_atof_read_a_prefix_like_c():
    s = parse_cfg_text("[net]\na=12abc\nb=.5e1x\nc=-3\n")[0]
    assert s.get_int("a", 0) == 12
    assert s.get_float("b", 0) == 5.0
    assert s.get_int("c", 0) == -3


@pytest.mark.parametrize("text,where", [
    ("[net]\nwidth\n", "x.cfg:2"),
    ("[net]\nwidth=\n", "x.cfg:2"),
    ("[net]\n=3\n", "x.cfg:2"),
    ("[net]\n[bogus]\n", "x.cfg:2"),
    ("[net\n", "x.cfg:1"),
    ("width=3\n[net]\n", "x.cfg:1"),
    ("[conv]\n", "x.cfg:1"),
])
def test_malformed_lines_name_file_and_line(text, where):
    with pytest.raises(CfgError, match=where):
        parse_cfg_text(text, "x.cfg")


def test_non_numeric_value_names_its_line():
    s = parse_cfg_text("[net]\nwidth=abc\n", "x.cfg")[0]
    with pytest.raises(CfgError, match="x.cfg:2: width=abc is not an integer"):
        s.get_int("width", 0)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CfgError, match="cannot read cfg"):
        read_cfg(tmp_path / "nope.cfg")
    with pytest.raises(CfgError, match="is a directory"):
        read_cfg(tmp_path)


def test_unsupported_layer_names_its_line(tmp_path):
    p = tmp_path / "lstm.cfg"
    p.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[lstm]\noutput=4\n")
    with pytest.raises(CfgError, match=r"lstm.cfg:5: layer type \[lstm\] is not supported"):
        Network(p, warn=None)


def test_unused_keys_are_warned_like_darknet(tmp_path, capsys):
    p = tmp_path / "u.cfg"
    p.write_text(TINY + "bogus_key=7\n")
    import sys
    Network(p, warn=sys.stderr)
    assert "Unused field: 'bogus_key = 7'" in capsys.readouterr().err


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
@pytest.mark.parametrize("model", ["yolov2", "yolov2-voc", "yolov2-tiny", "yolov2-tiny-voc", "yolo9000", "darknet19",
                                   "yolov2-128", "yolo9000-128"])
def test_kit_cfgs_build_with_the_kit_layer_shapes(model, monkeypatch):
    monkeypatch.chdir(kit.KIT / "darknet")
    c = next(c for c in kit.cases() if c["model"] == model)
    net = Network(kit.cfg_path(model), warn=None)
    layers = c["results"]["stock"]["layers"]
    assert len(net.layers) == len(layers)
    for layer, rec in zip(net.layers, layers):
        assert layer.type == rec["type"]
        assert layer.outputs == rec["outputs"]
        if rec["shape"] != [0, 0, 0]:
            assert list(layer.out_shape) == rec["shape"]


# Property tests: generated and mutated cfg text gives sections or CfgError, nothing else.
_keys = st.sampled_from(["filters", "size", "stride", "pad", "activation", "width", "height", "channels",
                         "layers", "classes", "num", "anchors", "groups", "padding", "x"])
_values = st.one_of(st.integers(-5, 40).map(str), st.sampled_from(["leaky", "linear", "-1,-4", "1.5", "", "abc"]),
                    st.text(max_size=6))
_headers = st.sampled_from(sorted(SECTION_TYPES) + ["[bogus]", "[", "[]"])
_line = st.one_of(_headers, st.builds(lambda k, v: f"{k}={v}", _keys, _values), st.text(max_size=12),
                  st.just("# comment"), st.just(""))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=30))
def test_parser_returns_sections_or_cfg_error(lines):
    try:
        sections = parse_cfg_text("\n".join(lines), "fuzz.cfg")
    except CfgError as e:
        assert "fuzz.cfg" in str(e) and "\n" not in str(e)
        return
    assert sections and sections[0].type == "net"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=12))
def test_network_build_raises_only_cfg_error(tmp_path_factory, lines):
    p = tmp_path_factory.mktemp("fuzz") / "f.cfg"
    p.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n" + "\n".join(lines))
    try:
        Network(p, warn=None)
    except CfgError as e:
        assert "\n" not in str(e)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_tiny_cfg_raises_only_cfg_error(tmp_path_factory, data):
    text = TINY
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 4)))
        text = text[:i] + data.draw(st.text(max_size=4)) + text[j:]
    p = tmp_path_factory.mktemp("mut") / "m.cfg"
    p.write_text(text, encoding="utf-8", errors="surrogatepass") if False else p.write_bytes(
        text.encode("utf-8", "surrogatepass"))
    try:
        Network(p, warn=None)
    except CfgError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("edit,where", [
    (("width=8\nheight = 8", "width=100000\nheight=100000"), ":8: layer 0"),
    (("filters=4", "filters=1000000000"), ":8: layer 0"),
])
def test_absurd_sizes_are_refused_before_allocating(tmp_path, edit, where):
    import time
    p = tmp_path / "big.cfg"
    p.write_text(TINY.replace(*edit))
    start = time.perf_counter()
    with pytest.raises(CfgError, match=where + r".*MiB limit") as e:
        Network(p, warn=None, max_memory=2**30)
    assert time.perf_counter() - start < 1.0
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text,message", [
    ("[route]\nlayers=5\n", "not an earlier layer"),
    ("[route]\nlayers=-9\n", "not an earlier layer"),
    ("[reorg]\nstride=3\n", "must divide"),
    ("[convolutional]\nfilters=0\n", "filters=0 must be at least 1"),
    ("[convolutional]\nsize=-3\n", "size=-3 must be at least 1"),
    ("[maxpool]\nstride=0\n", "stride=0 must be at least 1"),
    ("[convolutional]\nsize=99\n", "does not fit"),
    ("[region]\nclasses=3\nnum=2\n", "channels expected"),
])
def test_impossible_layers_name_the_line(tmp_path, text, message):
    p = tmp_path / "bad.cfg"
    p.write_text(TINY + text)
    with pytest.raises(CfgError, match=message) as e:
        Network(p, warn=None)
    assert str(e.value).startswith(f"{p}:")


@pytest.mark.parametrize("net,message", [
    ("[net]\nwidth=8\nheight=8\nchannels=3\ninputs=100\n", "inputs=100 but width x height x channels = 192"),
    ("[net]\ninputs=-3\n", "inputs=-3 must be at least 1"),
])
def test_net_inputs_must_agree(tmp_path, net, message):
    p = tmp_path / "n.cfg"
    p.write_text(net + "[softmax]\n")
    with pytest.raises(CfgError, match=message):
        Network(p, warn=None)
