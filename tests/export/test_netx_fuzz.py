"""Fuzzing the netx reader: no file may fail with anything but one :class:`NetxError` line.

Valid files (small specs written by :func:`write_netx`, and lava-dl's ``tiny.net`` fixture) are
corrupted by hypothesis through h5py (datasets and groups deleted, renamed, turned into each other or
into dangling links; values replaced by other dtypes and shapes: scalars vs arrays, strings vs
numbers, NaN/inf, huge integers, empty arrays; wrong layer and neuron type strings; extra layers;
tsslbp's attributes mistyped) or at the byte level (cut short, overwritten, empty, random bytes,
text). The reader must return a spec that :func:`write_netx` accepts, or raise ``NetxError`` whose
message is one line starting with the file name (and ``layer <i>:`` where a layer is at fault).
numpy warnings count as crashes: a silent overflow is a wrong value, not an error message.

Example counts: each property runs a fixed, derandomized number of examples under the "ci"
hypothesis profile (``tests/conftest.py``); the session's total is printed in the terminal summary
("hypothesis: N examples (...)"). ``TSSLBP_HYPOTHESIS_PROFILE=deep`` fuzzes longer.
"""

from __future__ import annotations

import collections
import functools
import math
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from paths import LAVA_DL_FIXTURES

from tsslbp.export.netx import NetxError, read_netx, spec_problems, write_netx
from tsslbp.hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
)


def _examples(ci_count: int) -> int:
    """``ci_count`` under the default "ci" profile, the profile's own count otherwise ("deep")."""
    return ci_count if settings.get_current_profile_name() == "ci" else settings().max_examples


def _mlp_spec() -> NetworkSpec:
    """input layer with neurons -> dense (bias) -> dense."""
    neuron = CubaNeuron(i_decay=1024, v_decay=128, v_th_mant=80)
    return NetworkSpec(
        layers=(
            InputLayer(shape=(6,), neuron=neuron),
            DenseLayer(np.arange(-12, 12).reshape(4, 6), neuron, bias=np.array([1, -1, 0, 5])),
            DenseLayer(
                np.array([[1, -2, 3, 0], [0, 4, -5, 6]]),
                CubaNeuron(4096, 0, 1, ref_delay=2, graded_spike=True),
            ),
        ),
        input_shape=(6,),
        input_message_bits=0,
        metadata={"n_steps": 3, "readout_offset": 2},
    )


def _cnn_spec() -> NetworkSpec:
    """(shape-only input) -> conv (stride, padding, groups, bias) -> flatten -> dense."""
    neuron = CubaNeuron(i_decay=2048, v_decay=512, v_th_mant=10)
    conv = ConvLayer(
        weight=np.arange(-16, 16).reshape(4, 1, 2, 4),
        neuron=neuron,
        in_shape=(2, 5, 6),
        shape=(4, 3, 2),
        stride=(2, 2),
        padding=(1, 0),
        groups=2,
        bias=np.array([0, 1, 2, 3]),
    )
    dense = DenseLayer(np.tile(np.array([1, -1, 2]), 24).reshape(3, 24), neuron)
    return NetworkSpec(
        layers=(conv, FlattenLayer(in_shape=(4, 3, 2)), dense),
        input_shape=(2, 5, 6),
        input_message_bits=8,
        metadata={"n_steps": 4},
    )


@functools.cache
def _base_files() -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of the valid files the fuzzers start from; built once, on first use."""
    bases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in (("mlp", _mlp_spec()), ("cnn", _cnn_spec())):
            path = Path(tmp) / f"{name}.net"
            write_netx(spec, path)
            bases.append((name, path.read_bytes()))
    tiny = LAVA_DL_FIXTURES / "tiny.net"
    if tiny.is_file():
        bases.append(("lava-dl tiny.net", tiny.read_bytes()))
    return tuple(bases)


def _names(f: h5py.File) -> list[str]:
    """Every group and dataset path in the file (links are not followed)."""
    found: list[str] = []
    f.visit(found.append)
    return sorted(found)


# --- values that replace datasets ---------------------------------------------------------------

NASTY_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.sampled_from(
        [
            np.uint64(2**64 - 1),
            np.uint64(2**63),
            np.int64(-(2**63)),
            np.float64(math.nan),
            np.float64(math.inf),
            np.float64(-math.inf),
            np.float64(1e300),
            np.float64(-1e19),
            np.float64(0.5),
            np.float32(2.0),
            np.int64(-1),
            np.int64(0),
            np.bool_(True),
            np.int8(-128),
            np.complex128(1 + 2j),
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
)
WORDS = st.sampled_from(
    [
        b"dense",
        b"conv",
        b"input",
        b"flatten",
        b"pool",
        b"dense_rec",
        "CUBA",
        "LOIHI",
        "SIGMA",
        b"\xff\xfe",
        "d\u00e9nse",
        "dense\nconv",
        b"",
        "",
    ]
)
STRINGS = st.one_of(
    WORDS,
    st.text(st.characters(exclude_characters="\x00"), max_size=8),  # HDF5 strings end at NUL
    st.binary(min_size=1, max_size=8).map(np.bytes_),
    WORDS.filter(lambda w: w not in (b"", "")).map(
        lambda w: np.array([w if isinstance(w, bytes) else w.encode()] * 2)
    ),
)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from(
        [np.int64, np.int16, np.uint8, np.uint64, np.float64, np.float32, np.bool_]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
)
FLOAT_ARRAYS = hnp.arrays(
    dtype=np.float64,
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3),
    elements=st.floats(allow_nan=True, allow_infinity=True),
)
VALUES = st.one_of(NASTY_SCALARS, STRINGS, ARRAYS, FLOAT_ARRAYS, st.just(h5py.Empty("f8")))
KEY_NAMES = st.sampled_from(
    [
        "type",
        "shape",
        "weight",
        "bias",
        "neuron",
        "iDecay",
        "vDecay",
        "vThMant",
        "refDelay",
        "gradedSpike",
        "stride",
        "padding",
        "dilation",
        "groups",
        "kernelSize",
        "inChannels",
        "outChannels",
        "inFeatures",
        "outFeatures",
        "0",
        "1",
        "2",
        "3",
        "4",
        "9",
        "-1",
        "01",
        "x",
        "layer",
    ]
)


def _recast(value: np.ndarray, how: str) -> object:
    """``value`` with another dtype or shape, keeping its numbers where possible."""
    arr = np.asarray(value)
    if arr.dtype.kind in "SUO":
        return np.int64(7) if how != "bytes" else np.bytes_(b"7")
    if how == "float":
        return arr.astype(np.float64) + 0.5
    if how == "uint64":
        return arr.astype(np.float64).astype(np.int64).astype(np.uint64)
    if how == "bytes":
        return np.bytes_(str(arr.tolist()).encode())
    if how == "scalar":
        return arr.reshape(-1)[0] if arr.size else np.int64(0)
    if how == "wrap":
        return arr[None, ...]
    if how == "flat":
        return arr.reshape(-1)
    return arr[..., None].repeat(2, axis=-1)  # "double": an extra axis of size 2


@st.composite
def corrupted_files(draw: st.DrawFn, work: Path) -> Path:
    """A base file written to ``work/fuzz.net`` with 1..3 structural edits, or damaged bytes."""
    base, data = draw(st.sampled_from(_base_files()))
    path = work / "fuzz.net"
    kind = draw(
        st.sampled_from(["structure"] * 4 + ["cut", "overwrite", "empty", "random", "text"])
    )
    note(f"base {base}, {kind}")
    if kind == "cut":
        path.write_bytes(data[: draw(st.integers(0, len(data) - 1))])
        return path
    if kind == "overwrite":
        start = draw(st.integers(0, len(data) - 1))
        patch = draw(st.binary(min_size=1, max_size=64))
        path.write_bytes(data[:start] + patch + data[start + len(patch) :])
        return path
    if kind == "empty":
        path.write_bytes(b"")
        return path
    if kind == "random":
        path.write_bytes(draw(st.binary(max_size=2048)))
        return path
    if kind == "text":
        path.write_bytes(draw(st.text(max_size=200)).encode())
        return path
    path.write_bytes(data)
    with h5py.File(path, "r+") as f:
        for _ in range(draw(st.integers(1, 3))):
            names = _names(f)
            name = draw(st.sampled_from(names or ["layer"]))
            parent = name.rpartition("/")[0] or "/"
            op = draw(
                st.sampled_from(
                    ["value", "delete", "rename", "group", "recast", "dangling", "attr", "extra"]
                )
            )
            if name not in f and op not in ("attr",):
                continue
            note(f"edit: {op} {name}")
            try:
                _edit(f, draw, op, name, parent)
            except (KeyError, OSError, RuntimeError, TypeError, ValueError) as exc:
                # h5py refused the edit itself (e.g. copying through a dangling link): skip it.
                note(f"edit skipped: {exc}")
    return path


def _edit(f: h5py.File, draw: st.DrawFn, op: str, name: str, parent: str) -> None:
    """One structural edit of an open file."""
    if op == "value":
        del f[name]
        f.create_dataset(name, data=draw(VALUES))
    elif op == "delete":
        del f[name]
    elif op == "rename":
        new = f"{parent}/{draw(KEY_NAMES)}"
        if new.lstrip("/") not in f:
            f.move(name, new)
    elif op == "group":
        del f[name]
        f.create_group(name)
    elif op == "recast" and isinstance(f.get(name), h5py.Dataset):
        value = f[name][()]
        how = draw(
            st.sampled_from(["float", "uint64", "bytes", "scalar", "wrap", "flat", "double"])
        )
        del f[name]
        f.create_dataset(name, data=_recast(value, how))
    elif op == "dangling":
        del f[name]
        f[name] = h5py.SoftLink("/nowhere")
    elif op == "attr":
        if "tsslbp" not in f:
            f.create_group("tsslbp")
        group = f.get("tsslbp")  # None for a dangling link
        if group is None:
            return
        key = draw(st.sampled_from(["input_message_bits", "metadata", "format_version"]))
        group.attrs[key] = draw(
            st.one_of(
                NASTY_SCALARS,
                STRINGS,
                ARRAYS,
                st.sampled_from(["{", "[]", "null", '{"a": NaN}', "1e999", b"\xff{}"]),
            )
        )
    elif op == "extra" and isinstance(f.get("layer"), h5py.Group):
        source = draw(st.sampled_from(sorted(f["layer"].keys()) or ["0"]))
        target = f"layer/{draw(KEY_NAMES)}"
        if f"layer/{source}" in f and target not in f:
            f.copy(f"layer/{source}", target)


def _reads_or_netx_error(path: Path, work: Path) -> NetworkSpec | None:
    """Read; only NetxError may escape, as one line naming the file; a spec must be writable."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            spec = read_netx(path)
        except NetxError as err:
            message = str(err)
            assert "\n" not in message, f"expected a one-line message, found {message!r}"
            assert re.match(rf"{re.escape(str(path))}: (layer \d+: )?\S", message), (
                f"expected '<file>: [layer <i>: ]<problem>', found {message!r}"
            )
            return None
    assert spec_problems(spec) == [], (
        f"read_netx returned a spec with problems: {spec_problems(spec)}"
    )
    write_netx(spec, work / "rewritten.net")
    return spec


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch directory of the fuzzers (each example overwrites the same files)."""
    return tmp_path_factory.mktemp("netx_fuzz")


def test_base_files_read_and_round_trip(work: Path) -> None:
    names = [name for name, _ in _base_files()]
    assert len(names) >= 2, f"expected the mlp and cnn bases at least, found {names}"
    for name, data in _base_files():
        path = work / "base.net"
        path.write_bytes(data)
        assert _reads_or_netx_error(path, work) is not None, f"base file {name} did not read"


def test_fuzz_corrupted_files(work: Path, fuzz_counts: collections.Counter) -> None:
    before = fuzz_counts["netx"]
    n = _examples(400)

    @settings(max_examples=n)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fuzz_counts["netx"] += 1
        _reads_or_netx_error(data.draw(corrupted_files(work)), work)

    run()
    ran = fuzz_counts["netx"] - before
    assert ran >= n // 2, f"expected about {n} examples, ran {ran}"


def test_missing_file_and_directory(work: Path) -> None:
    for path, why in (
        (work / "does-not-exist.net", "cannot read the file (No such file or directory)"),
        (work, "is a directory, not a regular file"),
    ):
        with pytest.raises(NetxError, match=rf"^{re.escape(str(path))}: {re.escape(why)}$"):
            read_netx(path)


# --- the hand-made corpus (tests/data/make_netx_malformed.py) and the fuzzers' regressions -------

CORPUS = Path(__file__).resolve().parents[1] / "data" / "netx_malformed"
NOT_HDF5 = "not a readable HDF5 file (Unable to synchronously open file "
CORPUS_ERRORS = {
    "missing_layer_group.net": "missing group 'layer'",
    "layer_key_gap.net": "layer keys must be 0..2, found ['0', '1', '3']",
    "unknown_layer_type.net": "layer 1: unsupported layer type 'pool' (supported: input, dense, conv, flatten)",
    "unknown_neuron_type.net": "layer 2: unsupported neuron type 'SIGMA' (supported: CUBA, LOIHI)",
    "missing_weight.net": "layer 1: missing key 'weight'",
    "weight_is_group.net": "layer 1: 'weight' must be a dataset, found a group",
    "string_weight.net": "layer 2: 'weight' must be numeric, found dtype |S7",
    "nan_decay.net": "layer 1: 'neuron/iDecay' must hold integers, found non-integer values",
    "shape_mismatch.net": "layer 2: dense weight must be (5, in) for shape 5, found (2, 3)",
    # Crashes the fuzzer found: silent int64 wrap-around (numpy RuntimeWarning), KeyError from a
    # dangling link, UnicodeDecodeError from metadata, OverflowError from int(inf).
    "huge_uint64_weight.net": "layer 2: 'weight' holds values beyond 64-bit signed integers",
    "huge_float_threshold.net": "layer 1: 'neuron/vThMant' holds values beyond 64-bit integers",
    "dangling_weight_link.net": "HDF5 object '/layer/1/weight' is a soft link to '/nowhere', "
    "which does not exist",
    "metadata_not_utf8.net": "'tsslbp' metadata is not valid JSON: 'utf-8' codec can't decode byte 0xff "
    "in position 0: invalid start byte",
    "message_bits_inf.net": "'tsslbp' input_message_bits must be an integer, found inf",
    "empty.net": NOT_HDF5 + "(file signature not found))",
    "random_bytes.net": NOT_HDF5 + "(file signature not found))",
    "text.net": NOT_HDF5 + "(file signature not found))",
    "truncated.net": NOT_HDF5
    + "(truncated file: eof = 8048, sblock->base_addr = 0, stored_eof = 24144))",
    # Issue 15: hostile structure and memory bombs, refused before any value is read.
    "external_link_absolute.net": "HDF5 object '/layer/1/weight' is an external link to "
    "/etc/tsslbp-other.net:/layer/1/weight",
    "external_link_relative.net": "HDF5 object '/layer/1/weight' is an external link to "
    "missing_weight.net:/layer/2/weight",
    "soft_link_via_external.net": "HDF5 object '/layer/1/weight' is a soft link to "
    "'/zz_elsewhere/2/weight', which passes through an external link",
    "virtual_dataset.net": "HDF5 object '/layer/1/weight' is a virtual dataset (it reads other files)",
    "external_storage.net": "HDF5 object '/layer/1/weight' stores its data in external files",
    "gzip_bomb.net": "HDF5 object '/layer/1/weight' declares 800000000 bytes (shape (20000, 20000), "
    "int16), more than the limit of 268435456",
    "weight_declared_huge.net": "HDF5 object '/layer/1/weight' declares 800000000000 bytes "
    "(shape (200, 2000000000), int16), more than the limit of 268435456",
    "weight_beyond_layer.net": "layer 1: 'weight' declares shape (3, 1000000) (3000000 values), "
    "more than the 12 allowed here",
    "complex_weight.net": "HDF5 object '/layer/1/weight' has dtype complex64 (kind 'c')",
    "vlen_weight.net": "HDF5 object '/layer/1/weight' has a variable-length sequence dtype",
    "compound_weight.net": "HDF5 object '/layer/1/weight' has a compound dtype "
    "[('a', '<i2'), ('b', '<i2')]",
    "reference_weight.net": "HDF5 object '/layer/1/weight' has an object reference dtype",
    "group_cycle.net": "HDF5 object '/layer/1"
    + "/again" * 31
    + "' is nested deeper than 32 groups",
    "deep_nesting.net": "HDF5 object '" + "/d" * 33 + "' is nested deeper than 32 groups",
    "n_class_1000.net": "'tsslbp' metadata: n_class is 1000 but the output layer has 2 neurons",
    "readout_offset_negative.net": "'tsslbp' metadata: readout_offset must be in [0, 1024] "
    "(steps before the read-out window (one per synaptic layer)), found -7",
    "input_scale_nan.net": "'tsslbp' metadata: input_scale must be a finite number > 0, found nan",
    "n_steps_zero.net": "'tsslbp' metadata: n_steps must be in [1, 100000] "
    "(time steps per sample (TSSL-BP uses 5..100)), found 0",
    "n_steps_1e9.net": "'tsslbp' metadata: n_steps must be in [1, 100000] "
    "(time steps per sample (TSSL-BP uses 5..100)), found 1000000000",
    "format_version_one.net": "'tsslbp' format_version must be an integer in 1..1 "
    "(this tsslbp's format), found 'one'",
}


def test_corpus_is_complete() -> None:
    found = sorted(p.name for p in CORPUS.glob("*.net"))
    assert found == sorted(CORPUS_ERRORS), f"corpus files {found}, expected {sorted(CORPUS_ERRORS)}"


@pytest.mark.parametrize("name", sorted(CORPUS_ERRORS))
def test_corpus_file_error(name: str) -> None:
    path = CORPUS / name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NetxError) as info:
            read_netx(path)
    expected = f"{path}: {CORPUS_ERRORS[name]}"
    assert str(info.value) == expected, f"expected {expected!r}, found {str(info.value)!r}"


def test_undecodable_layer_name_is_a_netx_error(work: Path) -> None:
    # A damaged link name comes back from h5py as bytes; sorting it with str names was a TypeError.
    path = work / "bytes_key.net"
    shutil.copyfile(CORPUS / "missing_weight.net", path)
    with h5py.File(path, "r+") as f:
        f.move("layer/2", b"layer/\xff")
    with pytest.raises(
        NetxError, match=r"layer keys must be 0\.\.2, found \['0', '1', \"b'\\\\xff'\"\]"
    ):
        read_netx(path)


def test_zero_product_shape_is_a_netx_error(work: Path) -> None:
    # np.prod of (2**32, 2**32) wraps to 0: the message said "shape 0" (and a flat weight's
    # 'weight.size % n_out' would divide by zero). Sizes are now multiplied as Python ints, and
    # each dimension is bounded (tsslbp.safeio.LIMITS) before anything is allocated.
    path = work / "wrapped_shape.net"
    shutil.copyfile(CORPUS / "shape_mismatch.net", path)
    with h5py.File(path, "r+") as f:
        del f["layer/2/shape"]
        f["layer/2/shape"] = np.array([2**32, 2**32])
    with pytest.raises(
        NetxError, match=r"layer 2: 'shape' entry must be in \[1, 4194304\] .* found 4294967296"
    ):
        read_netx(path)
