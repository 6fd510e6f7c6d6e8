"""Write the hand-made malformed netx corpus in ``tests/data/netx_malformed/`` (a dozen small files).

Each file is a small valid network (written by :func:`tsslbp.export.netx.write_netx`) with one
defect; ``tests/export/test_netx_fuzz.py`` checks the exact error :func:`read_netx` gives for each.
Several are crashes the fuzzer found (dangling link, values beyond int64, non-UTF-8 metadata, an
infinite input_message_bits, a damaged link name). The only randomness, the random-bytes file,
comes from ``SEED``. Run from the repository root::

    .venv/bin/python tests/data/make_netx_malformed.py
"""

from __future__ import annotations

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
