"""Training and evaluation loops, and checkpoints.

A run is repeatable on CPU: the data order of epoch e comes from a generator seeded with
``(seed, e)`` and dropout masks from the global generator reseeded the same way at each epoch,
so a run resumed from a checkpoint sees the same batches as an uninterrupted one.

Under torchrun the same loops train data-parallel (:mod:`.distributed`): each rank takes its
slice of every global batch, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .. import __version__
from ..config import ExperimentConfig, LossKind, LrSchedule, OutputMeasure, parse_config
from ..data import DataSplits, Split
from ..safeio import LIMITS, UnsafeFileError, atomic_output, check_limit, open_regular, run_lock
from .distributed import LOCAL, Replicas, dropout_seed, unwrap
from .layers import set_weight_levels
from .losses import count_loss, kernel_loss, predict, softmax_loss
from .network import TsslbpNetwork

__all__ = [
    "EpochMetrics",
    "EpochProgress",
    "TrainingInterrupted",
    "EvalResult",
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "DEFAULT_CHECKPOINT_SECONDS",
    "loss_function",
    "prediction_function",
    "learning_rate",
    "make_optimizer",
    "evaluate",
    "train_epoch",
    "fit",
    "TrainingDiverged",
    "check_finite_loss",
    "check_finite_weights",
    "check_checkpoint_values",
    "check_resume_state",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "initial_weights",
    "QUANT_AWARE_LEVELS",
    "quant_aware_levels",
    "resolve_device",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tsslbp-checkpoint"
CHECKPOINT_VERSION = 1
#: A run saves a resumable mid-epoch checkpoint at least this often (seconds) by default.
DEFAULT_CHECKPOINT_SECONDS = 300.0


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a tsslbp checkpoint, or from a newer version."""


@dataclass(frozen=True)
class EpochMetrics:
    """Figures of one epoch. ``train_acc`` is measured on the fly (dropout active).

    ``test_acc`` is the accuracy of the weights the checkpoint hands on (to eval, export): with
    ``ema_decay`` > 0 the averaged ones, and ``raw_test_acc`` that of the last weights beside it.
    """

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float
    raw_test_acc: float | None = None

    def test_figure(self) -> str:
        """``92.84%``, or ``92.84% (EMA; raw 92.73%)`` beside a weight average."""
        raw = "" if self.raw_test_acc is None else f" (EMA; raw {100 * self.raw_test_acc:.2f}%)"
        return f"{100 * self.test_acc:.2f}%{raw}"

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch}/{epochs}  loss {self.loss:.4f}  train acc {100 * self.train_acc:.2f}%  "
            f"test acc {self.test_figure()}  {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    loss: float
    n_samples: int
    mean_output_spikes: float


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def loss_function(cfg: ExperimentConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The configured loss, with its configured definition, as ``f(output_spikes, labels) -> scalar``."""
    kind, tau_s, train = cfg.train.loss, cfg.neuron.tau_s, cfg.train
    if kind is LossKind.KERNEL:
        return lambda spikes, labels: kernel_loss(spikes, labels, tau_s, train.kernel_target)
    if kind is LossKind.COUNT:
        return lambda spikes, labels: count_loss(
            spikes,
            labels,
            train.desired_count,
            train.undesired_count,
            on=train.count_loss_on,
            tau_syn=tau_s,
        )
    return lambda spikes, labels: softmax_loss(spikes, labels, on=train.softmax_on, tau_syn=tau_s)


def prediction_function(cfg: ExperimentConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """The configured prediction (``predict_on``) as ``f(output_spikes) -> (N,) classes``."""
    return lambda spikes: predict(spikes, cfg.train.predict_on, cfg.neuron.tau_s)


def learning_rate(cfg: ExperimentConfig, epoch: int, batch: int, n_batches: int) -> float:
    """Learning rate of ``batch`` (0-based) of ``epoch`` (1-based): a pure function of the position
    in the run, so a resumed run follows the same schedule.

    ``cosine``: ``lr * (1 + cos(pi * p)) / 2`` with ``p`` the fraction of the run's batches done
    before this one (``epochs`` in the config sets the horizon).
    """
    if cfg.train.lr_schedule is LrSchedule.CONSTANT:
        return cfg.train.lr
    done = (epoch - 1) * n_batches + batch
    return cfg.train.lr * 0.5 * (1.0 + math.cos(math.pi * done / (cfg.train.epochs * n_batches)))


def make_optimizer(model: torch.nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    """Adam, or AdamW when ``weight_decay`` > 0 (decay decoupled from the gradient)."""
    lr, decay = cfg.train.lr, cfg.train.weight_decay
    opt_type = torch.optim.AdamW if decay > 0 else torch.optim.Adam
    extra = {"weight_decay": decay} if decay > 0 else {}
    # The fused kernel (one pass over each parameter) is much faster on CPU; older torch lacks it there.
    try:
        return opt_type(model.parameters(), lr=lr, fused=True, **extra)
    except (RuntimeError, ValueError):
        return opt_type(model.parameters(), lr=lr, **extra)


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None):
    idx = order if order is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield idx[start : start + batch_size]


@torch.no_grad()
def evaluate(
    model: TsslbpNetwork, split: Split, cfg: ExperimentConfig, batch_size: int = 500
) -> EvalResult:
    """Accuracy and mean loss per sample of ``model`` on ``split`` (model put in eval mode)."""
    device = next(model.parameters()).device
    model_dtype = next(model.parameters()).dtype
    model.eval()
    loss_fn, predict_fn = loss_function(cfg), prediction_function(cfg)
    correct, total_loss, total_spikes = 0, 0.0, 0.0
    for idx in _batches(len(split), batch_size):
        x, y = split.images[idx].to(device, model_dtype), split.labels[idx].to(device)
        out = model(x).spikes
        correct += int((predict_fn(out) == y).sum())
        total_loss += float(loss_fn(out, y))
        total_spikes += float(out.sum())
    n = len(split)
    return EvalResult(correct / n, total_loss / n, n, total_spikes / n)


@dataclass
class EpochProgress:
    """Where an epoch stands: batches done and running sums (saved when a run is interrupted)."""

    epoch: int
    batches_done: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0


def train_epoch(
    model: TsslbpNetwork,
    split: Split,
    cfg: ExperimentConfig,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    progress: bool = True,
    resume_from: EpochProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    augment: Callable[..., torch.Tensor] | None = None,
    on_batch: Callable[[EpochProgress], None] | None = None,
    checkpoint_due: Callable[[], bool] = lambda: True,
    replicas: Replicas = LOCAL,
    averaged: AveragedModel | None = None,
) -> tuple[EpochProgress, bool]:
    """A pass over ``split`` in the seeded order of ``epoch``.

    Args:
        resume_from: continue an interrupted epoch after its ``batches_done`` (the caller restores
            the global RNG state saved with it, which drives the dropout masks).
        should_stop: checked after every batch; when it returns True the epoch stops there.
        augment: ``augment(x, epoch=, batch=)`` applied to each training batch (seeded per batch,
            so a resumed epoch sees the same batches).
        on_batch: called with the progress after a batch (not the epoch's last) when
            ``checkpoint_due()`` says so on some rank (``fit`` saves a mid-epoch checkpoint).
        checkpoint_due: asked after every batch whether ``on_batch`` should run.
        replicas: the data-parallel run this process belongs to; ``model`` is then wrapped by
            ``replicas.wrap``. Each rank computes its slice of every global batch; the progress
            (loss, hits, samples) is summed over the ranks and the stop flag agreed after each batch.
        averaged: the moving average of the weights (``ema_decay``), updated after every step.

    Returns:
        (the epoch's progress, complete when ``seen`` covers the split; whether a stop was requested).
    """
    device = next(model.parameters()).device
    model_dtype = next(model.parameters()).dtype
    model.train()
    loss_fn, predict_fn = loss_function(cfg), prediction_function(cfg)
    order = torch.randperm(
        len(split), generator=torch.Generator().manual_seed(_epoch_seed(cfg.train.seed, epoch))
    )
    state = resume_from or EpochProgress(epoch)
    if resume_from is None:
        torch.manual_seed(dropout_seed(cfg.train.seed, epoch, replicas.rank))  # dropout masks
    n_batches = math.ceil(len(split) / cfg.train.batch_size)
    bar = tqdm(
        total=n_batches,
        initial=state.batches_done,
        desc=f"epoch {epoch}/{cfg.train.epochs}",
        leave=False,
        disable=not progress,
        unit="batch",
    )
    t0 = time.perf_counter() - state.seconds
    stopped = False
    for batch, idx in enumerate(_batches(len(split), cfg.train.batch_size, order)):
        if batch < state.batches_done:
            continue
        rows, counted = replicas.shard_rows(len(idx))  # this rank's part of the global batch
        y = split.labels[idx[rows]].to(device)
        if augment is None:
            x = split.images[idx[rows]].to(device, model_dtype)
        else:
            # Augmented as the whole global batch, then sliced: the crops one process would draw.
            x = augment(split.images[idx].to(device, model_dtype), epoch=epoch, batch=batch)[rows]
        out = model(x).spikes
        loss = loss_fn(out, y)
        check_finite_loss(loss, epoch, batch)
        if replicas.distributed:
            loss = loss * _shard_weight(cfg, len(y), len(idx), counted)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch, batch, n_batches)
        optimizer.step()
        unwrap(model).clip_weights(cfg.train.weight_clip)
        check_finite_weights(unwrap(model), epoch, batch)
        if averaged is not None:
            averaged.update_parameters(unwrap(model))
        last = batch + 1 == n_batches
        stop, save, batch_loss, batch_correct, batch_seen = replicas.sync_batch(
            should_stop(),
            on_batch is not None and not last and checkpoint_due(),
            float(loss.detach()),
            int((predict_fn(out.detach()) == y).sum()) if counted else 0,
            len(y) if counted else 0,
        )
        state.correct += batch_correct
        state.loss_sum += batch_loss
        state.seen += batch_seen
        state.batches_done = batch + 1
        bar.update()
        bar.set_postfix(
            loss=f"{state.loss_sum / state.seen:.4f}",
            acc=f"{100 * state.correct / state.seen:.1f}%",
            refresh=False,
        )
        if stop:
            stopped = True
            break
        if save and on_batch is not None:
            state.seconds = time.perf_counter() - t0
            on_batch(state)
    bar.close()
    state.seconds = time.perf_counter() - t0
    return state, stopped


class TrainingInterrupted(Exception):
    """Training stopped on request (SIGINT/SIGTERM) after saving a resumable checkpoint."""

    def __init__(self, path: Path, epoch: int, batches_done: int, rank: int = 0) -> None:
        super().__init__(
            f"interrupted in epoch {epoch} after {batches_done} batches; saved {path} (continue with --resume)"
        )
        self.path = path
        #: The data-parallel rank that raised it: every rank does, rank 0 reports it.
        self.rank = rank


class _StopOnSignal:
    """Turn SIGINT/SIGTERM into a flag checked between batches (main thread only; else a no-op)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            signal.default_int_handler(signum, frame)
        self.requested = True
        log.warning("stop requested: finishing the current batch and saving")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file, fsync, rename: :func:`tsslbp.safeio.atomic_output`)."""
    with atomic_output(path, fsync=True) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a tsslbp checkpoint without unpickling arbitrary objects.

    Raises:
        CheckpointError: missing or unreadable file, not a tsslbp checkpoint, or a newer format.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with open_regular(path, max_bytes=LIMITS["checkpoint_bytes"].high) as fh:
            state = torch.load(fh, map_location=map_location, weights_only=True)
    except UnsafeFileError as err:
        raise CheckpointError(str(err)) from None
    except Exception as err:  # torch raises many types for foreign or corrupt files
        with open(path, "rb") as f:
            if f.read(8) == b"\x89HDF\r\n\x1a\n":
                raise CheckpointError(
                    f"{path}: an HDF5 file (a netx or NIR model), not a training checkpoint: "
                    "`tsslbp eval`, `verify`, `deploy` or `report` score a netx file; this command "
                    "takes the .pt that `tsslbp train` writes"
                ) from err
        raise CheckpointError(
            f"{path}: not a readable tsslbp checkpoint ({type(err).__name__})"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tsslbp checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if state.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format_version']} is newer than this tsslbp "
            f"({__version__}) reads (format {CHECKPOINT_VERSION}); upgrade tsslbp"
        )
    return state


def model_from_checkpoint(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[TsslbpNetwork, ExperimentConfig, dict[str, Any]]:
    """Rebuild the network and its config from a checkpoint; returns (model, config, raw state).

    The weights are the run's moving average when it kept one (``ema_decay`` > 0: the weights its
    test accuracy measured), else its last weights.

    Raises:
        CheckpointError: as :func:`load_checkpoint`, or entries missing, or weights that do not fit
            the network its config describes (names the first missing, extra or mis-shaped tensor).
        ConfigError: the embedded config is invalid.
    """
    state = load_checkpoint(path, map_location=device)
    for key in ("config", "model", "epoch"):
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint has no '{key}' entry")
    cfg = parse_config(state["config"], f"{path} (embedded config)")
    model = TsslbpNetwork(cfg).to(device)
    problem = _state_dict_mismatch(model, state["model"])
    if problem:
        raise CheckpointError(f"{path}: weights do not fit the network in its config ({problem})")
    check_checkpoint_values(path, model, state)
    averaged = state.get("averaged")
    model.load_state_dict(state["model"] if averaged is None else averaged)
    return model, cfg, state


def _state_dict_mismatch(model: torch.nn.Module, weights: Any, entry: str = "model") -> str | None:
    """First difference between a saved state dict and the model's, in words (None: they fit)."""
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        return f"the '{entry}' entry is not a dict of tensors"
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in weights:
            return f"{name} is missing"
        if tuple(weights[name].shape) != tuple(tensor.shape):
            return f"{name} is {tuple(weights[name].shape)}, the config needs {tuple(tensor.shape)}"
    extra = sorted(set(weights) - set(own))
    return f"unexpected {extra[0]}" if extra else None


def _checkpoint_state(
    model: TsslbpNetwork,
    optimizer: torch.optim.Optimizer,
    cfg: ExperimentConfig,
    epoch: int,
    history: list[EpochMetrics],
    best: EpochMetrics | None,
    averaged: AveragedModel | None = None,
) -> dict[str, Any]:
    extra = {}
    if averaged is not None:
        extra = {
            "averaged": averaged.module.state_dict(),
            "averaged_steps": int(averaged.n_averaged),
        }
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "tsslbp_version": __version__,
        "config": cfg.to_dict(),
        "seed": cfg.train.seed,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "metrics": [dataclasses.asdict(m) for m in history],
        "best": dataclasses.asdict(best) if best is not None else None,
        **extra,
    }


def fit(
    cfg: ExperimentConfig,
    data: DataSplits,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_seconds: float | None = DEFAULT_CHECKPOINT_SECONDS,
    replicas: Replicas = LOCAL,
    announce: Callable[[str], None] | None = None,
    start_weights: dict[str, torch.Tensor] | None = None,
) -> list[EpochMetrics]:
    """Train for ``cfg.train.epochs`` epochs, writing ``last.pt`` each epoch and ``best.pt`` on a new best.

    Args:
        cfg: validated experiment config.
        data: train and test splits.
        out_dir: run directory (created).
        device: torch device.
        resume: continue from ``out_dir/last.pt`` if it exists.
        progress: show a progress bar per epoch.
        on_epoch: called with each epoch's metrics (the CLI prints the line).
        should_stop: checked after every batch (default: a SIGINT/SIGTERM arrived). When it turns
            true, the current batch finishes, ``last.pt`` is saved with the epoch's progress and
            the RNG state, and :class:`TrainingInterrupted` is raised; ``resume=True`` continues
            exactly where it stopped.
        checkpoint_seconds: also save a resumable mid-epoch ``last.pt`` when this many seconds have
            passed since the last save (0: after every batch; None: only at epoch ends), so a run
            killed without warning (SIGKILL, power loss) loses at most that much work.
        replicas: the data-parallel run of this process (:func:`.distributed.from_environment`;
            ``device`` should be its ``device``). Every rank calls ``fit``; rank 0 alone reads
            and writes ``out_dir`` (the others get the resumed state from it) and calls
            ``on_epoch``. A stop requested on any rank stops all after the same batch.
        announce: receives one line on rank 0 when the run resumes (where it continues from).
        start_weights: a state dict the model starts from instead of its random initialization
            (fine-tuning; :func:`initial_weights`); unused when the run resumes from ``last.pt``.

    Raises:
        TrainingInterrupted: after a stop request, once the checkpoint is saved.
        DistributedError: another rank died or hung.
        tsslbp.safeio.RunLockedError: another run is writing into ``out_dir``.
        TrainingDiverged: the loss or a weight became NaN or infinite (nothing of it is saved).

    Returns:
        Metrics of every epoch of the run, resumed epochs included.
    """
    out_dir = Path(out_dir)
    writer = replicas.is_main

    def tell(line: str, level: int = logging.INFO) -> None:
        """Log ``line``; rank 0 also hands it to ``announce`` (the run's log file)."""
        log.log(level, line)
        if announce is not None and writer:
            announce(line)

    held = contextlib.ExitStack()
    if writer:
        # Rank 0 alone writes into out_dir, so it alone makes it and holds its run lock (the other
        # ranks of a torchrun job share the folder on one machine and would find it taken).
        out_dir.mkdir(parents=True, exist_ok=True)
        held.enter_context(run_lock(out_dir))
    with held:
        _check_labels(data, cfg.data.n_class)
        torch.manual_seed(cfg.train.seed)
        model = TsslbpNetwork(cfg).to(device)
        optimizer = make_optimizer(model, cfg)
        history: list[EpochMetrics] = []
        best: EpochMetrics | None = None
        start, partial = 1, None
        last_path = out_dir / "last.pt"
        state = None
        if resume and writer and last_path.exists():
            # Other ranks get rank 0's checkpoint (their machines may not see out_dir), on the CPU.
            state = load_checkpoint(
                last_path, map_location="cpu" if replicas.distributed else device
            )
        state = replicas.broadcast(state) if resume else None
        if state is not None:
            check_resume_state(last_path, model, optimizer, cfg, state)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history = [EpochMetrics(**m) for m in state["metrics"]]
            best = EpochMetrics(**state["best"]) if state["best"] else None
            start = state["epoch"] + 1
            if state.get("partial"):
                partial = EpochProgress(**state["partial"])
                _restore_rng(state, cfg, partial.epoch, replicas)
            tell(
                f"resuming {last_path} after epoch {state['epoch']}"
                + (f" + {partial.batches_done} batches of epoch {partial.epoch}" if partial else "")
            )
        elif resume:
            log.info("no %s to resume from: starting a new run", last_path)
        if state is None and start_weights is not None:
            model.load_state_dict(start_weights)
        averaged = _weight_average(model, cfg, state)
        if state is not None and writer and (averaged is None) != (state.get("averaged") is None):
            tell(
                "ema_decay is 0: the checkpoint's weight average is dropped"
                if averaged is None
                else f"the weight average (ema_decay {cfg.train.ema_decay}) starts here: "
                "the checkpoint has none"
            )
        lag = average_lag_note(cfg, len(data.train))  # None without an average
        if lag and writer:
            tell(lag, logging.WARNING)

        last_save = time.monotonic()
        net = replicas.wrap(model)

        def save_partial(done: EpochProgress) -> None:
            # Weights after done.batches_done batches of epoch done.epoch: resuming restores them, the
            # optimizer, the RNG state that drives the dropout masks, and skips the batches done.
            nonlocal last_save
            rng_states = replicas.gather(_rng_state(device))  # every rank's (a collective)
            if writer:
                state = _checkpoint_state(
                    model, optimizer, cfg, done.epoch - 1, history, best, averaged
                )
                state["partial"] = dataclasses.asdict(done)
                state["rng_state"] = rng_states[0]["cpu"]
                state["rng_states"] = rng_states
                save_checkpoint(last_path, state)
            last_save = time.monotonic()

        def checkpoint_due() -> bool:
            return (
                checkpoint_seconds is not None
                and time.monotonic() - last_save >= checkpoint_seconds
            )

        with _StopOnSignal() as stop, replicas.errors():
            stop_check = should_stop or (lambda: stop.requested)
            for epoch in range(start, cfg.train.epochs + 1):
                levels = quant_aware_levels(cfg, epoch)
                set_weight_levels(model, levels)
                if averaged is not None:
                    set_weight_levels(averaged.module, levels)
                done, stopped = train_epoch(
                    net,
                    data.train,
                    cfg,
                    optimizer,
                    epoch,
                    progress and writer,
                    partial,
                    stop_check,
                    data.augment,
                    save_partial,
                    checkpoint_due,
                    replicas,
                    averaged,
                )
                partial = None
                if done.seen < len(data.train):
                    save_partial(done)
                    raise TrainingInterrupted(last_path, epoch, done.batches_done, replicas.rank)
                t0 = time.perf_counter()
                handed_on = model if averaged is None else averaged.module
                test = _evaluate_shared(handed_on, data.test, cfg, replicas)
                raw = None
                if averaged is not None:
                    raw = _evaluate_shared(model, data.test, cfg, replicas).accuracy
                seconds = done.seconds + time.perf_counter() - t0
                metrics = EpochMetrics(
                    epoch,
                    done.loss_sum / done.seen,
                    done.correct / done.seen,
                    test.accuracy,
                    seconds,
                    raw,
                )
                history.append(metrics)
                new_best = best is None or metrics.test_acc > best.test_acc
                best = metrics if new_best else best
                if writer:
                    if new_best:
                        save_checkpoint(
                            out_dir / "best.pt",
                            _checkpoint_state(
                                model, optimizer, cfg, epoch, history, best, averaged
                            ),
                        )
                    save_checkpoint(
                        last_path,
                        _checkpoint_state(model, optimizer, cfg, epoch, history, best, averaged),
                    )
                    if on_epoch is not None:
                        on_epoch(metrics)
                last_save = time.monotonic()
                if stopped and epoch < cfg.train.epochs:
                    raise TrainingInterrupted(last_path, epoch, done.batches_done, replicas.rank)
        return history


#: Steps per sign of the weight grid that quantization-aware epochs train on: the export's 8-bit
#: Loihi weights, the even integers in [-256, 254] with the largest |w| at 254 (tsslbp.export.quantize).
QUANT_AWARE_LEVELS = 127


def quant_aware_levels(cfg: ExperimentConfig, epoch: int) -> int | None:
    """The weight grid (steps per sign) that ``epoch`` (1-based) trains on: :data:`QUANT_AWARE_LEVELS`
    in the last ``quant_aware_epochs`` epochs, else None (float weights)."""
    if epoch > cfg.train.epochs - cfg.train.quant_aware_epochs:
        return QUANT_AWARE_LEVELS
    return None


def initial_weights(path: str | Path, cfg: ExperimentConfig) -> dict[str, torch.Tensor]:
    """The weights a fine-tuning run of ``cfg`` starts from: those of the checkpoint at ``path``
    (its weight average where it has one, as export and eval use), checked against ``cfg``'s network.

    Raises:
        CheckpointError: the file is no checkpoint, or its network is not ``cfg``'s.
    """
    weights = model_from_checkpoint(path)[0].state_dict()
    problem = _state_dict_mismatch(TsslbpNetwork(cfg), weights)
    if problem:
        raise CheckpointError(f"{path}: its network is not this config's ({problem})")
    return weights


#: Largest share of the final weight average that the run's first half may hold before
#: :func:`average_lag_note` says the average is too slow for the run.
EARLY_SHARE_LIMIT = 0.05


def average_lag_note(cfg: ExperimentConfig, n_train: int) -> str | None:
    """A line saying that ``ema_decay`` is too slow for a run this short, or None.

    After ``N`` steps the weights of the run's first half make up ``d ** (N / 2)`` of the moving
    average: above :data:`EARLY_SHARE_LIMIT` the average that is tested and exported still carries
    the early weights (0.9998 over one Fashion-MNIST CNN epoch: 63% test accuracy against the last
    weights' 83%).
    """
    decay = cfg.train.ema_decay
    steps = cfg.train.epochs * math.ceil(n_train / cfg.train.batch_size)
    if decay <= 0 or steps == 0:
        return None
    share = decay ** (steps / 2)
    if share <= EARLY_SHARE_LIMIT:
        return None
    return (
        f"ema_decay {decay:g} averages over about {1 / (1 - decay):,.0f} steps, and this run has "
        f"{steps:,}: its first half makes up {share:.0%} of the weight average that is tested and "
        "exported. Set ema_decay: 0 (or a smaller decay) for a run this short."
    )


def _weight_average(
    model: TsslbpNetwork, cfg: ExperimentConfig, state: dict[str, Any] | None
) -> AveragedModel | None:
    """The moving average of ``model``'s weights when ``ema_decay`` > 0, restored from a resumed
    checkpoint's (checked by :func:`check_resume_state`); a fresh one starts at the next step."""
    if cfg.train.ema_decay <= 0:
        return None
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay))
    if state is not None and state.get("averaged") is not None:
        averaged.module.load_state_dict(state["averaged"])
        averaged.n_averaged.fill_(state["averaged_steps"])
    return averaged


def _shard_weight(cfg: ExperimentConfig, shard: int, batch: int, counted: bool) -> float:
    """Factor on a rank's loss so that the ranks' losses add up to the global batch's.

    The ranks' gradients are summed (:mod:`.distributed`): a loss that sums over samples needs no
    factor; one that averages over them (softmax on the PSP, the authors' code) is weighted by
    the rank's share of the global batch. A rank with no samples of its own weighs 0.
    """
    if not counted:
        return 0.0
    averaged = cfg.train.loss is LossKind.SOFTMAX and cfg.train.softmax_on is OutputMeasure.PSP
    return shard / batch if averaged else 1.0


def _rng_state(device: torch.device | str) -> dict[str, torch.Tensor]:
    """The generator states that drive dropout: the CPU one, and the device's on CUDA."""
    state = {"cpu": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(
    state: dict[str, Any], cfg: ExperimentConfig, epoch: int, replicas: Replicas
) -> None:
    """Put back the dropout generator of an interrupted epoch.

    Each rank restores its own saved state. A rank the checkpoint has none for (it was saved by
    fewer processes) reseeds from (seed, epoch, rank, batches done): its masks then differ from an
    uninterrupted run's, as they would anyway with another number of processes.
    """
    saved = state.get("rng_states") or [{"cpu": state["rng_state"]}]
    if replicas.rank < len(saved) and len(saved) == replicas.world_size:
        torch.set_rng_state(saved[replicas.rank]["cpu"])
        if "cuda" in saved[replicas.rank] and replicas.device.type == "cuda":
            torch.cuda.set_rng_state(saved[replicas.rank]["cuda"], replicas.device)
        return
    done = state["partial"]["batches_done"]
    torch.manual_seed(dropout_seed(cfg.train.seed, epoch, replicas.rank) + 7919 * done)
    log.info(
        "checkpoint saved by %d process(es), resumed by %d: fresh dropout masks for the rest of "
        "epoch %d",
        len(saved),
        replicas.world_size,
        epoch,
    )


def _evaluate_shared(
    model: TsslbpNetwork, split: Split, cfg: ExperimentConfig, replicas: Replicas
) -> EvalResult:
    """:func:`evaluate` with the split divided among the ranks and the sums reduced."""
    if not replicas.distributed:
        return evaluate(model, split, cfg)
    rows, counted = replicas.shard_rows(len(split))
    sums = [0.0, 0.0, 0.0, 0.0]
    if counted:
        part = evaluate(model, Split(split.images[rows], split.labels[rows]), cfg)
        n = part.n_samples
        sums = [part.accuracy * n, part.loss * n, part.mean_output_spikes * n, float(n)]
    correct, loss, spikes, n = replicas.all_sum(sums)
    return EvalResult(round(correct) / n, loss / n, int(n), spikes / n)


def _check_labels(data: DataSplits, n_class: int) -> None:
    for name, split in (("train", data.train), ("test", data.test)):
        if len(split) == 0:
            raise ValueError(f"{data.name}: the {name} split is empty")
        lo, hi = int(split.labels.min()), int(split.labels.max())
        if lo < 0 or hi >= n_class:
            raise ValueError(
                f"{data.name}: {name} labels span {lo}..{hi}, outside 0..{n_class - 1} (n_class)"
            )


# --- untrusted checkpoints and diverging runs ------------------------------------------------------


class TrainingDiverged(RuntimeError):
    """The loss or a weight became NaN or infinite; the run stops without saving that state."""


def _epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of one epoch: ``seed * 100003 + epoch`` within torch's 64 bits (the same
    value as before for every seed below 2**64 / 100003)."""
    return (seed * 100003 + epoch) % (1 << 64)


def check_finite_loss(loss: torch.Tensor, epoch: int, batch: int) -> None:
    """Stop before a non-finite loss reaches the weights.

    Raises:
        TrainingDiverged: one line naming the epoch and batch.
    """
    if not bool(torch.isfinite(loss.detach()).all()):
        raise TrainingDiverged(
            f"training diverged: the loss is {float(loss.detach()):g} in epoch {epoch}, batch "
            f"{batch}; stopped before saving, the last checkpoint keeps the last good weights "
            "(try a smaller lr or weight_scale)"
        )


def check_finite_weights(model: torch.nn.Module, epoch: int, batch: int) -> None:
    """Stop when an optimizer step left a NaN or infinite weight.

    Raises:
        TrainingDiverged: one line naming the epoch, batch and parameter.
    """
    for name, param in model.named_parameters():
        # One sum per tensor (NaN and inf carry through it): 40x cheaper than an elementwise test,
        # which runs only to word the error. A sum beyond float32's range (weights near 1e32
        # and more) counts as divergence too.
        if bool(torch.isfinite(param.detach().sum())):
            continue
        what = (
            "NaN or infinite values"
            if not bool(torch.isfinite(param.detach()).all())
            else "values too large to sum in float32"
        )
        raise TrainingDiverged(
            f"training diverged: {name} holds {what} after epoch {epoch}, "
            f"batch {batch}; stopped before saving, the last checkpoint keeps the last good "
            "weights (try a smaller lr or weight_scale)"
        )


def _tensor_problem(name: str, value: Any, like: torch.Tensor) -> str | None:
    """Why ``value`` cannot stand in for ``like`` (a tensor of the same shape, floating dtype of
    the model and finite values), or None."""
    if not isinstance(value, torch.Tensor):
        return f"{name} is a {type(value).__name__}, not a tensor"
    if value.dtype != like.dtype:
        return f"{name} has dtype {str(value.dtype).removeprefix('torch.')}, the model needs {str(like.dtype).removeprefix('torch.')}"
    if tuple(value.shape) != tuple(like.shape):
        return f"{name} is {tuple(value.shape)}, the model needs {tuple(like.shape)}"
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        return f"{name} holds NaN or infinite values"
    return None


def check_checkpoint_values(path: Path, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Weights of the model's dtype and finite; epoch and seed integers within
    :data:`tsslbp.safeio.LIMITS`.

    Raises:
        CheckpointError: the first bad entry, naming the file.
    """
    epoch = state["epoch"]
    # 0: saved during the first epoch (a partial-epoch checkpoint).
    if (
        isinstance(epoch, bool)
        or not isinstance(epoch, int)
        or not 0 <= epoch <= LIMITS["epochs"].high
    ):
        raise CheckpointError(
            f"{path}: 'epoch' must be an integer in [0, {LIMITS['epochs'].high}], found {str(epoch):.40}"
        )
    if "seed" in state:
        try:
            check_limit("seed", state["seed"], "'seed'")
        except ValueError as err:
            raise CheckpointError(f"{path}: {err}") from None
    weights = {"": state["model"]}
    if state.get("averaged") is not None:
        problem = _state_dict_mismatch(model, state["averaged"], "averaged")
        if problem:
            raise CheckpointError(
                f"{path}: the weight average does not fit the network ({problem})"
            )
        steps = state.get("averaged_steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps < 2**53:
            raise CheckpointError(
                f"{path}: 'averaged_steps' must be an integer >= 0, found {str(steps):.40}"
            )
        weights["averaged "] = state["averaged"]
    own = model.state_dict()
    for prefix, saved in weights.items():
        for name, tensor in own.items():
            problem = _tensor_problem(f"{prefix}{name}", saved[name], tensor)
            if problem:
                raise CheckpointError(f"{path}: {problem}")


def _same_kind(value: Any, own: Any) -> bool:
    """A saved optimizer setting is of the kind of this optimizer's own (flags stay flags, numbers
    are finite, tuples keep their length)."""
    if own is None or isinstance(own, (bool, str)):
        return type(value) is type(own) or (own is None and value is None)
    if isinstance(own, (tuple, list)):
        return (
            isinstance(value, (tuple, list))
            and len(value) == len(own)
            and all(_same_kind(v, o) for v, o in zip(value, own))
        )
    if isinstance(own, torch.Tensor):
        value = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value >= 0
    )


def _optimizer_problem(optimizer: torch.optim.Optimizer, saved: Any) -> str | None:
    """Why a saved Adam state cannot be loaded into ``optimizer`` (None: it fits).

    ``load_state_dict`` trusts the saved tensors: a wrong shape crashed the fused Adam kernel.
    """
    own = optimizer.state_dict()
    if not isinstance(saved, dict) or set(saved) != {"state", "param_groups"}:
        return "the optimizer entry is not an optimizer state"
    groups, own_groups = saved["param_groups"], own["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(own_groups):
        return "the optimizer has a different number of parameter groups"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, (group, own_group) in enumerate(zip(groups, own_groups)):
        if not isinstance(group, dict) or set(group) != set(own_group):
            return f"optimizer parameter group {i} has other keys than Adam's"
        if group["params"] != own_group["params"]:
            return f"optimizer parameter group {i} lists other parameters than the model's"
        for key, value in group.items():
            if key != "params" and not _same_kind(value, own_group[key]):
                return f"optimizer setting {key} is {str(value):.40}, expected one like {own_group[key]!r}"
    state = saved["state"]
    if not isinstance(state, dict):
        return "the optimizer state is not a mapping"
    for index, entry in state.items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            return f"optimizer state for unknown parameter {str(index):.20}"
        if not isinstance(entry, dict) or not {"step", "exp_avg", "exp_avg_sq"} <= set(entry):
            return f"optimizer state of parameter {index} is not Adam's"
        for key in ("exp_avg", "exp_avg_sq"):
            problem = _tensor_problem(
                f"optimizer {key} of parameter {index}", entry[key], params[index].detach()
            )
            if problem:
                return problem
        step = entry["step"]
        step_value = float(step) if isinstance(step, torch.Tensor) and step.numel() == 1 else step
        if (
            isinstance(step_value, bool)
            or not isinstance(step_value, (int, float))
            or not (0 <= step_value < 2**53)
        ):
            return f"optimizer step of parameter {index} is {str(step):.40}"
        if isinstance(step, torch.Tensor) and step.dtype != torch.float32:
            return f"optimizer step of parameter {index} has dtype {step.dtype}"
    return None


def check_resume_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: ExperimentConfig,
    state: dict[str, Any],
) -> None:
    """Everything ``fit(resume=True)`` takes from ``last.pt``, checked before any of it is loaded:
    weights (:func:`check_checkpoint_values`), optimizer state, metrics, partial-epoch progress and
    RNG state.

    Raises:
        CheckpointError: the first bad entry, naming the file.
    """
    for key in ("model", "optimizer", "metrics", "best", "epoch"):
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint has no '{key}' entry")
    problem = _state_dict_mismatch(model, state["model"])
    if problem:
        raise CheckpointError(f"{path}: weights do not fit the network in its config ({problem})")
    check_checkpoint_values(path, model, state)
    problem = _optimizer_problem(optimizer, state["optimizer"])
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    metric_keys = {f.name for f in dataclasses.fields(EpochMetrics)}
    required = {
        f.name for f in dataclasses.fields(EpochMetrics) if f.default is dataclasses.MISSING
    }
    records = state["metrics"] if isinstance(state["metrics"], list) else None
    best = [state["best"]] if state["best"] else []
    if records is None or any(
        not isinstance(m, dict) or not required <= set(m) <= metric_keys for m in [*records, *best]
    ):
        raise CheckpointError(f"{path}: the metrics entries are not tsslbp's epoch metrics")
    partial = state.get("partial")
    if partial:
        keys = {f.name for f in dataclasses.fields(EpochProgress)}
        if not isinstance(partial, dict) or set(partial) != keys:
            raise CheckpointError(f"{path}: the partial-epoch entry is not tsslbp's")
        rng = state.get("rng_state")
        expected = torch.get_rng_state()
        if (
            not isinstance(rng, torch.Tensor)
            or rng.dtype != expected.dtype
            or rng.shape != expected.shape
        ):
            raise CheckpointError(f"{path}: the saved RNG state is not torch's CPU generator state")
