"""Data-parallel training (tsslbp.train.distributed) on CPU with gloo, launched by torchrun.

N processes must train the model one process trains (same global batch, summed gradients), write
one set of artifacts, stop together, resume with any process count, and fail promptly and in one
line when a rank dies or hangs.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from paths import REPO

from tsslbp.config import load_config
from tsslbp.data import load_digits
from tsslbp.manifest import read_manifest
from tsslbp.train import distributed
from tsslbp.train.distributed import LOCAL, Replicas, dropout_seed
from tsslbp.train.loop import fit, load_checkpoint

CONFIG = REPO / "configs" / "digits_mlp.yaml"
# Weights of N processes and of one differ only by the order of float summation.
ATOL = 1e-5


@pytest.fixture(scope="module")
def digits():
    return load_digits()  # immutable data: safe to share


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in distributed._TORCHRUN_VARS}
    env.update(PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(out: Path, *args: str, config: Path = CONFIG) -> list[str]:
    return ["-m", "tsslbp", "train", str(config), "--out", str(out), "--no-progress", *args]


def _torchrun(
    out: Path,
    *args: str,
    nproc: int = 2,
    launch: tuple[str, ...] = (),
    config: Path = CONFIG,
) -> list[str]:
    launch = launch or ("--standalone", f"--nproc-per-node={nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
        *_train_args(out, *args, config=config),
    ]


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _assert_close(a: dict, b: dict, what: str, atol: float = ATOL) -> None:
    assert a.keys() == b.keys()
    for name in a:
        diff = float((a[name] - b[name]).abs().max())
        assert diff <= atol, f"{what}: {name} differs by {diff:.3g} (allowed {atol})"


def _reference(
    tmp_path: Path, digits, epochs: int, config: Path = CONFIG
) -> dict[str, torch.Tensor]:
    """Weights of a single-process run in this process."""
    fit(load_config(config).replace(epochs=epochs), digits, tmp_path / "ref", progress=False)
    return _weights(tmp_path / "ref" / "last.pt")


def _softmax_on_psp(tmp_path: Path) -> Path:
    """The digits MLP with the softmax loss on the output PSP: a loss that averages over the batch."""
    raw = load_config(CONFIG).to_dict()
    raw["Network"].update(loss="softmax", softmax_on="psp", predict_on="psp")
    path = tmp_path / "softmax_psp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert all(p.poll() is None for p in procs), "training ended before the test could act"
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.01)


def _workers(launcher: subprocess.Popen) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes."""
    ranks = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == launcher.pid:
            rank = [e for e in env if e.startswith(b"RANK=")]
            if rank:
                ranks[int(rank[0][5:])] = int(proc.name)
    return ranks


# --- the pieces, in one process ---------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_the_global_batch_once_in_order(n, world):
    rows = [Replicas(rank=r, world_size=world).shard_rows(n) for r in range(world)]
    taken = [i for part, counted in rows if counted for i in range(n)[part]]
    assert taken == list(range(n)), f"{world} ranks over {n} rows took {taken}"
    sizes = [part.stop - part.start for part, counted in rows if counted]
    assert max(sizes) - min(sizes) <= 1, f"unbalanced shards {sizes}"
    # A rank with nothing to take still runs a (zero-weighted) sample so that all-reduces match.
    assert all(part == slice(0, 1) for part, counted in rows if not counted)
    assert sum(not counted for _, counted in rows) == max(0, world - n)


def test_rank_zero_keeps_the_single_process_dropout_seed():
    assert dropout_seed(7, 3) == dropout_seed(7, 3, rank=0) == 7 * 100003 + 3
    seeds = {dropout_seed(s, e, r) for s in range(3) for e in range(1, 50) for r in range(8)}
    assert len(seeds) == 3 * 49 * 8, "every (seed, epoch, rank) needs its own dropout seed"


def test_timeout_from_environment():
    assert distributed.timeout_seconds({}) == distributed.DEFAULT_TIMEOUT_SECONDS
    assert distributed.timeout_seconds({distributed.TIMEOUT_ENV: "2.5"}) == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError, match=distributed.TIMEOUT_ENV):
            distributed.timeout_seconds({distributed.TIMEOUT_ENV: bad})


def test_single_process_is_local_and_collectives_are_identities(monkeypatch):
    for name in distributed._TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    replicas = distributed.from_environment(torch.device("cpu"))
    assert replicas == Replicas(devices=("cpu",)) and not replicas.distributed
    assert replicas.sync_batch(True, False, 1.5, 3, 4) == (True, False, 1.5, 3, 4)
    model = torch.nn.Linear(2, 2)
    assert replicas.wrap(model) is model and distributed.unwrap(model) is model
    assert LOCAL.describe() == {"world_size": 1, "backend": None, "devices": ["cpu"]}


def test_backend_errors_become_one_line():
    replicas = Replicas(rank=1, world_size=2, backend="gloo")
    gloo = RuntimeError(
        "[/src/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:6: Connection reset by "
        "peer. This is typically caused by a remote worker hanging.\nmore"
    )
    with pytest.raises(distributed.DistributedError) as caught, replicas.errors():
        raise gloo
    message = str(caught.value)
    assert "\n" not in message and message.startswith("rank 1 of 2: lost contact")
    assert "Read error [127.0.0.1]:6: Connection reset by peer)" in message
    with pytest.raises(ZeroDivisionError), replicas.errors():
        raise ZeroDivisionError("a bug in the model is not a lost rank")


# --- real process groups (torchrun, gloo) ----------------------------------------------------


@pytest.mark.parametrize("loss", ["kernel (sum over samples)", "softmax on psp (mean)"])
def test_two_processes_train_what_one_process_trains(tmp_path, digits, loss):
    config = CONFIG if loss.startswith("kernel") else _softmax_on_psp(tmp_path)
    run = _run(_torchrun(tmp_path / "ddp", "--epochs", "1", config=config))
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_close(
        _weights(tmp_path / "ddp" / "last.pt"),
        _reference(tmp_path, digits, 1, config),
        f"2 processes vs 1, {loss} loss",
    )
    # Rank 0 alone prints and writes: one epoch line, one set of artifacts with the world size.
    assert run.stdout.count("epoch 1/1") == 1, run.stdout
    assert "2 processes (gloo, cpu)" in run.stdout
    record = read_manifest(tmp_path / "ddp" / "last.pt")["figures"]["distributed"]
    assert record["world_size"] == 2 and record["backend"] == "gloo"
    assert [d.rsplit(":", 1)[1] for d in record["devices"]] == ["cpu", "cpu"]


def test_two_processes_keep_the_weight_average_one_process_keeps(tmp_path, digits):
    raw = load_config(CONFIG).to_dict()
    raw["Network"]["ema_decay"] = 0.9
    config = tmp_path / "ema.yaml"
    config.write_text(yaml.safe_dump(raw))
    run = _run(_torchrun(tmp_path / "ddp", "--epochs", "1", config=config))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "(EMA; raw" in run.stdout, run.stdout
    fit(load_config(config).replace(epochs=1), digits, tmp_path / "ref", progress=False)
    ddp, ref = (load_checkpoint(tmp_path / d / "last.pt") for d in ("ddp", "ref"))
    assert ddp["averaged_steps"] == ref["averaged_steps"]
    _assert_close(ddp["averaged"], ref["averaged"], "weight average, 2 processes vs 1")


def test_resume_from_two_processes_with_one(tmp_path, digits):
    out = tmp_path / "run"
    first = _run(_torchrun(out, "--epochs", "1"))
    assert first.returncode == 0, first.stderr[-3000:]
    history = fit(load_config(CONFIG).replace(epochs=2), digits, out, resume=True, progress=False)
    assert [m.epoch for m in history] == [1, 2]
    _assert_close(
        _weights(out / "last.pt"), _reference(tmp_path, digits, 2), "resumed with 1 process"
    )


def test_resume_from_one_process_with_two(tmp_path, digits):
    out = tmp_path / "run"
    fit(load_config(CONFIG).replace(epochs=1), digits, out, progress=False)
    second = _run(_torchrun(out, "--epochs", "2", "--resume"))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "epoch 2/2" in second.stdout and "epoch 1/2" not in second.stdout
    _assert_close(
        _weights(out / "last.pt"), _reference(tmp_path, digits, 2), "resumed with 2 processes"
    )


def test_sigterm_on_one_rank_stops_both_with_one_checkpoint(tmp_path, digits):
    out = tmp_path / "run"
    # A checkpoint after every batch: last.pt appears after the first, and the signal comes then.
    launcher = subprocess.Popen(
        _torchrun(out, "--epochs", "3", "--checkpoint-every", "0"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out / "last.pt", [launcher])
    os.kill(_workers(launcher)[1], signal.SIGTERM)
    t0 = time.monotonic()
    stdout, stderr = launcher.communicate(timeout=60)
    assert time.monotonic() - t0 < 30, "the run did not stop promptly"
    assert launcher.returncode != 0, "an interrupted run must not report success"
    assert stderr.count("interrupted in epoch") == 1, stderr[-3000:]
    state = load_checkpoint(out / "last.pt")
    assert state["partial"] is not None and state["partial"]["batches_done"] >= 1, state["partial"]
    assert len(state["rng_states"]) == 2, "each rank's dropout generator is saved"
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["last.pt"]
    assert read_manifest(out / "last.pt")["figures"]["interrupted"] is True
    # One process finishes the run: the weights of an uninterrupted single-process run, up to the
    # summation order of the batches the two processes trained. How many those are depends on
    # when the signal lands; over up to 3 epochs of Adam the drift reached 1.7e-5 (a fresh-clone
    # CI run), so the bound here is 10 x ATOL.
    fit(load_config(CONFIG).replace(epochs=3), digits, out, resume=True, progress=False)
    _assert_close(
        _weights(out / "last.pt"),
        _reference(tmp_path, digits, 3),
        "stopped by SIGTERM, resumed",
        atol=10 * ATOL,
    )


@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_dead_or_hung_rank_ends_the_other_in_one_line(tmp_path, fault):
    """Two ranks started by hand (torchrun's agent would stop the survivor itself): rank 0 must
    notice a killed peer at once and a stopped (hung) one after the collective timeout."""
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = _env(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            **{distributed.TIMEOUT_ENV: "4"},
        )
        cmd = [sys.executable, *_train_args(tmp_path / "run", "--epochs", "1000")]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    try:
        _wait_for(tmp_path / "run" / "last.pt", procs)
        os.kill(procs[1].pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        t0 = time.monotonic()
        _, stderr = procs[0].communicate(timeout=60)
        waited = time.monotonic() - t0
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    assert procs[0].returncode == 1, stderr[-3000:]
    assert waited < (10 if fault == "kill" else 20), f"rank 0 took {waited:.1f} s to give up"
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rank 0 of 2: lost contact with the other ranks" in errors[0], (
        stderr[-3000:]
    )
    assert "Traceback" not in stderr, stderr[-3000:]


def test_two_nodes_on_localhost_train_what_one_process_trains(tmp_path, digits):
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            _torchrun(
                tmp_path / f"node{rank}",
                "--epochs",
                "1",
                launch=(
                    "--nnodes=2",
                    "--nproc-per-node=1",
                    f"--node-rank={rank}",
                    f"--rdzv-endpoint={endpoint}",
                ),
            ),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=120) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    assert not (tmp_path / "node1").exists(), "only rank 0 (on node 0) writes"
    assert outputs[1][0] == "", "only rank 0 prints"
    _assert_close(
        _weights(tmp_path / "node0" / "last.pt"),
        _reference(tmp_path, digits, 1),
        "two nodes vs one process",
    )
