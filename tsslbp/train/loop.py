"""Training and evaluation loops, and checkpoints.

A run is repeatable on CPU: the data order of epoch e comes from a generator seeded with
``(seed, e)`` and dropout masks from the global generator reseeded the same way at each epoch,
so a run resumed from a checkpoint sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import ExperimentConfig, LossKind, parse_config
from .data import DataSplits, Split
from .losses import count_loss, kernel_loss, predict, softmax_loss
from .network import TsslbpNetwork

__all__ = [
    "EpochMetrics",
    "EvalResult",
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "loss_function",
    "evaluate",
    "train_epoch",
    "fit",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_device",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tsslbp-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a tsslbp checkpoint, or from a newer version."""


@dataclass(frozen=True)
class EpochMetrics:
    """Figures of one epoch. ``train_acc`` is measured on the fly (dropout active)."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch}/{epochs}  loss {self.loss:.4f}  train acc {100 * self.train_acc:.2f}%  "
            f"test acc {100 * self.test_acc:.2f}%  {self.seconds:.1f} s"
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
    """The configured loss as ``f(output_spikes, labels) -> scalar``."""
    kind = cfg.train.loss
    if kind is LossKind.KERNEL:
        return lambda spikes, labels: kernel_loss(spikes, labels, cfg.neuron.tau_s)
    if kind is LossKind.COUNT:
        return lambda spikes, labels: count_loss(spikes, labels, cfg.train.desired_count, cfg.train.undesired_count)
    return softmax_loss


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None):
    idx = order if order is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield idx[start : start + batch_size]


@torch.no_grad()
def evaluate(model: TsslbpNetwork, split: Split, cfg: ExperimentConfig, batch_size: int = 500) -> EvalResult:
    """Accuracy and mean loss per sample of ``model`` on ``split`` (model put in eval mode)."""
    device = next(model.parameters()).device
    model.eval()
    loss_fn = loss_function(cfg)
    correct, total_loss, total_spikes = 0, 0.0, 0.0
    for idx in _batches(len(split), batch_size):
        x, y = split.images[idx].to(device), split.labels[idx].to(device)
        out = model(x).spikes
        correct += int((predict(out) == y).sum())
        total_loss += float(loss_fn(out, y))
        total_spikes += float(out.sum())
    n = len(split)
    return EvalResult(correct / n, total_loss / n, n, total_spikes / n)


def train_epoch(
    model: TsslbpNetwork,
    split: Split,
    cfg: ExperimentConfig,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    progress: bool = True,
) -> tuple[float, float]:
    """One pass over ``split`` in the seeded order of ``epoch``; returns (mean loss, train accuracy)."""
    device = next(model.parameters()).device
    model.train()
    loss_fn = loss_function(cfg)
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(cfg.train.seed * 100003 + epoch))
    torch.manual_seed(cfg.train.seed * 100003 + epoch)  # dropout masks
    correct, total_loss, seen = 0, 0.0, 0
    n_batches = math.ceil(len(split) / cfg.train.batch_size)
    bar = tqdm(
        _batches(len(split), cfg.train.batch_size, order),
        total=n_batches,
        desc=f"epoch {epoch}/{cfg.train.epochs}",
        leave=False,
        disable=not progress,
        unit="batch",
    )
    for idx in bar:
        x, y = split.images[idx].to(device), split.labels[idx].to(device)
        out = model(x).spikes
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        model.clip_weights(cfg.train.weight_clip)
        correct += int((predict(out.detach()) == y).sum())
        total_loss += float(loss.detach())
        seen += len(idx)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{100 * correct / seen:.1f}%", refresh=False)
    return total_loss / seen, correct / seen


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file, fsync, rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a tsslbp checkpoint without unpickling arbitrary objects.

    Raises:
        CheckpointError: missing or unreadable file, not a tsslbp checkpoint, or a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign or corrupt files
        raise CheckpointError(f"{path}: not a readable tsslbp checkpoint ({type(err).__name__})") from err
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
    """Rebuild the network and its config from a checkpoint; returns (model, config, raw state)."""
    state = load_checkpoint(path, map_location=device)
    cfg = parse_config(state["config"], f"{path} (embedded config)")
    model = TsslbpNetwork(cfg).to(device)
    model.load_state_dict(state["model"])
    return model, cfg, state


def _checkpoint_state(
    model: TsslbpNetwork,
    optimizer: torch.optim.Optimizer,
    cfg: ExperimentConfig,
    epoch: int,
    history: list[EpochMetrics],
    best: EpochMetrics | None,
) -> dict[str, Any]:
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
    }


def fit(
    cfg: ExperimentConfig,
    data: DataSplits,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
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

    Returns:
        Metrics of every epoch of the run, resumed epochs included.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_labels(data, cfg.data.n_class)
    torch.manual_seed(cfg.train.seed)
    model = TsslbpNetwork(cfg).to(device)
    optimizer = _adam(model, cfg.train.lr)
    history: list[EpochMetrics] = []
    best: EpochMetrics | None = None
    start = 1
    last_path = out_dir / "last.pt"
    if resume and last_path.exists():
        state = load_checkpoint(last_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = [EpochMetrics(**m) for m in state["metrics"]]
        best = EpochMetrics(**state["best"]) if state["best"] else None
        start = state["epoch"] + 1
        log.info("resuming %s after epoch %d", last_path, state["epoch"])
    elif resume:
        log.info("no %s to resume from: starting a new run", last_path)

    for epoch in range(start, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        loss, train_acc = train_epoch(model, data.train, cfg, optimizer, epoch, progress)
        test = evaluate(model, data.test, cfg)
        metrics = EpochMetrics(epoch, loss, train_acc, test.accuracy, time.perf_counter() - t0)
        history.append(metrics)
        if best is None or metrics.test_acc > best.test_acc:
            best = metrics
            save_checkpoint(out_dir / "best.pt", _checkpoint_state(model, optimizer, cfg, epoch, history, best))
        save_checkpoint(last_path, _checkpoint_state(model, optimizer, cfg, epoch, history, best))
        if on_epoch is not None:
            on_epoch(metrics)
    return history


def _adam(model: TsslbpNetwork, lr: float) -> torch.optim.Adam:
    # The fused kernel (one pass over each parameter) is much faster on CPU; older torch lacks it there.
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _check_labels(data: DataSplits, n_class: int) -> None:
    for name, split in (("train", data.train), ("test", data.test)):
        if len(split) == 0:
            raise ValueError(f"{data.name}: the {name} split is empty")
        lo, hi = int(split.labels.min()), int(split.labels.max())
        if lo < 0 or hi >= n_class:
            raise ValueError(f"{data.name}: {name} labels span {lo}..{hi}, outside 0..{n_class - 1} (n_class)")
