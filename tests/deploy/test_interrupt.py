"""Ctrl-C during a Lava run: the command stops, and none of Lava's worker processes outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from procs import alive

pytest.importorskip("lava")

from tsslbp.export.netx import write_netx  # noqa: E402
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.slow]


def _live_descendants(root: int) -> set[int]:
    """Non-zombie processes below ``root`` in the process tree (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _kill_session(leader: int) -> None:
    """SIGKILL every process of the session ``leader`` started (if any is left)."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigint_during_a_lava_run_leaves_no_process_behind(tmp_path):
    rng = np.random.default_rng(0)
    spec = NetworkSpec(
        layers=(
            DenseLayer(weight=2 * rng.integers(-50, 50, (6, 4)), neuron=CubaNeuron(1024, 512, 20)),
        ),
        input_shape=(4,),
        input_message_bits=8,
    )
    write_netx(spec, tmp_path / "m.net")
    np.save(
        tmp_path / "x.npy", np.full((4, 500_000), 100)
    )  # minutes of steps: still running at the signal
    cmd = [sys.executable, "-m", "tsslbp", "simulate", str(tmp_path / "m.net"), "--input", str(tmp_path / "x.npy"),
           "--output", str(tmp_path / "y.npy"), "--backend", "lava"]  # fmt: skip
    # As at a terminal: SIGINT at its default, whatever this process inherited (a shell that runs a
    # command in the background with `&` starts it with SIGINT ignored, and Python keeps that);
    # in a session of its own, so that a hang can be cleaned up as a whole (below).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while (
            len(workers) < 3 and time.monotonic() < deadline
        ):  # Lava's runtime and process workers
            time.sleep(0.2)
            workers |= _live_descendants(proc.pid)
        assert len(workers) >= 3, (
            f"Lava did not start its worker processes in 60 s ({len(workers)} found)"
        )
        time.sleep(1.0)
        workers |= _live_descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            children = sorted(_live_descendants(proc.pid))
            # The whole session: a child left running would hold the pipes open, and
            # communicate() would wait for it forever.
            _kill_session(proc.pid)
            _, err = proc.communicate(timeout=60)
            pytest.fail(
                f"the command did not stop within 60 s of SIGINT (children still running: "
                f"{children}); its stderr: {err[-2000:]!r}"
            )
    finally:
        if proc.poll() is None:
            _kill_session(proc.pid)
    assert proc.returncode != 0 and "Traceback" not in err, (
        f"expected a clean abort, found {proc.returncode}: {err!r}"
    )
    time.sleep(0.5)
    left = sorted(pid for pid in workers if alive(pid))
    if left:
        _kill_session(proc.pid)  # the session's survivors; they would spin for ever
    assert not left, f"Lava processes outlived the interrupted command: {left}"
    assert not (tmp_path / "y.npy").exists(), "an interrupted run must not write an output"
