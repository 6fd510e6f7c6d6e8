"""``tsslbp export``: checkpoint -> calibrated integer network -> netx HDF5 file.

Stages (each passes plain data on): load the trained model, pick a calibration batch, quantize
(:func:`~tsslbp.export.quantize.quantize_network`), measure the integer state range on the golden
model, write the netx file. The model and the checkpoint are only read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import Dataset
from ..data import DataSplits, load_experiment_data
from ..hwmodels.golden import golden_output_counts, run_golden
from ..hwmodels.health import state_health
from ..hwmodels.readout import encode_for_spec
from ..hwmodels.spec import FlattenLayer, NetworkSpec
from ..safeio import check_output_path
from ..train.loop import model_from_checkpoint
from .netx import write_netx
from .quantize import QuantConfig, QuantizationError, QuantReport, file_sha256, quantize_network

__all__ = [
    "AUTO_INPUT_BITS",
    "ExportResult",
    "calibration_batch",
    "golden_agreement",
    "export_checkpoint",
]


@dataclass(frozen=True)
class ExportResult:
    """What was written. ``input_bits_agreement`` maps each input width tried to the fraction of
    calibration samples where the golden model predicts what the float model predicts;
    ``input_bits_count_error`` to the mean absolute difference of the output neurons' spike counts
    (golden minus float) per sample and neuron, the figure ``auto`` minimises;
    ``input_bits_skipped`` the widths ``auto`` could not use, with the reason."""

    spec: NetworkSpec
    report: QuantReport
    path: Path
    input_bits_agreement: dict[int, float]
    input_bits_skipped: dict[int, str] = dataclasses.field(default_factory=dict)
    input_bits_count_error: dict[int, float] = dataclasses.field(default_factory=dict)


#: Input widths tried by ``--input-bits auto``: wider input leaves fewer bits to the first layer's
#: weights within the 24-bit state (docs/fixed-point.md, "Input width").
AUTO_INPUT_BITS = (8, 7, 6, 5, 4, 3, 2)


def calibration_batch(data: DataSplits, n: int, seed: int) -> torch.Tensor:
    """``n`` training inputs (B, C) drawn with a fixed seed."""
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    return data.train.images[order[: min(n, len(data.train))]]


def golden_agreement(
    spec: NetworkSpec, inputs: torch.Tensor, float_counts: np.ndarray, chunk: int = 512
) -> tuple[float, float]:
    """How closely the golden model follows the float model on ``inputs`` (run in chunks).

    Args:
        float_counts: (B, n_out) the float model's output spike counts on ``inputs``.

    Returns:
        (fraction of samples with the same prediction, mean |golden - float| output spike count
        per sample and neuron).
    """
    golden_counts = golden_output_counts(spec, inputs.numpy(), chunk)
    same = golden_counts.argmax(-1) == float_counts.argmax(-1)
    return float(same.mean()), float(np.abs(golden_counts - float_counts).mean())


#: Training samples on which ``--input-bits auto`` compares the golden and float models (the
#: calibration batch is their first ``calibration_samples``). 512 left the choice to chance between
#: widths whose output counts differ by a few thousandths; 2048 chose widths within 0.1 point of
#: the float accuracy on four Fashion-MNIST MLP checkpoints (docs/fixed-point.md, "Input width").
SELECTION_SAMPLES = 2048


def export_checkpoint(
    checkpoint: str | Path,
    out_path: str | Path,
    data_dir: str | Path | None = None,
    qcfg: QuantConfig = QuantConfig(),
    input_bits: int | None = None,
    selection_samples: int = SELECTION_SAMPLES,
) -> ExportResult:
    """Quantize a trained checkpoint and write it as a netx file.

    Args:
        input_bits: graded input width; None tries :data:`AUTO_INPUT_BITS` and keeps the one whose
            golden model's output spike counts on ``selection_samples`` training samples differ
            least from the float model's (then: more equal predictions; then the wider input).
            Overrides ``qcfg.input_bits``.

    Returns:
        the spec written, the quantization report (golden-model state maxima included), the path,
        and the agreement of every input width tried.
    """
    checkpoint, out_path = Path(checkpoint), Path(out_path)
    check_output_path(out_path)  # before minutes of quantization; written atomically at the end
    model, cfg, state = model_from_checkpoint(checkpoint)
    data = load_experiment_data(cfg, data_dir)
    # One seeded draw: the calibration batch (state range, rounding) is its first samples.
    selection = calibration_batch(
        data, max(selection_samples, qcfg.calibration_samples), cfg.train.seed
    )
    calib = selection[: qcfg.calibration_samples]
    provenance = {
        "source_checkpoint": str(checkpoint.resolve()),
        "source_sha256": file_sha256(checkpoint),
        "source_epoch": int(state["epoch"]),
        "tsslbp_version": __version__,
    }
    model.eval()
    dtype = next(model.parameters()).dtype
    calib, selection = calib.to(dtype), selection.to(dtype)
    with torch.no_grad():
        float_counts = np.concatenate(
            [model(part).spikes.sum(-1).numpy() for part in selection.split(512)]
        )
    agreement: dict[int, float] = {}
    count_error: dict[int, float] = {}
    skipped: dict[int, str] = {}
    best = None
    events = cfg.data.dataset is Dataset.NMNIST  # binary event input: no width to choose
    auto = input_bits is None and not events
    # The widths share the float traces and the rounding of every layer after the first.
    shared: dict = {}
    for bits in AUTO_INPUT_BITS if auto else (input_bits,):
        trial_cfg = dataclasses.replace(qcfg, input_bits=bits)
        try:
            spec, report = quantize_network(
                model,
                cfg,
                calib,
                trial_cfg,
                metadata=provenance | {"quantization": dataclasses.asdict(trial_cfg)},
                cache=shared,
            )
        except QuantizationError as err:
            if not auto:
                raise
            skipped[bits] = str(err)  # e.g. a wide input leaves the first layer's weights no bits
            continue
        key = bits if not events else 0
        agreement[key], count_error[key] = golden_agreement(spec, selection, float_counts)
        # The output counts are what the readout compares: their error separates widths that
        # all predict (nearly) every calibration sample as the float model does.
        if best is None or (count_error[key], -agreement[key]) < (
            count_error[best[0]],
            -agreement[best[0]],
        ):
            best = (key, spec, report)
    if best is None:
        tried = "; ".join(f"{b} bits: {why}" for b, why in skipped.items())
        raise QuantizationError(f"{checkpoint}: no input width quantizes this network ({tried})")
    bits, spec, report = best
    # The chosen width's integer state on the calibration batch, for the health figures.
    golden = run_golden(spec, encode_for_spec(calib.numpy(), spec), record=True)
    meta = spec.metadata
    # The report has one entry per neuron layer; the spec also holds flatten layers.
    neuron_layers = [
        i for i, layer in enumerate(spec.layers) if not isinstance(layer, FlattenLayer)
    ]
    health = {h.layer: h for h in state_health(golden.u, golden.v)}
    layers = tuple(
        dataclasses.replace(
            layer,
            max_abs_u_int=int(np.abs(golden.u[i]).max()),
            max_abs_v_int=int(np.abs(golden.v[i]).max()),
            v_saturated=health[i].v_saturated,
            u_near_wrap=health[i].u_near_wrap,
            v_floor=health[i].v_floor,
        )
        for i, layer in zip(neuron_layers, report.layers)
    )
    report = dataclasses.replace(report, layers=layers)
    spec = dataclasses.replace(
        spec,
        metadata={
            **meta,
            "quantization_report": report.to_dict(),
            "input_bits_agreement": {str(k): v for k, v in agreement.items()},
            "input_bits_count_error": {str(k): v for k, v in count_error.items()},
            **({"input_bits_skipped": {str(k): v for k, v in skipped.items()}} if skipped else {}),
        },
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_netx(spec, out_path)
    return ExportResult(spec, report, out_path, agreement, skipped, count_error)
