"""``tsslbp report``: resources, activity, energy and latency per inference of a netx network.

Stages, each passing plain data on: run the golden model (``record=True``) over real samples,
count per layer with :func:`tsslbp.hwmodels.resources.resource_report` (synapses, cores, spikes,
synops, energy, latency), add saturation health (:mod:`tsslbp.hwmodels.health`) and, when the
checkpoint the file was exported from is still there (same SHA-256), the float model's spikes per
layer beside the fixed-point ones (:func:`float_vs_fixed`, plain data for the quantization-health
plots). The model, checkpoint and data are only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .export.lint import layer_names
from .hwmodels.golden import run_golden
from .hwmodels.health import LayerHealth, state_health
from .hwmodels.resources import CoreLimits, ResourceReport, resource_report
from .hwmodels.spec import ConvLayer, DenseLayer, FlattenLayer, NetworkSpec

__all__ = [
    "HardwareReport",
    "float_layer_spikes",
    "fixed_window_spikes",
    "float_vs_fixed",
    "load_source_checkpoint",
    "load_source_model",
    "hardware_report",
]


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
    float_vs_fixed: list[dict[str, Any]]

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


def float_layer_spikes(model: Any, images: Any, batch_size: int = 500) -> list[float]:
    """Mean spikes per sample of every spiking layer of a float TSSL-BP network, in order.

    Args:
        model: a :class:`~tsslbp.train.network.TsslbpNetwork`.
        images: (N, ...) its inputs (a torch tensor, as the data splits hold them).

    Returns:
        one value per spiking (linear or conv) layer, the output layer last.
    """
    import torch

    model.eval()
    totals: np.ndarray | None = None
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            out = model(images[start : start + batch_size].to(next(model.parameters()).dtype))
            counts = np.array([float(s.sum()) for s in (*out.hidden_spikes, out.spikes)])
            totals = counts if totals is None else totals + counts
    return [] if totals is None else (totals / len(images)).tolist()


def fixed_window_spikes(spec: NetworkSpec, spikes: list[np.ndarray]) -> list[float]:
    """Mean spikes per sample of every synaptic layer of a golden run, counted over the steps that
    correspond to the float model's T steps: the k-th synaptic layer (1-based) sees input column t
    at step t + k, so its window is steps k .. k + T - 1 (docs/fixed-point.md, "Timing")."""
    n_steps = int(spec.metadata["n_steps"])
    out, k = [], 0
    for layer, s in zip(spec.layers, spikes):
        if not isinstance(layer, (DenseLayer, ConvLayer)):
            continue
        k += 1
        out.append(float(s[..., k : k + n_steps].sum() / s.shape[0]))
    return out


def float_vs_fixed(
    spec: NetworkSpec, spikes: list[np.ndarray], float_spikes: list[float]
) -> list[dict[str, Any]]:
    """Per synaptic layer: name, float and fixed-point spikes per sample over the same T steps, and
    their ratio (fixed / float; None when the float layer is silent).

    Raises:
        ValueError: the float model has a different number of spiking layers than the spec.
    """
    fixed = fixed_window_spikes(spec, spikes)
    if len(fixed) != len(float_spikes):
        raise ValueError(
            f"the float model has {len(float_spikes)} spiking layers, the netx file {len(fixed)} synaptic layers"
        )
    names = layer_names(spec)
    synaptic = [
        i for i, layer in enumerate(spec.layers) if isinstance(layer, (DenseLayer, ConvLayer))
    ]
    return [
        {
            "layer": i,
            "name": names[i],
            "float_spikes_per_sample": f,
            "fixed_spikes_per_sample": x,
            "fixed_over_float": (x / f) if f > 0 else None,
        }
        for i, f, x in zip(synaptic, float_spikes, fixed)
    ]


def load_source_checkpoint(spec: NetworkSpec) -> tuple[Any, Any, Path] | None:
    """(model, config, path) of the checkpoint the spec was exported from, when that file is still
    there unchanged (SHA-256 in the metadata); None otherwise."""
    from .export.quantize import file_sha256
    from .train.loop import CheckpointError, model_from_checkpoint

    path = spec.metadata.get("source_checkpoint")
    if (
        not path
        or not Path(path).is_file()
        or file_sha256(path) != spec.metadata.get("source_sha256")
    ):
        return None
    try:
        model, cfg, _ = model_from_checkpoint(path)
    except CheckpointError:
        return None
    return model, cfg, Path(path)


def load_source_model(spec: NetworkSpec) -> Any | None:
    """The float model of :func:`load_source_checkpoint`, or None."""
    source = load_source_checkpoint(spec)
    return None if source is None else source[0]


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
        return HardwareReport(resource_report(spec, limits=limits), layer_names(spec), [], [])
    run = run_golden(spec, inputs, record=True)
    resources = resource_report(spec, inputs, run.spikes, run.u, run.v, limits)
    health = [
        h for h in state_health(run.u, run.v) if not isinstance(spec.layers[h.layer], FlattenLayer)
    ]
    comparison: list[dict[str, Any]] = []
    if model is not None and float_images is not None and "n_steps" in spec.metadata:
        comparison = float_vs_fixed(spec, run.spikes, float_layer_spikes(model, float_images))
    return HardwareReport(resources, layer_names(spec), health, comparison)
