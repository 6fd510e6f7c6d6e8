"""Untrusted files through the CLI (issue 15): one I/O policy for every reader and writer.

Each class of the issue is driven through the command a user would run: writers refuse devices,
FIFOs and directories and keep normal permissions; readers never hang on a FIFO; ``.npy`` inputs are
checked header first; graded inputs outside the port's width are refused; training stops on a
non-finite loss, keeps its last good checkpoint and locks its output directory; ``--resume`` checks
the optimizer state before loading it; a full disk is one line. The hostile netx and config /
checkpoint corpora are in ``tests/data`` (``test_malformed_corpus.py``, ``test_netx_fuzz.py``); the
memory bombs are also run in a subprocess under an address-space cap (``RLIMIT_AS``).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from tsslbp import safeio
from tsslbp.cli import main
from tsslbp.config import parse_config
from tsslbp.export.netx import write_netx
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec
from tsslbp.train.loop import _checkpoint_state, make_optimizer, save_checkpoint
from tsslbp.train.network import TsslbpNetwork

ROOT = Path(__file__).resolve().parents[1]
NETX_CORPUS = ROOT / "tests" / "data" / "netx_malformed"

TINY_CONFIG = {
    "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3, "epochs": 1},
    "Layers": {"output": {"type": "linear", "n_inputs": 64, "n_outputs": 10}},
}
TINY_YAML = """Network:
  dataset: digits
  n_steps: 5
  epochs: {epochs}
  batch_size: 100
Layers:
  output:
    type: linear
    n_inputs: 64
    n_outputs: 10
"""


def _one_line_error(result, fragment: str, code: int = 1) -> str:
    assert result.exit_code == code, (
        f"expected exit {code}, found {result.exit_code}: {result.output!r}"
    )
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), (
        f"expected an 'Error:' line: {result.output!r}"
    )
    assert "Traceback" not in result.output, f"traceback in {result.output!r}"
    assert fragment in lines[-1], f"expected {fragment!r} in {lines[-1]!r}"
    return lines[-1]


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a blocking open of a FIFO is interrupted by the alarm)."""

    def fire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s (blocked on a FIFO?)")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def graded_net(tmp_path: Path) -> Path:
    """A 4 -> 3 -> 2 dense network with 8-bit graded input."""
    neuron = CubaNeuron(i_decay=1024, v_decay=128, v_th_mant=80)
    spec = NetworkSpec(
        layers=(
            DenseLayer(np.array([[1, -2, 3, 4], [5, 6, -7, 8], [9, 10, 11, -12]]), neuron),
            DenseLayer(np.array([[1, -1, 2], [3, 4, -5]]), neuron),
        ),
        input_shape=(4,),
        input_message_bits=8,
        metadata={"n_steps": 3, "n_class": 2},
    )
    path = tmp_path / "graded.net"
    write_netx(spec, path)
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A loadable checkpoint of a one-layer digits network (with an Adam state after one step)."""
    cfg = parse_config(TINY_CONFIG, "tiny")
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    optimizer = make_optimizer(model, cfg)
    model.layers[0].weight.grad = torch.ones_like(model.layers[0].weight)
    optimizer.step()
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, _checkpoint_state(model, optimizer, cfg, 1, [], None))
    return path


# --- writers --------------------------------------------------------------------------------------


def test_outputs_refuse_devices_fifos_and_directories(
    graded_net: Path, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((4, 3), dtype=np.int64))
    for target, kind in ((Path("/dev/full"), "a character device"), (fifo, "a FIFO")):
        before = os.stat(target)
        for args in (
            ["nir-export", str(graded_net), "-o", str(target)],
            ["simulate", str(graded_net), "--input", str(x), "--output", str(target)],
            ["export", str(tiny_checkpoint), "-o", str(target), "--calibration", "20"],
        ):
            with _deadline(60):
                result = CliRunner().invoke(main, args)
            _one_line_error(result, f"{target}: is {kind}; tsslbp writes only regular files")
            after = os.stat(target)
            assert (after.st_mode, after.st_rdev, after.st_ino) == (
                before.st_mode,
                before.st_rdev,
                before.st_ino,
            ), f"{args[0]} replaced {target}"
    left = [p for p in Path("/dev").glob("full?*")]
    for path in left:  # what a writer that follows np.save's naming left behind
        path.unlink()
    assert not left, f"files written into /dev: {[p.name for p in left]}"
    result = CliRunner().invoke(main, ["nir-export", str(graded_net), "-o", str(tmp_path)])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output


def test_outputs_get_normal_permissions(graded_net: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(
            main, ["nir-export", str(graded_net), "-o", str(tmp_path / "m.nir")]
        )
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(
            main, ["nir-import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "back.net")]
        )
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    for name in ("m.nir", "back.net"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o644, f"{name}: expected 0644 under umask 022, found {mode:o}"


def test_disk_full_is_one_line(graded_net: Path, tmp_path: Path, monkeypatch) -> None:
    import nir

    def full(path, graph):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nir, "write", full)
    result = CliRunner().invoke(
        main, ["nir-export", str(graded_net), "-o", str(tmp_path / "m.nir")]
    )
    _one_line_error(result, "m.nir: no space left on device (nothing was written)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graded.net"], "temporary file left"


def test_disk_full_in_h5py_text_is_one_line(tmp_path: Path) -> None:
    # h5py reports a full disk as a multi-line message without errno.
    with pytest.raises(safeio.OutputError, match=r"^\S+a\.bin: no space left on device"):
        with safeio.atomic_output(tmp_path / "a.bin"):
            raise RuntimeError(
                "Can't write data (file write failed: errno = 28, error message = "
                "'No space left on device')\n  second line"
            )
    assert list(tmp_path.iterdir()) == []


# --- readers --------------------------------------------------------------------------------------


def test_fifo_inputs_are_refused_without_hanging(graded_net: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((4, 3), dtype=np.int64))
    cases = [
        (["info", str(fifo)], "is a FIFO, not a regular file"),
        (["lint", str(fifo)], "is a FIFO, not a regular file"),
        (["nir-import", str(fifo), "-o", str(tmp_path / "m.net")], "is a FIFO, not a regular file"),
        (
            [
                "simulate",
                str(graded_net),
                "--input",
                str(fifo),
                "--output",
                str(tmp_path / "y.npy"),
            ],
            "is a FIFO, not a regular file",
        ),
        (["eval", str(fifo)], "is a FIFO, not a regular file"),
        (["train", str(fifo), "--out", str(tmp_path / "run")], "is a FIFO, not a regular file"),
    ]
    for args, fragment in cases:
        # The deadline catches a blocking open; the CPU time (not wall time, which other jobs on
        # the machine stretch) shows nothing was read or processed before the refusal.
        cpu0 = time.process_time()
        with _deadline(30):
            result = CliRunner().invoke(main, args)
        # click's Path(dir_okay=False) accepts a FIFO; the library refuses it.
        _one_line_error(result, fragment)
        cpu = time.process_time() - cpu0
        assert cpu < 10, f"{args[0]} took {cpu:.1f} s of CPU"


def _npy_with_header(path: Path, header: dict, payload: bytes = b"") -> Path:
    buf = path.open("wb")
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(payload)
    buf.close()
    return path


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("npz", "an .npz archive, expected one .npy array"),
        ("structured", "is not accepted (numeric arrays only"),
        ("object", "dtype object is not accepted"),
        ("complex", "dtype complex128 is not accepted"),
        ("bomb", "the header declares 54975581388800 bytes (shape (4, 1717986918400, 1), int64)"),
        ("truncated", "cut short: the header declares 96 bytes of data, the file holds 8"),
        ("text", "not a .npy file (no NumPy magic)"),
    ],
)
def test_npy_inputs_are_checked_header_first(
    case: str, fragment: str, graded_net: Path, tmp_path: Path
) -> None:
    x = tmp_path / "x.npy"
    if case == "npz":
        np.savez(tmp_path / "x.npz", a=np.zeros((4, 3)))
        (tmp_path / "x.npz").rename(x)
    elif case == "structured":
        np.save(x, np.zeros((4, 3), dtype=[("a", "<i4")]))
    elif case == "object":
        np.save(x, np.array([[None] * 3] * 4, dtype=object), allow_pickle=True)
    elif case == "complex":
        np.save(x, np.zeros((4, 3), dtype=np.complex128))
    elif case == "bomb":  # 46 TiB declared in a 128-byte file
        _npy_with_header(
            x, {"descr": "<i8", "fortran_order": False, "shape": (4, 1717986918400, 1)}
        )
    elif case == "truncated":
        _npy_with_header(x, {"descr": "<i8", "fortran_order": False, "shape": (4, 3)}, b"\0" * 8)
    else:
        x.write_text("1 2 3\n")
    for args in (
        ["simulate", str(graded_net), "--input", str(x), "--output", str(tmp_path / "y.npy")],
        ["report", str(graded_net), "--input", str(x)],
    ):
        _one_line_error(CliRunner().invoke(main, args), fragment)


@pytest.mark.parametrize(
    "values, fragment",
    [
        (np.full((4, 3), 31000, dtype=np.int64), "found values from 31000 to 31000"),
        (np.full((4, 3), -1, dtype=np.int64), "found values from -1 to -1"),
        (np.full((4, 3), 2.0**63), "found values from 9.223372036854776e+18"),
        (np.full((4, 3), 2**63, dtype=np.uint64), "found values from 9223372036854775808"),
    ],
)
def test_graded_inputs_outside_the_port_width_are_refused(
    values: np.ndarray, fragment: str, graded_net: Path, tmp_path: Path
) -> None:
    x = tmp_path / "x.npy"
    np.save(x, values)
    for args in (
        ["simulate", str(graded_net), "--input", str(x), "--output", str(tmp_path / "y.npy")],
        ["report", str(graded_net), "--input", str(x)],
    ):
        line = _one_line_error(CliRunner().invoke(main, args), fragment)
        assert "graded 8-bit inputs must be in [0, 255]" in line, line


def test_simulate_steps_beyond_the_limit_is_a_bad_option(graded_net: Path, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((4, 3), dtype=np.int64))
    args = ["simulate", str(graded_net), "--input", str(x), "--output", str(tmp_path / "y.npy")]
    result = CliRunner().invoke(main, [*args, "--steps", "1000000000"])
    assert result.exit_code == 2 and "1000000000 is not in the range 1<=x<=1000000" in result.output
    ok = CliRunner().invoke(main, [*args, "--steps", "7"])
    assert ok.exit_code == 0, ok.output
    assert np.load(tmp_path / "y.npy").shape == (2, 7)


# --- training -------------------------------------------------------------------------------------


def test_second_run_into_the_same_out_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML.format(epochs=1))
    out = tmp_path / "run"
    out.mkdir()
    with safeio.run_lock(out):
        result = CliRunner().invoke(
            main, ["train", str(config), "--out", str(out), "--no-progress"]
        )
    line = _one_line_error(result, f"{out}: another tsslbp run (pid {os.getpid()}) is writing here")
    assert "--out" in line
    assert not (out / "last.pt").exists()
    # Free again once the first run is over.
    result = CliRunner().invoke(main, ["train", str(config), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output


def test_seed_beyond_64_bits_is_a_bad_option(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML.format(epochs=1))
    result = CliRunner().invoke(
        main, ["train", str(config), "--seed", str(2**64), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    # The largest seed trains (the per-epoch seeds wrap within 64 bits).
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(config),
            "--seed",
            str(2**64 - 1),
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch
) -> None:
    from tsslbp.train import loop

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML.format(epochs=3))
    out = tmp_path / "run"
    real = loop.loss_function

    def poisoned(cfg):
        fn = real(cfg)
        calls = {"n": 0}

        def loss(out_spikes, labels):
            calls["n"] += 1
            value = fn(out_spikes, labels)
            # Epoch 1 has 15 batches of 100 (1437 training digits); NaN from epoch 2, batch 3.
            return value * float("nan") if calls["n"] == 3 and poisoned.epoch == 2 else value

        return loss

    poisoned.epoch = 0
    real_epoch = loop.train_epoch

    def counting_epoch(model, split, cfg, optimizer, epoch, *args, **kwargs):
        poisoned.epoch = epoch
        return real_epoch(model, split, cfg, optimizer, epoch, *args, **kwargs)

    monkeypatch.setattr(loop, "loss_function", poisoned)
    monkeypatch.setattr(loop, "train_epoch", counting_epoch)
    result = CliRunner().invoke(
        main, ["train", str(config), "--out", str(out), "--no-progress", "--checkpoint-every", "0"]
    )
    _one_line_error(result, "training diverged: the loss is nan in epoch 2, batch 2")
    state = torch.load(out / "last.pt", weights_only=True)
    # Saved after every batch: the last good state is epoch 2 after 2 batches, all weights finite.
    assert state["partial"]["epoch"] == 2 and state["partial"]["batches_done"] == 2, state[
        "partial"
    ]
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_resume_checks_the_optimizer_state_before_loading_it(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML.format(epochs=2))
    out = tmp_path / "run"
    out.mkdir()
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["config"] = parse_config(yaml.safe_load(config.read_text()), "tiny").to_dict()
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3, 3)  # was (10, 64)
    state["metrics"] = []
    save_checkpoint(out / "last.pt", state)
    # In a subprocess: the unchecked load crashed the interpreter (SIGSEGV in the fused Adam).
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsslbp",
            "train",
            str(config),
            "--out",
            str(out),
            "--resume",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        f"Error: {out / 'last.pt'}: optimizer exp_avg of parameter 0 is (3, 3), the model needs (10, 64)"
    ), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


# --- memory bombs under an address-space cap --------------------------------------------------------

#: torch and numba need a few GiB of address space just to import; the bombs declare far more.
AS_CAP = 4 << 30


#: Peak resident memory a malformed input may cost (the issue's target), Python and torch included.
RSS_CAP = 1 << 30

# Runs ``tsslbp ARGS`` and reports the process's peak RSS (KiB) on a last stderr line, even when the
# command exits through SystemExit.
_WITH_RSS = (
    "import resource, runpy, sys\n"
    "sys.argv = ['tsslbp', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('tsslbp', run_name='__main__')\n"
    "finally:\n"
    "    use = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print('cpu_s=%.3f' % (use.ru_utime + use.ru_stime), file=sys.stderr)\n"
    "    print('maxrss_kib=%d' % use.ru_maxrss, file=sys.stderr)\n"
)


def _capped(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int, float]:
    """``tsslbp ARGS`` under :data:`AS_CAP` of address space; returns the process, its peak RSS in
    bytes and its CPU seconds (user + system; the two lines are removed from its stderr)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))

    proc = subprocess.run(
        [sys.executable, "-c", _WITH_RSS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    *rest, cpu, last = proc.stderr.rstrip("\n").split("\n")
    assert cpu.startswith("cpu_s=") and last.startswith("maxrss_kib="), proc.stderr[-1500:]
    proc.stderr = "\n".join(rest)
    return proc, int(last.split("=")[1]) * 1024, float(cpu.split("=")[1])


BOMB_NPY_SHAPE = (4, 1717986918400)  # 50 TiB of int64 declared in a 128-byte header


def _bomb_nir(graded_net: Path, path: Path) -> Path:
    """A NIR graph whose second node carries a 1.6 TB weight in gzip chunks never written."""
    import h5py

    result = CliRunner().invoke(main, ["nir-export", str(graded_net), "-o", str(path)])
    assert result.exit_code == 0, result.output
    with h5py.File(path, "r+") as f:
        node = f["node/nodes"][sorted(f["node/nodes"].keys())[1]]
        if "weight" in node:
            del node["weight"]
        node.create_dataset(
            "weight",
            shape=(400_000, 1_000_000),
            dtype=np.float32,
            chunks=(64, 64),
            compression="gzip",
        )
    return path


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("lint huge", "declares 800000000000 bytes"),
        ("simulate huge", "declares 800000000000 bytes"),
        ("lint gzip", "declares 800000000 bytes"),
        ("nir-export gzip", "declares 800000000 bytes"),
        ("simulate npy", "the header declares 54975581388800 bytes"),
        ("nir-import nir", "declares 1600000000000 bytes"),
    ],
)
def test_memory_bombs_fail_cleanly_under_an_address_space_cap(
    case: str, fragment: str, graded_net: Path, tmp_path: Path
) -> None:
    declared = {
        "huge": 200 * 2_000_000_000 * 2,
        "npy": math.prod(BOMB_NPY_SHAPE) * 8,
        "nir": 1.6e12,
    }
    assert all(size > 100 * AS_CAP for size in declared.values())
    bomb_npy = _npy_with_header(
        tmp_path / "bomb.npy", {"descr": "<i8", "fortran_order": False, "shape": BOMB_NPY_SHAPE}
    )
    files = {
        "huge": NETX_CORPUS / "weight_declared_huge.net",
        "gzip": NETX_CORPUS
        / "gzip_bomb.net",  # 800 MB: more than the 256 MiB a dataset may declare
        "npy": graded_net,
        "nir": _bomb_nir(graded_net, tmp_path / "bomb.nir") if case.endswith("nir") else None,
    }
    command, which = case.split()
    model = str(files[which])
    args = {
        "lint": ["lint", model],
        "simulate": [
            "simulate",
            model,
            "--input",
            str(bomb_npy),
            "--output",
            str(tmp_path / "y.npy"),
        ],
        "nir-export": ["nir-export", model, "-o", str(tmp_path / "m.nir")],
        "nir-import": ["nir-import", model, "-o", str(tmp_path / "b.net")],
    }[command]
    proc, rss, cpu = _capped(args, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    assert len(lines) == 1 and fragment in lines[0], proc.stderr[-1500:]
    # CPU time, imports included: wall time depends on what else the machine runs (a hang would
    # hit _capped's timeout).
    assert cpu < 10, f"took {cpu:.1f} s of CPU"
    assert rss < RSS_CAP, f"peak RSS {rss / 2**20:.0f} MiB"


def test_data_files_are_regular_and_gzip_bounded(tmp_path: Path, monkeypatch) -> None:
    import gzip

    from tsslbp.data import DataError, read_idx

    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)
    with _deadline(30), pytest.raises(DataError, match="is a FIFO, not a regular file"):
        read_idx(fifo)
    # A gzip bomb: 2 MB of zeros in a few KB, against a 1 MB limit (the real one is 1 GiB).
    bomb = tmp_path / "bomb.idx.gz"
    bomb.write_bytes(
        gzip.compress(b"\0\0\x08\x01" + (2_000_000).to_bytes(4, "big") + bytes(2_000_000))
    )
    monkeypatch.setitem(safeio.LIMITS, "data_bytes", safeio.Limit(0, 1_000_000, "test"))
    with pytest.raises(DataError, match="decompresses to more than the limit of 1000000 bytes"):
        read_idx(bomb)


def test_nir_import_refuses_links_out_of_the_file(graded_net: Path, tmp_path: Path) -> None:
    import h5py

    nir_path = tmp_path / "m.nir"
    assert (
        CliRunner().invoke(main, ["nir-export", str(graded_net), "-o", str(nir_path)]).exit_code
        == 0
    )
    with h5py.File(nir_path, "r+") as f:
        name = sorted(f["node/nodes"].keys())[0]
        f[f"node/nodes/{name}/zz_elsewhere"] = h5py.ExternalLink(str(graded_net), "/layer/0/weight")
    result = CliRunner().invoke(main, ["nir-import", str(nir_path), "-o", str(tmp_path / "b.net")])
    _one_line_error(result, f"HDF5 object '/node/nodes/{name}/zz_elsewhere' is an external link to")
    assert not (tmp_path / "b.net").exists()
