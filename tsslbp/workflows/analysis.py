"""Float vs fixed point, layer by layer: the one home of the comparisons behind ``tsslbp report``
(float vs fixed spikes per sample), ``tsslbp verify --plots`` (spike rasters) and
``tsslbp quant-health`` (spike rates, predictions), plus confusion counts.

Time alignment: the float network computes every layer within the same step (layer ``k`` at step
``t`` sees the input of step ``t``), while on Loihi each synaptic layer adds one step of delay, so
the ``k``-th synaptic layer (0-based) of an exported network sees the input of step ``t`` at step
``t + k + 1`` (docs/fixed-point.md, "Timing"). :func:`fixed_layer_spikes` cuts each layer's
window ``[k + 1, k + 1 + T)`` out of a golden or Lava run, so both sides are ``(B, neurons, T)``
with neurons in PyTorch's (C, H, W) order, and every figure is computed from those arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..export.lint import layer_names
from ..hwmodels.golden import from_lava_order
from ..hwmodels.spec import ConvLayer, DenseLayer, NetworkSpec
from ..train.losses import predict
from ..train.network import TsslbpNetwork

__all__ = [
    "confusion_counts",
    "fixed_layer_spikes",
    "float_layer_spikes",
    "float_predictions",
    "float_vs_fixed",
    "spike_rates",
    "spikes_per_sample",
]


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, n_class: int) -> np.ndarray:
    """``counts[i, j]``: samples of true class ``i`` predicted as ``j``.

    Args:
        labels: (B,) integer true classes in ``0..n_class-1``.
        predictions: (B,) integer predicted classes.
        n_class: number of classes.

    Returns:
        (n_class, n_class) int64.

    >>> confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    """
    labels, predictions = (
        np.asarray(labels, dtype=np.int64),
        np.asarray(predictions, dtype=np.int64),
    )
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels {labels.shape} and predictions {predictions.shape} differ in shape"
        )
    for name, a in (("labels", labels), ("predictions", predictions)):
        if a.size and (a.min() < 0 or a.max() >= n_class):
            raise ValueError(f"{name} span {a.min()}..{a.max()}, outside 0..{n_class - 1}")
    counts = np.zeros((n_class, n_class), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


@torch.no_grad()
def float_layer_spikes(
    model: TsslbpNetwork, x: torch.Tensor, batch_size: int = 500
) -> list[np.ndarray]:
    """Spikes of every spiking layer of the float model (eval mode: no dropout), in batches.

    Args:
        model: the trained network (put in eval mode).
        x: (B, ...) inputs as the model takes them.
        batch_size: samples per forward pass (bounds the memory of the float run).

    Returns:
        one (B, neurons, T) uint8 array per spiking layer, output last; neurons in (C, H, W) order.
    """
    model.eval()
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size].to(device, dtype))
        parts.append(
            [
                s.reshape(s.shape[0], -1, s.shape[-1]).to(torch.uint8).cpu().numpy()
                for s in (*out.hidden_spikes, out.spikes)
            ]
        )
    return [np.concatenate(layer) for layer in zip(*parts)]


@torch.no_grad()
def float_predictions(
    model: TsslbpNetwork, images: torch.Tensor, batch_size: int = 500
) -> np.ndarray:
    """Predicted classes (B,) of the float model (most output spikes, lowest index on ties), in batches."""
    model.eval()
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    preds = [
        predict(model(images[i : i + batch_size].to(device, dtype)).spikes).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)


def _synaptic(spec: NetworkSpec) -> list[int]:
    """Indices of the spec's layers with synapses and neurons (dense, conv), in order."""
    return [i for i, layer in enumerate(spec.layers) if isinstance(layer, (DenseLayer, ConvLayer))]


def fixed_layer_spikes(run: Any, spec: NetworkSpec, n_steps: int | None = None) -> list[np.ndarray]:
    """Spikes of every synaptic (dense, conv) layer of a golden or Lava run, in the float model's
    time window.

    Args:
        run: a recorded run with ``spikes``: per spec layer (B, *lava_shape, S) (GoldenResult, LavaResult).
        spec: the network that ran (flatten and input layers are skipped).
        n_steps: T [default: the spec's ``n_steps`` metadata].

    Returns:
        one (B, neurons, T) uint8 array per synaptic layer: steps ``k + 1 .. k + T`` of the
        ``k``-th one (0-based), neurons in (C, H, W) order.

    Raises:
        ValueError: the run is shorter than the last layer's window.
    """
    n_steps = int(spec.metadata["n_steps"]) if n_steps is None else n_steps
    out = []
    for k, i in enumerate(_synaptic(spec)):
        s = np.asarray(run.spikes[i])
        if s.ndim == 5:  # (B, W, H, C, S) -> (B, C, H, W, S)
            s = from_lava_order(s)
        if s.shape[-1] < k + 1 + n_steps:
            raise ValueError(
                f"neuron layer {k}: the run has {s.shape[-1]} steps, its window needs {k + 1 + n_steps}"
            )
        out.append(
            s.reshape(s.shape[0], -1, s.shape[-1])[..., k + 1 : k + 1 + n_steps].astype(np.uint8)
        )
    return out


def spike_rates(layer_spikes: Sequence[np.ndarray]) -> list[float]:
    """Mean spikes per neuron per time step of each layer's (B, neurons, T) spikes.

    >>> spike_rates([np.ones((2, 3, 4)), np.zeros((2, 1, 4))])
    [1.0, 0.0]
    """
    return [float(np.mean(s)) if np.size(s) else 0.0 for s in layer_spikes]


def spikes_per_sample(layer_spikes: Sequence[np.ndarray]) -> list[float]:
    """Mean spikes per sample (summed over neurons and steps) of each layer's (B, neurons, T) spikes.

    >>> spikes_per_sample([np.ones((2, 3, 4)), np.zeros((2, 1, 4))])
    [12.0, 0.0]
    """
    return [float(s.sum(dtype=np.int64) / s.shape[0]) if len(s) else 0.0 for s in layer_spikes]


def float_vs_fixed(
    spec: NetworkSpec, run: Any, float_spikes: Sequence[np.ndarray]
) -> list[dict[str, Any]]:
    """Per synaptic layer: name, float and fixed-point spikes per sample over the same T steps, and
    their ratio (fixed / float; None when the float layer is silent).

    Args:
        spec: the network that ran.
        run: its recorded golden (or Lava) run over the same samples as ``float_spikes``.
        float_spikes: :func:`float_layer_spikes` of the float model.

    Raises:
        ValueError: the float model has a different number of spiking layers than the spec.
    """
    fixed = spikes_per_sample(fixed_layer_spikes(run, spec))
    flt = spikes_per_sample(float_spikes)
    if len(fixed) != len(flt):
        raise ValueError(
            f"the float model has {len(flt)} spiking layers, the netx file {len(fixed)} synaptic layers"
        )
    names = layer_names(spec)
    return [
        {
            "layer": i,
            "name": names[i],
            "float_spikes_per_sample": f,
            "fixed_spikes_per_sample": x,
            "fixed_over_float": (x / f) if f > 0 else None,
        }
        for i, f, x in zip(_synaptic(spec), flt, fixed)
    ]
