"""netx HDF5 reader/writer: round trips, the layout lava-dl reads, fixture files, and every error."""

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from paths import LAVA_DL_FIXTURES as FIXTURES  # noqa: E402
from paths import needs_lava_dl_fixtures  # noqa: E402
from scipy import signal

from tsslbp.export import schema as sc
from tsslbp.export.netx import NetxError, read_netx, spec_problems, write_netx
from tsslbp.hwmodels.golden import conv_synapse, from_lava_order, to_lava_order
from tsslbp.hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
)

needs_fixtures = needs_lava_dl_fixtures


def _cnn_spec(rng: np.random.Generator) -> NetworkSpec:
    """conv (non-square image and kernel, stride, padding, dilation, groups, bias) -> conv ->
    flatten -> dense -> dense, with tsslbp metadata."""
    c1 = ConvLayer(
        weight=rng.integers(-256, 256, size=(4, 2, 3, 2)),
        neuron=CubaNeuron(
            i_decay=1365, v_decay=819, v_th_mant=100, ref_delay=2, graded_spike=False
        ),
        in_shape=(2, 9, 7),
        shape=(4, 5, 6),
        stride=(2, 1),
        padding=(1, 0),
        bias=np.array([3, -2, 0, 4095]),
    )
    c2 = ConvLayer(
        weight=rng.integers(-30, 31, size=(6, 2, 2, 3)),
        neuron=CubaNeuron(i_decay=4096, v_decay=0, v_th_mant=131071),
        in_shape=(4, 5, 6),
        shape=(6, 3, 2),
        stride=(1, 2),
        padding=(0, 1),
        dilation=(2, 2),
        groups=2,
    )
    d1 = DenseLayer(
        rng.integers(-256, 255, size=(5, 36)), CubaNeuron(0, 4096, 7), bias=np.arange(-2, 3)
    )
    d2 = DenseLayer(rng.integers(-3, 4, size=(3, 5)), CubaNeuron(1, 2, 3))
    return NetworkSpec(
        layers=(c1, c2, FlattenLayer(in_shape=(6, 3, 2)), d1, d2),
        input_shape=(2, 9, 7),
        input_message_bits=8,
        metadata={"n_steps": 5, "readout_offset": 4, "config": {"name": "t", "layers": [1, 2]}},
    )


def _assert_specs_equal(found: NetworkSpec, expected: NetworkSpec) -> None:
    assert found.input_shape == expected.input_shape, (
        f"input_shape {found.input_shape} != {expected.input_shape}"
    )
    assert found.input_message_bits == expected.input_message_bits, "input_message_bits differ"
    assert found.metadata == expected.metadata, f"metadata {found.metadata} != {expected.metadata}"
    assert len(found.layers) == len(expected.layers), (
        f"{len(found.layers)} layers, expected {len(expected.layers)}"
    )
    for i, (a, b) in enumerate(zip(found.layers, expected.layers)):
        assert type(a) is type(b), f"layer {i}: {type(a).__name__} != {type(b).__name__}"
        for name in a.__dataclass_fields__:
            x, y = getattr(a, name), getattr(b, name)
            same = (
                np.array_equal(x, y)
                if isinstance(x, np.ndarray) or isinstance(y, np.ndarray)
                else x == y
            )
            assert same, f"layer {i} field {name}: read {x!r}, wrote {y!r}"


def test_round_trip_dense_conv_flatten_metadata(tmp_path: Path, rng: np.random.Generator) -> None:
    spec = _cnn_spec(rng)
    path = tmp_path / "net.net"
    write_netx(spec, path)
    _assert_specs_equal(read_netx(path), spec)
    assert [p.name for p in tmp_path.iterdir()] == ["net.net"], "a temporary file was left behind"


def test_round_trip_input_layer_and_mlp(tmp_path: Path, rng: np.random.Generator) -> None:
    neuron = CubaNeuron(i_decay=4096, v_decay=1024, v_th_mant=25)
    spec = NetworkSpec(
        layers=(
            InputLayer(shape=(3, 4, 5), neuron=neuron, weight=36, bias=np.array([34])),
            FlattenLayer(in_shape=(3, 4, 5)),
            DenseLayer(rng.integers(-256, 255, size=(4, 60)), neuron),
        ),
        input_shape=(3, 4, 5),
    )
    write_netx(spec, tmp_path / "in.net")
    _assert_specs_equal(read_netx(tmp_path / "in.net"), spec)
    mlp = NetworkSpec(
        layers=(DenseLayer(rng.integers(-256, 255, size=(4, 6)), neuron),), input_shape=(6,)
    )
    write_netx(mlp, tmp_path / "mlp.net")
    _assert_specs_equal(read_netx(tmp_path / "mlp.net"), mlp)


def test_weights_are_stored_compressed(tmp_path: Path, rng: np.random.Generator) -> None:
    """A dense layer after a folded 2 x 2 pooling repeats each weight over its block: gzip makes the
    file a fraction of the raw int16 size, and the values read back exactly."""
    neuron = CubaNeuron(i_decay=4096, v_decay=1024, v_th_mant=25)
    small = rng.integers(-200, 255, size=(64, 8, 4, 4))
    folded = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3).reshape(64, -1)
    spec = NetworkSpec(layers=(DenseLayer(folded, neuron),), input_shape=(folded.shape[1],))
    path = tmp_path / "folded.net"
    write_netx(spec, path)
    with h5py.File(path, "r") as f:
        stored = f["layer/1/weight"]  # layer 0: the input shape
        assert stored.compression == "gzip", f"weights stored with {stored.compression!r}"
        raw = stored.size * stored.dtype.itemsize
        assert stored.id.get_storage_size() < raw / 3, (
            f"{stored.id.get_storage_size()} bytes stored for {raw} raw"
        )
    _assert_specs_equal(read_netx(path), spec)


def test_layout_is_what_lava_dl_reads(tmp_path: Path, rng: np.random.Generator) -> None:
    """Keys, dtypes and orientation as lava-dl's NetDict and slayer's export_hdf5 use them."""
    spec = _cnn_spec(rng)
    path = tmp_path / "net.net"
    write_netx(spec, path)
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        assert sorted(layers.keys(), key=int) == [str(i) for i in range(6)], (
            f"layer keys {list(layers)}"
        )
        types = [layers[str(i)]["type"][0] for i in range(6)]
        assert types == [b"input", b"conv", b"conv", b"flatten", b"dense", b"dense"], (
            f"types {types}"
        )
        assert layers["0/type"].dtype == np.dtype("S10") and layers["0/type"].shape == (1,)
        assert set(layers["0"].keys()) == {"type", "shape"}, (
            "input shape layer must hold only type and shape"
        )
        assert layers["0/shape"][()].tolist() == [2, 9, 7]
        conv = layers["1"]
        assert np.array_equal(conv["weight"][()], spec.layers[0].weight), (
            "conv weight must be stored as is (PyTorch)"
        )
        for key, value in {
            "stride": [2, 1],
            "padding": [1, 0],
            "dilation": [1, 1],
            "kernelSize": [3, 2],
        }.items():
            assert conv[key][()].tolist() == value, (
                f"conv {key}: {conv[key][()].tolist()} != {value}"
            )
        assert (conv["inChannels"][()], conv["outChannels"][()], conv["groups"][()]) == (2, 4, 1)
        neuron = conv["neuron"]
        assert neuron["type"][()] in (b"CUBA", "CUBA"), f"neuron type {neuron['type'][()]!r}"
        assert (neuron["iDecay"][()], neuron["vDecay"][()], neuron["vThMant"][()]) == (
            1365,
            819,
            100,
        )
        assert layers["4/weight"].shape == (5, 36) and layers["4/inFeatures"][()] == 36
        own = f[sc.TSSLBP_GROUP].attrs
        assert json.loads(own[sc.ATTR_METADATA]) == spec.metadata
        assert own[sc.ATTR_INPUT_MESSAGE_BITS] == 8


def test_conv_orientation_matches_lavas_convolution(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Load the stored kernel the way lava-dl does (flip both spatial axes, transpose to lava's
    (out, W, H, in)) and convolve in (W, H, C) the way lava's Conv does (scipy convolve2d, stride by
    slicing); the result must equal the golden model's PyTorch-order cross-correlation.
    Non-square kernel (3 x 2), non-square image (9 x 7), stride (2, 1), padding (1, 0)."""
    spec = _cnn_spec(rng)
    write_netx(spec, tmp_path / "net.net")
    layer = read_netx(tmp_path / "net.net").layers[0]
    with h5py.File(tmp_path / "net.net", "r") as f:
        stored = f["layer/1/weight"][()].astype(np.int64)
    lava_kernel = stored[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)  # (out, kW, kH, in)
    stride_xy, pad_xy = layer.stride[::-1], layer.padding[::-1]
    x_chw = rng.integers(0, 2, size=(1, *layer.in_shape))
    x_whc = to_lava_order(x_chw)[0]
    padded = np.pad(x_whc, ((pad_xy[0], pad_xy[0]), (pad_xy[1], pad_xy[1]), (0, 0)))
    out_whc = np.zeros(to_lava_order(np.zeros((1, *layer.shape)))[0].shape, dtype=np.int64)
    for o in range(lava_kernel.shape[0]):
        for c in range(lava_kernel.shape[3]):
            full = signal.convolve2d(padded[:, :, c], lava_kernel[o, :, :, c], mode="valid")
            out_whc[:, :, o] += full[:: stride_xy[0], :: stride_xy[1]].astype(np.int64)
    found = conv_synapse(x_chw, layer, graded=False)
    expected = from_lava_order(out_whc[None])
    assert np.array_equal(found, expected), (
        f"golden conv differs from lava's convolution:\n{found}\n{expected}"
    )


@needs_fixtures
def test_read_tinynet() -> None:
    spec = read_netx(FIXTURES / "tiny.net")
    first, c1, c2 = spec.layers
    assert isinstance(first, InputLayer) and first.shape == (3, 16, 16), f"input layer {first}"
    assert (first.weight, first.bias.tolist()) == (36, [34]), (
        "lava-dl's test reads transform weight 36, bias 34"
    )
    assert first.neuron == CubaNeuron(4096, 1024, 25, 1, False), f"input neuron {first.neuron}"
    assert isinstance(c1, ConvLayer) and c1.weight.shape == (24, 3, 5, 5), (
        f"conv 1 weight {c1.weight.shape}"
    )
    assert (c1.shape, c1.stride, c1.padding, c1.in_shape) == (
        (24, 6, 6),
        (2, 2),
        (0, 0),
        (3, 16, 16),
    )
    assert c1.bias.shape == (24,) and c2.shape == (36, 1, 1)
    assert spec.input_shape == (3, 16, 16) and spec.metadata == {} and spec.input_message_bits == 0


@needs_fixtures
def test_read_pilotnet() -> None:
    spec = read_netx(FIXTURES / "pilotnet_lif" / "network.net")
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert kinds == ["InputLayer"] + ["ConvLayer"] * 5 + ["FlattenLayer"] + ["DenseLayer"] * 4, (
        f"{kinds}"
    )
    conv4 = spec.layers[4]
    assert (conv4.stride, conv4.padding, conv4.shape) == ((2, 1), (1, 0), (64, 4, 22)), (
        "conv 4 (y, x) params"
    )
    assert spec.layers[6].in_shape == (64, 2, 20)
    last = spec.layers[10]
    assert (
        last.weight.shape == (1, 10)
        and last.neuron.v_th_mant == 131071
        and last.neuron.v_decay == 0
    )


# ----------------------------------------------------------------------------------------- errors


def _valid_file(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "net.net"
    write_netx(_cnn_spec(rng), path)
    return path


def _drop(key: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[key]

    return edit


def _replace(key: str, value) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[key]
        f[key] = value

    return edit


def _set_type(key: str, value: str) -> Callable[[h5py.File], None]:
    return _replace(key, np.array([value.encode()], dtype="S10"))


def _both(*edits: Callable[[h5py.File], None]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        for one in edits:
            one(f)

    return edit


def _rename_layer(f: h5py.File) -> None:
    f.move("layer/5", "layer/7")


# (edit of a valid file, file layer index in the message or None, message fragment)
def _edit_metadata(f: h5py.File, **entries: object) -> None:
    meta = json.loads(f["tsslbp"].attrs["metadata"])
    f["tsslbp"].attrs["metadata"] = json.dumps(meta | entries)


ERROR_CASES = {
    "pool layer": (_set_type("layer/2/type", "pool"), 2, "unsupported layer type 'pool'"),
    "average layer": (_set_type("layer/4/type", "average"), 4, "unsupported layer type 'average'"),
    "neuron type": (_replace("layer/1/neuron/type", "SDNN"), 1, "unsupported neuron type 'SDNN'"),
    "missing vThMant": (_drop("layer/4/neuron/vThMant"), 4, "missing key 'neuron/vThMant'"),
    "missing weight": (_drop("layer/1/weight"), 1, "missing key 'weight'"),
    "missing neuron": (_drop("layer/5/neuron"), 5, "missing group 'neuron'"),
    "string weight": (
        _replace("layer/4/weight", np.full((5, 36), b"x", dtype="S1")),
        4,
        "'weight' must be numeric",
    ),
    "fractional weight": (
        _replace("layer/5/weight", np.full((3, 5), 0.5)),
        5,
        "must hold integers",
    ),
    "conv weight dims": (
        _replace("layer/1/weight", np.ones((4, 2, 3), dtype=np.int16)),
        1,
        "conv weight must be",
    ),
    "dense chain": (
        _both(
            _drop("layer/5/inFeatures"), _replace("layer/5/weight", np.ones((3, 4), dtype=np.int16))
        ),
        5,
        "dense weight has 4 inputs, the previous layer gives 5",
    ),
    "conv chain": (
        _both(
            _drop("layer/2/inChannels"),
            _replace("layer/2/weight", np.ones((6, 3, 2, 3), dtype=np.int16)),
        ),
        2,
        "conv weight expects 6 input channels (3 per group x 2 groups), the previous layer gives 4",
    ),
    "missing flatten": (
        _set_type("layer/3/type", "input"),
        3,
        "an input layer can only be the first layer",
    ),
    "conv shape": (
        _replace("layer/1/shape", np.array([4, 5, 5])),
        1,
        "does not match its input and kernel",
    ),
    "iDecay range": (
        _replace("layer/1/neuron/iDecay", 5000),
        1,
        "iDecay outside Loihi's range [0, 4096]",
    ),
    "vDecay range": (
        _replace("layer/4/neuron/vDecay", -1),
        4,
        "vDecay outside Loihi's range [0, 4096]",
    ),
    "vThMant width": (
        _replace("layer/5/neuron/vThMant", 1 << 17),
        5,
        "vThMant outside Loihi's range [0, 131071]",
    ),
    "weight range": (
        _replace("layer/5/weight", np.full((3, 5), 300)),
        5,
        "weight outside Loihi's range [-256, 255]",
    ),
    "bias range": (
        _replace("layer/4/bias", np.array([0, 0, 5000, 0, 0])),
        4,
        "bias outside Loihi's range [-4096, 4095]",
    ),
    "zero weights": (_replace("layer/5/weight", np.zeros((3, 5))), 5, "all dense weights are zero"),
    "declared features": (
        _replace("layer/4/inFeatures", 35),
        4,
        "'inFeatures' is [35] but the weights give [36]",
    ),
    "layer keys": (_rename_layer, None, "layer keys must be 0..5"),
    "no layer group": (_drop("layer"), None, "missing group 'layer'"),
    "bad metadata": (
        lambda f: f["tsslbp"].attrs.__setitem__("metadata", "{not json"),
        None,
        "not valid JSON",
    ),
    "input_ones not a bool": (
        lambda f: _edit_metadata(f, input_ones="yes"),
        None,
        "input_ones must be true or false, found yes",
    ),
    "input_ones on binary input": (
        lambda f: _edit_metadata(f, input_ones=True, input_encoding="binary"),
        None,
        "input_ones needs graded input",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_read_errors_name_file_layer_and_problem(
    case: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    edit, index, fragment = ERROR_CASES[case]
    path = _valid_file(tmp_path, rng)
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(NetxError) as info:
        read_netx(path)
    message = str(info.value)
    where = f"{path}: layer {index}: " if index is not None else f"{path}: "
    assert message.startswith(where), (
        f"expected the message to start with {where!r}, found {message!r}"
    )
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    assert "\n" not in message, f"message must be one line: {message!r}"


def test_read_error_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "text.net"
    path.write_text("not hdf5")
    with pytest.raises(NetxError, match=r"text\.net: not a readable HDF5 file"):
        read_netx(path)


def test_read_error_conv_without_input_shape(tmp_path: Path, rng: np.random.Generator) -> None:
    path = _valid_file(tmp_path, rng)
    with h5py.File(path, "r+") as f:
        del f["layer/0"]
        for i in range(1, 6):
            f.move(f"layer/{i}", f"layer/{i - 1}")
    with pytest.raises(NetxError, match=r"layer 0: conv layer without an input shape"):
        read_netx(path)


def test_write_rejects_invalid_spec_and_leaves_no_file(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    spec = _cnn_spec(rng)
    bad = NetworkSpec(
        layers=spec.layers[:3]
        + (DenseLayer(spec.layers[3].weight[:, :35], spec.layers[3].neuron),),
        input_shape=spec.input_shape,
    )
    path = tmp_path / "bad.net"
    message = r"bad\.net: layer 4: dense weight has 35 inputs, the previous layer gives 36"
    with pytest.raises(NetxError, match=message):
        write_netx(bad, path)
    assert list(tmp_path.iterdir()) == [], f"files left behind: {list(tmp_path.iterdir())}"


def test_write_rejects_unserializable_metadata(tmp_path: Path, rng: np.random.Generator) -> None:
    spec = _cnn_spec(rng)
    bad = NetworkSpec(layers=spec.layers, input_shape=spec.input_shape, metadata={"x": object()})
    with pytest.raises(NetxError, match="metadata is not JSON-serializable"):
        write_netx(bad, tmp_path / "bad.net")


def test_spec_problems_empty_for_valid_spec(rng: np.random.Generator) -> None:
    found = spec_problems(_cnn_spec(rng))
    assert found == [], f"expected no problems, found {found}"


def test_write_replaces_existing_file(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "net.net"
    path.write_bytes(b"old")
    spec = _cnn_spec(rng)
    write_netx(spec, path)
    _assert_specs_equal(read_netx(path), spec)
