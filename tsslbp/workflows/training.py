"""The ``train`` and ``eval`` jobs: fit a config's network, then score a checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .. import plots
from ..config import ExperimentConfig, load_config
from ..data import load_experiment_data
from ..safeio import write_text
from ..train.distributed import session
from ..train.loop import (
    DEFAULT_CHECKPOINT_SECONDS,
    EpochMetrics,
    EvalResult,
    TrainingInterrupted,
    fit,
    initial_weights,
    load_checkpoint,
    model_from_checkpoint,
    resolve_device,
)
from ..train.loop import evaluate as evaluate_split
from ..train.rundir import prepare_run_dir
from .analysis import confusion_counts, float_predictions
from .common import Log, record
from .running import ModelEvalResult, evaluate_model

__all__ = [
    "EvaluateResult",
    "TrainResult",
    "evaluate",
    "is_hdf5_file",
    "train",
    "train_record",
]


@dataclass(frozen=True)
class TrainResult:
    """A training run: its directory, the epochs asked for and the metrics of those done.

    ``history`` is empty when ``resume`` found every epoch already done.
    """

    out: Path
    epochs: int
    history: tuple[EpochMetrics, ...]
    #: This process's rank in a data-parallel run (torchrun); only rank 0 reports.
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "epochs": self.epochs,
            "history": [asdict(m) for m in self.history],
        }

    def lines(self) -> list[str]:
        if self.rank != 0:
            return []
        if not self.history:
            return [f"nothing to do: {self.out / 'last.pt'} already holds all {self.epochs} epochs"]
        best = max(self.history, key=lambda m: m.test_acc)
        total = sum(m.seconds for m in self.history)
        return [
            f"done: final test accuracy {self.history[-1].test_figure()}, best {100 * best.test_acc:.2f}% "
            f"(epoch {best.epoch}); {total:.1f} s training; checkpoints in {self.out}/"
        ]


def train(
    config: str | Path,
    *,
    data_dir: Path | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    out: Path | None = None,
    resume: bool = False,
    force: bool = False,
    init: Path | None = None,
    checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
    progress: bool = True,
    log: Log = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Train the network a YAML config describes; writes best.pt, last.pt, metrics.json,
    curves.png and last.pt's manifest into ``out`` [default: runs/<config name>].

    Started by torchrun, every process calls this and they train one model data-parallel
    (:mod:`tsslbp.train.distributed`); rank 0 alone logs and writes.

    Args:
        config: the YAML file, or a shipped config's name (:func:`tsslbp.configs.find_config`).
        data_dir: the data set's directory (overrides the config's ``data_path``).
        epochs, seed: override ``Network.epochs`` / ``Network.seed``.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue the run in ``out`` from its last.pt (an error when there is none).
        init: a checkpoint whose weights (its average where it kept one) the run starts from
            instead of a random initialization: fine-tuning with this config's schedule, a new
            optimizer and a new weight average (not used when ``resume`` finds a last.pt).
        force: replace the run already in ``out`` (without it or ``resume``, an ``out`` holding a
            run is refused: :func:`tsslbp.train.rundir.prepare_run_dir`).
        checkpoint_seconds: also save a resumable mid-epoch last.pt this often (0: every batch).
        progress: a progress bar per epoch.
        log: receives the opening line and one line per epoch.
        command: the command line recorded in the manifest [default: ``sys.argv``].

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM, after last.pt and the manifest are saved.
    """
    from ..configs import find_config

    config = find_config(config)
    cfg = load_config(config)
    overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    if overrides:
        cfg = cfg.replace(**overrides)
    out = out or Path("runs") / config.stem
    start_from = initial_weights(init, cfg) if init is not None else None
    where_to = resolve_device(device)
    if where_to.type == "cuda":
        # Full float32 convolutions, as on the CPU: torch lets cuDNN use TF32 for them by
        # default, which rounds their inputs to 10-bit mantissas.
        torch.backends.cudnn.allow_tf32 = False
    with session(where_to, expected=(TrainingInterrupted,)) as replicas:
        writer = replicas.is_main
        data = load_experiment_data(cfg, data_dir)
        if writer:
            prepare_run_dir(out, resume, force)  # after the data loaded: --force clears only then
        say = (log if writer else None) or (lambda line: None)
        where = (
            f"{replicas.world_size} processes ({replicas.backend}, {replicas.device.type})"
            if replicas.distributed
            else str(replicas.device)
        )
        norm = cfg.input_normalization
        normalized = (
            f"input (x - {'/'.join(f'{m:g}' for m in norm[0])}) / {'/'.join(f'{s:g}' for s in norm[1])}, "
            if norm
            else ""
        )
        decay = cfg.train.ema_decay
        averaging = f"weight average (EMA {decay:g}) tested and exported, " if decay else ""
        qat = cfg.train.quant_aware_epochs
        if qat:
            averaging += f"the last {qat} on 8-bit weights, "
        if init is not None:
            averaging += f"starting from {init}, "
        say(
            f"training {config.name}: {data.name} ({len(data.train)} train / {len(data.test)} test), "
            f"{cfg.architecture}, T={cfg.n_steps}, {normalized}loss={cfg.train.loss.value}, "
            f"{cfg.train.epochs} epochs, {averaging}seed {cfg.train.seed}, {where}"
        )
        run = replicas.describe()
        try:
            history = fit(
                cfg,
                data,
                out,
                device=replicas.device,
                resume=resume,
                progress=progress and writer,
                on_epoch=lambda m: say(m.line(cfg.train.epochs)),
                checkpoint_seconds=checkpoint_seconds,
                replicas=replicas,
                announce=say,
                start_weights=start_from,
            )
        except TrainingInterrupted:
            if writer:
                saved = _saved_history(out / "last.pt")
                train_record(out, cfg, config, data_dir, saved, True, command, run, init)
            raise
        if history and writer:
            write_text(
                out / "metrics.json",
                json.dumps(
                    {"config": cfg.to_dict(), "epochs": [vars(m) for m in history]}, indent=2
                ),
            )
            train_record(
                out, cfg, config, data_dir, history, command=command, distributed=run, init=init
            )
    return TrainResult(out, cfg.train.epochs, tuple(history), replicas.rank)


def _saved_history(checkpoint: Path) -> list[EpochMetrics]:
    """The per-epoch metrics stored in a checkpoint (empty when none were completed)."""
    if not checkpoint.is_file():
        return []
    return [EpochMetrics(**m) for m in load_checkpoint(checkpoint)["metrics"]]


def train_record(
    out: Path,
    cfg: ExperimentConfig,
    config: Path | None,
    data_dir: Path | None,
    history: list[EpochMetrics],
    interrupted: bool = False,
    command: list[str] | None = None,
    distributed: dict[str, Any] | None = None,
    init: Path | None = None,
) -> None:
    """curves.png (when an epoch is complete, or an interrupted one has seen samples: its running
    figures drawn hollow) and the run's manifest, named after last.pt.

    ``distributed``: the world size, backend and devices of the run
    (:meth:`tsslbp.train.distributed.Replicas.describe`), recorded among the figures. ``init``:
    the checkpoint the run started from (``train --init``), recorded among the inputs.
    """
    title = f"{cfg.architecture}, seed {cfg.train.seed}"
    last_pt = out / "last.pt"
    partial = load_checkpoint(last_pt).get("partial") if interrupted and last_pt.is_file() else None
    curves = (
        plots.training_curves(history, out / "curves.png", title=title, partial=partial)
        if history or (partial and partial.get("seen"))
        else None
    )
    best = max(history, key=lambda m: m.test_acc) if history else None
    last = history[-1] if history else None
    figures = {
        "epochs_done": len(history),
        "interrupted": interrupted,
        "final_test_acc": last.test_acc if last else None,
        "final_raw_test_acc": last.raw_test_acc if last else None,
        "final_train_acc": last.train_acc if last else None,
        "final_loss": last.loss if last else None,
        "best_test_acc": best.test_acc if best else None,
        "best_epoch": best.epoch if best else None,
        "train_seconds": sum(m.seconds for m in history),
    }
    if distributed is not None:
        figures["distributed"] = distributed
    metrics = out / "metrics.json"
    record(
        out / "last.pt",
        inputs=[config, data_dir, init],
        outputs=[
            out / "best.pt" if (out / "best.pt").is_file() else None,
            metrics if metrics.is_file() and not interrupted else None,
            curves,
        ],
        config=cfg.to_dict(),
        figures=figures,
        command=command,
    )


@dataclass(frozen=True)
class EvaluateResult:
    """A checkpoint scored on its data set's test split."""

    checkpoint: Path
    epoch: int
    dataset: str
    metrics: EvalResult
    confusion_png: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "epoch": self.epoch,
            "dataset": self.dataset,
            **vars(self.metrics),
            "confusion_png": None if self.confusion_png is None else str(self.confusion_png),
        }

    def lines(self) -> list[str]:
        m = self.metrics
        return [
            f"test accuracy {100 * m.accuracy:.2f}% on {m.n_samples} {self.dataset} samples "
            f"(epoch {self.epoch} of {self.checkpoint}; loss {m.loss:.4f}/sample, "
            f"{m.mean_output_spikes:.2f} output spikes/sample)",
            *self.written(),
        ]

    def written(self) -> list[str]:
        """What ``plots_dir`` received (under --json, ``confusion_png`` says it)."""
        png = self.confusion_png
        return [] if png is None else [f"wrote {png} and {png.name}.manifest.json"]


#: The first 8 bytes of every HDF5 file (netx and NIR files are HDF5; checkpoints are zip files).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5_file(path: Path) -> bool:
    """Whether ``path`` is a regular file that starts with the HDF5 signature."""
    if not Path(path).is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def evaluate(
    checkpoint: Path,
    *,
    data_dir: Path | None = None,
    device: str = "auto",
    plots_dir: Path | None = None,
    command: list[str] | None = None,
) -> EvaluateResult | ModelEvalResult:
    """Evaluate a trained checkpoint (float model, on ``device``) or an exported netx file
    (golden fixed-point model, see :func:`~tsslbp.workflows.running.evaluate_model`) on its data
    set's whole test split; with ``plots_dir``, also write the confusion matrix there
    (confusion.png + manifest)."""
    if is_hdf5_file(checkpoint):
        return evaluate_model(checkpoint, data_dir=data_dir, plots_dir=plots_dir, command=command)
    model, cfg, state = model_from_checkpoint(checkpoint, resolve_device(device))
    data = load_experiment_data(cfg, data_dir)
    result = evaluate_split(model, data.test, cfg)
    png = None
    if plots_dir is not None:
        counts = confusion_counts(
            data.test.labels.numpy(), float_predictions(model, data.test.images), cfg.data.n_class
        )
        title = f"{checkpoint.name} (float), {data.name} test"
        png = plots.confusion_matrix(counts, plots_dir / "confusion.png", title=title)
        figures = {
            "accuracy": result.accuracy,
            "n_samples": result.n_samples,
            "epoch": state["epoch"],
            "confusion": counts,
        }
        record(png, [checkpoint, data_dir], config=cfg.to_dict(), figures=figures, command=command)
    return EvaluateResult(checkpoint, state["epoch"], data.name, result, png)
