"""The .weights reader and writer: both header versions, clear errors, byte-identical round trip."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kit
from darknetpy.errors import WeightsError
from darknetpy.network import Network
from darknetpy.weights import WeightsHeader, open_weights

CFG = """[net]
width=8
height=8
channels=2
[convolutional]
batch_normalize=1
filters=3
size=3
pad=1
activation=leaky
[convolutional]
filters=2
size=1
activation=linear
"""
# floats per layer: 3 biases + 9 bn + 3*2*9 weights = 66; 2 biases + 2*3 weights = 8
FLOATS = [66, 8]


def write(tmp_path, header: WeightsHeader, floats: int, extra: bytes = b""):
    cfg = tmp_path / "t.cfg"
    cfg.write_text(CFG)
    w = tmp_path / "t.weights"
    body = np.arange(floats, dtype="<f4").tobytes()
    w.write_bytes(header.to_bytes() + body + extra)
    return cfg, w


@pytest.mark.parametrize("version,nbytes", [((0, 1, 0), 16), ((0, 2, 0), 20), ((1, 0, 0), 20), ((1000, 2, 0), 16),
                                            ((0, 1000, 5), 16)])
def test_header_versions(version, nbytes, tmp_path):
    header = WeightsHeader(*version, seen=12345)
    assert header.nbytes == nbytes
    cfg, w = write(tmp_path, header, sum(FLOATS))
    net = Network(cfg, w, warn=None)
    assert net.header == header
    assert net.header.transpose == (version[0] > 1000 or version[1] > 1000)
    conv0, conv1 = net.layers
    assert conv0.biases.tolist() == [0, 1, 2]
    assert conv0.rolling_variance.tolist() == [9, 10, 11]
    assert conv0.weights.shape == (3, 18) and conv0.weights[0, 0] == 12
    assert conv1.weights.shape == (2, 3) and conv1.weights[-1, -1] == 73


def test_truncated_file_names_the_layer(tmp_path):
    cfg, w = write(tmp_path, WeightsHeader(0, 2, 0), sum(FLOATS) - 3)
    with pytest.raises(WeightsError, match=r"layer 1 \(convolutional\): expected 8 floats, 5 left"):
        Network(cfg, w, warn=None)


def test_short_header(tmp_path):
    cfg, w = write(tmp_path, WeightsHeader(0, 2, 0), 0)
    w.write_bytes(w.read_bytes()[:18])
    with pytest.raises(WeightsError, match="needs 20 bytes"):
        Network(cfg, w, warn=None)
    w.write_bytes(b"")
    with pytest.raises(WeightsError, match="too short"):
        Network(cfg, w, warn=None)


def test_trailing_bytes_are_a_warning(tmp_path, capsys):
    import sys
    cfg, w = write(tmp_path, WeightsHeader(0, 2, 0), sum(FLOATS), extra=b"\0" * 10)
    Network(cfg, w, warn=sys.stderr)
    assert "10 trailing bytes" in capsys.readouterr().err


def test_missing_and_directory(tmp_path):
    cfg, _ = write(tmp_path, WeightsHeader(), sum(FLOATS))
    with pytest.raises(WeightsError, match="cannot read weights"):
        Network(cfg, tmp_path / "none.weights", warn=None)
    with pytest.raises(WeightsError, match="is a directory"):
        Network(cfg, tmp_path, warn=None)


def test_flipped_weights_round_trip(tmp_path):
    cfg, w = write(tmp_path, WeightsHeader(0, 2, 0), sum(FLOATS))
    cfg.write_text(CFG.replace("filters=2\n", "filters=2\nflipped=1\n"))
    net = Network(cfg, w, warn=None)
    assert net.layers[1].weights.tolist() == [[68, 70, 72], [69, 71, 73]]
    out = tmp_path / "back.weights"
    net.save_weights(out)
    assert out.read_bytes() == w.read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_load_or_raise_weights_error(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("w")
    cfg, w = write(d, WeightsHeader(), 0)
    w.write_bytes(data)
    try:
        Network(cfg, w, warn=None)
    except WeightsError as e:
        assert "\n" not in str(e)


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
@pytest.mark.parametrize("model", ["yolov2-tiny", "yolov2-tiny-voc", "yolov2", "yolov2-voc", "yolo9000", "darknet19"])
def test_kit_weights_round_trip_byte_identical(model, tmp_path, monkeypatch):
    monkeypatch.chdir(kit.KIT / "darknet")
    src = kit.weights(kit.model(model)["weights"])
    net = Network(kit.cfg_path(model), src, warn=None)
    header, body = open_weights(src)
    assert net.header == header
    out = tmp_path / "copy.weights"
    net.save_weights(out)
    assert kit.sha256_file(out) == kit.manifest()["make_weights"]["files"][src.name]["sha256"]
