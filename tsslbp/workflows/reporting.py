"""The ``report`` job: resources, activity, energy and latency per inference of a netx network.

Stages, each passing plain data on: run the golden model (``record=True``) over real samples,
count per layer with :func:`tsslbp.hwmodels.resources.resource_report` (synapses, cores, spikes,
synops, energy, latency), add saturation health (:mod:`tsslbp.hwmodels.health`) and, when the
checkpoint the file was exported from is still there (same SHA-256), the float model's spikes per
layer beside the fixed-point ones (:func:`tsslbp.workflows.analysis.float_vs_fixed`). The model,
checkpoint and data are only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..export.lint import layer_names
from ..export.netx import read_netx
from ..hwmodels.golden import run_golden
from ..hwmodels.health import LayerHealth, state_health
from ..hwmodels.resources import CORES_PER_CHIP, CoreLimits, ResourceReport, resource_report
from ..hwmodels.spec import FlattenLayer, NetworkSpec, lava_shape
from ..manifest import write_manifest
from ..safeio import load_npy, write_text
from .analysis import float_layer_spikes, float_vs_fixed
from .common import (
    format_table,
    load_source_checkpoint,
    spec_test_data,
    spec_test_inputs,
)

__all__ = ["HardwareReport", "ReportResult", "hardware_report", "report"]


@dataclass(frozen=True)
class HardwareReport:
    """Everything ``tsslbp report`` prints and saves.

    Attributes:
        resources: counts, cores, energy, latency.
        names: a name per spec layer.
        health: saturation per neuron layer (empty without a run).
        float_vs_fixed: per synaptic layer, float and fixed-point spikes per sample (empty without
            the source checkpoint).
    """

    resources: ResourceReport
    names: list[str]
    health: list[LayerHealth]
    float_vs_fixed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = self.resources.to_dict()
        health = {h.layer: h for h in self.health}
        for entry in out["layers"]:
            entry["name"] = self.names[entry["layer"]]
            if entry["layer"] in health:
                entry["v_saturated"] = health[entry["layer"]].v_saturated
                entry["u_near_wrap"] = health[entry["layer"]].u_near_wrap
                entry["v_floor"] = health[entry["layer"]].v_floor
        out["float_vs_fixed"] = self.float_vs_fixed
        return out


def hardware_report(
    spec: NetworkSpec,
    inputs: np.ndarray | None = None,
    float_images: Any | None = None,
    model: Any | None = None,
    limits: CoreLimits = CoreLimits(),
) -> HardwareReport:
    """Resources, activity, energy, latency and (with a float model) float vs fixed activity.

    Args:
        spec: the network.
        inputs: (B, *lava_shape(input), S) encoded input spikes; None for counts only.
        float_images: the same B samples as the float model takes them (with ``model``).
        model: the float network the spec was exported from, or None.
        limits: per-core limits.
    """
    if inputs is None:
        return HardwareReport(resource_report(spec, limits=limits), layer_names(spec), [])
    run = run_golden(spec, inputs, record=True)
    resources = resource_report(spec, inputs, run.spikes, run.u, run.v, limits)
    health = [
        h for h in state_health(run.u, run.v) if not isinstance(spec.layers[h.layer], FlattenLayer)
    ]
    comparison: list[dict[str, Any]] = []
    if model is not None and float_images is not None and "n_steps" in spec.metadata:
        comparison = float_vs_fixed(spec, run, float_layer_spikes(model, float_images))
    return HardwareReport(resources, layer_names(spec), health, comparison)


def _report_inputs(
    spec: NetworkSpec, samples: int, data_dir: Path | None, input_path: Path | None
) -> tuple[np.ndarray | None, Any, str]:
    """(encoded inputs or None, float-model images or None, a description of the samples)."""
    if input_path is not None:
        from .inputs import check_input

        x = load_npy(input_path)
        # One sample (*input shape, S) or a batch (B, *input shape, S), in Lava's order, checked
        # against the network's input (not its first layer's output).
        if x.ndim == len(lava_shape(spec.input_shape)) + 2:
            x = np.stack([check_input(spec, s, f"{input_path}[{i}]") for i, s in enumerate(x)])
        else:
            x = check_input(spec, x, str(input_path))[None]
        n = min(len(x), samples)
        return x[:samples], None, f"{n} samples from {input_path}"
    if "config" not in spec.metadata:
        return None, None, "no tsslbp metadata and no --input: counts only"
    data = spec_test_data(spec, data_dir)
    inputs, _ = spec_test_inputs(spec, data, samples)
    return inputs, data.test.images[: len(inputs)], f"{len(inputs)} {data.name} test samples"


@dataclass(frozen=True)
class ReportResult:
    """``tsslbp report``: the hardware report of ``model`` and which samples it ran."""

    model: Path
    report: HardwareReport
    samples: str
    #: T, the float model's steps (the window of the float-vs-fixed figures).
    n_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), **self.report.to_dict()}

    def lines(self) -> list[str]:
        data = self.report.to_dict()
        rows = [
            [
                str(e["layer"]),
                e["name"],
                str(e["neurons"]),
                str(e["synapses"]),
                str(e["cores"]),
                e["limited_by"],
                f"{e['spikes_per_sample']:.1f}" if "spikes_per_sample" in e else "-",
                f"{e['synops_per_sample']:.0f}" if "synops_per_sample" in e else "-",
                f"{100 * e['silent_fraction']:.1f}%" if "silent_fraction" in e else "-",
                f"{100 * e['v_saturated']:.2f}%/{100 * e['u_near_wrap']:.2f}%"
                if "v_saturated" in e
                else "-",
            ]
            for e in data["layers"]
            if e["neurons"]
        ]
        header = ["#", "layer", "neurons", "synapses", "cores", "core limited by"]
        header += ["spikes/sample", "synops/sample", "silent", "v sat/u wrap"]
        lines = format_table(rows, header)
        t = data["totals"]
        lines.append(
            f"{self.model}: {t['neurons']} neurons, {t['synapses']} synapses, {t['cores']} cores "
            f"({t['chips']} chip(s) of {CORES_PER_CHIP}); {self.samples}"
        )
        if t["latency_ns_per_inference"] is not None:
            energy = t["energy_pj_per_inference"]
            parts = ", ".join(f"{k} {v / 1e3:.2f}" for k, v in energy.items() if k != "total")
            lines.append(
                f"per inference ({data['steps_per_sample']} steps): {t['spikes_per_sample']:.1f} "
                f"spikes, {t['synops_per_sample']:.0f} synops; energy "
                f"{energy['total'] / 1e3:.2f} nJ ({parts} nJ), latency "
                f"{t['latency_ns_per_inference'] / 1e3:.2f} us (Loihi 1 per-op figures, "
                "docs/energy.md)"
            )
        if data["float_vs_fixed"]:
            lines.append(
                f"float vs fixed point, spikes/sample over the float model's {self.n_steps} steps "
                f"(the k-th synaptic layer's steps k..k+{self.n_steps}-1); the table's "
                f"spikes/sample counts all {data['steps_per_sample']} steps of a sample, so it "
                "can be larger:"
            )
        for e in data["float_vs_fixed"]:
            ratio = "-" if e["fixed_over_float"] is None else f"{e['fixed_over_float']:.3f}"
            lines.append(
                f"  {e['name']}: float {e['float_spikes_per_sample']:.1f} vs fixed "
                f"{e['fixed_spikes_per_sample']:.1f} spikes/sample (x{ratio})"
            )
        return lines


def report(
    model: Path,
    *,
    samples: int = 100,
    data_dir: Path | None = None,
    input_path: Path | None = None,
    json_path: Path | None = None,
    command: list[str] | None = None,
) -> ReportResult:
    """Per layer on Loihi 2: neurons, synapses, cores, spikes, synops; energy and latency per
    inference, over the first ``samples`` test samples (or the spikes in ``input_path``, for files
    without tsslbp metadata); with ``json_path``, also write the report there (+ manifest)."""
    spec = read_netx(model)
    inputs, images, samples_text = _report_inputs(spec, samples, data_dir, input_path)
    source = load_source_checkpoint(spec) if images is not None else None
    hw = hardware_report(spec, inputs, images, None if source is None else source.model)
    result = ReportResult(model, hw, samples_text, spec.metadata.get("n_steps"))
    if json_path is not None:
        data = result.to_dict()
        write_text(json_path, json.dumps(data, indent=2))
        totals = data["totals"]
        figures = {
            "cores": totals["cores"],
            "synops_per_sample": totals["synops_per_sample"],
            "spikes_per_sample": totals["spikes_per_sample"],
            "energy_pj_per_inference": totals["energy_pj_per_inference"].get("total"),
            "latency_ns_per_inference": totals["latency_ns_per_inference"],
        }
        write_manifest(
            json_path,
            inputs=[model, *([input_path] if input_path else [])],
            config=spec.metadata.get("config"),
            figures=figures,
            command=command,
        )
    return result
