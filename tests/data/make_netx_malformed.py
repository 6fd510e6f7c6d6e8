"""Write the hand-made malformed netx corpus in ``tests/data/netx_malformed/`` (a dozen small files).

Each file is a small valid network (written by :func:`tsslbp.export.netx.write_netx`) with one
defect; ``tests/export/test_netx_fuzz.py`` checks the exact error :func:`read_netx` gives for each.
Several are crashes the fuzzer found (dangling link, values beyond int64, non-UTF-8 metadata, an
infinite input_message_bits, a damaged link name); :data:`HOSTILE` holds the files of issue 15
(links out of the file, virtual and external datasets, memory bombs declared in a few KB, exotic
dtypes, cycles, metadata contradicting the layers), each refused before any value is read. The only randomness, the random-bytes file,
comes from ``SEED``. Run from the repository root::

    .venv/bin/python tests/data/make_netx_malformed.py
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from tsslbp.export.netx import write_netx
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, InputLayer, NetworkSpec

SEED = 20240606
OUT = Path(__file__).resolve().parent / "netx_malformed"


def _valid(path: Path) -> None:
    """input (4) -> dense (3) -> dense (2)."""
    neuron = CubaNeuron(i_decay=1024, v_decay=128, v_th_mant=80)
    spec = NetworkSpec(
        layers=(
            InputLayer(shape=(4,), neuron=neuron),
            DenseLayer(np.array([[1, -2, 3, 4], [5, 6, -7, 8], [9, 10, 11, -12]]), neuron),
            DenseLayer(np.array([[1, -1, 2], [3, 4, -5]]), neuron),
        ),
        input_shape=(4,),
        metadata={"n_steps": 3},
    )
    write_netx(spec, path)


def _replace(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=value)

    return edit


def _dangling(f: h5py.File) -> None:
    del f["layer/1/weight"]
    f["layer/1/weight"] = h5py.SoftLink("/nowhere")


def _attr(key: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f["tsslbp"].attrs[key] = value

    return edit


def _weight(**create: object) -> Callable[[h5py.File], None]:
    """Replace layer 1's weight by a dataset made with ``create_dataset(**create)``."""

    def edit(f: h5py.File) -> None:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", **create)

    return edit


def _link(link: object, name: str = "layer/1/weight") -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[name]
        f[name] = link

    return edit


def _soft_via_external(f: h5py.File) -> None:
    # A soft link inside the file whose path runs through an external link (named to sort last).
    f["zz_elsewhere"] = h5py.ExternalLink("missing_weight.net", "/layer")
    del f["layer/1/weight"]
    f["layer/1/weight"] = h5py.SoftLink("/zz_elsewhere/2/weight")


def _virtual(f: h5py.File) -> None:
    layout = h5py.VirtualLayout(shape=(3, 4), dtype=np.int16)
    layout[:] = h5py.VirtualSource("missing_weight.net", "layer/2/weight", shape=(3, 4))
    del f["layer/1/weight"]
    f["layer/1"].create_virtual_dataset("weight", layout)


def _cycle(f: h5py.File) -> None:
    f["layer/1/again"] = f["layer/1"]  # a hard link to its own parent


def _deep(f: h5py.File) -> None:
    f.create_group("/".join(["d"] * 40))


def _metadata(**entries: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f["tsslbp"].attrs["metadata"] = json.dumps({"n_steps": 3, **entries})

    return edit


#: Hostile structure and memory bombs (issue 15): each must be refused before any value is read.
HOSTILE: dict[str, Callable[[h5py.File], None]] = {
    "external_link_absolute.net": _link(
        h5py.ExternalLink("/etc/tsslbp-other.net", "/layer/1/weight")
    ),
    "external_link_relative.net": _link(h5py.ExternalLink("missing_weight.net", "/layer/2/weight")),
    "soft_link_via_external.net": _soft_via_external,
    "virtual_dataset.net": _virtual,
    "external_storage.net": _weight(
        shape=(3, 4), dtype=np.int16, external=[("weights.raw", 0, 24)]
    ),
    # 20000 x 20000 int16 (800 MB) in gzip chunks never written: the file stays a few KB.
    "gzip_bomb.net": _weight(
        shape=(20000, 20000), dtype=np.int16, chunks=(1000, 1000), compression="gzip", fillvalue=1
    ),
    "weight_declared_huge.net": _weight(
        shape=(200, 2_000_000_000), dtype=np.int16, chunks=(1, 4096)
    ),
    # Within the file-wide cap, but far beyond the 3 x 4 weight the layer shapes allow.
    "weight_beyond_layer.net": _weight(
        shape=(3, 1_000_000), dtype=np.int16, chunks=(1, 4096), compression="gzip"
    ),
    "complex_weight.net": _weight(data=np.ones((3, 4), dtype=np.complex64)),
    "vlen_weight.net": _weight(shape=(3,), dtype=h5py.vlen_dtype(np.int16)),
    "compound_weight.net": _weight(data=np.zeros((3, 4), dtype=[("a", np.int16), ("b", np.int16)])),
    "reference_weight.net": _weight(shape=(3,), dtype=h5py.ref_dtype),
    "group_cycle.net": _cycle,
    "deep_nesting.net": _deep,
    # Metadata that contradicts the layers or is out of range.
    "n_class_1000.net": _metadata(n_class=1000),
    "readout_offset_negative.net": _metadata(readout_offset=-7),
    "input_scale_nan.net": _metadata(input_scale=float("nan")),
    "n_steps_zero.net": lambda f: f["tsslbp"].attrs.__setitem__(
        "metadata", json.dumps({"n_steps": 0})
    ),
    "n_steps_1e9.net": lambda f: f["tsslbp"].attrs.__setitem__(
        "metadata", json.dumps({"n_steps": 10**9})
    ),
    "format_version_one.net": _attr("format_version", "one"),
}

#: file name -> edit of the valid file (h5py, in place).
EDITS: dict[str, Callable[[h5py.File], None]] = {
    "missing_layer_group.net": lambda f: f.move("layer", "layers"),
    "layer_key_gap.net": lambda f: f.move("layer/2", "layer/3"),
    "unknown_layer_type.net": _replace("layer/1/type", np.array([b"pool"])),
    "unknown_neuron_type.net": _replace("layer/2/neuron/type", "SIGMA"),
    "missing_weight.net": lambda f: f.__delitem__("layer/1/weight"),
    "weight_is_group.net": lambda f: (
        f.__delitem__("layer/1/weight"),
        f.create_group("layer/1/weight"),
    ),
    "string_weight.net": _replace("layer/2/weight", np.bytes_(b"weights")),
    "nan_decay.net": _replace("layer/1/neuron/iDecay", np.float64(np.nan)),
    "huge_uint64_weight.net": _replace(
        "layer/2/weight", np.full((2, 3), 2**64 - 1, dtype=np.uint64)
    ),
    "huge_float_threshold.net": _replace("layer/1/neuron/vThMant", np.float64(1e300)),
    "shape_mismatch.net": _replace("layer/2/shape", np.array([5])),
    "dangling_weight_link.net": _dangling,
    "metadata_not_utf8.net": _attr("metadata", np.bytes_(b"\xff{}")),
    "message_bits_inf.net": _attr("input_message_bits", np.float64(np.inf)),
    **HOSTILE,
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        valid = Path(tmp) / "valid.net"
        _valid(valid)
        data = valid.read_bytes()
    for name, edit in EDITS.items():
        path = OUT / name
        path.write_bytes(data)
        with h5py.File(path, "r+") as f:
            edit(f)
    (OUT / "empty.net").write_bytes(b"")
    (OUT / "truncated.net").write_bytes(data[: len(data) // 3])
    (OUT / "random_bytes.net").write_bytes(np.random.default_rng(SEED).bytes(512))
    (OUT / "text.net").write_text("layer:\n  0: {type: dense}\n")


if __name__ == "__main__":
    main()
