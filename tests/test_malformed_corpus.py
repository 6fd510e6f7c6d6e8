"""The malformed-input corpus (``tests/data/malformed``): every file gives its one-line error.

Each reader (IDX, CIFAR-10 pickles, N-MNIST events, checkpoints, YAML configs) is given every file
of its corpus directly, then through the command a user would run on it; the netx corpus
(``tests/data/netx_malformed``) goes through every command that reads a netx file. No file may
produce anything but the project's own error: one line naming the file, exit code 1, and no
traceback unless ``-v`` is given. The files that carry code (``runs_*``) must not run it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_config import CONFIGS

from tsslbp.cli import main
from tsslbp.config import ConfigError, load_config
from tsslbp.data import DataError, read_idx
from tsslbp.data.cifar10 import read_cifar_batch
from tsslbp.data.nmnist import read_events
from tsslbp.export.netx import NetxError, read_netx
from tsslbp.train.loop import CheckpointError, load_checkpoint, model_from_checkpoint

CORPUS = Path(__file__).resolve().parent / "data" / "malformed"
NETX_CORPUS = Path(__file__).resolve().parent / "data" / "netx_malformed"
EXPECTED: dict[str, dict[str, str]] = json.loads((CORPUS / "expected.json").read_text())
MARKER = "TSSLBP_CORPUS_CODE_RAN"  # tests/data/make_malformed_corpus.py

READERS = {
    "idx": (read_idx, DataError),
    "cifar10": (read_cifar_batch, DataError),
    "nmnist": (read_events, DataError),
    "checkpoint": (model_from_checkpoint, (CheckpointError, ConfigError)),
    "config": (load_config, ConfigError),
}
CASES = [(reader, name) for reader, files in sorted(EXPECTED.items()) for name in sorted(files)]


def test_corpus_covers_every_reader_and_matches_the_directory():
    assert set(EXPECTED) == set(READERS)
    for reader, files in EXPECTED.items():
        on_disk = {p.name for p in (CORPUS / reader).iterdir()}
        assert on_disk == set(files), (
            f"{reader}: corpus files and expected.json differ: {sorted(on_disk ^ set(files))}"
        )
        assert len(files) >= 6, f"{reader}: expected at least 6 malformed files, found {len(files)}"


def test_corpus_is_what_the_generator_writes(tmp_path, monkeypatch):
    """The committed files are exactly the generator's output (so the corpus can be rebuilt)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_corpus", CORPUS.parent / "make_malformed_corpus.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    monkeypatch.setattr(gen, "OUT", tmp_path / "malformed")
    gen.main()
    for reader, name in CASES:
        fresh, committed = (
            (tmp_path / "malformed" / reader / name).read_bytes(),
            (CORPUS / reader / name).read_bytes(),
        )
        assert fresh == committed, (
            f"{reader}/{name} differs from the generator's output: rerun the generator"
        )
    assert json.loads((tmp_path / "malformed" / "expected.json").read_text()) == EXPECTED


@pytest.mark.parametrize("reader, name", CASES)
def test_reader_gives_its_one_line_error(reader, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a code-carrying file would drop its marker
    read, error_type = READERS[reader]
    path = CORPUS / reader / name
    with pytest.raises(error_type) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(str(path)), (
        f"expected the message to start with the file name, found {message!r}"
    )
    assert EXPECTED[reader][name] in message, f"expected {EXPECTED[reader][name]!r} in {message!r}"
    assert "\n" not in message, f"expected one line, found {message!r}"
    assert not (tmp_path / MARKER).exists(), f"{name}: loading it ran the code it carries"


# --- the same files through the CLI --------------------------------------------------------------


def _one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, f"expected exit 1, found {result.exit_code}: {result.output!r}"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), (
        f"expected one 'Error:' line, found {result.output!r}"
    )
    assert "Traceback" not in result.output and fragment in lines[0], (
        f"expected {fragment!r} in {lines[0]!r}"
    )


def _data_dir(reader: str, corpus_file: Path, root: Path) -> tuple[Path, Path]:
    """A data directory whose first-read file is ``corpus_file``; returns (dir, that file's path)."""
    root.mkdir()
    if reader == "idx":
        stem = "train-images-idx3-ubyte" + (".gz" if corpus_file.suffix == ".gz" else "")
        for name in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ):
            target = root / (name + (".gz" if corpus_file.suffix == ".gz" else ""))
            shutil.copyfile(corpus_file, target)
        return root, root / stem
    if reader == "cifar10":
        for name in (
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
        ):
            shutil.copyfile(corpus_file, root / name)
        return root, root / "data_batch_1"
    assert reader == "nmnist"
    for split in ("Train", "Test"):
        (root / split / "3").mkdir(parents=True)
        shutil.copyfile(corpus_file, root / split / "3" / "00001.bin")
    return root, root / "Train" / "3" / "00001.bin"


_DATA_CONFIGS = {
    "idx": "fmnist_mlp_400_400.yaml",
    "cifar10": "cifar10_cnn1.yaml",
    "nmnist": "nmnist_cnn_t30.yaml",
}


@pytest.mark.parametrize("reader, name", [c for c in CASES if c[0] in _DATA_CONFIGS])
def test_train_on_a_malformed_data_file_is_one_line(reader, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_dir, bad_file = _data_dir(reader, CORPUS / reader / name, tmp_path / "data")
    args = [
        "train",
        str(CONFIGS / _DATA_CONFIGS[reader]),
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    result = CliRunner().invoke(main, args)
    _one_line_error(result, EXPECTED[reader][name])
    assert str(bad_file) in result.output, f"expected {bad_file} named in {result.output!r}"
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("name", sorted(EXPECTED["config"]))
def test_train_on_a_malformed_config_is_one_line(name, tmp_path):
    result = CliRunner().invoke(
        main, ["train", str(CORPUS / "config" / name), "--out", str(tmp_path / "run")]
    )
    _one_line_error(result, EXPECTED["config"][name])


@pytest.mark.parametrize("command", ["eval", "export"])
@pytest.mark.parametrize("name", sorted(EXPECTED["checkpoint"]))
def test_checkpoint_commands_on_a_malformed_checkpoint_are_one_line(
    command, name, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = [command, str(CORPUS / "checkpoint" / name)] + (
        ["-o", str(tmp_path / "m.net")] if command == "export" else []
    )
    result = CliRunner().invoke(main, args)
    _one_line_error(result, EXPECTED["checkpoint"][name])
    assert not (tmp_path / "m.net").exists(), "no netx file may be written from a bad checkpoint"
    assert not (tmp_path / MARKER).exists()


NETX_FILES = sorted(p.name for p in NETX_CORPUS.glob("*.net"))


@pytest.mark.parametrize("command", ["info", "verify", "deploy", "simulate"])
@pytest.mark.parametrize("name", NETX_FILES)
def test_netx_commands_on_a_malformed_file_are_one_line(command, name, tmp_path):
    path = NETX_CORPUS / name
    with pytest.raises(NetxError) as info:
        read_netx(path)
    args = [command, str(path)]
    if command == "simulate":
        np.save(tmp_path / "x.npy", np.zeros((4, 3), dtype=np.int64))
        args += ["--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]
    result = CliRunner().invoke(main, args)
    _one_line_error(result, str(info.value).removeprefix(str(path) + ": ")[:40])


def test_verbose_flag_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(main, ["-v", "eval", str(CORPUS / "checkpoint" / "truncated.pt")])
    assert result.exit_code != 0 and isinstance(result.exception, CheckpointError)
    plain = CliRunner().invoke(main, ["eval", str(CORPUS / "checkpoint" / "truncated.pt")])
    assert plain.exit_code == 1 and plain.exception is not None and "Traceback" not in plain.output


# --- generated: seeded byte-level mutations of valid files ----------------------------------------


def _valid_bytes(reader: str) -> bytes:
    """A small valid file for each byte-level reader (a corpus file with its defect undone)."""
    import io
    import pickle

    import torch

    rng = np.random.default_rng(7)
    if reader == "idx":
        arr = rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
        return (
            bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
        )
    if reader == "cifar10":
        return pickle.dumps(
            {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 9]},
            protocol=4,
        )
    if reader == "nmnist":
        return bytes(rng.integers(0, 34, 50, dtype=np.uint8))
    buf = io.BytesIO()
    torch.save(
        {"format": "tsslbp-checkpoint", "format_version": 1, "epoch": 0, "config": {}, "model": {}},
        buf,
    )
    return buf.getvalue()


_BYTE_READERS = {
    "idx": read_idx,
    "cifar10": read_cifar_batch,
    "nmnist": read_events,
    "checkpoint": load_checkpoint,
}


@pytest.mark.parametrize("reader", sorted(_BYTE_READERS))
def test_mutated_files_give_the_project_error_or_load(reader, tmp_path, monkeypatch, fuzz_counts):
    """Truncations, overwritten spans and insertions at seeded random places: load, or one-line error."""
    import warnings

    monkeypatch.chdir(tmp_path)
    good = _valid_bytes(reader)
    _BYTE_READERS[reader](_write(tmp_path / "good", good))  # the unmutated file loads
    rng = np.random.default_rng(20261124)
    n = 150
    for i in range(n):
        raw = bytearray(good)
        kind = i % 3
        at = int(rng.integers(0, len(raw)))
        if kind == 0:
            raw = raw[:at]
        elif kind == 1:
            span = int(rng.integers(1, 9))
            raw[at : at + span] = bytes(rng.integers(0, 256, span, dtype=np.uint8))
        else:
            raw[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
        path = _write(tmp_path / f"m{i}", bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on pickle protocols
            try:
                _BYTE_READERS[reader](path)
            except (DataError, CheckpointError, ConfigError) as err:
                assert str(err).startswith(str(path)) and "\n" not in str(err), (
                    f"mutation {i}: {err!r}"
                )
    fuzz_counts[reader] += n


def _write(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path
