"""Map a trained TSSL-BP network onto Loihi's fixed-point CUBA LIF neurons (docs/fixed-point.md).

The model is put through :func:`~tsslbp.export.fold.fold_network` first (pooling folded into
weights, dropout dropped), then each conv/dense layer is mapped as below.

The TSSL-BP layer ``I[t] = W a_prev[t]`` with ``a_prev = psp(o_prev)`` is the same as the filter
``I[t] = (1 - 1/tau_s) I[t-1] + (W / tau_s) o_prev[t]``: Loihi's current with decay ``1/tau_s`` fed
with weights ``W / tau_s``. The membrane ``u`` is Loihi's voltage with decay ``1/tau_m``, reset to
zero, spike when above threshold. Per layer, one scale ``S`` (integer state units per float unit)
ties the two; it is chosen as large as the 8-bit weights, the 24-bit state and the 17-bit threshold
allow (docs/fixed-point.md, "Choosing the scale").

Stages: :func:`quantize_network` (model + calibration batch -> :class:`NetworkSpec` and
:class:`QuantReport`); the spec then goes to :func:`tsslbp.export.netx.write_netx`. The model is
only read, never changed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import Dataset, ExperimentConfig
from ..hwmodels.fixed_point import ACT_SHIFT
from ..hwmodels.health import STATE_LIMIT
from ..hwmodels.spec import (
    DECAY_UNITY,
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    Layer,
    NetworkSpec,
)
from ..train.functional import psp, static_psp_coefficients
from ..train.network import TsslbpNetwork
from .fold import FoldedConv, FoldedFlatten, fold_network, folded_traces, with_constant_ones
from .rounding import compensated_round, input_gram
from .schema import VTH_MANT_MAX, representable_weights

__all__ = [
    "ACT_SHIFT",
    "STATE_LIMIT",
    "V_TH_MANT_MAX",
    "WEIGHT_INT_MIN",
    "WEIGHT_INT_MAX",
    "WEIGHT_INT_STEP",
    "WEIGHT_BITS_MIN",
    "WEIGHT_BITS_MAX",
    "ROUNDINGS",
    "WEIGHT_RANGES",
    "WEIGHT_RANGE_CHOICES",
    "weight_grid",
    "weight_bits_used",
    "QuantConfig",
    "LayerQuant",
    "QuantReport",
    "QuantizationError",
    "decay_constant",
    "quantize_weights",
    "quantize_network",
    "file_sha256",
]

# Re-exported from where each is defined: Lava's LIF shifts synaptic input and threshold left by 6
# (ACT_SHIFT), u wraps and v saturates at 24 bits signed (|state| < STATE_LIMIT = 2**23), vThMant is
# a 17-bit field (V_TH_MANT_MAX); docs/fixed-point.md, "Lava's LIF".
V_TH_MANT_MAX = VTH_MANT_MAX
#: Lava's fixed-point Dense clips weights to 8 bits and, with mixed signs, drops the lowest bit:
#: the weights it applies exactly are the even integers in [-256, 254] (docs/fixed-point.md).
WEIGHT_INT_MIN = -256
WEIGHT_INT_MAX = 254
WEIGHT_INT_STEP = 2
#: Weight widths the quantizer offers. ``b`` bits is what lava-nc's Dense applies with
#: ``num_weight_bits = b`` on a mixed-sign matrix: it truncates ``8 - b + 1`` low bits of the 9-bit
#: signed mantissa, leaving the multiples of ``2**(9 - b)`` in [-256, 256 - 2**(9 - b)] (2**b levels).
#: 8 bits is the full grid above; 1 bit would leave only {-256, 0}, no positive weight.
WEIGHT_BITS_MIN = 2
WEIGHT_BITS_MAX = 8
#: Weight rounding modes of :class:`QuantConfig`.
ROUNDINGS = ("nearest", "compensated")
#: ``weight_range`` choices of :class:`QuantConfig`.
WEIGHT_RANGE_CHOICES = ("search", "max")
#: Fractions of a layer's largest |weight| tried for the top of its weight grid by
#: ``weight_range: search``. A long-trained layer has a few weights far above the rest (the
#: Fashion-MNIST CNN's hidden layer: largest 0.84, 99.99th percentile 0.40, median 0.057), and
#: putting the grid's top at the largest spends most of the 8 bits on them.
WEIGHT_RANGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
# Bits of the signed weight mantissa (8-bit magnitude plus the sign).
_SIGNED_MANTISSA_BITS = 9


class QuantizationError(ValueError):
    """A layer cannot be put on Loihi's integer grids with these choices (e.g. its weights all
    round to zero, or its threshold does); another input or weight width may still work."""


def weight_grid(bits: int) -> tuple[int, int, int]:
    """``(min, max, step)`` of the integer weights a ``bits``-wide layer uses.

    Coarser weights are a coarser grid over the same range, as on Loihi: lava-dl's netx finds the
    common trailing zero bits of the stored weights and passes ``num_weight_bits = bits`` to lava's
    Dense, which then truncates only bits that are zero (tsslbp.hwmodels.weights), so the stored
    integers are applied exactly.

    >>> weight_grid(8), weight_grid(6), weight_grid(4), weight_grid(2)
    ((-256, 254, 2), (-256, 248, 8), (-256, 224, 32), (-256, 128, 128))
    """
    if not WEIGHT_BITS_MIN <= bits <= WEIGHT_BITS_MAX:
        raise ValueError(f"weight_bits must be in {WEIGHT_BITS_MIN}..{WEIGHT_BITS_MAX}, got {bits}")
    step = 1 << (_SIGNED_MANTISSA_BITS - bits)
    return WEIGHT_INT_MIN, -WEIGHT_INT_MIN - step, step


def weight_bits_used(w_int: np.ndarray, bits: int) -> float:
    """Bits of the ``bits``-wide weight grid (:func:`weight_grid`) that the largest ``|w_int|``
    uses, the sign bit included: ``log2(max|w| / step) + 1``, at least 1.

    On the 8-bit grid (step 2) a largest weight of 256 uses 8 bits, 128 uses 7, and on the 4-bit grid
    (step 32) 256 uses 4 (the grid is 9-bit signed integers, so ``log2(256) + 1 = 9`` would count
    the step's zero bit).

    >>> weight_bits_used(np.array([-256, 4]), 8), weight_bits_used(np.array([128]), 8)
    (8.0, 7.0)
    >>> weight_bits_used(np.array([-256, 224]), 4), weight_bits_used(np.array([0]), 8)
    (4.0, 1.0)
    """
    step = weight_grid(bits)[2]
    return math.log2(max(1.0, float(np.abs(w_int).max(initial=0)) / step)) + 1.0


@dataclass(frozen=True)
class QuantConfig:
    """Choices of the quantization.

    Attributes:
        input_bits: graded input spike payload: ``x`` in [0, 1] is sent as ``round(x * (2**bits - 1))``.
        headroom: the calibrated max |current| and max membrane (positive side; deep inhibition
            may reach the voltage floor) must stay below ``headroom * 2**23``.
        calibration_samples: how many training samples set the state-range bound.
        weight_bits: synaptic weight width, 2..8 (:func:`weight_grid`): weights are multiples of
            ``2**(9 - weight_bits)`` in [-256, 256 - 2**(9 - weight_bits)].
        rounding: ``nearest`` grid point per weight, or ``compensated``: each weight's rounding
            error absorbed by the neuron's other weights so that the current on the calibration
            batch changes least (:mod:`tsslbp.export.rounding`).
        weight_range: where the top of the weight grid goes in a layer whose scale the weights
            bound: ``max``, at the largest weight; ``search``, at the fraction of it in
            :data:`WEIGHT_RANGES` (larger weights clipped, the others on a finer grid) whose
            current on the calibration batch is closest to the float layer's, within the other
            bounds (docs/fixed-point.md, "Weight range").
    """

    input_bits: int = 8
    headroom: float = 0.5
    calibration_samples: int = 512
    weight_bits: int = WEIGHT_BITS_MAX
    rounding: str = "compensated"
    weight_range: str = "max"

    def __post_init__(self) -> None:
        if not 1 <= self.input_bits <= 16:
            raise ValueError(f"input_bits must be in 1..16, got {self.input_bits}")
        if not 0.0 < self.headroom <= 1.0:
            raise ValueError(f"headroom must be in (0, 1], got {self.headroom}")
        if self.calibration_samples < 1:
            raise ValueError(f"calibration_samples must be >= 1, got {self.calibration_samples}")
        weight_grid(self.weight_bits)  # raises on a width outside WEIGHT_BITS_MIN..MAX
        if self.rounding not in ROUNDINGS:
            raise ValueError(
                f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}"
            )
        if self.weight_range not in WEIGHT_RANGE_CHOICES:
            raise ValueError(
                f"weight_range must be one of {', '.join(WEIGHT_RANGE_CHOICES)}, got {self.weight_range!r}"
            )

    @property
    def input_max(self) -> int:
        return (1 << self.input_bits) - 1


@dataclass(frozen=True)
class LayerQuant:
    """How one layer was quantized, and what it costs.

    Attributes:
        name: layer name from the config.
        scale: integer state units per float unit of current and membrane (``S``).
        weight_gain: integer weight units per float weight (``w_int = round(W * weight_gain)``).
        limited_by: which bound set the scale: ``weights``, ``state range`` or ``threshold width``.
        weight_bits_used: bits of the layer's ``weight_bits``-wide grid the largest weight uses,
            sign included (:func:`weight_bits_used`): ``weight_bits`` when it reaches the grid's
            top, one less per halving.
        n_weights: number of synapses; ``n_clipped``: weights clipped to the range although the
            range was meant to hold them (``weight_range`` 1).
        weight_range: the top of the weight grid as a fraction of max |W| (1: the largest weight;
            below 1, chosen by ``weight_range: search``, and ``n_range_clipped`` weights lie beyond
            it on purpose); ``current_error``: the relative RMS change of the layer's current on
            the calibration batch that the realized weights make (``||dW X|| / ||W X||``).
        weight_rmse: RMS error of the realized weights, relative to max |W|.
        v_th_mant: threshold mantissa; ``v_th_error``: relative threshold rounding error.
        i_decay, v_decay: 12-bit decays; ``tau_syn_realized``, ``tau_mem_realized``: 4096 / decay.
        float_max_abs_current, float_max_abs_u, float_max_u: calibration maxima of the float model
            (current, membrane magnitude, membrane; the scale bounds the current and ``float_max_u``).
        max_abs_u_int, max_abs_v_int: calibration maxima of the golden model (filled by the caller
            when a golden run is made; -1 otherwise).
        v_saturated, v_floor, u_near_wrap: fractions of the golden run's values at the voltage's
            top, at its floor, and near the current's wrap (:mod:`tsslbp.hwmodels.health`).
    """

    name: str
    scale: float
    weight_gain: float
    limited_by: str
    weight_bits_used: float
    n_weights: int
    n_clipped: int
    weight_rmse: float
    v_th_mant: int
    v_th_error: float
    i_decay: int
    v_decay: int
    tau_syn_realized: float
    tau_mem_realized: float
    float_max_abs_current: float
    float_max_abs_u: float
    max_abs_u_int: int = -1
    max_abs_v_int: int = -1
    v_saturated: float = 0.0
    u_near_wrap: float = 0.0
    weight_bits: int = WEIGHT_BITS_MAX
    float_max_u: float = 0.0
    v_floor: float = 0.0
    weight_range: float = 1.0
    n_range_clipped: int = 0
    current_error: float = 0.0

    def warnings(self) -> list[str]:
        """One line per quantization problem of this layer (empty when healthy)."""
        out = []
        if self.n_clipped:
            lo, hi, _ = weight_grid(self.weight_bits)
            out.append(
                f"layer {self.name}: {self.n_clipped} of {self.n_weights} weights ({self.n_clipped / self.n_weights:.2%}) clipped to [{lo}, {hi}]"
            )
        if self.v_saturated:
            out.append(
                f"layer {self.name}: v saturated at 2**23 - 1 in {self.v_saturated:.3%} of the calibration values"
            )
        if self.u_near_wrap:
            out.append(
                f"layer {self.name}: |u| within 1% of the 24-bit wrap in {self.u_near_wrap:.3%} of the calibration values"
            )
        return out


@dataclass(frozen=True)
class QuantReport:
    layers: tuple[LayerQuant, ...]
    config: QuantConfig
    calibration_samples: int

    def warnings(self) -> list[str]:
        """Every layer's quantization problems, one line each."""
        return [line for layer in self.layers for line in layer.warnings()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "calibration_samples": self.calibration_samples,
            "layers": [asdict(layer) for layer in self.layers],
        }


def decay_constant(tau: float) -> int:
    """12-bit decay for a time constant in steps: ``round(4096 / tau)`` (docs/fixed-point.md).

    >>> decay_constant(3.0), decay_constant(5.0)
    (1365, 819)
    """
    return int(round(DECAY_UNITY / tau))


def quantize_weights(
    weight: np.ndarray, gain: float, bits: int = WEIGHT_BITS_MAX
) -> tuple[np.ndarray, int]:
    """``w_int``: ``weight * gain`` rounded to the nearest point of the ``bits``-wide grid
    (:func:`weight_grid`; 8 bits: the even integers in [-256, 254]).

    Returns:
        (int64 weights, number of weights that had to be clipped to the range).

    >>> quantize_weights(np.array([0.26, -1.0, 3.0]), 100.0)
    (array([  26, -100,  254]), 1)
    >>> quantize_weights(np.array([0.26, -1.0, 3.0]), 100.0, bits=4)
    (array([ 32, -96, 224]), 1)
    """
    lo, hi, step = weight_grid(bits)
    target = weight * gain / step
    rounded = np.round(target) * step
    clipped = np.clip(rounded, lo, hi)
    return clipped.astype(np.int64), int(np.count_nonzero(clipped != rounded))


def _input_trace(
    x: torch.Tensor, qcfg: QuantConfig, n_steps: int, tau_syn: float, events: bool
) -> torch.Tensor:
    """The first layer's input trace (N, ..., T) as the chip sees it: event frames PSP-filtered,
    or analog inputs rounded to the graded codes (in input units) and PSP-filtered."""
    if events:
        return psp(x.to(torch.float64), tau_syn)
    codes = torch.round(x.to(torch.float64) * qcfg.input_max) / qcfg.input_max
    return codes[..., None] * static_psp_coefficients(n_steps, tau_syn, dtype=torch.float64)


@dataclass(frozen=True)
class _Fanin:
    """A folded layer's weights as the rounding sees them: those of the layer before pooling was
    folded in (one row of fan-in ``K`` per output neuron), with the Gram matrices (groups, K, K)
    of the inputs they multiply on the calibration batch (:func:`~tsslbp.export.rounding.input_gram`).

    A layer with pooling folded in is rounded as the original layer on the pooled inputs and its
    integer weights expanded again, so they stay block-constant like the float ones (the folded
    layer still equals integer sum-pooling followed by the small layer).
    """

    gram: np.ndarray
    pooled: tuple[int, int]
    conv: bool
    #: (C, H, W) of a pooled dense layer's input map (before pooling).
    map_shape: tuple[int, int, int] = (0, 0, 0)

    def small(self, weight: np.ndarray) -> np.ndarray:
        """The original layer's weights in the folded ``weight`` (one entry per pooled block)."""
        ky, kx = self.pooled
        if self.conv:
            return weight[:, :, ::ky, ::kx]
        if (ky, kx) == (1, 1):
            return weight
        full = weight.reshape(weight.shape[0], *self.map_shape)
        c, h, w = self.map_shape
        return full[:, :, : h // ky * ky : ky, : w // kx * kx : kx].reshape(len(weight), -1)

    def expand(self, small: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Integer ``small`` weights repeated over their blocks, in the folded layout of ``like``."""
        ky, kx = self.pooled
        if self.conv:
            return np.repeat(np.repeat(small, ky, axis=2), kx, axis=3)
        if (ky, kx) == (1, 1):
            return small
        c, h, w = self.map_shape
        q = np.zeros((len(like), c, h, w), dtype=np.int64)
        blocks = small.reshape(len(like), c, h // ky, w // kx)
        q[:, :, : h // ky * ky, : w // kx * kx] = np.repeat(
            np.repeat(blocks, ky, axis=2), kx, axis=3
        )
        return q.reshape(like.shape)

    @property
    def blocks(self) -> int:
        return self.pooled[0] * self.pooled[1]


def _fanin(item: Any, layer_input: torch.Tensor) -> _Fanin:
    """The :class:`_Fanin` of a folded dense or conv layer on its inputs ``layer_input``
    (N, C[, H, W], T)."""
    ky, kx = item.pooled
    if isinstance(item, FoldedConv):
        kernel = (item.weight.shape[2] // ky, item.weight.shape[3] // kx)
        gram = input_gram(
            _sum_pool(layer_input, ky, kx),
            kernel=kernel,
            stride=(item.stride[0] // ky, item.stride[1] // kx),
            padding=(item.padding[0] // ky, item.padding[1] // kx),
            dilation=item.dilation,
            groups=item.groups,
        )
        return _Fanin(gram, (ky, kx), conv=True)
    if (ky, kx) == (1, 1):
        flat = layer_input.reshape(layer_input.shape[0], -1, layer_input.shape[-1])
        return _Fanin(input_gram(flat), (1, 1), conv=False)
    n, c, h, w, t = layer_input.shape
    gram = input_gram(_sum_pool(layer_input, ky, kx).reshape(n, -1, t))
    return _Fanin(gram, (ky, kx), conv=False, map_shape=(c, h, w))


def _compensated(
    fanin: _Fanin, weight: np.ndarray, grid: tuple[int, int, int]
) -> tuple[np.ndarray, int]:
    """:func:`~tsslbp.export.rounding.compensated_round` of a folded layer's ``weight`` (in
    integer units): (integer weights in the folded layout, weights clipped)."""
    small = fanin.small(weight)
    q_small, clipped = compensated_round(small.reshape(len(small), -1), fanin.gram, grid)
    return fanin.expand(q_small.reshape(small.shape), weight), clipped * fanin.blocks


def _current_error(fanin: _Fanin, weight: np.ndarray, realized: np.ndarray) -> float:
    """``||(realized - weight) X|| / ||weight X||`` over the calibration inputs ``X`` whose Gram
    matrices ``fanin`` holds: how far the realized weights move the layer's current."""
    k = fanin.gram.shape[-1]
    w = torch.from_numpy(np.ascontiguousarray(fanin.small(weight)).reshape(-1, k)).double()
    e = torch.from_numpy(np.ascontiguousarray(fanin.small(realized)).reshape(-1, k)).double() - w
    per_group = len(w) // len(fanin.gram)
    change = total = 0.0
    for g, gram in enumerate(torch.from_numpy(fanin.gram)):
        rows = slice(g * per_group, (g + 1) * per_group)
        change += float(((e[rows] @ gram) * e[rows]).sum())
        total += float(((w[rows] @ gram) * w[rows]).sum())
    return math.sqrt(change / total) if total > 0 else 0.0


def _sum_pool(trace: torch.Tensor, ky: int, kx: int) -> torch.Tensor:
    """Sum over (ky, kx) windows (stride = window) of a (N, C, H, W, T) trace; partial windows
    dropped, as TSSL-BP's pooling does."""
    n, c, h, w, t = trace.shape
    cropped = trace[:, :, : h // ky * ky, : w // kx * kx]
    return cropped.reshape(n, c, h // ky, ky, w // kx, kx, t).sum(dim=(3, 5))


def _round_layer(
    item: Any,
    weight: np.ndarray,
    layer_input: torch.Tensor,
    bounds: dict[str, float],
    per_scale: float,
    qcfg: QuantConfig,
) -> tuple[float, float, np.ndarray, int, float]:
    """Put one folded layer's float ``weight`` on the integer grid.

    The scale is the smallest of ``bounds``; when the weights set it and ``qcfg.weight_range`` is
    ``search``, the scales that put the grid's top at a fraction of the largest weight
    (:data:`WEIGHT_RANGES`) are tried as well, as far as the other bounds allow, and the one whose
    realized weights change the layer's current on the calibration batch least is kept.

    Returns:
        (weight range, scale, integer weights, weights clipped, relative current error).
    """
    limited_by = min(bounds, key=bounds.get)
    scale = bounds[limited_by]
    ranges = [1.0]
    if qcfg.weight_range == "search" and limited_by == "weights":
        ceiling = min(bound for kind, bound in bounds.items() if kind != "weights")
        ranges += [r for r in WEIGHT_RANGES[1:] if scale / r <= ceiling]
    compensated = qcfg.rounding == "compensated"
    fanin = _fanin(item, layer_input)
    grid = weight_grid(qcfg.weight_bits)
    best = None
    for weight_range in ranges:
        gain = scale / weight_range * per_scale
        if compensated:
            w_int, n_clipped = _compensated(fanin, weight * gain, grid)
        else:
            w_int, n_clipped = quantize_weights(weight, gain, qcfg.weight_bits)
        error = _current_error(fanin, weight, w_int / gain)
        if best is None or error < best[-1]:
            best = (weight_range, scale / weight_range, w_int, n_clipped, error)
    return best


def quantize_network(
    model: TsslbpNetwork,
    cfg: ExperimentConfig,
    calibration: torch.Tensor,
    qcfg: QuantConfig = QuantConfig(),
    metadata: dict[str, Any] | None = None,
    cache: dict[Any, Any] | None = None,
) -> tuple[NetworkSpec, QuantReport]:
    """Quantize a trained TSSL-BP network (dense, conv, pooling, dropout) to an integer :class:`NetworkSpec`.

    Pooling is first folded into the next layer's weights (:mod:`tsslbp.export.fold`); every
    remaining conv/dense layer then gets its own scale.

    Args:
        model: the trained network (only read).
        cfg: its config.
        calibration: (B, C) or (B, C, H, W) analog inputs in [0, 1] that bound the state range,
            or for event data (N-MNIST) (B, C, H, W, T) binary spike frames.
        qcfg: quantization choices.
        metadata: extra provenance entries stored with the spec (e.g. the checkpoint hash).
        cache: a dict shared by calls on the same model and calibration batch (the input widths
            ``export --input-bits auto`` tries): the float model's traces do not depend on the
            input width, nor does the compensated rounding of the layers after the first, so they
            are computed once.

    Returns:
        (spec, report). The spec's first layer takes graded input spikes (``qcfg.input_bits``), or
        binary spikes for event data.
    """
    folded = fold_network(model)
    image_net = any(isinstance(layer, FoldedConv) for layer in folded)
    input_shape = tuple(cfg.input_shape) if image_net else (cfg.input_size,)
    # Event data (N-MNIST) is binary spike frames with a time axis: it enters as binary spikes.
    events = cfg.data.dataset is Dataset.NMNIST
    x = calibration.reshape(calibration.shape[0], *input_shape, *((cfg.n_steps,) if events else ()))
    # A normalizing network's first layer also takes a constant input of 1 (fold.py).
    ones = model.input_normalization is not None
    if ones:
        x = with_constant_ones(x)
        input_shape = tuple(x.shape[1:])
    cache = {} if cache is None else cache
    if "traces" not in cache:
        cache["traces"] = list(folded_traces(folded, x, cfg.n_steps, cfg.neuron.tau_s))
    traces = iter(cache["traces"])
    tau_s = cfg.neuron.tau_s
    # What the first synapses receive on the chip: the graded input codes, PSP-filtered.
    layer_input = _input_trace(x, qcfg, cfg.n_steps, tau_s, events)
    i_decay, v_decay = decay_constant(tau_s), decay_constant(cfg.neuron.tau_m)
    names = iter(layer.name for layer in cfg.layers if layer.is_spiking)

    layers: list[Layer] = []
    reports = []
    first = True
    for item in folded:
        if isinstance(item, FoldedFlatten):
            layers.append(FlattenLayer(in_shape=item.in_shape))
            continue
        name = next(names)
        current, lif = next(traces)
        # The scale bounds what must not overflow: the current (it wraps) and the membrane's positive
        # side (up to and past threshold). Deep inhibition (membrane far below zero, hundreds of
        # thresholds in a trained first layer) may reach Lava's voltage floor, where it is held; it
        # would otherwise set the scale and cost the weights 1-2 bits (docs/fixed-point.md,
        # "Choosing the scale").
        max_current, max_u = float(current.abs().max()), float(lif.u.max())
        max_abs_u = float(lif.u.abs().max())
        weight, v_th = item.weight, item.neuron.v_th
        # Integer input per float input unit: graded input codes x in [0, 1] as x * input_max.
        first_layer, first = first, False
        input_gain = float(qcfg.input_max) if first_layer and not events else 1.0
        # w_int = W * S / (tau_s * 2**ACT_SHIFT * input_gain): see docs/fixed-point.md, "The map".
        per_scale = 1.0 / (tau_s * (1 << ACT_SHIFT) * input_gain)
        max_w = float(np.abs(weight).max()) or 1.0
        # The largest weight goes to the grid's top; fewer weight bits keep the range, not the scale.
        grid_max = weight_grid(qcfg.weight_bits)[1]
        bounds = {
            "weights": grid_max / (max_w * per_scale),
            "state range": qcfg.headroom * STATE_LIMIT / max(max_current, max_u, v_th),
            "threshold width": V_TH_MANT_MAX * (1 << ACT_SHIFT) / v_th,
        }
        limited_by = min(bounds, key=bounds.get)
        # What the rounding depends on: the layer, its scale bounds, the grid and its inputs (the
        # float model's PSP traces, or for the first layer the graded input codes): the input
        # widths `export --input-bits auto` tries share the layers after the first.
        choices = (qcfg.weight_bits, qcfg.rounding, qcfg.weight_range)
        key = (
            len(reports),
            tuple(bounds.values()),
            choices,
            qcfg.input_bits if first_layer else None,
        )
        if key not in cache:
            cache[key] = _round_layer(item, weight, layer_input, bounds, per_scale, qcfg)
        weight_range, scale, w_int, n_clipped, current_error = cache[key]
        gain = scale * per_scale
        n_range_clipped, n_clipped = (n_clipped, 0) if weight_range < 1 else (0, n_clipped)
        layer_input = psp(lif.spikes, tau_s)
        why = f"the scale is limited by the {limited_by}: max |I| {max_current:.3g}, max u {max_u:.3g}, v_th {v_th:g}"
        if not np.any(w_int):
            hint = (
                ", use fewer input bits"
                if first_layer and limited_by == "state range" and not events
                else ""
            )
            raise QuantizationError(
                f"layer {name}: every weight rounds to 0 at weight gain {gain:.3g} (max |w| {max_w:.3g}; {why}{hint})"
            )
        if not representable_weights(w_int):
            raise QuantizationError(
                f"layer {name}: its quantized weights are not applied exactly by netx + Lava "
                f"(range {int(w_int.min())}..{int(w_int.max())}; see tsslbp.export.schema.representable_weights)"
            )
        v_th_mant = int(round(v_th * scale / (1 << ACT_SHIFT)))
        if v_th_mant < 1:
            raise QuantizationError(
                f"layer {name}: threshold {v_th} quantizes to 0 (scale {scale:.3g}; {why})"
            )
        neuron = CubaNeuron(i_decay=i_decay, v_decay=v_decay, v_th_mant=v_th_mant)
        if isinstance(item, FoldedConv):
            layers.append(
                ConvLayer(
                    weight=w_int,
                    neuron=neuron,
                    in_shape=item.in_shape,
                    shape=item.shape,
                    stride=item.stride,
                    padding=item.padding,
                    dilation=item.dilation,
                    groups=item.groups,
                )
            )
        else:
            layers.append(DenseLayer(weight=w_int, neuron=neuron))
        reports.append(
            LayerQuant(
                name=name,
                scale=scale,
                weight_gain=gain,
                limited_by=limited_by,
                weight_bits_used=weight_bits_used(w_int, qcfg.weight_bits),
                n_weights=int(weight.size),
                n_clipped=n_clipped,
                weight_rmse=float(np.sqrt(np.mean((w_int / gain - weight) ** 2))) / max_w,
                v_th_mant=v_th_mant,
                v_th_error=abs(v_th_mant * (1 << ACT_SHIFT) / scale - v_th) / v_th,
                i_decay=i_decay,
                v_decay=v_decay,
                tau_syn_realized=DECAY_UNITY / i_decay,
                tau_mem_realized=DECAY_UNITY / v_decay,
                float_max_abs_current=max_current,
                float_max_abs_u=max_abs_u,
                float_max_u=max_u,
                weight_bits=qcfg.weight_bits,
                weight_range=weight_range,
                n_range_clipped=n_range_clipped,
                current_error=current_error,
            )
        )

    n_synaptic = len(reports)
    meta = {
        "producer": f"tsslbp {__version__}",
        "n_steps": cfg.n_steps,
        # Each synaptic layer delays by one step in Lava: the output layer's window starts here.
        "readout_offset": n_synaptic,
        "steps_per_sample": cfg.n_steps + n_synaptic,
        "readout": "spike_count_argmax",
        "input_encoding": "binary" if events else "graded",
        "input_bits": 0 if events else qcfg.input_bits,
        "input_scale": 1 if events else qcfg.input_max,
        # The last input channel (images) or input (flat) is a constant 1, supplied with the data.
        **({"input_ones": True} if ones else {}),
        "weight_bits": qcfg.weight_bits,
        "n_class": cfg.data.n_class,
        "dataset": cfg.data.dataset.value,
        "config": cfg.to_dict(),
        "layer_scales": [r.scale for r in reports],
        **(metadata or {}),
    }
    spec = NetworkSpec(
        layers=tuple(layers),
        input_shape=input_shape,
        input_message_bits=0 if events else qcfg.input_bits,
        metadata=meta,
    )
    return spec, QuantReport(tuple(reports), qcfg, int(calibration.shape[0]))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (provenance of exported networks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
