"""Run blocking Lava calls under a watchdog: a stalled or dead Lava process becomes a clear error.

Lava's CPU runtime runs every process in a forked OS process and the parent blocks on
shared-memory channels. When a child dies or hangs, the parent blocks forever. :func:`supervise`
therefore runs the Lava calls in a worker thread while the calling thread watches two things: the
worker's heartbeat (it must report progress at least every ``timeout_s`` seconds) and the child
processes started meanwhile (none may exit while the worker says they must live). On a stall, a
death or an interrupt it terminates exactly the child processes started during the call (by pid,
SIGTERM then SIGKILL) and raises :class:`LavaRunError` or :class:`LavaTimeoutError`. On Linux
the children also die with the worker thread that forked them, so a command killed outright
(where no Python code runs) leaves none behind either.

No lava import here: the module only deals with threads and ``multiprocessing`` children.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["LavaRunError", "LavaTimeoutError", "Heartbeat", "supervise", "terminate_children"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often the watching thread checks the worker, its heartbeat and the child processes.
POLL_S = 0.05
#: Grace period between SIGTERM and SIGKILL when stopping children.
TERMINATE_GRACE_S = 2.0
#: How long an abort keeps stopping children that the worker thread still starts.
LATE_CHILDREN_S = 5.0


#: Linux prctl option: the signal a process gets when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1
#: In the worker thread of :func:`supervise`: the pid of the process it runs in (None elsewhere).
_forking = threading.local()


def _die_with_worker() -> None:
    """In a child just forked by a supervised job's worker thread (Lava's processes): have Linux
    SIGTERM it when that thread ends, which includes the whole command being killed (SIGKILL, the
    OOM killer, a scheduler's time limit). Without it such a kill leaves Lava's processes running
    for ever, spinning on their channels. A normal run stops them before its worker ends."""
    parent = getattr(_forking, "parent", None)
    if parent is None:
        return
    _forking.parent = None  # this child's own forks are not the job's
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # no prctl: the abort path still stops the children
        return
    if os.getppid() != parent:  # the parent was gone before prctl took effect
        os._exit(1)


if sys.platform.startswith("linux"):
    os.register_at_fork(after_in_child=_die_with_worker)


class LavaRunError(RuntimeError):
    """A Lava run failed: a Lava process raised, died, or the runtime reported an error."""


class LavaTimeoutError(LavaRunError, TimeoutError):
    """A Lava run made no progress for longer than its timeout and was stopped."""


class Heartbeat:
    """Progress reports from the worker thread to the watching thread.

    Attributes:
        activity: what the worker is waiting for now (used in error messages).
        process_names: names for child pids, used in error messages.
        on_abort: called by the watching thread before it terminates the remaining children
            (e.g. to stop the worker processes first and shut shared-memory servers down cleanly).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held by the watching thread while it polls children (waitpid); see release_children().
        self.poll_lock = threading.Lock()
        self._last = time.monotonic()
        self._watched: list[multiprocessing.Process] = []
        self.activity = "starting"
        self.process_names: dict[int, str] = {}
        self.on_abort: Callable[[], Any] | None = None
        self.children_must_live = False
        self.children_released = False

    def beat(self, activity: str | None = None) -> None:
        """Record progress (and optionally what comes next); restarts the stall timer."""
        with self._lock:
            self._last = time.monotonic()
            if activity is not None:
                self.activity = activity

    def idle_s(self) -> float:
        """Seconds since the last :meth:`beat`."""
        with self._lock:
            return time.monotonic() - self._last

    def watch(self, processes: Iterable[multiprocessing.Process]) -> None:
        """Hand the watching thread child processes to check, from now on any exit is an error.

        The watching thread also polls ``multiprocessing.active_children()``, but that reaps
        children that already exited: one that dies between two polls would never be seen.
        """
        with self._lock:
            self._watched.extend(processes)
            self.children_must_live = True

    def watched(self) -> list[multiprocessing.Process]:
        """The processes handed over by :meth:`watch`."""
        with self._lock:
            return list(self._watched)

    def release_children(self) -> None:
        """Stop watching children: call before the worker joins them itself (e.g. a clean stop).

        Polling a child's exit status (``waitpid``) from the watching thread while the worker joins
        it races: one of the two reaps it and the other finds it still running. This waits for the
        poll in progress to finish and ends polling.
        """
        with self.poll_lock:
            self.children_released = True
            self.children_must_live = False


class _Outcome(Generic[T]):
    """The worker's return value or exception."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None


def _exitcode(process: multiprocessing.Process) -> int | str | None:
    """The child's exit code, None while it runs, "closed" if Lava already joined and closed it."""
    try:
        return process.exitcode
    except ValueError:  # multiprocessing raises on a closed Process object
        return "closed"


def _pid(process: multiprocessing.Process) -> int | None:
    """The child's pid, or None once Lava has joined and closed its Process object."""
    try:
        return process.pid
    except ValueError:
        return None


def _describe(process: multiprocessing.Process, names: dict[int, str] | None = None) -> str:
    """Name a child process for messages: its registered name if any, and its pid."""
    pid = _pid(process)
    name = (names or {}).get(pid) if pid is not None else None
    return f"{name} (pid {pid})" if name else f"process {pid}"


def _child_error(process: multiprocessing.Process) -> str:
    """The last line of the traceback a Lava actor sent back before exiting, if any."""
    try:
        exception = getattr(process, "exception", None)
    except (OSError, ValueError, EOFError):
        return ""
    if not exception:
        return ""
    _, traceback_text = exception
    lines = [line for line in str(traceback_text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _death(process: multiprocessing.Process, names: dict[int, str]) -> str:
    """How a child ended: the exception it reported (Lava's actors exit 0 after one) or its code."""
    error = _child_error(process)
    if error:
        return f"{_describe(process, names)} raised {error}"
    return f"{_describe(process, names)} exited with code {_exitcode(process)}"


def terminate_children(children: Iterable[multiprocessing.Process]) -> int:
    """Stop the given child processes: SIGTERM, then SIGKILL after a grace period.

    Args:
        children: processes this process started (never anything else).

    Returns:
        How many were still running when called.
    """
    alive = [p for p in children if _exitcode(p) is None]
    for process in alive:
        process.terminate()
    _wait_for_exit(alive)
    killed = [p for p in alive if _exitcode(p) is None]
    for process in killed:
        _log.warning("killing %s, which ignored SIGTERM", _describe(process))
        process.kill()
    # A killed process still has to be scheduled to exit (seconds on a busy machine): wait for it,
    # so that none is left when the caller reports the failure.
    _wait_for_exit(killed)
    return len(alive)


def _wait_for_exit(processes: list[multiprocessing.Process]) -> None:
    """Poll until every process has exited, or :data:`TERMINATE_GRACE_S` has passed."""
    deadline = time.monotonic() + TERMINATE_GRACE_S
    while any(_exitcode(p) is None for p in processes) and time.monotonic() < deadline:
        time.sleep(POLL_S)


def _abort(
    heartbeat: Heartbeat, children: Iterable[multiprocessing.Process], before: set[int | None]
) -> None:
    """Run the job's abort hook, then stop whatever it left running (``before``: the pids of the
    children that existed before the call, which are not ours to stop)."""
    if heartbeat.on_abort is not None:
        try:
            heartbeat.on_abort()
        except Exception:  # noqa: BLE001 - the children are killed below regardless
            _log.warning("abort hook failed; killing the Lava processes", exc_info=True)
    terminate_children(children)
    _stop_late_children(before)


def _stop_late_children(before: set[int | None]) -> None:
    """Stop children started during the call that the abort left running: those started after the
    watching thread's last poll, and those the still-running worker thread starts after the abort.

    The worker may be inside Lava's start-up, forking one process after another, when the run is
    aborted. Any child left running would block the interpreter's exit: multiprocessing joins its
    non-daemon children at exit, and Lava's wait on their channels forever.
    """
    deadline = time.monotonic() + LATE_CHILDREN_S
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 4 * POLL_S:
        late = [p for p in multiprocessing.active_children() if _pid(p) not in before]
        if late:
            terminate_children(late)
            quiet_since = time.monotonic()
        time.sleep(POLL_S)


def supervise(
    job: Callable[[Heartbeat], T],
    *,
    timeout_s: float,
    on_poll: Callable[[], Any] | None = None,
) -> T:
    """Run ``job(heartbeat)`` in a worker thread; stop its Lava processes if it stalls or one dies.

    Args:
        job: does the blocking Lava calls and calls ``heartbeat.beat()`` after each unit of
            progress (at least every ``timeout_s`` seconds).
        timeout_s: longest allowed time between two beats, in seconds.
        on_poll: called by the watching thread at every poll (e.g. to refresh a progress bar).

    Returns:
        What ``job`` returned.

    Raises:
        LavaTimeoutError: If ``job`` did not beat for ``timeout_s`` seconds.
        LavaRunError: If a child process handed to ``heartbeat.watch`` (or started meanwhile)
            exited before ``heartbeat.release_children()``, or ``job`` raised (chained).
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    before = {p.pid for p in multiprocessing.active_children()}
    seen: dict[int, multiprocessing.Process] = {}
    heartbeat = Heartbeat()
    outcome: _Outcome[T] = _Outcome()

    def target() -> None:
        _forking.parent = os.getpid()
        try:
            outcome.value = job(heartbeat)
        except BaseException as exc:  # noqa: BLE001 - handed to the watching thread
            outcome.error = exc

    # Daemon: after a kill the worker may stay blocked on a dead channel; it must not keep the
    # interpreter alive.
    worker = threading.Thread(target=target, name="tsslbp-lava-run", daemon=True)
    worker.start()
    try:
        while True:
            worker.join(POLL_S)
            dead: list[multiprocessing.Process] = []
            with heartbeat.poll_lock:
                if not heartbeat.children_released:
                    # active_children() reaps children that exited: keep our own references.
                    for process in [*heartbeat.watched(), *multiprocessing.active_children()]:
                        pid = _pid(process)
                        if pid is not None and pid not in before:
                            seen.setdefault(pid, process)
                    if heartbeat.children_must_live:
                        dead = [p for p in seen.values() if _exitcode(p) is not None]
            if on_poll is not None:
                on_poll()
            if not worker.is_alive():
                break
            if dead:
                details = "; ".join(_death(p, heartbeat.process_names) for p in dead)
                raise LavaRunError(f"Lava process failed while {heartbeat.activity}: {details}")
            if heartbeat.idle_s() > timeout_s:
                raise LavaTimeoutError(
                    f"Lava made no progress for {timeout_s:g} s while {heartbeat.activity}; "
                    f"stopped its {sum(_exitcode(p) is None for p in seen.values())} processes"
                )
    except BaseException:
        _abort(heartbeat, seen.values(), before)
        raise
    if outcome.error is not None:
        _abort(heartbeat, seen.values(), before)
        if isinstance(outcome.error, LavaRunError):
            raise outcome.error
        if isinstance(outcome.error, Exception):
            errors = "; ".join(
                _death(p, heartbeat.process_names) for p in seen.values() if _child_error(p)
            )
            raise LavaRunError(
                f"Lava run failed while {heartbeat.activity}: "
                f"{type(outcome.error).__name__}: {outcome.error}"
                + (f" (from {errors})" if errors else "")
            ) from outcome.error
        raise outcome.error
    return outcome.value  # type: ignore[return-value]
