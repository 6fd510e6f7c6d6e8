"""The ``demo`` job: the whole pipeline on one config, train -> export -> golden -> Lava."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..config import load_config
from ..configs import CONFIG_DIR, find_config
from ..data import DataSplits, load_experiment_data
from ..deploy.verify import VerifyReport, verify_spec
from ..export.exporter import export_checkpoint
from ..hwmodels.golden import run_golden
from ..hwmodels.readout import encode_for_spec, predict_counts
from ..train.loop import evaluate, fit, model_from_checkpoint
from .analysis import confusion_counts
from .common import Log, SourceCheckpoint, record
from .conversion import export_lines, export_record
from .running import spike_raster
from .summary import DEMO_HEADER, demo_rows, table_lines
from .training import train_record

__all__ = ["DEFAULT_DEMO_CONFIG", "DemoResult", "demo"]

#: The demo's config: the MLP on the embedded 8x8 digits (no download).
DEFAULT_DEMO_CONFIG = CONFIG_DIR / "digits_mlp.yaml"


@dataclass(frozen=True)
class DemoResult:
    """Accuracies and times of the demo's stages; ``verify`` holds the Lava comparison."""

    out: Path
    n_test: int
    float_accuracy: float
    golden_accuracy: float
    verify: VerifyReport
    seconds: dict[str, float]

    @property
    def exact(self) -> bool:
        return self.verify.exact

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "n_test": self.n_test,
            "float_accuracy": self.float_accuracy,
            "golden_accuracy": self.golden_accuracy,
            "verify": self.verify.to_dict(),
            "seconds": self.seconds,
        }

    def lines(self) -> list[str]:
        r, t, n = self.verify, self.seconds, self.verify.n_samples
        rows = demo_rows(
            self.float_accuracy,
            t["float"],
            self.golden_accuracy,
            t["golden"],
            self.n_test,
            r.accuracy,
            r.seconds,
            n,
            min(m.spike_match for m in r.layers),
        )
        lines = ["", *table_lines(rows, DEMO_HEADER)]
        lines.append(
            f"train {t['train']:.1f} s, export {t['export']:.1f} s; artifacts in {self.out}/ "
            "(last.pt, model.net, curves.png, confusion.png, raster.png, *.manifest.json)"
        )
        if r.first_mismatch is not None:
            lines.append(r.first_mismatch.line())
        if r.exact:
            lines.append(
                f"test accuracy: float {100 * self.float_accuracy:.2f}%, fixed point "
                f"{100 * self.golden_accuracy:.2f}%, Lava {100 * r.accuracy['lava']:.2f}% "
                f"({n} samples, bit-exact)"
            )
        return lines


def demo(
    config: str | Path | None = None,
    *,
    out: Path = Path("runs/demo"),
    samples: int | None = None,
    epochs: int | None = None,
    progress: bool = True,
    log: Log = None,
    command: list[str] | None = None,
) -> DemoResult:
    """The whole job: train, export to netx, score float and golden models on the test split,
    verify on Lava's fixed-point simulator, and plot (curves, confusion matrix, rasters).

    Args:
        config: the training config, a YAML file or a shipped config's name [default:
            :data:`DEFAULT_DEMO_CONFIG`].
        out: the run directory.
        samples: test samples verified on Lava [default: the whole test split].
        epochs: override the config's epochs.
        progress: progress bars.
        log: receives each stage's lines (the export table included).
        command: the command line recorded in the manifests.
    """
    say = log or (lambda line: None)
    config = find_config(config or DEFAULT_DEMO_CONFIG)
    cfg = load_config(config)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    data = load_experiment_data(cfg)
    n_epochs = cfg.train.epochs
    say(
        f"[1/4] train {config.name} ({len(data.train)} train / {len(data.test)} test, "
        f"{n_epochs} epochs)"
    )
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    history = fit(
        cfg,
        data,
        out,
        progress=progress,
        on_epoch=lambda m: (
            say("  " + m.line(n_epochs)) if m.epoch % 5 == 0 or m.epoch == n_epochs else None
        ),
    )
    seconds["train"] = time.perf_counter() - t0
    checkpoint = out / "last.pt"  # the final model: no selection on the test split
    train_record(out, cfg, config, None, history, command=command)

    say(f"[2/4] export {checkpoint} -> {out / 'model.net'}")
    t0 = time.perf_counter()
    exported = export_checkpoint(checkpoint, out / "model.net")
    seconds["export"] = time.perf_counter() - t0
    export_record(exported, checkpoint, None, command=command)
    for line in export_lines(exported):
        say(line)

    say(f"[3/4] float and golden fixed-point model on all {len(data.test)} test samples")
    model, cfg, _ = model_from_checkpoint(checkpoint)
    t0 = time.perf_counter()
    float_acc = evaluate(model, data.test, cfg).accuracy
    seconds["float"] = time.perf_counter() - t0
    spec = exported.spec
    x_all = encode_for_spec(data.test.images.numpy(), spec)
    t0 = time.perf_counter()
    golden = run_golden(spec, x_all, record=False)
    seconds["golden"] = time.perf_counter() - t0
    golden_pred = predict_counts(golden.spikes[-1], spec.metadata)
    golden_acc = float((golden_pred == data.test.labels.numpy()).mean())

    n = min(samples or len(data.test), len(data.test))
    say(f"[4/4] verify on Lava's fixed-point simulator: {n} test samples, every layer and step")
    runs: dict[str, Any] = {}
    report = verify_spec(
        spec,
        x_all[:n],
        data.test.labels[:n].numpy(),
        progress=progress,
        on_runs=lambda g, lv: runs.update(golden=g, lava=lv),
    )
    result = DemoResult(out, len(data.test), float_acc, golden_acc, report, seconds)
    source = SourceCheckpoint(model, cfg, checkpoint)
    _demo_plots(result, spec, data, runs, golden_pred, source, command)
    return result


def _demo_plots(
    result: DemoResult,
    spec: Any,
    data: DataSplits,
    runs: dict[str, Any],
    golden_pred: np.ndarray,
    source: SourceCheckpoint,
    command: list[str] | None,
) -> None:
    """The demo's confusion matrix (golden model, whole test split) and rasters (float vs Lava,
    test sample 0), each with its manifest."""
    out, netx = result.out, result.out / "model.net"
    config = spec.metadata.get("config")
    counts = confusion_counts(data.test.labels.numpy(), golden_pred, int(spec.metadata["n_class"]))
    title = f"fixed point (golden), {data.name} test"
    png = plots.confusion_matrix(counts, out / "confusion.png", title=title)
    figures = {
        "golden_accuracy": result.golden_accuracy,
        "n_samples": len(golden_pred),
        "confusion": counts,
    }
    record(png, [netx], config=config, figures=figures, command=command)
    title = f"{data.name} test sample 0 (label {int(data.test.labels[0])})"
    png = spike_raster(spec, data.test.images, runs, source, out / "raster.png", title)
    figures = {
        "float_accuracy": result.float_accuracy,
        "golden_accuracy": result.golden_accuracy,
        "lava_accuracy": result.verify.accuracy.get("lava"),
        "lava_exact": result.verify.exact,
    }
    record(png, [netx, source.path], config=config, figures=figures, command=command)
