"""Integer description of a Loihi-style network, as a netx file holds it (no float anywhere).

This is the plain data passed between the pipeline stages: ``export`` builds it from a trained model
and writes it to netx HDF5, the netx reader builds it from a file, the golden model
(:mod:`tsslbp.hwmodels.golden`) and the Lava runner (:mod:`tsslbp.deploy`) execute it.

Conventions (those of lava-dl's netx and lava-nc's fixed-point process models):

* Shapes are in netx's stored order: ``(C, H, W)`` for conv/input layers, ``(N,)`` for dense.
  Lava processes use the reversed order ``(W, H, C)``; :func:`lava_shape` converts.
* ``CubaNeuron`` holds netx's neuron fields. In Lava's fixed-point LIF: the current decays with
  the 12-bit constant ``i_decay`` (netx writes ``iDecay``; lava-nc's ``du = iDecay - 1`` because its
  model adds 1, ``ds_offset``), the voltage with ``v_decay``; synaptic input and threshold are
  shifted left by 6; a neuron spikes when ``v > v_th_mant << 6`` and its voltage resets to 0.
* Dense and conv weights are the integer synaptic weights as netx stores them (``weight``
  dataset). lava-dl repacks dense weights into mantissa and exponent; for the weights
  :func:`tsslbp.hwmodels.weights.dense_weights_exact` accepts (e.g. any integers in [-256, 254]
  when a layer has both signs) the synaptic sum is then exactly ``weight @ spikes``. Conv weights
  reach lava's Conv unchanged.
* Conv weights are (out, in / groups, kH, kW) in PyTorch's orientation, and ``stride``,
  ``padding``, ``dilation`` are (y, x) = (H, W) pairs, as netx stores them.
* The integer semantics of running a spec (delays, rounding, wrapping) are in
  :mod:`tsslbp.hwmodels.golden`; the netx file format in :mod:`tsslbp.export.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DECAY_UNITY",
    "CubaNeuron",
    "InputLayer",
    "DenseLayer",
    "ConvLayer",
    "FlattenLayer",
    "Layer",
    "NetworkSpec",
    "lava_shape",
    "input_range_problem",
]

#: Decay constants are 12-bit fractions of this value (a decay of 4096 empties the state each step).
DECAY_UNITY = 1 << 12


@dataclass(frozen=True)
class CubaNeuron:
    """Loihi CUBA LIF neuron parameters of one layer (netx ``neuron`` group).

    Attributes:
        i_decay: current decay, 0..4096 (netx ``iDecay``).
        v_decay: voltage decay, 0..4096 (netx ``vDecay``).
        v_th_mant: threshold mantissa (netx ``vThMant``); spike when ``v > v_th_mant << 6``.
        ref_delay: refractory delay in steps (netx ``refDelay``). Stored only: lava-nc's LIF has no
            refractory period and lava-dl does not read it.
        graded_spike: netx ``gradedSpike``. Stored only: lava-nc's LIF always sends 0/1 spikes.
    """

    i_decay: int
    v_decay: int
    v_th_mant: int
    ref_delay: int = 1
    graded_spike: bool = False


@dataclass(frozen=True)
class InputLayer:
    """lava-dl's ``input`` layer: CUBA neurons without synapses, driven through their ``bias_mant``.

    lava-dl leaves the neurons' synaptic input unconnected; its tests set ``bias_mant`` to the image.
    The golden model takes the per-step ``bias_mant`` as the network input. lava-dl reads ``weight``
    and ``bias`` into ``Input.transform`` and never applies them: they are kept for round trips.

    Attributes:
        shape: (C, H, W) or (N,).
        neuron: neuron parameters.
        weight: the scalar netx stores as ``weight`` (unused by lava-dl).
        bias: (1,) int64, the single value netx stores as ``bias`` (unused by lava-dl).
    """

    shape: tuple[int, ...]
    neuron: CubaNeuron
    weight: int = 1
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))


@dataclass(frozen=True)
class DenseLayer:
    """Dense synapses then CUBA neurons.

    Attributes:
        weight: (n_out, n_in) int64 synaptic weights.
        neuron: neuron parameters.
        bias: (n_out,) int64 bias mantissas, or None.
    """

    weight: np.ndarray
    neuron: CubaNeuron
    bias: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[0]),)


@dataclass(frozen=True)
class ConvLayer:
    """2-D convolution synapses then CUBA neurons.

    Attributes:
        weight: (out_channels, in_channels // groups, kH, kW) int64, PyTorch orientation.
        neuron: neuron parameters.
        in_shape: (C, H, W) of the input.
        shape: (C, H, W) of the output (netx ``shape``).
        stride, padding, dilation: (y, x) pairs.
        groups: channel groups.
        bias: (out_channels,) int64 bias mantissas, or None.
    """

    weight: np.ndarray
    neuron: CubaNeuron
    in_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class FlattenLayer:
    """Flatten (C, H, W) to (C*H*W,) in netx's order."""

    in_shape: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(np.prod(self.in_shape)),)


Layer = InputLayer | DenseLayer | ConvLayer | FlattenLayer


@dataclass(frozen=True)
class NetworkSpec:
    """A whole integer network plus what is needed to feed and read it.

    Attributes:
        layers: in order, as in the netx file (without a shape-only input layer).
        input_shape: shape of what enters the first layer (netx order); the input layer's shape when
            the first layer is an input layer.
        input_message_bits: 0 for binary input spikes (a synapse then counts any nonzero value as
            1), else the graded-spike payload width (lava-dl's ``Network(input_message_bits=)``).
        metadata: tsslbp's own entries (steps per sample, input scale, readout, provenance); plain
            JSON-able values. Empty for files from other tools.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    input_message_bits: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def input_ones(self) -> bool:
        """Whether the last input channel (images) or the last input (flat) is a constant 1 that
        the feeder adds to the data: how a network trained on normalized input is exported."""
        return self.metadata.get("input_ones") is True

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one data sample (netx order): ``input_shape`` less the constant input."""
        if not self.input_ones:
            return tuple(self.input_shape)
        return (self.input_shape[0] - 1, *self.input_shape[1:])


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """netx (C, H, W) order to Lava's (W, H, C) ("XYZ") order; (N,) is unchanged.

    >>> lava_shape((3, 16, 20))
    (20, 16, 3)
    """
    return tuple(reversed(shape))


def input_range_problem(inputs: np.ndarray, spec: NetworkSpec) -> str | None:
    """Why input spikes are outside what the network's input port carries (None: they fit).

    Graded inputs (``input_message_bits = b > 0``) must be integers in [0, 2**b - 1]; binary
    inputs are not checked (any nonzero value is a spike, as in Lava). A network starting with an input layer takes ``bias_mant`` values instead and
    is not checked here. Checked on the values as given, before any cast (a float 2**63 would wrap
    to a negative int64).

    Args:
        inputs: spikes, any shape, any numeric dtype.
        spec: the network.
    """
    bits = int(spec.input_message_bits)
    if not bits or (spec.layers and isinstance(spec.layers[0], InputLayer)):
        return None
    x = np.asarray(inputs)
    if x.size == 0 or x.dtype == np.bool_:
        return None
    high = (1 << bits) - 1
    what = f"graded {bits}-bit"
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.floating) and not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{what} inputs must be finite integers in [0, {high}], found NaN or inf"
    if lo < 0 or hi > high:
        return f"{what} inputs must be in [0, {high}], found values from {lo} to {hi}"
    return None
