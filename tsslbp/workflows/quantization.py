"""Quantization health: what fewer weight bits cost, in accuracy and in per-layer activity.

:func:`compare_weight_widths` exports one checkpoint at several weight widths (8, 6, 4 bits by
default; the grid is :func:`tsslbp.export.quantize.weight_grid`), runs each export on the golden
model over the same test samples, and compares with the float model: accuracy, agreement of the
predictions, and each layer's spike rate (spikes per neuron per step, fixed point in the float
model's time window, see :mod:`tsslbp.workflows.analysis`). All widths share one graded input width
(the ``auto`` choice of the widest, unless given), so only the weights change between them.
:func:`write_quant_health` writes the JSON and the figure; :func:`quant_health` (the
``quant-health`` job) does both and writes the manifests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import plots
from ..config import Dataset
from ..data import load_experiment_data
from ..export.exporter import export_checkpoint
from ..export.quantize import QuantConfig
from ..hwmodels.golden import run_golden
from ..hwmodels.readout import encode_for_spec, predict_counts
from ..safeio import write_text
from ..train.loop import model_from_checkpoint
from .analysis import fixed_layer_spikes, float_layer_spikes, spike_rates
from .common import format_table, record

__all__ = [
    "DEFAULT_WEIGHT_BITS",
    "QuantHealthResult",
    "WidthResult",
    "QuantHealth",
    "compare_weight_widths",
    "quant_health",
    "write_quant_health",
]

DEFAULT_WEIGHT_BITS = (8, 6, 4)


@dataclass(frozen=True)
class WidthResult:
    """One weight width.

    Attributes:
        weight_bits: the width.
        netx: the exported file, or None when the export failed.
        accuracy: golden-model accuracy on the samples (None when the export failed).
        agreement: fraction of samples where golden and float predict the same class.
        layer_rates: spikes per neuron per step of each neuron layer (golden model).
        weight_rmse: per layer, RMS weight error relative to max |W| (from the export report).
        clipped: per layer, weights clipped to the grid's range.
        error: why the export failed (e.g. a layer's weights all round to zero), else None.
    """

    weight_bits: int
    netx: str | None
    accuracy: float | None
    agreement: float | None
    layer_rates: tuple[float, ...] | None
    weight_rmse: tuple[float, ...] | None
    clipped: tuple[int, ...] | None
    error: str | None = None


@dataclass(frozen=True)
class QuantHealth:
    """Float model vs fixed point at each weight width, on the first ``n_samples`` test samples."""

    checkpoint: str
    dataset: str
    n_samples: int
    input_bits: int
    layer_names: tuple[str, ...]
    float_accuracy: float
    float_rates: tuple[float, ...]
    widths: tuple[WidthResult, ...]
    config: dict[str, Any]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def figures(self) -> dict[str, Any]:
        """Headline numbers (for a run manifest)."""
        return {
            "float_accuracy": self.float_accuracy,
            "n_samples": self.n_samples,
            "input_bits": self.input_bits,
            **{f"golden_accuracy_w{w.weight_bits}": w.accuracy for w in self.widths},
        }

    def warnings(self) -> list[str]:
        """One line per width whose export failed."""
        return [f"{w.weight_bits} bits: {w.error}" for w in self.widths if w.error is not None]

    def lines(self) -> list[str]:
        """The accuracy and spike-rate table, float model first, then one row per width."""
        rates = [f"{r:.4f}" for r in self.float_rates]
        rows = [["float", "-", f"{100 * self.float_accuracy:.2f}%", "-", *rates]]
        for w in self.widths:
            if w.error is not None:
                failed = [f"{w.weight_bits} bits", "-", "export failed", "-"]
                rows.append([*failed, *("-" for _ in self.layer_names)])
                continue
            rows.append(
                [
                    f"{w.weight_bits} bits",
                    "/".join(f"{100 * e:.1f}" for e in w.weight_rmse),
                    f"{100 * w.accuracy:.2f}%",
                    f"{100 * w.agreement:.1f}%",
                    *(f"{r:.4f}" for r in w.layer_rates),
                ]
            )
        header = ["model", "w rmse %", "accuracy", "same as float"]
        return format_table(rows, [*header, *(f"rate {n}" for n in self.layer_names)])


def compare_weight_widths(
    checkpoint: str | Path,
    out_dir: str | Path,
    weight_bits: Sequence[int] = DEFAULT_WEIGHT_BITS,
    samples: int = 1000,
    data_dir: str | Path | None = None,
    calibration: int = 512,
    input_bits: int | None = None,
) -> QuantHealth:
    """Export ``checkpoint`` at each weight width into ``out_dir`` (``model_w{bits}.net``) and score it.

    Args:
        checkpoint: a tsslbp checkpoint.
        out_dir: where the netx files go (created).
        weight_bits: widths to try (each 2..8), widest first is best (it picks the input width).
        samples: the first this many test samples are scored.
        data_dir: the data set's directory (overrides the config's).
        calibration: training samples that bound the state range (as ``tsslbp export``).
        input_bits: graded input width for every export; None: the ``auto`` choice of the first width.

    Returns:
        the comparison; widths whose export fails carry the error instead of figures.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if not weight_bits:
        raise ValueError("no weight widths to try")
    out_dir.mkdir(parents=True, exist_ok=True)
    model, cfg, _ = model_from_checkpoint(checkpoint)
    data = load_experiment_data(cfg, data_dir)
    n = min(samples, len(data.test))
    images, labels = data.test.images[:n], data.test.labels[:n].numpy()
    float_spikes = float_layer_spikes(model, images)
    float_pred = float_spikes[-1].sum(-1).argmax(-1)
    names = tuple(layer.name for layer in cfg.layers if layer.is_spiking)

    widths = []
    chosen_input_bits = input_bits
    for bits in weight_bits:
        path = out_dir / f"model_w{bits}.net"
        try:
            result = export_checkpoint(
                checkpoint,
                path,
                data_dir,
                QuantConfig(calibration_samples=calibration, weight_bits=bits),
                chosen_input_bits,
            )
        except ValueError as err:
            widths.append(WidthResult(bits, None, None, None, None, None, None, error=str(err)))
            continue
        spec = result.spec
        if chosen_input_bits is None and cfg.data.dataset is not Dataset.NMNIST:
            chosen_input_bits = spec.input_message_bits
        run = run_golden(spec, encode_for_spec(images.numpy(), spec), record=False)
        pred = predict_counts(run.spikes[-1], spec.metadata)
        widths.append(
            WidthResult(
                weight_bits=bits,
                netx=str(path),
                accuracy=float((pred == labels).mean()),
                agreement=float((pred == float_pred).mean()),
                layer_rates=tuple(spike_rates(fixed_layer_spikes(run, spec))),
                weight_rmse=tuple(q.weight_rmse for q in result.report.layers),
                clipped=tuple(q.n_clipped for q in result.report.layers),
            )
        )
    return QuantHealth(
        checkpoint=str(checkpoint),
        dataset=data.name,
        n_samples=n,
        input_bits=int(chosen_input_bits or 0),
        layer_names=names,
        float_accuracy=float((float_pred == labels).mean()),
        float_rates=tuple(spike_rates(float_spikes)),
        widths=tuple(widths),
        config=cfg.to_dict(),
        seed=cfg.train.seed,
    )


def write_quant_health(result: QuantHealth, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``quant_health.json`` and ``quant_health.png`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "quant_health.json"
    write_text(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    png = plots.quant_health(
        [w.weight_bits for w in result.widths],
        [w.accuracy for w in result.widths],
        result.float_accuracy,
        result.layer_names,
        result.float_rates,
        [w.layer_rates for w in result.widths],
        out_dir / "quant_health.png",
        title=f"{Path(result.checkpoint).parent.name}/{Path(result.checkpoint).name}: {result.dataset}, {result.n_samples} test samples, {result.input_bits}-bit input",
    )
    return json_path, png


@dataclass(frozen=True)
class QuantHealthResult:
    """``tsslbp quant-health``: the comparison and the files written."""

    health: QuantHealth
    json_path: Path
    png: Path

    def to_dict(self) -> dict[str, Any]:
        return self.health.to_dict()

    def warnings(self) -> list[str]:
        return self.health.warnings()

    def lines(self) -> list[str]:
        h = self.health
        return [
            *h.lines(),
            f"{h.n_samples} {h.dataset} test samples, {h.input_bits}-bit input; wrote "
            f"{self.json_path}, {self.png}",
        ]


def quant_health(
    checkpoint: Path,
    out: Path,
    *,
    weight_bits: Sequence[int] = DEFAULT_WEIGHT_BITS,
    samples: int = 1000,
    data_dir: Path | None = None,
    calibration: int = 512,
    input_bits: int | None = None,
    command: list[str] | None = None,
) -> QuantHealthResult:
    """:func:`compare_weight_widths` into ``out``, then quant_health.json/.png and the manifests (one for
    the JSON, one per netx file)."""
    result = compare_weight_widths(
        checkpoint, out, weight_bits, samples, data_dir, calibration, input_bits
    )
    json_path, png = write_quant_health(result, out)
    inputs = [checkpoint, data_dir]
    record(
        json_path,
        inputs=inputs,
        outputs=[png, *(w.netx for w in result.widths if w.netx)],
        config=result.config,
        figures=result.figures(),
        command=command,
    )
    for w in result.widths:
        if w.netx:
            figures = {
                "weight_bits": w.weight_bits,
                "input_bits": result.input_bits,
                "accuracy": w.accuracy,
                "n_samples": result.n_samples,
                "weight_rmse": w.weight_rmse,
                "clipped": w.clipped,
            }
            record(Path(w.netx), inputs, config=result.config, figures=figures, command=command)
    return QuantHealthResult(result, json_path, png)
