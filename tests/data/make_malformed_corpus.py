"""Write the malformed-input corpus in ``tests/data/malformed/`` for every reader but netx.

One directory per reader (``idx``, ``cifar10``, ``nmnist``, ``checkpoint``, ``config``); each file has
one defect, and ``expected.json`` maps ``reader -> file -> fragment`` of the one-line error the reader
must give (``tests/test_malformed_corpus.py`` checks each file through the reader and through the
CLI). The netx corpus has its own generator (``make_netx_malformed.py``). Hand-made files (the YAML
configs, short byte strings) are written literally below; the rest are valid files damaged in one
way. Two files carry code that would run if a loader unpickled them naively (``os.system`` writing a
marker file, see :data:`MARKER`): the tests check the marker never appears. The random bytes come
from :data:`SEED`. Run from the repository root::

    .venv/bin/python tests/data/make_malformed_corpus.py
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import torch

SEED = 20261124
OUT = Path(__file__).resolve().parent / "malformed"
#: File the code-carrying pickles would create (in the current directory) if they ever ran.
MARKER = "TSSLBP_CORPUS_CODE_RAN"


class _RunsCode:
    """Unpickles to ``os.system("touch MARKER")``: proof of execution if a loader is unsafe."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    return (
        struct.pack(">BBBB", 0, 0, code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(">u1" if code == 0x08 else array.dtype).tobytes()
    )


def idx_cases(rng: np.random.Generator) -> dict[str, tuple[bytes, str]]:
    good = _idx(rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8))
    gz = gzip.compress(good, mtime=0)
    return {
        "empty.idx": (b"", "not an IDX file (bad magic number empty)"),
        "bad_magic.idx": (
            b"\x01\x02\x08\x01\x00\x00\x00\x01\x00",
            "not an IDX file (bad magic number 01020801)",
        ),
        "text.idx": (
            b"this is a text file, not IDX\n",
            "not an IDX file (bad magic number 74686973)",
        ),
        "unknown_type.idx": (b"\x00\x00\x07\x01\x00\x00\x00\x00", "unknown IDX type code 0x07"),
        "header_cut.idx": (good[:9], "truncated IDX header"),
        "many_dims_short.idx": (b"\x00\x00\x08\xff\x00\x00\x00\x01", "truncated IDX header"),
        "data_cut.idx": (good[:-5], "IDX data holds 43 bytes, the header (3, 4, 4) needs 48"),
        "data_extra.idx": (
            good + b"\x00\x01",
            "IDX data holds 50 bytes, the header (3, 4, 4) needs 48",
        ),
        "huge_dims.idx": (
            b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3,
            "IDX data holds 0 bytes, the header (4294967295, 4294967295, 4294967295) needs",
        ),
        "gzip_garbage.idx.gz": (
            b"\x1f\x8b" + bytes(rng.integers(0, 256, 40, dtype=np.uint8)),
            "corrupt gzip data",
        ),
        "gzip_cut.idx.gz": (gz[: len(gz) // 2], "corrupt gzip data"),
        "gzip_of_text.idx.gz": (
            gzip.compress(b"hello", mtime=0),
            "not an IDX file (bad magic number 68656c6c)",
        ),
    }


def _pickle(obj: object) -> bytes:
    # Protocol 4: numpy pickles its buffers as bytes (protocol 2 under Python 3 would route them
    # through _codecs.encode, which the CIFAR reader rightly refuses).
    return pickle.dumps(obj, protocol=4)


def cifar_cases(rng: np.random.Generator) -> dict[str, tuple[bytes, str]]:
    data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    good = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [0, 1, 2, 3],
        b"data": data,
        b"filenames": [b"a.png"] * 4,
    }
    raw = _pickle(good)

    def bad(**changes: object) -> bytes:
        return _pickle({**good, **{k.encode(): v for k, v in changes.items()}})

    no_labels = {k: v for k, v in good.items() if k != b"labels"}
    return {
        "empty": (b"", "corrupt or truncated pickle"),
        "garbage": (b"this is not a pickle at all", "corrupt or truncated pickle"),
        "random_bytes": (
            bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
            "corrupt or truncated pickle",
        ),
        "truncated": (raw[: len(raw) // 2], "corrupt or truncated pickle"),
        "not_a_dict": (_pickle([data, [0, 1, 2, 3]]), "expected a pickled dict, found list"),
        "no_labels": (_pickle(no_labels), "no b'labels' entry"),
        "data_is_list": (bad(data=[[0] * 3072] * 4), "b'data' is a list, expected a numpy array"),
        "data_float": (
            bad(data=data.astype(np.float32)),
            "b'data' has dtype float32, expected uint8",
        ),
        "data_short_rows": (
            bad(data=data[:, :3071]),
            "b'data' has shape (4, 3071), expected (N, 3072)",
        ),
        "label_count": (bad(labels=[0, 1, 2]), "3 labels for 4 images"),
        "label_range": (bad(labels=[0, 3, 10, 1]), "label 10 at index 2 is outside 0..9"),
        "label_strings": (bad(labels=["a", "b", "c", "d"]), "b'labels' is not a flat list of ints"),
        "runs_os_system": (_pickle(_RunsCode()), "unsafe pickle"),
        "runs_code_in_labels": (_pickle({**good, b"labels": [_RunsCode()] * 4}), "unsafe pickle"),
        "object_array": (bad(data=np.array([_RunsCode()] * 4, dtype=object)), "unsafe pickle"),
    }


def _event(x: int, y: int, polarity: int, ts: int) -> bytes:
    return bytes([x, y, (polarity << 7) | (ts >> 16) & 0x7F, (ts >> 8) & 0xFF, ts & 0xFF])


def nmnist_cases(rng: np.random.Generator) -> dict[str, tuple[bytes, str]]:
    good = b"".join(
        _event(int(x), int(y), int(p), 100 * i)
        for i, (x, y, p) in enumerate(
            zip(rng.integers(0, 34, 20), rng.integers(0, 34, 20), rng.integers(0, 2, 20))
        )
    )
    return {
        "empty.bin": (b"", "empty file (no events)"),
        "truncated.bin": (good[:-2], "98 bytes is not a multiple of 5 (truncated event)"),
        "text.bin": (b"not an event file\n", "18 bytes is not a multiple of 5"),
        "x_out_of_range.bin": (
            good[:10] + _event(34, 0, 1, 5000),
            "event 2 has x = 34, outside 0..33",
        ),
        "y_out_of_range.bin": (
            _event(0, 200, 0, 1) + good[:5],
            "event 0 has y = 200, outside 0..33",
        ),
        "random_bytes.bin": (
            bytes([255]) + bytes(rng.integers(0, 256, 49, dtype=np.uint8)),
            "event 0 has x = 255, outside 0..33",
        ),
    }


def _torch_bytes(obj: object, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def checkpoint_cases(rng: np.random.Generator) -> dict[str, tuple[bytes, str]]:
    # The smallest thing that passes the format checks; the model part is deliberately empty.
    marker = {"format": "tsslbp-checkpoint", "format_version": 1, "epoch": 1}
    valid_zip = _torch_bytes({**marker, "model": {"w": torch.zeros(2, 2)}})
    return {
        "empty.pt": (b"", "not a readable tsslbp checkpoint"),
        "text.pt": (b"epoch 3, accuracy 0.9\n", "not a readable tsslbp checkpoint"),
        "random_bytes.pt": (
            bytes(rng.integers(0, 256, 512, dtype=np.uint8)),
            "not a readable tsslbp checkpoint",
        ),
        "truncated.pt": (valid_zip[: len(valid_zip) // 2], "not a readable tsslbp checkpoint"),
        "plain_pickle.pt": (pickle.dumps({"model": {}}), "not a readable tsslbp checkpoint"),
        "runs_os_system.pt": (
            _torch_bytes({"model": _RunsCode()}),
            "not a readable tsslbp checkpoint",
        ),
        "runs_os_system_legacy.pt": (
            _torch_bytes(_RunsCode(), _use_new_zipfile_serialization=False),
            "not a readable tsslbp checkpoint",
        ),
        "foreign_state_dict.pt": (
            _torch_bytes({"fc.weight": torch.zeros(2, 2)}),
            "not a tsslbp checkpoint (no 'tsslbp-checkpoint' marker)",
        ),
        "a_list.pt": (
            _torch_bytes([1, 2, 3]),
            "not a tsslbp checkpoint (no 'tsslbp-checkpoint' marker)",
        ),
        "newer_version.pt": (
            _torch_bytes({**marker, "format_version": 99}),
            "checkpoint format 99 is newer than this tsslbp",
        ),
        "no_config.pt": (valid_zip, "checkpoint has no 'config' entry"),
        "bad_config.pt": (
            _torch_bytes(
                {**marker, "config": {"Network": {"n_steps": -1}, "Layers": {}}, "model": {}}
            ),
            "Network.n_steps",
        ),
        "wrong_weights.pt": (
            _torch_bytes(
                {
                    **marker,
                    "config": _DIGITS_CONFIG,
                    "model": {"layers.0.weight": torch.zeros(3, 3)},
                }
            ),
            "weights do not fit the network in its config",
        ),
        # Issue 15: checkpoints that loaded as valid before (no rng draws: the files above keep
        # their bytes).
        "nan_weights.pt": (
            _tiny_checkpoint(weight=_tiny_weight().masked_fill(_tiny_weight() > 0.5, float("nan"))),
            "layers.0.weight holds NaN or infinite values",
        ),
        "int64_weights.pt": (
            _tiny_checkpoint(weight=_tiny_weight().to(torch.int64)),
            "layers.0.weight has dtype int64, the model needs float32",
        ),
        "epoch_negative.pt": (
            _tiny_checkpoint(epoch=-5),
            "'epoch' must be an integer in [0, 1000000], found -5",
        ),
        "epoch_huge.pt": (
            _tiny_checkpoint(epoch=10**9),
            "'epoch' must be an integer in [0, 1000000], found 1000000000",
        ),
        "epoch_float.pt": (
            _tiny_checkpoint(epoch=1e9),
            "'epoch' must be an integer in [0, 1000000], found 1000000000.0",
        ),
        "seed_string.pt": (
            _tiny_checkpoint(seed="0; rm -rf /"),
            "'seed' must be an integer, found '0; rm -rf /'",
        ),
        "n_steps_1e9.pt": (
            _tiny_checkpoint(n_steps=10**9),
            "Network.n_steps: expected an integer in [1, 100000]",
        ),
    }


# A one-layer digits network (64 -> 10): the smallest checkpoint that loads.
_TINY_CONFIG = {
    "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3, "epochs": 1},
    "Layers": {"output": {"type": "linear", "n_inputs": 64, "n_outputs": 10}},
}


def _tiny_weight() -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 640, dtype=torch.float32).reshape(10, 64)


def _tiny_checkpoint(
    weight: torch.Tensor | None = None, epoch: object = 1, seed: object = 0, n_steps: int = 5
) -> bytes:
    config = json.loads(json.dumps(_TINY_CONFIG))
    config["Network"]["n_steps"] = n_steps
    return _torch_bytes(
        {
            "format": "tsslbp-checkpoint",
            "format_version": 1,
            "config": config,
            "seed": seed,
            "epoch": epoch,
            "model": {"layers.0.weight": _tiny_weight() if weight is None else weight},
        }
    )


# The shipped digits MLP config (64-200-10), as a checkpoint stores it.
_DIGITS_CONFIG = {
    "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3, "epochs": 1},
    "Layers": {
        "hidden": {"type": "linear", "n_inputs": 64, "n_outputs": 200},
        "output": {"type": "linear", "n_inputs": 200, "n_outputs": 10},
    },
}

_LAYERS = """Layers:
  hidden:
    type: linear
    n_inputs: 64
    n_outputs: 20
  output:
    type: linear
    n_inputs: 20
    n_outputs: 10
"""


def config_cases(rng: np.random.Generator) -> dict[str, tuple[bytes, str]]:
    cases = {
        "empty.yaml": ("", "(top level): expected a mapping of keys, found None"),
        "not_yaml.yaml": ("Network: [unclosed\n", "not valid YAML"),
        "tab_indent.yaml": ("Network:\n\tn_steps: 5\n", "not valid YAML"),
        "top_level_list.yaml": (
            "- Network\n- Layers\n",
            "(top level): expected a mapping of keys, found ['Network', 'Layers']",
        ),
        "no_layers.yaml": (
            "Network:\n  n_steps: 5\n",
            "Layers: expected a block of keys, found 'nothing (the block is missing)'",
        ),
        "unknown_network_key.yaml": (
            "Network:\n  n_step: 5\n" + _LAYERS,
            "Network.n_step: expected one of the keys n_steps, tau_m",
        ),
        "string_for_int.yaml": (
            "Network:\n  n_steps: five\n" + _LAYERS,
            "Network.n_steps: expected an integer in [1, 100000] (time steps per sample (TSSL-BP uses 5..100)), found 'five'",
        ),
        "negative_tau.yaml": (
            "Network:\n  tau_m: -2\n" + _LAYERS,
            "Network.tau_m: expected a number > 1",
        ),
        "bool_for_float.yaml": (
            "Network:\n  lr: true\n" + _LAYERS,
            "Network.lr: expected a number > 0, found True",
        ),
        "nan_lr.yaml": (
            "Network:\n  lr: .nan\n" + _LAYERS,
            "Network.lr: expected a number > 0, found nan",
        ),
        "unknown_dataset.yaml": (
            "Network:\n  dataset: imagenet\n" + _LAYERS,
            "Network.dataset: expected one of",
        ),
        "unknown_layer_type.yaml": (
            "Network:\n  n_steps: 5\nLayers:\n  a:\n    type: lstm\n",
            "Layers.a.type: expected one of",
        ),
        "size_mismatch.yaml": (
            "Network:\n  n_steps: 5\nLayers:\n  a:\n    type: linear\n    n_inputs: 64\n    n_outputs: 20\n"
            "  b:\n    type: linear\n    n_inputs: 21\n    n_outputs: 10\n",
            "Layers.b.n_inputs",
        ),
        "wrong_input_size.yaml": (
            "Network:\n  dataset: digits\nLayers:\n  a:\n    type: linear\n    n_inputs: 784\n    n_outputs: 10\n",
            "Layers.a.n_inputs",
        ),
        "binary.yaml": (
            bytes(rng.integers(0, 256, 64, dtype=np.uint8)),
            "not UTF-8 text (byte 0xec at offset 0)",
        ),
        # Issue 15.
        "duplicate_key.yaml": (
            "Network:\n  n_steps: 5\n  lr: 0.001\n  n_steps: 50\n" + _LAYERS,
            "duplicate key 'n_steps' at line 4 (first at line 2)",
        ),
        "duplicate_layer.yaml": (
            "Network:\n  n_steps: 5\n" + _LAYERS + "  hidden:\n    type: dropout\n    p: 0.5\n",
            "duplicate key 'hidden' at line 12 (first at line 4)",
        ),
        "n_steps_1e9.yaml": (
            "Network:\n  n_steps: 1000000000\n" + _LAYERS,
            "Network.n_steps: expected an integer in [1, 100000]",
        ),
        "seed_beyond_64_bits.yaml": (
            "Network:\n  seed: 100000000000000000000000\n" + _LAYERS,
            "Network.seed: expected an integer in [0, 18446744073709551615]",
        ),
        "weight_scale_1e308.yaml": (
            "Network:\n  n_steps: 5\nLayers:\n  out:\n    type: linear\n    n_inputs: 64\n"
            "    n_outputs: 10\n    weight_scale: 1e308\n",
            "Layers.out.weight_scale: expected a number in (0, 1000]",
        ),
        "huge_layer.yaml": (
            "Network:\n  n_steps: 5\nLayers:\n  a:\n    type: linear\n    n_inputs: 64\n"
            "    n_outputs: 1000000000\n  b:\n    type: linear\n    n_inputs: 1000000000\n"
            "    n_outputs: 10\n",
            "Layers.a.n_outputs: expected an integer in [1, 4194304]",
        ),
        "huge_weights.yaml": (
            "Network:\n  n_steps: 5\nLayers:\n  a:\n    type: linear\n    n_inputs: 64\n"
            "    n_outputs: 4000000\n  b:\n    type: linear\n    n_inputs: 4000000\n"
            "    n_outputs: 10\n",
            "Layers.a: expected an integer in [1, 67108864]",
        ),
    }
    return {
        name: (text if isinstance(text, bytes) else text.encode(), frag)
        for name, (text, frag) in cases.items()
    }


def main() -> None:
    rng = np.random.default_rng(SEED)
    if OUT.exists():
        shutil.rmtree(OUT)
    expected: dict[str, dict[str, str]] = {}
    for reader, cases in (
        ("idx", idx_cases(rng)),
        ("cifar10", cifar_cases(rng)),
        ("nmnist", nmnist_cases(rng)),
        ("checkpoint", checkpoint_cases(rng)),
        ("config", config_cases(rng)),
    ):
        (OUT / reader).mkdir(parents=True)
        for name, (raw, _fragment) in cases.items():
            (OUT / reader / name).write_bytes(raw)
        expected[reader] = {name: fragment for name, (_, fragment) in cases.items()}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"wrote {sum(len(v) for v in expected.values())} files in {OUT}")


if __name__ == "__main__":
    main()
