"""Data-parallel training on torch.distributed: one process per device, launched by torchrun.

``torchrun --standalone --nproc-per-node N -m tsslbp train CONFIG`` starts N copies of the
training command; torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) tells each which rank it is. :func:`from_environment` joins them
into one process group (gloo on CPU, NCCL on CUDA, device ``cuda:LOCAL_RANK``) and returns a
:class:`Replicas` that the training loop consults. Without torchrun it returns :data:`LOCAL`, a
single process, and training runs exactly as before.

What makes N processes train one model:

* The global batch (``batch_size``) and the data order are a function of (seed, epoch) alone; each
  rank takes its contiguous slice of the same global batch (:meth:`Replicas.shard`). The losses
  sum over their samples, and the gradients are *summed* across ranks (a DDP communication hook in
  place of DDP's default mean), so every rank holds the gradient a single process computes for the
  whole global batch, up to the order of float summation. A run can therefore be resumed with
  another number of processes.
* Dropout masks come from the global generator seeded per (seed, epoch, rank)
  (:func:`dropout_seed`); rank 0's seed is the single-process one.
* After every batch one small all-reduce (:meth:`Replicas.sync_batch`) sums the batch's loss,
  hits and samples and agrees on two flags: stop (a SIGINT/SIGTERM reached some rank) and save a
  mid-epoch checkpoint. All ranks thus stop after the same batch; rank 0 alone writes files.
* Evaluation is split the same way and its sums reduced (:meth:`Replicas.all_sum`).
* Every collective has a timeout (``TSSLBP_DIST_TIMEOUT`` seconds, default
  :data:`DEFAULT_TIMEOUT_SECONDS`); a rank that dies or hangs makes the others fail with a
  one-line :class:`DistributedError` (at once for a dead process, whose sockets close; after the
  timeout for a hung one).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "TIMEOUT_ENV",
    "DistributedError",
    "Replicas",
    "LOCAL",
    "launched_by_torchrun",
    "timeout_seconds",
    "dropout_seed",
    "from_environment",
    "session",
    "unwrap",
]

log = logging.getLogger(__name__)

#: Seconds a collective waits for the other ranks before the run fails (a hung rank).
DEFAULT_TIMEOUT_SECONDS = 300.0
#: Environment variable that overrides :data:`DEFAULT_TIMEOUT_SECONDS`.
TIMEOUT_ENV = "TSSLBP_DIST_TIMEOUT"
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# Dropout seeds of ranks > 0 are offset by rank << 32: apart from every (seed, epoch) of rank 0.
_RANK_SEED_SHIFT = 32


class DistributedError(RuntimeError):
    """The ranks of a data-parallel run lost contact (a rank died or hung), or could not start."""


def launched_by_torchrun(env: dict[str, str] | None = None) -> bool:
    """Whether torchrun's variables are set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, master)."""
    env = os.environ if env is None else env
    return all(name in env for name in _TORCHRUN_VARS)


def timeout_seconds(env: dict[str, str] | None = None) -> float:
    """The collective timeout: ``TSSLBP_DIST_TIMEOUT`` when set (seconds > 0), else the default.

    Raises:
        ValueError: the variable is not a positive number.
    """
    env = os.environ if env is None else env
    text = env.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return value


def dropout_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of the global generator (dropout masks) for an epoch on a rank.

    Rank 0 gets the single-process seed, so a 1-process run is unchanged; the value wraps to
    torch's 64 bits, so any seed the config admits gives a valid one.

    >>> dropout_seed(0, 1), dropout_seed(0, 1, rank=1) - dropout_seed(0, 1)
    (1, 4294967296)
    """
    return (seed * 100003 + epoch + (rank << _RANK_SEED_SHIFT)) % (1 << 64)


def _short(err: BaseException) -> str:
    """The gist of a backend error: its first sentence, without the ``[file.cc:line]`` markers
    and the wrappers DDP adds ("Got the following error when running the callback: ...").

    >>> _short(RuntimeError("Got the following error when running the callback: RuntimeError: "
    ...     "[/src/gloo/pair.cc:537] Read error [::1]:9: Connection reset by peer. Check the logs"))
    'Read error [::1]:9: Connection reset by peer'
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = re.sub(r"\[[^\]\s]*\.\w+:\d+\]\s*", "", text)
    text = text.rsplit("Error: ", 1)[-1]
    return text.split(". ", 1)[0]


@dataclass(frozen=True)
class Replicas:
    """Where this process stands in a data-parallel run (:data:`LOCAL` for a single process).

    Attributes:
        rank: this process's rank, 0..world_size-1 (rank 0 writes files and prints).
        world_size: number of processes.
        local_rank: rank on this machine (its CUDA device index).
        backend: ``gloo``, ``nccl`` or None (single process).
        device: this rank's torch device.
        devices: every rank's ``host:device``, in rank order.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    devices: tuple[str, ...] = ()

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process (collectives are needed)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes checkpoints, metrics and prints)."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """World size, backend and devices, for the run's manifest."""
        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "devices": list(self.devices) or [str(self.device)],
        }

    def shard(self, indices: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """This rank's contiguous slice of a global batch.

        Returns:
            (indices, counted). A rank whose slice would be empty (a global batch smaller than
            the world) gets the batch's first sample with ``counted`` False: it must still run
            forward and backward for the gradient all-reduce, and weighs its loss by 0.

        >>> Replicas(rank=1, world_size=2).shard(torch.arange(5))
        (tensor([3, 4]), True)
        >>> Replicas(rank=2, world_size=3).shard(torch.arange(2))
        (tensor([0]), False)
        """
        rows, counted = self.shard_rows(len(indices))
        return indices[rows], counted

    def shard_rows(self, n: int) -> tuple[slice, bool]:
        """The rows of a global batch of ``n`` that :meth:`shard` takes, and whether they count.

        >>> Replicas(rank=1, world_size=2).shard_rows(5)
        (slice(3, 5, None), True)
        """
        if not self.distributed:
            return slice(0, n), True
        # tensor_split's sizes: the first n % world ranks take one more row.
        size, extra = divmod(n, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        stop = start + size + (self.rank < extra)
        return (slice(start, stop), True) if stop > start else (slice(0, 1), False)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` for training: wrapped in DistributedDataParallel with summed gradients."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=device_ids)
        # DDP averages gradients over the ranks; the losses sum over samples, so the gradient of the
        # global batch is the sum of the ranks' gradients (what one process computes).
        ddp.register_comm_hook(None, _sum_gradients)
        return ddp

    def sync_batch(
        self, stop: bool, save: bool, loss: float, correct: int, seen: int
    ) -> tuple[bool, bool, float, int, int]:
        """Agree after a batch: (stop on any rank, save on any rank, summed loss, hits, samples)."""
        if not self.distributed:
            return stop, save, loss, correct, seen
        total = self.all_sum([float(stop), float(save), loss, float(correct), float(seen)])
        return total[0] > 0, total[1] > 0, total[2], int(round(total[3])), int(round(total[4]))

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64; counts stay exact)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device)
        with self.errors():
            dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a picklable object, e.g. a loaded checkpoint)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        with self.errors():
            dist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        with self.errors():
            dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank (bounded by the collective timeout)."""
        if self.distributed:
            with self.errors():
                # gloo's barrier honours the process group's timeout; NCCL's needs the device.
                dist.barrier(device_ids=[self.device.index] if self.backend == "nccl" else None)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn a backend failure inside the block (a peer died or timed out) into one line."""
        if not self.distributed:
            yield
            return
        try:
            yield
        except DistributedError:
            raise
        except RuntimeError as err:
            if not _is_backend_error(err):
                raise
            raise DistributedError(
                f"rank {self.rank} of {self.world_size}: lost contact with the other ranks "
                f"({_short(err)}); another rank died or hung (see its output), or the "
                f"collective timeout ({TIMEOUT_ENV}, {timeout_seconds():g} s) passed"
            ) from err

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


#: A single process: no collectives, rank 0 writes.
LOCAL = Replicas()


def _is_backend_error(err: RuntimeError) -> bool:
    """Whether a RuntimeError comes from the communication backend (not from the model's code)."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return any(mark in text for mark in ("gloo", "Gloo", "NCCL", "Connection", "Timed out"))


def _sum_gradients(state, bucket):  # type: ignore[no-untyped-def]
    """DDP communication hook: all-reduce a gradient bucket as a sum (DDP's default is the mean).

    ``(state: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]``, written
    without annotations: DDP checks them against its own types, and this module's postponed
    annotations are strings.
    """
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return getattr(model, "module", model)


def from_environment(device: torch.device) -> Replicas:
    """Join torchrun's process group, or return :data:`LOCAL` when not launched by torchrun.

    Args:
        device: the device asked for (``resolve_device`` of ``--device``); under torchrun a CUDA
            device becomes ``cuda:LOCAL_RANK``.

    Raises:
        DistributedError: the process group could not be formed in time.
        ValueError: a bad ``TSSLBP_DIST_TIMEOUT``.
    """
    if not launched_by_torchrun():
        return Replicas(device=device, devices=(str(device),))
    world_size = int(os.environ["WORLD_SIZE"])
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world_size == 1:
        return Replicas(device=device, devices=(str(device),))
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_seconds())
    try:
        if not dist.is_initialized():
            dist.init_process_group(backend, timeout=timeout, device_id=_device_id(device))
    except RuntimeError as err:
        raise DistributedError(
            f"rank {rank} of {world_size}: could not join the process group ({_short(err)})"
        ) from err
    replicas = Replicas(rank, world_size, local_rank, backend, device)
    devices = replicas.gather(f"{socket.gethostname()}:{device}")
    return Replicas(rank, world_size, local_rank, backend, device, tuple(devices))


def _device_id(device: torch.device) -> torch.device | None:
    return device if device.type == "cuda" else None


@contextlib.contextmanager
def session(
    device: torch.device, expected: tuple[type[BaseException], ...] = ()
) -> Iterator[Replicas]:
    """:func:`from_environment` for the length of a command; leaves the process group at the end.

    On a normal exit, or one by ``SystemExit``, ``KeyboardInterrupt`` or an ``expected`` exception
    (a requested stop), the ranks first wait for each other, so that no rank ends while rank 0
    still writes (torchrun stops the others when one ends with an error status). After a failure
    the group is left without waiting.
    """
    replicas = from_environment(device)
    try:
        yield replicas
    except (SystemExit, KeyboardInterrupt, *expected):
        _leave(replicas, wait=True)
        raise
    except BaseException:
        _leave(replicas, wait=False)
        raise
    else:
        _leave(replicas, wait=True)


def _leave(replicas: Replicas, wait: bool) -> None:
    if not replicas.distributed or not dist.is_initialized():
        return
    if wait:
        with contextlib.suppress(DistributedError):
            replicas.barrier()
        dist.destroy_process_group()
