"""A Lava process that hangs, dies or raises ends run_lava with a clear error and no orphans.

The failures are injected by patching the neuron process model in this process before Lava forks
its workers, which inherit the patch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")

from tsslbp.deploy import processes  # noqa: E402
from tsslbp.deploy.runner import LavaRunError, LavaTimeoutError, run_lava  # noqa: E402
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec  # noqa: E402

pytestmark = pytest.mark.lava

# The failure strikes in the second sample (5 steps per sample).
FAIL_AT_STEP = 7


def _child_pids() -> set[int]:
    """Live (non-zombie) child processes of this process, except multiprocessing's resource
    tracker, which the interpreter keeps for its whole life."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == me and state != "Z" and b"resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found


def _spec() -> NetworkSpec:
    rng = np.random.default_rng(0)
    return NetworkSpec(
        layers=(
            DenseLayer(weight=2 * rng.integers(-50, 50, (6, 4)), neuron=CubaNeuron(1024, 512, 20)),
        ),
        input_shape=(4,),
        input_message_bits=8,
    )


def _inject(monkeypatch: pytest.MonkeyPatch, failure) -> None:
    original = processes.PySampleResetLifModel.subthr_dynamics

    def failing(self, activation_in):
        if self.time_step == FAIL_AT_STEP:
            failure()
        return original(self, activation_in)

    monkeypatch.setattr(processes.PySampleResetLifModel, "subthr_dynamics", failing)


def _run_expecting(error: type[Exception], timeout_s: float = 60.0) -> tuple[Exception, float]:
    before = _child_pids()
    x = np.full((3, 4, 5), 100)
    start = time.monotonic()
    with pytest.raises(error) as info:
        run_lava(_spec(), x, timeout_s=timeout_s)
    elapsed = time.monotonic() - start
    left = _child_pids() - before
    assert not left, f"Lava processes left running after the error: {sorted(left)}"
    return info.value, elapsed


def test_hanging_process_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    _inject(monkeypatch, lambda: time.sleep(3600))
    exc, elapsed = _run_expecting(LavaTimeoutError, timeout_s=1.5)
    assert "no progress for 1.5 s while running sample 2/3" in str(exc), str(exc)
    assert elapsed < 15, f"the timeout took {elapsed:.1f} s to act"


def test_dying_process_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _inject(monkeypatch, lambda: os._exit(3))
    exc, _ = _run_expecting(LavaRunError)
    assert not isinstance(exc, LavaTimeoutError), (
        f"a death should be seen before the timeout: {exc}"
    )
    assert "layer0_lif" in str(exc) and "exited with code 3" in str(exc), str(exc)


def test_raising_process_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise ValueError("boom in the model")

    _inject(monkeypatch, boom)
    exc, _ = _run_expecting(LavaRunError)
    assert "layer0_lif" in str(exc) and "ValueError: boom in the model" in str(exc), str(exc)


def test_runner_still_works_after_failures() -> None:
    """A clean run after the failures above (the patches are gone, nothing is left over)."""
    before = _child_pids()
    result = run_lava(_spec(), np.full((2, 4, 5), 100))
    assert result.output.shape == (2, 6, 5)
    assert result.output.any(), "the layer should spike"
    assert not _child_pids() - before, "a clean run should stop all its processes"
