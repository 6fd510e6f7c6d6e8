"""Property-based fuzzing of every untrusted-file reader against the I/O policy of issue 15.

Hypothesis builds hostile inputs for each reader and checks that the reader either returns a value
that satisfies the policy or raises the project's own one-line error, never anything else:

* HDF5 structure (netx through :func:`read_netx`, NIR through :func:`read_nir`): external, soft,
  dangling and cyclic links, virtual and externally stored datasets, datasets and attributes of huge
  declared size (chunked, compressed, never written) and of exotic dtypes, at any place in a valid
  file. A file holding a link or dataset that reads another file must always be refused.
* ``.npy`` headers (:func:`tsslbp.safeio.load_npy`): any dtype descriptor, shape, order and payload
  length; an array comes back only when numeric and within the size limit.
* checkpoints (:func:`model_from_checkpoint`) and the optimizer state ``train --resume`` loads
  (:func:`check_resume_state`): epochs, seeds, weight dtypes, shapes and NaNs, Adam moments of any
  shape; whatever passes the checks loads and steps without error.
* YAML configs: a key repeated anywhere is refused, naming both lines.

Counts are fixed under the "ci" hypothesis profile and add to the terminal summary's totals.
"""

from __future__ import annotations

import collections
import copy
import io
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tsslbp import safeio
from tsslbp.config import ConfigError, load_config, parse_config
from tsslbp.export.netx import NetxError, read_netx, write_netx
from tsslbp.export.nir_io import NirError, read_nir, spec_to_nir, write_nir
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, InputLayer, NetworkSpec
from tsslbp.train.loop import (
    CheckpointError,
    _checkpoint_state,
    check_resume_state,
    make_optimizer,
    model_from_checkpoint,
)
from tsslbp.train.network import TsslbpNetwork

#: Longest one example may take (the issue's target for a malformed input is < 10 s).
EXAMPLE_SECONDS = 10.0


def _examples(ci_count: int) -> int:
    return ci_count if settings.get_current_profile_name() == "ci" else settings().max_examples


def _spec() -> NetworkSpec:
    neuron = CubaNeuron(i_decay=1024, v_decay=128, v_th_mant=80)
    return NetworkSpec(
        layers=(
            InputLayer(shape=(4,), neuron=neuron),
            DenseLayer(np.array([[1, -2, 3, 4], [5, 6, -7, 8], [9, 10, 11, -12]]), neuron),
            DenseLayer(np.array([[1, -1, 2], [3, 4, -5]]), neuron),
        ),
        input_shape=(4,),
        metadata={"n_steps": 3, "n_class": 2},
    )


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("valid")
    write_netx(_spec(), root / "v.net")
    write_nir(spec_to_nir(_spec(), 1e-3), root / "v.nir")
    return {"netx": (root / "v.net").read_bytes(), "nir": (root / "v.nir").read_bytes()}


# --- HDF5 structure ------------------------------------------------------------------------------

#: Mutations that read another file: any file holding one must be refused.
READS_ELSEWHERE = ("external_link", "virtual", "external_storage", "soft_via_external")
MUTATIONS = (
    *READS_ELSEWHERE,
    "soft_link",
    "dangling_soft",
    "cycle",
    "huge_chunked",
    "exotic_dtype",
)
EXOTIC = ("complex64", "vlen", "compound", "ref", "opaque", "S64", "float64", "bool", "uint64")


def _exotic(kind: str) -> Any:
    return {
        "complex64": np.complex64,
        "vlen": h5py.vlen_dtype(np.int16),
        "compound": np.dtype([("a", np.int16), ("b", np.float32)]),
        "ref": h5py.ref_dtype,
        "opaque": np.dtype("V8"),
        "S64": np.dtype("S64"),
        "float64": np.float64,
        "bool": np.bool_,
        "uint64": np.uint64,
    }[kind]


def _all_paths(f: h5py.File) -> list[str]:
    out: list[str] = []
    f.visit(out.append)
    return sorted(out)


#: Valid files by format, filled by the ``valid_files`` fixture (kept out of strategy arguments,
#: whose repr hypothesis prints).
VALID: dict[str, bytes] = {}


@st.composite
def hdf5_mutation(draw: st.DrawFn, fmt: str, work: Path) -> tuple[Path, list[str]]:
    """A valid file with 1-3 structural mutations; returns (path, the mutation kinds applied)."""
    path = work / f"fuzz.{fmt}"
    path.write_bytes(VALID[fmt])
    kinds = draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3))
    applied = []
    with h5py.File(path, "r+") as f:
        for i, kind in enumerate(kinds):
            paths = _all_paths(f)
            groups = ["/"] + [p for p in paths if isinstance(f.get(p), h5py.Group)]
            parent = draw(st.sampled_from(groups))
            # The first mutation may replace a member; later ones only add (so none is undone).
            members = sorted(f[parent].keys()) if i == 0 else []
            name = draw(st.sampled_from([*members, f"zz_new{i}"]))
            where = f"{parent.rstrip('/')}/{name}"
            if f[parent].get(name, getlink=True) is not None:
                del f[where]
            try:
                _mutate(draw, f, kind, parent, name, where, paths)
            except (OSError, ValueError, KeyError, RuntimeError, TypeError):
                continue  # h5py could not build it there (name clash, cycle through a link)
            applied.append(kind)
    return path, applied


def _mutate(
    draw: st.DrawFn, f: h5py.File, kind: str, parent: str, name: str, where: str, paths: list[str]
) -> None:
    # Every size declares more than LIMITS["hdf5_dataset_bytes"] (256 MiB) as int16.
    size = draw(st.sampled_from([2 * 10**4, 10**6, 2 * 10**9]))
    if kind == "external_link":
        f[where] = h5py.ExternalLink(
            draw(st.sampled_from(["secret.h5", "/nonexistent.h5"])), "/data"
        )
    elif kind == "virtual":
        layout = h5py.VirtualLayout(shape=(3,), dtype=np.int16)
        layout[:] = h5py.VirtualSource("secret.h5", "/data", shape=(3,))
        f[parent].create_virtual_dataset(name, layout)
    elif kind == "external_storage":
        f[parent].create_dataset(name, shape=(3,), dtype=np.int16, external=[("secret.raw", 0, 6)])
    elif kind == "soft_via_external":
        if f.get("zz_ext", getlink=True) is None:
            f["zz_ext"] = h5py.ExternalLink("secret.h5", "/")
        f[where] = h5py.SoftLink("/zz_ext/data")
    elif kind == "soft_link":
        f[where] = h5py.SoftLink(draw(st.sampled_from(paths or ["/"])))
    elif kind == "dangling_soft":
        f[where] = h5py.SoftLink("/no/such/object")
    elif kind == "cycle":
        f[where] = f[parent]
    elif kind == "huge_chunked":
        f[parent].create_dataset(
            name, shape=(size, size), dtype=np.int16, chunks=(16, 16), compression="gzip"
        )
    else:
        f[parent].create_dataset(name, shape=(3,), dtype=_exotic(draw(st.sampled_from(EXOTIC))))


def _secret(work: Path) -> None:
    """The file an external link or virtual dataset would read."""
    with h5py.File(work / "secret.h5", "w") as f:
        f["data"] = np.array([7, 7, 7], dtype=np.int16)
    (work / "secret.raw").write_bytes(b"\x07\x00" * 3)


@pytest.mark.parametrize(
    "fmt, read, error, n",
    [("netx", read_netx, NetxError, 200), ("nir", read_nir, NirError, 150)],
)
def test_fuzz_hdf5_structure(
    fmt: str,
    read: Any,
    error: type,
    n: int,
    valid_files: dict[str, bytes],
    tmp_path: Path,
    fuzz_counts: collections.Counter,
) -> None:
    _secret(tmp_path)
    before = fuzz_counts[f"{fmt} structure"]

    VALID.update(valid_files)

    @settings(max_examples=_examples(n))
    @given(case=hdf5_mutation(fmt, tmp_path))
    def run(case: tuple[Path, list[str]]) -> None:
        path, kinds = case
        note(f"mutations {kinds}")
        fuzz_counts[f"{fmt} structure"] += 1
        t0 = time.monotonic()
        try:
            read(path)
        except error as exc:
            message = str(exc)
            assert message.startswith(str(path)) and "\n" not in message, message
        else:
            assert not set(kinds) & set(READS_ELSEWHERE), (
                f"{kinds}: read although it reads another file"
            )
            assert "huge_chunked" not in kinds, f"{kinds}: read a huge dataset"
        assert time.monotonic() - t0 < EXAMPLE_SECONDS

    run()
    assert fuzz_counts[f"{fmt} structure"] - before >= _examples(n) // 2


# --- .npy headers --------------------------------------------------------------------------------

DESCRS = [
    "<i8",
    "<i4",
    "|u1",
    "<f4",
    ">f8",
    "|b1",
    "<c16",
    "|O",
    "|V8",
    "<U5",
    "<M8[s]",
    "|S3",
    "[('a', '<i4')]",
    "'<i8'",
    "x",
    "<i8 ",
    "(3,)<i4",
]


@st.composite
def npy_files(draw: st.DrawFn, work: Path) -> Path:
    descr = draw(st.sampled_from(DESCRS))
    shape = draw(
        st.one_of(
            st.lists(st.integers(0, 6), max_size=3).map(tuple),
            st.lists(st.integers(-2, 2**40), min_size=1, max_size=4).map(tuple),
            st.sampled_from(["(3,", "None", "(1.5,)", "'x'", "()"]),
        )
    )
    fortran = draw(st.sampled_from(["False", "True", "0", "'no'"]))
    shape_text = shape if isinstance(shape, str) else repr(shape)
    descr_text = descr if descr.startswith(("[", "'")) else repr(descr)
    header = f"{{'descr': {descr_text}, 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    if draw(st.booleans()):
        header = header[: draw(st.integers(0, len(header)))]
    header = header.ljust(((len(header) + 11) // 64 + 1) * 64 - 11) + "\n"
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    length = len(header).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    payload = bytes(draw(st.integers(0, 300)))
    path = work / "fuzz.npy"
    path.write_bytes(b"\x93NUMPY" + version + length + header.encode("latin1") + payload)
    return path


def test_fuzz_npy_headers(tmp_path: Path, fuzz_counts: collections.Counter) -> None:
    before = fuzz_counts["npy"]
    limit = safeio.LIMITS["npy_bytes"].high

    @settings(max_examples=_examples(300))
    @given(path=npy_files(tmp_path))
    def run(path: Path) -> None:
        fuzz_counts["npy"] += 1
        note(repr(path.read_bytes()[:120]))
        try:
            arr = safeio.load_npy(path)
        except safeio.UnsafeFileError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        else:
            assert arr.dtype.kind in "biuf" and arr.dtype.fields is None, arr.dtype
            assert arr.nbytes <= limit

    run()
    assert fuzz_counts["npy"] - before >= _examples(300) // 2


# --- checkpoints and optimizer state ---------------------------------------------------------------

TINY = {
    "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3, "epochs": 2},
    "Layers": {"output": {"type": "linear", "n_inputs": 64, "n_outputs": 10}},
}


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, Any]:
    cfg = parse_config(TINY, "tiny")
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    optimizer = make_optimizer(model, cfg)
    model.layers[0].weight.grad = torch.ones_like(model.layers[0].weight)
    optimizer.step()
    return _checkpoint_state(model, optimizer, cfg, 1, [], None)


ODD_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
)


def _weight_variant(draw: st.DrawFn, like: torch.Tensor) -> torch.Tensor:
    kind = draw(st.sampled_from(["same", "nan", "inf", "dtype", "shape", "scalar"]))
    w = like.clone()
    if kind in ("nan", "inf") and not w.is_floating_point():
        w = w.float()  # an earlier mutation made it an integer tensor
    if kind == "nan":
        w.view(-1)[draw(st.integers(0, w.numel() - 1))] = float("nan")
    elif kind == "inf":
        w.view(-1)[0] = float("-inf")
    elif kind == "dtype":
        w = w.to(draw(st.sampled_from([torch.float64, torch.float16, torch.int64, torch.bool])))
    elif kind == "shape":
        w = torch.zeros(draw(st.integers(1, 4)), draw(st.integers(1, 70)))
    elif kind == "scalar":
        w = torch.tensor(1.0)
    return w


@st.composite
def checkpoint_states(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    state = copy.deepcopy(base)
    for key in draw(
        st.lists(st.sampled_from(["epoch", "seed", "weight", "n_steps", "batch_size"]), max_size=3)
    ):
        if key == "weight":
            state["model"]["layers.0.weight"] = _weight_variant(
                draw, state["model"]["layers.0.weight"]
            )
        elif key in ("n_steps", "batch_size"):
            state["config"]["Network"][key] = draw(ODD_VALUES)
        else:
            state[key] = draw(ODD_VALUES)
    return state


def test_fuzz_checkpoints(
    tiny_state: dict[str, Any], tmp_path: Path, fuzz_counts: collections.Counter
) -> None:
    before = fuzz_counts["checkpoint state"]

    @settings(max_examples=_examples(150))
    @given(state=checkpoint_states(tiny_state))
    def run(state: dict[str, Any]) -> None:
        fuzz_counts["checkpoint state"] += 1
        path = tmp_path / "fuzz.pt"
        buf = io.BytesIO()
        torch.save(state, buf)
        path.write_bytes(buf.getvalue())
        try:
            model, cfg, loaded = model_from_checkpoint(path)
        except (CheckpointError, ConfigError) as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        else:
            for name, tensor in model.state_dict().items():
                assert tensor.dtype == torch.float32 and torch.isfinite(tensor).all(), name
            assert isinstance(loaded["epoch"], int) and 0 <= loaded["epoch"] <= 10**6
            assert 1 <= cfg.n_steps <= safeio.LIMITS["n_steps"].high

    run()
    assert fuzz_counts["checkpoint state"] - before >= _examples(150) // 2


@st.composite
def optimizer_states(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    state = copy.deepcopy(base)
    opt = state["optimizer"]
    for key in draw(
        st.lists(
            st.sampled_from(
                ["exp_avg", "exp_avg_sq", "step", "index", "lr", "groups", "drop", "metrics"]
            ),
            max_size=3,
        )
    ):
        entry = opt["state"].get(0)
        if key in ("exp_avg", "exp_avg_sq") and entry is not None and key in entry:
            entry[key] = _weight_variant(draw, entry[key])
        elif key == "step" and entry is not None:
            entry["step"] = draw(
                st.one_of(
                    ODD_VALUES,
                    st.sampled_from(
                        [
                            torch.tensor(-1.0),
                            torch.tensor([1.0, 2.0]),
                            torch.tensor(3, dtype=torch.int64),
                        ]
                    ),
                )
            )
        elif key == "index":
            opt["state"][draw(st.integers(-3, 5))] = opt["state"].pop(0, {})
        elif key == "lr" and opt["param_groups"]:
            opt["param_groups"][0][draw(st.sampled_from(["lr", "betas", "eps", "fused"]))] = draw(
                ODD_VALUES
            )
        elif key == "groups":
            opt["param_groups"] = opt["param_groups"] * draw(st.integers(0, 2))
        elif key == "drop" and entry is not None:
            entry.pop(draw(st.sampled_from(["step", "exp_avg", "exp_avg_sq"])), None)
        elif key == "metrics":
            state["metrics"] = draw(st.sampled_from([None, [1], [{"epoch": 1}], "x"]))
    return state


def test_fuzz_optimizer_state_on_resume(
    tiny_state: dict[str, Any], tmp_path: Path, fuzz_counts: collections.Counter
) -> None:
    before = fuzz_counts["optimizer state"]
    cfg = parse_config(TINY, "tiny")

    @settings(max_examples=_examples(150))
    @given(state=optimizer_states(tiny_state))
    def run(state: dict[str, Any]) -> None:
        fuzz_counts["optimizer state"] += 1
        model = TsslbpNetwork(cfg)
        optimizer = make_optimizer(model, cfg)
        path = tmp_path / "last.pt"
        try:
            check_resume_state(path, model, optimizer, cfg, state)
        except CheckpointError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
            return
        # Whatever passes the checks loads, and the next step leaves finite weights.
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        model.layers[0].weight.grad = torch.ones_like(model.layers[0].weight)
        optimizer.step()
        assert torch.isfinite(model.layers[0].weight).all()

    run()
    assert fuzz_counts["optimizer state"] - before >= _examples(150) // 2


# --- YAML duplicate keys ---------------------------------------------------------------------------

BASE_YAML = [
    "Network:",
    "  dataset: digits",
    "  n_steps: 5",
    "  lr: 0.001",
    "Layers:",
    "  hidden:",
    "    type: linear",
    "    n_inputs: 64",
    "    n_outputs: 20",
    "  output:",
    "    type: linear",
    "    n_inputs: 20",
    "    n_outputs: 10",
]


def test_fuzz_yaml_duplicate_keys(tmp_path: Path, fuzz_counts: collections.Counter) -> None:
    before = fuzz_counts["yaml duplicates"]

    @settings(max_examples=_examples(150))
    @given(source=st.integers(0, len(BASE_YAML) - 1), data=st.data())
    def run(source: int, data: st.DataObject) -> None:
        fuzz_counts["yaml duplicates"] += 1
        line = BASE_YAML[source]
        indent = len(line) - len(line.lstrip())
        # Repeat a key line later in the same mapping (after its own block, before the next key
        # of the same or a lower indent).
        end = source + 1
        while end < len(BASE_YAML) and len(BASE_YAML[end]) - len(BASE_YAML[end].lstrip()) > indent:
            end += 1
        block = BASE_YAML[source:end]
        # Insert where a sibling key of the same mapping starts, or at the mapping's end.
        stop = _mapping_end(end, indent)
        spots = [i for i in range(end, stop) if _indent(BASE_YAML[i]) == indent] + [stop]
        insert = data.draw(st.sampled_from(spots))
        # The repeat may quote its key and carry another value: still the same key.
        key_text, _, value = block[0].strip().partition(":")
        if data.draw(st.booleans()):
            key_text = f'"{key_text}"'
        if value.strip():
            value = " " + str(data.draw(st.integers(-(10**6), 10**6)))
        block = [" " * indent + key_text + ":" + value, *block[1:]]
        lines = BASE_YAML[:insert] + block + BASE_YAML[insert:]
        path = tmp_path / "dup.yaml"
        path.write_text("\n".join(lines) + "\n")
        key = line.strip().split(":")[0]
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert (
            f"duplicate key '{key}' at line {insert + 1} (first at line {source + 1})" in message
        ), message

    run()
    assert fuzz_counts["yaml duplicates"] - before >= _examples(150) // 2


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _mapping_end(start: int, indent: int) -> int:
    """Index of the first line after ``start`` whose indent is below ``indent`` (the mapping's end)."""
    i = start
    while i < len(BASE_YAML) and len(BASE_YAML[i]) - len(BASE_YAML[i].lstrip()) >= indent:
        i += 1
    return i
