"""The watchdog around blocking Lava calls, with plain multiprocessing children (no lava)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from procs import alive

from tsslbp.deploy.supervise import LavaRunError, LavaTimeoutError, supervise


def _sleep_forever() -> None:
    time.sleep(3600)


def test_returns_what_the_job_returns() -> None:
    assert supervise(lambda heartbeat: 42, timeout_s=5) == 42


def test_job_error_is_wrapped_and_chained() -> None:
    def job(heartbeat):
        heartbeat.beat("doing the thing")
        raise KeyError("missing")

    with pytest.raises(LavaRunError, match="while doing the thing: KeyError") as info:
        supervise(job, timeout_s=5)
    assert isinstance(info.value.__cause__, KeyError)


def test_stalled_job_times_out_and_its_children_are_stopped() -> None:
    started: list[multiprocessing.Process] = []

    def job(heartbeat):
        child = multiprocessing.get_context("fork").Process(target=_sleep_forever, daemon=True)
        child.start()
        started.append(child)
        heartbeat.beat("waiting for the child")
        child.join()

    with pytest.raises(
        LavaTimeoutError, match=r"no progress for 0.5 s while waiting for the child"
    ):
        supervise(job, timeout_s=0.5)
    assert started and started[0].exitcode is not None, "the child should have been stopped"


def test_children_the_job_still_starts_after_an_abort_are_stopped_too() -> None:
    """An interrupt can come while Lava is still forking its processes one by one: those started
    after the abort must not outlive the call (they would block the interpreter's exit)."""
    started: list[multiprocessing.Process] = []
    done = threading.Event()

    def job(heartbeat):
        heartbeat.beat("starting processes")
        try:
            for _ in range(15):  # keeps forking for 1.5 s, long after the 0.3 s timeout
                child = multiprocessing.get_context("fork").Process(
                    target=_sleep_forever, daemon=True
                )
                child.start()
                started.append(child)
                time.sleep(0.1)
        finally:
            done.set()

    try:
        with pytest.raises(LavaTimeoutError):
            supervise(job, timeout_s=0.3)
        assert done.wait(10), "sanity: the job thread ends"
        time.sleep(0.2)
        running = [c.pid for c in started if c.exitcode is None]
        assert len(started) == 15, "sanity: the job kept starting children after the abort"
        assert not running, f"{len(running)} of {len(started)} children still run: {running}"
    finally:
        for child in started:
            child.kill()


def test_watched_child_that_exits_is_an_error() -> None:
    finished = threading.Event()

    def job(heartbeat):
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0.2,))
        child.start()
        heartbeat.watch([child])
        heartbeat.process_names[child.pid] = "the worker"
        heartbeat.beat("running")
        finished.wait(30)

    try:
        with pytest.raises(
            LavaRunError, match=r"while running: the worker \(pid \d+\) exited with code 0"
        ):
            supervise(job, timeout_s=30)
    finally:
        finished.set()  # let the worker thread end


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        supervise(lambda heartbeat: None, timeout_s=0)


_KILLED_OUTRIGHT = """
import multiprocessing, os, signal, sys, time
from tsslbp.deploy.supervise import supervise

def job(heartbeat):
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(3600,))
    child.start()
    print(child.pid, flush=True)
    time.sleep(3600)

import threading
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
supervise(job, timeout_s=3600)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's"
)
def test_children_die_with_a_command_killed_outright(tmp_path) -> None:
    """SIGKILL runs no Python code, so no abort path can stop Lava's processes: they must go
    with the process that started them instead of spinning on for ever as orphans."""
    out = tmp_path / "out.txt"  # a file, not a pipe: a surviving child would hold a pipe open
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", _KILLED_OUTRIGHT], stdout=stdout, stderr=stdout, timeout=60
        )
    assert done.returncode == -signal.SIGKILL, out.read_text()
    child = int(out.read_text().split()[0])
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not alive(child), f"child {child} outlived its killed parent"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
