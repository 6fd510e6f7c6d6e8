"""The jobs that run a netx file: ``eval`` of a netx file (accuracy of the golden model on the whole
test split), ``simulate`` (one sample, golden model or Lava), ``verify`` (golden model vs Lava,
every layer and step), ``deploy`` (accuracy on Lava or Loihi 2) and ``bundle`` (a self-checking
folder for a Loihi 2 machine, docs/hardware.md).

Lava is imported only when a Lava run starts (:mod:`tsslbp.deploy.runner`)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..deploy.target import deploy_target_check
from ..deploy.verify import VerifyReport, verify_spec
from ..export.bundle import BundleReport, write_bundle
from ..export.netx import read_netx
from ..hwmodels.golden import golden_output_counts, run_golden
from ..hwmodels.readout import predict_counts
from ..hwmodels.schedule import HW_RESET_OFFSET
from ..hwmodels.spec import NetworkSpec
from ..safeio import check_limit, check_output_path, load_npy, save_npy, write_text
from .analysis import fixed_layer_spikes, float_layer_spikes
from .common import (
    SourceCheckpoint,
    WorkflowError,
    float_accuracy,
    format_table,
    load_source_checkpoint,
    record,
    spec_test_data,
    spec_test_inputs,
)

__all__ = [
    "BundleResult",
    "ModelEvalResult",
    "evaluate_model",
    "DeployResult",
    "SimulateResult",
    "VerifyResult",
    "bundle",
    "deploy",
    "simulate",
    "spike_raster",
    "verify",
    "verify_lines",
]


#: Test samples per golden-model batch of :func:`evaluate_model` (bounds its memory).
EVAL_CHUNK = 1000


@dataclass(frozen=True)
class ModelEvalResult:
    """A netx file scored on the golden fixed-point model over its data set's test split."""

    model: Path
    dataset: str
    n_samples: int
    accuracy: float
    input_bits: int
    seconds: float
    confusion_png: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {**vars(self), "model": str(self.model), "backend": "golden"}
        out["confusion_png"] = None if self.confusion_png is None else str(self.confusion_png)
        return out

    def lines(self) -> list[str]:
        width = f"graded {self.input_bits}-bit" if self.input_bits else "binary"
        return [
            f"test accuracy {100 * self.accuracy:.2f}% on {self.n_samples} {self.dataset} samples "
            f"(golden fixed-point model of {self.model}, {width} input, spike-count readout; "
            f"{self.seconds:.1f} s)",
            *self.written(),
        ]

    def written(self) -> list[str]:
        """What ``plots_dir`` received."""
        png = self.confusion_png
        return [] if png is None else [f"wrote {png} and {png.name}.manifest.json"]


def evaluate_model(
    model: Path,
    *,
    data_dir: Path | None = None,
    samples: int | None = None,
    plots_dir: Path | None = None,
    command: list[str] | None = None,
) -> ModelEvalResult:
    """Score a tsslbp netx file on the golden model over the first ``samples`` test samples of
    the data set its metadata names (all of them by default), as Loihi would read it out."""
    from .analysis import confusion_counts

    spec = read_netx(model)
    data = spec_test_data(spec, data_dir)
    n = len(data.test) if samples is None else min(samples, len(data.test))
    t0 = time.perf_counter()
    pred = golden_output_counts(spec, data.test.images[:n].numpy(), EVAL_CHUNK).argmax(-1)
    seconds = time.perf_counter() - t0
    labels = data.test.labels[:n].numpy()
    accuracy = float((pred == labels).mean()) if n else 0.0
    png = None
    if plots_dir is not None:
        n_class = int(spec.metadata.get("n_class", pred.max(initial=0) + 1))
        counts = confusion_counts(labels, pred, n_class)
        title = f"{model.name} (golden), {data.name} test"
        png = plots.confusion_matrix(counts, plots_dir / "confusion.png", title=title)
        figures = {"accuracy": accuracy, "n_samples": n, "confusion": counts}
        record(png, [model, data_dir], figures=figures, command=command)
    return ModelEvalResult(
        model, data.name, n, accuracy, int(spec.input_message_bits), seconds, png
    )


@dataclass(frozen=True)
class SimulateResult:
    """One sample run: the backend, its steps and the output spikes written to ``output``."""

    backend: str
    steps: int
    output_spikes: int
    output_neurons: int
    output: Path
    reset_interval: int | None = None
    #: ``digits test sample 3 (label 2)`` when a test sample ran, and the predicted class.
    sample: str | None = None
    predicted: int | None = None
    #: Said on stderr: why a graded input may have given no output spikes.
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "output": str(self.output), "notes": list(self.notes)}

    def lines(self) -> list[str]:
        resets = f", u/v reset every {self.reset_interval} steps" if self.reset_interval else ""
        return [
            *([f"input: {self.sample}"] if self.sample else []),
            f"{self.backend}: {self.steps} steps{resets}, {self.output_spikes} output spikes from "
            f"{self.output_neurons} neurons -> {self.output}",
            *([f"predicted class {self.predicted}"] if self.predicted is not None else []),
        ]


def simulate(
    model: Path,
    input_path: Path | None,
    output_path: Path,
    *,
    sample: int | None = None,
    data_dir: Path | None = None,
    backend: str = "golden",
    steps: int | None = None,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    command: list[str] | None = None,
) -> SimulateResult:
    """Run one sample through a netx model; column t of X enters the network at step t.

    Args:
        model: the netx file.
        input_path: X.npy, (*input shape in Lava order, S) integer spikes; or None with ``sample``.
        output_path: Y.npy, written with the (n_out, S) output spikes (+ manifest).
        sample: run this test sample of the file's data set instead (tsslbp files).
        data_dir: the data set's directory (with ``sample``).
        backend: ``golden`` or ``lava``.
        steps: run this many steps (X padded with zeros or cut).
        reset_interval, reset_offset: zero u and v every ``reset_interval`` steps, the i-th neuron
            layer i steps later, as lava-dl's ``netx.hdf5.Network(reset_interval=, reset_offset=)``.

    Raises:
        WorkflowError: neither or both of ``input_path`` and ``sample``; X has the wrong shape or
            non-integer values.
    """
    from .inputs import check_input, encode_test_sample

    # np.save's habit: a name without .npy gets it appended. Both names must be writable files.
    written = (
        output_path
        if output_path.suffix == ".npy"
        else output_path.with_name(output_path.name + ".npy")
    )
    check_output_path(output_path)
    check_output_path(written)
    spec = read_netx(model)
    if (input_path is None) == (sample is None):
        raise WorkflowError("give exactly one of --input X.npy and --sample I")
    what = None
    if input_path is not None:
        x = check_input(spec, load_npy(input_path), str(input_path))
    else:
        x, label, described = encode_test_sample(spec, sample, data_dir)
        what = f"{described} (label {label})"
    n_steps = steps if steps is not None else x.shape[-1]
    check_limit("steps", n_steps, f"{input_path or model}: steps")
    neurons = sum(math.prod(layer.shape) for layer in spec.layers)
    check_limit("run_cells", neurons * n_steps, f"{model}: neurons x steps of the run")
    if steps is not None:
        padded = np.zeros(x.shape[:-1] + (steps,), dtype=np.int64)
        n = min(steps, x.shape[-1])
        padded[..., :n] = x[..., :n]
        x = padded
    reset = {"reset_interval": reset_interval, "reset_offset": reset_offset}
    if backend == "golden":
        result = run_golden(spec, x[None], record=False, **reset)
    else:
        from ..deploy.runner import run_lava

        result = run_lava(spec, x[None], record=False, **reset)
    y = result.spikes[-1][0].reshape(-1, x.shape[-1])
    output_path = save_npy(written, y)
    predicted = None
    if sample is not None and "readout_offset" in spec.metadata:
        predicted = int(predict_counts(y[None], spec.metadata)[0])
    notes = []
    bits = spec.input_message_bits
    if not y.any() and bits and int(x.max(initial=0)) < 1 << (bits - 1):
        notes.append(
            f"note: no output spikes; this file takes graded {bits}-bit input (payloads up to "
            f"{(1 << bits) - 1}, the input's largest is {int(x.max(initial=0))}): `tsslbp encode` "
            "writes inputs in the network's encoding"
        )
    out = SimulateResult(
        backend,
        int(x.shape[-1]),
        int(y.sum()),
        int(y.shape[0]),
        output_path,
        reset_interval,
        what,
        predicted,
        tuple(notes),
    )
    figures = {
        "backend": backend,
        "steps": out.steps,
        "output_spikes": out.output_spikes,
        "output_neurons": out.output_neurons,
        "reset_interval": reset_interval,
        "sample": sample,
    }
    config = spec.metadata.get("config")
    record(output_path, [model, input_path], config=config, figures=figures, command=command)
    return out


def spike_raster(
    spec: NetworkSpec,
    images: Any,
    runs: dict[str, Any],
    source: SourceCheckpoint | None,
    path: Path,
    title: str,
) -> Path:
    """Spike rasters of the first sample: float model (golden model when the checkpoint is not at
    hand) against the verified Lava run (``runs``: what verify_spec's ``on_runs`` received)."""
    lava = fixed_layer_spikes(runs["lava"], spec)
    if source is not None:
        left, label = float_layer_spikes(source.model, images[:1]), "float"
    else:
        left, label = fixed_layer_spikes(runs["golden"], spec), "golden"
    report = spec.metadata.get("quantization_report", {}).get("layers", [])
    names = [layer["name"] for layer in report] if len(report) == len(lava) else None
    return plots.spike_rasters(
        [a[0] for a in left], [a[0] for a in lava], path, names, "Lava", title, float_label=label
    )


def verify_lines(report: VerifyReport) -> list[str]:
    """The per-layer match table of a verify report."""
    rows = [
        [
            str(m.layer),
            f"{100 * m.spike_match:.3f}%",
            f"{100 * m.u_match:.3f}%",
            f"{100 * m.v_match:.3f}%",
            str(m.golden_spikes),
            str(m.lava_spikes),
        ]
        for m in report.layers
    ]
    header = ["layer", "spikes match", "u match", "v match", "golden spikes", "lava spikes"]
    return format_table(rows, header)


@dataclass(frozen=True)
class VerifyResult:
    """Golden model vs Lava on ``report.n_samples`` test samples of ``dataset``; ``accuracy``
    holds the float model's (when its checkpoint is at hand), the golden model's and Lava's."""

    report: VerifyReport
    dataset: str
    accuracy: dict[str, float]
    raster: Path | None = None
    #: The files written (JSON report, raster), each with its manifest.
    written: tuple[Path, ...] = ()

    @property
    def exact(self) -> bool:
        return self.report.exact

    def warnings(self) -> list[str]:
        return self.report.warnings()

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {"accuracy": self.accuracy}

    def lines(self) -> list[str]:
        r = self.report
        lines = verify_lines(r)
        lines.append(
            f"{r.n_samples} {self.dataset} samples x {r.steps_per_sample} steps: accuracy "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in self.accuracy.items())
            + f"; golden {r.seconds['golden']:.2f} s, lava {r.seconds['lava']:.1f} s"
        )
        lines += [f"wrote {p} and {p.name}.manifest.json" for p in self.written]
        if r.first_mismatch is not None:
            lines.append(r.first_mismatch.line())
        if r.exact:
            lines.append("bit-exact: golden model and Lava agree on every spike, u and v")
        return lines


def verify(
    model: Path,
    *,
    samples: int = 100,
    data_dir: Path | None = None,
    json_path: Path | None = None,
    progress: bool = True,
    plots_dir: Path | None = None,
    period: int | None = None,
    command: list[str] | None = None,
) -> VerifyResult:
    """Run a netx model's first ``samples`` test samples on the golden model and on Lava and
    compare every layer at every step.

    Args:
        model: a netx file exported by tsslbp (its metadata names the data set).
        data_dir: the data set's directory.
        json_path: also write the report there (+ manifest).
        progress: a progress bar for the Lava run.
        plots_dir: write spike rasters of test sample 0, float vs Lava (raster.png + manifest).
        period: run each sample for this many steps with the Loihi 2 reset schedule
            (:mod:`tsslbp.hwmodels.schedule`).
        command: the command line recorded in the manifests.
    """
    spec = read_netx(model)
    data = spec_test_data(spec, data_dir)
    inputs, labels = spec_test_inputs(spec, data, samples)
    runs: dict[str, Any] = {}
    report = verify_spec(
        spec,
        inputs,
        labels,
        progress=progress,
        on_runs=lambda g, lv: runs.update(golden=g, lava=lv),
        period=period,
    )
    source = load_source_checkpoint(spec)
    raster = None
    if plots_dir is not None:
        title = f"{model.name}: {data.name} test sample 0 (label {int(labels[0])})"
        raster = spike_raster(spec, data.test.images, runs, source, plots_dir / "raster.png", title)
    flt = float_accuracy(source, data, len(labels))
    acc = dict(report.accuracy) if flt is None else {"float": flt, **report.accuracy}
    result = VerifyResult(report, data.name, acc, raster)
    if json_path is not None:
        write_text(json_path, json.dumps(result.to_dict(), indent=2))
    figures = {
        "exact": report.exact,
        "n_samples": report.n_samples,
        "accuracy": acc,
        "spike_match": [m.spike_match for m in report.layers],
    }
    inputs_read = [model, source.path if source else None, data_dir]
    written = tuple(p for p in (json_path, raster) if p is not None)
    for artifact in written:
        config = spec.metadata.get("config")
        record(artifact, inputs_read, config=config, figures=figures, command=command)
    return dataclasses.replace(result, written=written)


@dataclass(frozen=True)
class DeployResult:
    """Test samples run on a deploy target: how many, accuracy, wall time."""

    target: str
    dataset: str
    n_samples: int
    accuracy: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def lines(self) -> list[str]:
        return [
            f"{self.target}: {self.n_samples} {self.dataset} samples, accuracy "
            f"{100 * self.accuracy:.2f}%, {self.seconds:.1f} s "
            f"({self.n_samples / self.seconds:.1f} samples/s)"
        ]


def deploy(
    model: Path,
    *,
    target: str = "sim",
    samples: int = 100,
    data_dir: Path | None = None,
    progress: bool = True,
    period: int | None = None,
) -> DeployResult:
    """Run a netx model's first ``samples`` test samples on Lava (``sim``: the CPU fixed-point
    simulator; ``loihi2``: Loihi 2 hardware, needs lava-loihi) and score them; with ``period``,
    each sample runs that many steps with the Loihi 2 reset schedule."""
    deploy_target_check(target)
    from ..deploy.runner import run_lava

    spec = read_netx(model)
    data = spec_test_data(spec, data_dir)
    inputs, labels = spec_test_inputs(spec, data, samples)
    t0 = time.perf_counter()
    result = run_lava(
        spec,
        inputs,
        record=False,
        progress=progress,
        steps_per_sample=period,
        reset_interval=period,
        reset_offset=HW_RESET_OFFSET,
    )
    seconds = time.perf_counter() - t0
    acc = float((predict_counts(result.spikes[-1], spec.metadata) == labels).mean())
    return DeployResult(target, data.name, len(labels), acc, seconds)


@dataclass(frozen=True)
class BundleResult:
    """A Loihi 2 bundle written from ``report.n_samples`` test samples of ``dataset``."""

    report: BundleReport
    dataset: str

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {"dataset": self.dataset}

    def lines(self) -> list[str]:
        return [self.report.summary(self.dataset)]


def bundle(
    model: Path,
    folder: Path,
    *,
    samples: int = 100,
    data_dir: Path | None = None,
    period: int | None = None,
    command: list[str] | None = None,
) -> BundleResult:
    """Write a self-checking Loihi 2 bundle of a netx model's first ``samples`` test samples
    (:func:`tsslbp.export.bundle.write_bundle`; docs/hardware.md). Needs no lava."""
    spec = read_netx(model)
    data = spec_test_data(spec, data_dir)
    inputs, labels = spec_test_inputs(spec, data, samples)
    report = write_bundle(spec, inputs, labels, folder, period=period, name=Path(model).name)
    config = spec.metadata.get("config")
    record(
        folder / "bundle.json",
        [model, data_dir],
        config=config,
        figures=report.to_dict(),
        command=command,
    )
    return BundleResult(report, data.name)
