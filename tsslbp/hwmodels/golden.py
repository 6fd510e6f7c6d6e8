"""Bit-exact emulator of a netx network on lava-nc's fixed-point CPU models, batched with numpy.

It reproduces what lava-dl 0.6's ``netx.hdf5.Network`` builds from a netx file and what lava-nc 0.10
computes with ``Loihi2SimCfg(select_tag="fixed_pt")``, step for step, for a batch of independent
samples (each from zero state). Per step ``t`` and layer, in lava's order of operations:

Synapses (dense or conv) send the sum they accumulated at step ``t - 1`` (zero at ``t = 0``) and
accumulate the presynaptic spikes of step ``t``, so every synaptic layer adds one step of delay::

    dense:  A[t+1] = wrap32(shift(W' @ s[t], weight_exp))    W', weight_exp: netx's packing (weights.py)
    conv:   A[t+1] = wrap24(wrap32(conv(s[t], W)))           PyTorch cross-correlation, weights as stored

With binary input (``num_message_bits == 0``) a synapse sees ``s != 0``; with graded input the payload.

CUBA LIF (``PyLifModelBitAcc``), all in lava's int32 arithmetic::

    u[t] = wrap_current(wrap32(decay(u[t-1], iDecay) + wrap32(A[t] << 6)))
    v[t] = clip24(wrap32(wrap32(decay(v[t-1], vDecay) + u[t]) + (int16(bias_mant) << 6)))
    s[t] = v[t] > vThMant << 6;   v[t] = 0 where s[t]

``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)`` rounds toward zero. lava-nc's ``du`` is
``iDecay - 1`` plus its ``ds_offset`` of 1, so the current decays by exactly ``iDecay``.

Input layer (netx ``input`` type): CUBA neurons whose synaptic input is never connected (lava-dl's
``Input`` block leaves ``a_in`` open) and which are driven through ``bias_mant``; lava-dl reads the
file's ``weight``/``bias`` into ``Input.transform``, which nothing applies. Here, for a network
whose first layer is an input layer, ``inputs[..., t]`` is the input neurons' ``bias_mant`` at step
``t`` (lava-dl's tests set it once to an image: pass the image repeated over time).

Flatten: netx flattens a (W, H, C) port as ``transpose([2, 1, 0]).flatten()``, i.e. C-order over
(C, H, W), PyTorch's order.

Layout: arrays come in and go out in Lava's (W, H, C) "XYZ" order with time last; inside, the model
works in netx's (C, H, W) order, which makes the conv a plain cross-correlation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .fixed_point import (
    ACT_SHIFT,
    BIAS_EXP,
    BIAS_MANT_STORAGE_BITS,
    CONV_OUT_BITS,
    INT32_BITS,
    STATE_HALF_RANGE,
    V_LIMIT,
    VTH_SHIFT,
    clip_voltage,
    decay,
    shift_left,
    shift_right_floor,
    wrap_current,
    wrap_signed,
)
from .readout import encode_for_spec, window_counts
from .spec import (
    DECAY_UNITY,
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    Layer,
    NetworkSpec,
    input_range_problem,
    lava_shape,
)
from .weights import applied_dense_weights, pack_dense_weights

__all__ = [
    "CubaParams",
    "CubaState",
    "GoldenResult",
    "cuba_step",
    "dense_synapse",
    "conv_synapse",
    "to_lava_order",
    "from_lava_order",
    "run_golden",
    "golden_output_counts",
]

# float64 matrix products are exact while every partial sum stays below 2**53 in magnitude.
_FLOAT32_EXACT_LIMIT = 1 << 24
_FLOAT64_EXACT_LIMIT = 1 << 53


class CubaParams(NamedTuple):
    """Integer parameters of one layer of CUBA LIF neurons.

    Attributes:
        i_decay: current decay 0..4096 (netx ``iDecay``).
        v_decay: voltage decay 0..4096 (netx ``vDecay``).
        v_th_mant: threshold mantissa (netx ``vThMant``).
    """

    i_decay: int
    v_decay: int
    v_th_mant: int

    @classmethod
    def from_neuron(cls, neuron: CubaNeuron) -> CubaParams:
        return cls(int(neuron.i_decay), int(neuron.v_decay), int(neuron.v_th_mant))


class CubaState(NamedTuple):
    """State of a layer of CUBA LIF neurons: int64 arrays of one shape (values of lava's int32)."""

    u: np.ndarray
    v: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> CubaState:
        return cls(np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64))


def cuba_step(
    a_in: np.ndarray, bias_mant: np.ndarray | int, state: CubaState, params: CubaParams
) -> tuple[np.ndarray, CubaState]:
    """One step of lava-nc's bit-accurate CUBA LIF (``PyLifModelBitAcc.run_spk``).

    Args:
        a_in: int64 synaptic input received this step (an int32 message).
        bias_mant: bias mantissa(s), broadcastable to the state; stored as int16 by lava, scaled by
            ``<< 6`` (netx's ``bias_exp``).
        state: current and voltage after the previous step.
        params: decays and threshold.

    Returns:
        (spikes as a bool array, new state with ``v`` reset to 0 where a spike occurred).

    >>> s, st = cuba_step(np.array([10]), 0, CubaState.zeros((1,)), CubaParams(1024, 512, 5))
    >>> s.tolist(), st.u.tolist(), st.v.tolist()
    ([True], [640], [0])
    """
    # The synaptic input is shifted left by 6 (MSB alignment) in int32, then added in int32.
    activation = wrap_signed(shift_left(a_in, ACT_SHIFT), INT32_BITS)
    u = wrap_current(wrap_signed(decay(state.u, params.i_decay) + activation, INT32_BITS))
    bias = shift_left(
        wrap_signed(np.asarray(bias_mant, dtype=np.int64), BIAS_MANT_STORAGE_BITS), BIAS_EXP
    )
    v = wrap_signed(wrap_signed(decay(state.v, params.v_decay) + u, INT32_BITS) + bias, INT32_BITS)
    v = clip_voltage(v)
    # A spike needs v strictly above the threshold, which is MSB-aligned like the state.
    spikes = v > shift_left(params.v_th_mant, VTH_SHIFT)
    return spikes, CubaState(u, np.where(spikes, 0, v))


def _matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for int64 arrays (``np.matmul`` broadcasting), exact.

    Goes through float32 BLAS when every partial sum provably stays below 2**24, float64 BLAS below
    2**53 (then each product and each sum is an exact integer in that float type, whatever the
    summation order), else through numpy's int64 matmul.
    """
    k = a.shape[-1]
    bound = int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * k
    if bound < _FLOAT32_EXACT_LIMIT:
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.int64)
    if bound < _FLOAT64_EXACT_LIMIT:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a, b)


def dense_synapse(
    spikes: np.ndarray, applied_weight: np.ndarray, weight_exp: int, graded: bool
) -> np.ndarray:
    """The message lava-nc's fixed-point Dense sends one step after it receives ``spikes``.

    Args:
        spikes: (B, n_in) int64 presynaptic messages.
        applied_weight: (n_out, n_in) int64 weights after netx's packing and lava's clip/truncation
            (:func:`tsslbp.hwmodels.weights.applied_dense_weights`).
        weight_exp: netx's weight exponent.
        graded: lava's ``num_message_bits > 0``: multiply by the payload; else by ``spikes != 0``.

    Returns:
        (B, n_out) int64 message (an int32 value).
    """
    if graded:
        # lava: int32 weights.dot(int32 s_in) wraps before the exponent shift.
        total = wrap_signed(_matmul_exact(spikes, applied_weight.T), INT32_BITS)
    else:
        # lava: weights[:, s_in].sum() accumulates in int64.
        total = _matmul_exact((spikes != 0).astype(np.int64), applied_weight.T)
    shifted = (
        shift_left(total, weight_exp) if weight_exp > 0 else shift_right_floor(total, -weight_exp)
    )
    return wrap_signed(shifted, INT32_BITS)


def _conv_rows(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """(B, C, H, W) -> (G, B * Ho * Wo, kH * kW * C / G): each output position's input patch as a
    row, in (kH, kW, channel) order (zero padding, stride, dilation; see :func:`_conv_kernels`).

    The patches are gathered from a channels-last copy of ``x``, so each copied run is a pixel's
    channels (contiguous) rather than a kernel row of a few pixels: 3-4x faster for the paper's
    CNN, and one matrix product per group follows instead of one per sample.
    """
    batch, c_in = x.shape[:2]
    _, k_h, k_w = layer.weight.shape[1:]
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = layer.stride, layer.padding, layer.dilation
    h_out, w_out = layer.shape[1], layer.shape[2]
    last = np.pad(x, ((0, 0), (0, 0), (p_h, p_h), (p_w, p_w))).transpose(0, 2, 3, 1)
    windows = sliding_window_view(
        np.ascontiguousarray(last), ((k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1), axis=(1, 2)
    )  # (B, H', W', C, span_h, span_w)
    windows = windows[
        :, : s_h * (h_out - 1) + 1 : s_h, : s_w * (w_out - 1) + 1 : s_w, :, ::d_h, ::d_w
    ]
    groups = layer.groups
    windows = windows.reshape(batch, h_out, w_out, groups, c_in // groups, k_h, k_w)
    return windows.transpose(3, 0, 1, 2, 5, 6, 4).reshape(groups, batch * h_out * w_out, -1)


def _conv_kernels(weight: np.ndarray, groups: int, dtype: type) -> np.ndarray:
    """(C_out, C_in / G, kH, kW) kernels -> (G, kH * kW * C_in / G, C_out / G), the right operand
    of :func:`_conv_rows`' rows."""
    c_out = weight.shape[0]
    per_group = weight.reshape(groups, c_out // groups, *weight.shape[1:])
    return np.ascontiguousarray(
        per_group.transpose(0, 3, 4, 2, 1).reshape(groups, -1, c_out // groups), dtype=dtype
    )


def _conv_output(products: np.ndarray, batch: int, shape: tuple[int, ...]) -> np.ndarray:
    """(G, B * Ho * Wo, C_out / G) products -> (B, C_out, Ho, Wo)."""
    c_out, h_out, w_out = shape
    out = products.transpose(1, 0, 2).reshape(batch, h_out, w_out, c_out)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def conv_synapse(spikes: np.ndarray, layer: ConvLayer, graded: bool) -> np.ndarray:
    """The message lava-nc's fixed-point Conv sends one step after it receives ``spikes``.

    lava convolves in (W, H, C) order with the kernel netx flipped and transposed, which is PyTorch's
    cross-correlation in (C, H, W) order with the stored kernel. It computes in float64 (exact here:
    integer sums far below 2**53), casts to int32 and wraps the result to 24 bits.

    Args:
        spikes: (B, C_in, H, W) int64 presynaptic messages.
        layer: the conv layer (weights (C_out, C_in / groups, kH, kW)).
        graded: lava's ``num_message_bits > 0``: multiply by the payload; else by ``spikes != 0``.

    Returns:
        (B, C_out, H_out, W_out) int64 message.
    """
    x = spikes if graded else (spikes != 0).astype(np.int64)
    batch = x.shape[0]
    groups = layer.groups
    # (G, B * Ho * Wo, K) patches against (G, K, Og) kernels.
    kernels = _conv_kernels(np.asarray(layer.weight, dtype=np.int64), groups, np.int64)
    out = _conv_output(_matmul_exact(_conv_rows(x, layer), kernels), batch, layer.shape)
    return wrap_signed(wrap_signed(out, INT32_BITS), CONV_OUT_BITS)


def to_lava_order(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W, ...) netx order -> (B, W, H, C, ...) Lava order (arrays of 3-D layers only)."""
    return np.swapaxes(x, 1, 3)


def from_lava_order(x: np.ndarray) -> np.ndarray:
    """(B, W, H, C, ...) -> (B, C, H, W, ...) (the inverse of :func:`to_lava_order`)."""
    return np.swapaxes(x, 1, 3)


@dataclass(frozen=True)
class GoldenResult:
    """Per-layer recordings of a golden run, in Lava's order, time last.

    Index ``i`` refers to ``spec.layers[i]``. For a layer of shape ``shape``, arrays are
    ``(B, *lava_shape(shape), S)``; column ``t`` is what a Lava probe / RingBuffer sink on that
    layer receives at step ``t`` of a Lava run of ``S`` steps.

    Attributes:
        spikes: int8 spikes (0/1) per layer; for a flatten layer, its flattened input spikes.
        u: int32 current per neuron layer, or None (flatten layers, or ``record=False``).
        v: int32 voltage after the spike reset, or None likewise.
    """

    spikes: list[np.ndarray]
    u: list[np.ndarray | None]
    v: list[np.ndarray | None]

    @property
    def output(self) -> np.ndarray:
        """Spikes of the last layer, (B, *lava_shape, S)."""
        return self.spikes[-1]


def _check_inputs(spec: NetworkSpec, inputs: np.ndarray) -> np.ndarray:
    first = spec.layers[0]
    in_shape = first.shape if isinstance(first, InputLayer) else spec.input_shape
    expected = lava_shape(tuple(in_shape))
    x = np.asarray(inputs)
    if x.ndim != len(expected) + 2 or tuple(x.shape[1:-1]) != expected:
        raise ValueError(
            f"inputs must be (B, {', '.join(map(str, expected))}, S) in Lava's (W, H, C) order, "
            f"got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.integer) and not np.issubdtype(x.dtype, np.bool_):
        if not np.array_equal(x, np.round(x)):
            raise ValueError(f"inputs must be integers, got dtype {x.dtype} with fractional values")
    problem = input_range_problem(x, spec)
    if problem:
        raise ValueError(problem)
    x = x.astype(np.int64, copy=False)  # no copy of an int64 input (it can be large)
    return from_lava_order(x) if len(expected) == 3 else x


class _Plan(NamedTuple):
    """What each layer needs at run time, computed once per run."""

    applied_weight: np.ndarray | None  # int64, for the int64 reference functions
    weight_f32: np.ndarray | None  # float32 copy: (n_in, n_out) dense, (G, K, Og) conv
    weight_abs_max: int
    weight_exp: int
    graded_input: bool
    bias_f64: np.ndarray | float  # (int16(bias_mant) << 6) as float64
    params: CubaParams | None
    # Weights constant over (ky, kx) blocks of the input (pooling folded in at export): the float32
    # path sums the blocks first and multiplies by the small weights (weight_f32 then holds those).
    pool: tuple[int, int] | None = None
    pool_in_shape: tuple[int, int, int] | None = None  # dense: the (C, H, W) its input flattens
    pool_layer: ConvLayer | None = None  # conv: the small convolution on the summed blocks


def _block_sizes(limit_y: int, limit_x: int) -> list[tuple[int, int]]:
    """Candidate (ky, kx) blocks up to the limits, largest area first, (1, 1) excluded."""
    sizes = [(y, x) for y in range(1, limit_y + 1) for x in range(1, limit_x + 1) if y * x > 1]
    return sorted(sizes, key=lambda b: (-b[0] * b[1], -b[0]))


def _expand(small: np.ndarray, ky: int, kx: int) -> np.ndarray:
    return np.repeat(np.repeat(small, ky, axis=-2), kx, axis=-1)


def _conv_blocks(layer: ConvLayer) -> tuple[tuple[int, int], ConvLayer] | None:
    """A conv whose kernel is constant over (ky, kx) blocks aligned with its stride (a pooling
    folded into it): the block and the equivalent small conv on block sums, or None.

    Output (y, x) reads input rows ``sy * y + [0, kH)``; with ``ky`` dividing ``sy`` and ``kH``
    these are whole blocks ``sy / ky * y + [0, kH / ky)`` of the block-summed input, so the small
    conv has stride ``s / k`` and kernel ``kernel / k``. Integer sums are the same either way.
    """
    if layer.padding != (0, 0) or layer.dilation != (1, 1):
        return None
    weight = np.asarray(layer.weight)
    k_h, k_w = weight.shape[2:]
    for ky, kx in _block_sizes(layer.stride[0], layer.stride[1]):
        if layer.stride[0] % ky or layer.stride[1] % kx or k_h % ky or k_w % kx:
            continue
        small = weight[:, :, ::ky, ::kx]
        if np.array_equal(_expand(small, ky, kx), weight):
            c, h, w = layer.in_shape
            stride = (layer.stride[0] // ky, layer.stride[1] // kx)
            return (ky, kx), dataclasses.replace(
                layer, weight=small, stride=stride, in_shape=(c, h // ky, w // kx)
            )
    return None


def _dense_blocks(
    weight: np.ndarray, in_shape: tuple[int, int, int]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """Dense weights (O, C*H*W) over a flattened (C, H, W) input that are constant over (ky, kx)
    blocks (zero on the rows and columns a block does not cover): the block and the (O, C*H'*W')
    weights of the block sums, or None."""
    c, h, w = in_shape
    full = weight.reshape(weight.shape[0], c, h, w)

    def blocky(part: np.ndarray, ky: int, kx: int) -> bool:
        hp, wp = h // ky, w // kx
        expanded = np.zeros_like(part)
        expanded[:, :, : hp * ky, : wp * kx] = _expand(
            part[:, :, : hp * ky : ky, : wp * kx : kx], ky, kx
        )
        return np.array_equal(expanded, part)

    for ky, kx in _block_sizes(min(h, 4), min(w, 4)):
        if blocky(full[:1], ky, kx) and blocky(full, ky, kx):  # one neuron's weights first
            small = full[:, :, : h // ky * ky : ky, : w // kx * kx : kx]
            return (ky, kx), small.reshape(weight.shape[0], -1)
    return None


def _block_sums(x: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """(B, C, H, W) -> (B, C, H // ky, W // kx) float32 sums over the blocks (partial ones dropped)."""
    (ky, kx), (b, c, h, w) = block, x.shape
    hp, wp = h // ky, w // kx
    sums = np.zeros((b, c, hp, wp), dtype=np.float32)
    for i in range(ky):  # ky * kx strided adds: faster than a reduction over two inner axes
        for j in range(kx):
            sums += x[:, :, i : hp * ky : ky, j : wp * kx : kx]
    return sums


def _plan(spec: NetworkSpec) -> list[_Plan]:
    plans = []
    graded = spec.input_message_bits > 0
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, InputLayer) and i > 0:
            raise ValueError(f"layer {i}: an input layer can only be the first layer")
        if isinstance(layer, FlattenLayer):
            plans.append(_Plan(None, None, 0, 0, graded, 0.0, None))
            continue
        bias = None
        weight, weight_f32, weight_exp = None, None, 0
        pool, pool_in_shape, pool_layer = None, None, None
        if isinstance(layer, DenseLayer):
            packed = pack_dense_weights(layer.weight)
            weight, weight_exp = applied_dense_weights(packed), packed.weight_exp
            before = spec.layers[i - 1] if i > 0 else None
            found = (
                _dense_blocks(weight, before.in_shape)
                if isinstance(before, FlattenLayer) and len(before.in_shape) == 3
                else None
            )
            if found is not None:
                (pool, small), pool_in_shape = found, before.in_shape
            weight_f32 = np.ascontiguousarray((weight if found is None else small).T, np.float32)
            if layer.bias is not None:
                bias = np.asarray(layer.bias, dtype=np.int64).reshape(layer.shape)
        elif isinstance(layer, ConvLayer):
            weight = np.asarray(layer.weight, dtype=np.int64)
            found_conv = _conv_blocks(layer)
            if found_conv is not None:
                pool, pool_layer = found_conv
            kernels = weight if pool_layer is None else pool_layer.weight
            weight_f32 = _conv_kernels(kernels, layer.groups, np.float32)
            if layer.bias is not None:
                # netx broadcasts a per-channel bias over the channel axis.
                bias = np.asarray(layer.bias, dtype=np.int64).reshape(-1, 1, 1)
        bias_f64 = (
            0.0
            if bias is None
            else shift_left(wrap_signed(bias, BIAS_MANT_STORAGE_BITS), BIAS_EXP).astype(np.float64)
        )
        weight_abs_max = 0 if weight is None else int(np.abs(weight).max(initial=0))
        plans.append(
            _Plan(
                weight,
                weight_f32,
                weight_abs_max,
                weight_exp,
                graded,
                bias_f64,
                CubaParams.from_neuron(layer.neuron),
                pool,
                pool_in_shape,
                pool_layer,
            )
        )
        # LIF neurons emit binary spikes (netx ignores gradedSpike for CUBA/LOIHI neurons).
        graded = False
    return plans


# --- the fast path run_golden takes -------------------------------------------------------------
# run_golden keeps every integer in float64 arrays. All values are integers far below 2**53, so
# sums, differences, comparisons, products with the 13-bit decay factors and scalings by powers of
# two are exact, and np.trunc rounds toward zero as lava's decay does. lava's int32 wraps cannot
# trigger while |u[t-1]| + |A[t] << 6| stays below _FAST_STATE_LIMIT (then decay(u) + (A << 6), the
# voltage sum and the 16-bit bias all stay inside int32); a step that could wrap goes through the
# int64 reference (cuba_step, dense_synapse, conv_synapse) instead. Tests compare both paths on
# states at the wrap and clip edges, and the whole model against Lava.
_FAST_STATE_LIMIT = (1 << 31) - (1 << 23) - (1 << 22)
#: Samples per chunk in run_golden: small enough that a layer's state stays in the CPU caches.
_CHUNK_SAMPLES = 256


class _StateF64(NamedTuple):
    """CubaState with float64 arrays holding the same integers, and a bound on ``|u|``."""

    u: np.ndarray
    v: np.ndarray
    u_abs_max: float = 0.0

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> _StateF64:
        return cls(np.zeros(shape), np.zeros(shape), 0.0)


def _abs_max(x: np.ndarray) -> float:
    return max(float(x.max(initial=0)), -float(x.min(initial=0)))


def _decay_f64(x: np.ndarray, decay_constant: int) -> np.ndarray:
    # x * (4096 - d) / 4096 is exact in float64 (|x| < 2**31, factor of 13 bits); trunc rounds to 0.
    out = x * ((DECAY_UNITY - decay_constant) / DECAY_UNITY)
    return np.trunc(out, out=out)


def _cuba_step_f64(
    a_in: np.ndarray,
    a_in_bound: float,
    bias: np.ndarray | float,
    state: _StateF64,
    params: CubaParams,
) -> tuple[np.ndarray, _StateF64]:
    """:func:`cuba_step` on float-held integers; returns (spikes as bool, new state).

    Args:
        a_in: synaptic input (float32 or float64 integers).
        a_in_bound: a bound on ``|a_in|`` (a static one from the synapse, or measured).
    """
    if state.u_abs_max + a_in_bound * (1 << ACT_SHIFT) >= _FAST_STATE_LIMIT:
        a_in_bound = _abs_max(a_in)  # the static bound may be loose: measure before giving up
    if state.u_abs_max + a_in_bound * (1 << ACT_SHIFT) >= _FAST_STATE_LIMIT:
        spikes, exact = cuba_step(
            a_in.astype(np.int64),
            np.asarray(bias, dtype=np.int64) >> BIAS_EXP,
            CubaState(state.u.astype(np.int64), state.v.astype(np.int64)),
            params,
        )
        u = exact.u.astype(np.float64)
        return spikes, _StateF64(u, exact.v.astype(np.float64), _abs_max(u))
    u = _decay_f64(state.u, params.i_decay)
    u += a_in * (
        1 << ACT_SHIFT
    )  # exact: |a_in| << 6 stays far below float32's and float64's 2**24, 2**53
    u_abs_max = _abs_max(u)
    if u_abs_max >= STATE_HALF_RANGE:
        u = wrap_current(u)
        u_abs_max = _abs_max(u)
    v = _decay_f64(state.v, params.v_decay)
    v += u
    if not isinstance(bias, float) or bias:
        v += bias
    np.clip(v, -V_LIMIT, V_LIMIT, out=v)
    spikes = v > (params.v_th_mant << VTH_SHIFT)
    v[spikes] = 0.0
    return spikes, _StateF64(u, v, u_abs_max)


def _input_step_flags(x_tf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step of a time-first input (S, B, ...): (same as the step before, all zero)."""
    n_steps = x_tf.shape[0]
    silent = np.array([not x_tf[t].any() for t in range(n_steps)], dtype=bool)
    same = np.array(
        [t > 0 and np.array_equal(x_tf[t], x_tf[t - 1]) for t in range(n_steps)], dtype=bool
    )
    return same, silent


def _synapse_f64(
    pre: np.ndarray, layer: DenseLayer | ConvLayer, plan: _Plan
) -> tuple[np.ndarray, float]:
    """The message of a dense or conv synapse for presynaptic ``pre`` (bool spikes or int payloads),
    and a bound on its magnitude.

    float32 BLAS where every partial sum provably stays below 2**24 and no int32/24-bit wrap can
    apply (the message is then a float32 array of exact integers); otherwise the int64 reference
    functions (a float64 array).
    """
    x = pre if plan.graded_input else (pre != 0)
    x_max = 1 if x.dtype == np.bool_ else int(np.abs(x).max(initial=0))
    if isinstance(layer, DenseLayer):
        k = x.shape[-1]
        bound = x_max * plan.weight_abs_max * k
        exp = plan.weight_exp
        if bound < _FLOAT32_EXACT_LIMIT and (bound << max(exp, 0)) < (1 << (INT32_BITS - 1)):
            if plan.pool is not None:
                sums = _block_sums(x.reshape(len(x), *plan.pool_in_shape), plan.pool)
                out = np.matmul(sums.reshape(len(x), -1), plan.weight_f32)
            else:
                out = np.matmul(x.astype(np.float32), plan.weight_f32)
            if exp > 0:
                out *= 1 << exp
            elif exp < 0:
                out = np.floor(out / (1 << -exp))
            return out, float(bound << max(exp, 0))
        message = dense_synapse(
            pre.astype(np.int64), plan.applied_weight, plan.weight_exp, plan.graded_input
        )
        return message.astype(np.float64), float(1 << (INT32_BITS - 1))
    k = layer.weight[0].size
    bound = x_max * plan.weight_abs_max * k
    if bound < _FLOAT32_EXACT_LIMIT:
        if plan.pool is not None:
            rows = _conv_rows(_block_sums(x, plan.pool), plan.pool_layer)
        else:
            rows = _conv_rows(x.astype(np.float32), layer)
        out = _conv_output(np.matmul(rows, plan.weight_f32), x.shape[0], layer.shape)
        return out, float(bound)  # |sum| < 2**24: lava's int32 and 24-bit wraps do nothing
    return conv_synapse(pre.astype(np.int64), layer, plan.graded_input).astype(np.float64), float(
        1 << (CONV_OUT_BITS - 1)
    )


def _reset_due(step: int, neuron_index: int, reset_interval: int | None, reset_offset: int) -> bool:
    """netx's ``LIFReset`` schedule: the ``i``-th neuron layer zeroes ``u`` and ``v`` at the start of
    Lava time step ``step + 1`` when ``(step + 1) % interval == (reset_offset + 1 + i) % interval``."""
    if reset_interval is None:
        return False
    return (step + 1) % reset_interval == (reset_offset + 1 + neuron_index) % reset_interval


def _run_chunk(
    spec: NetworkSpec,
    plans: list[_Plan],
    x: np.ndarray,
    rows: slice,
    spikes_rec: list[np.ndarray],
    u_rec: list[np.ndarray | None],
    v_rec: list[np.ndarray | None],
    record: bool,
    reset_interval: int | None,
    reset_offset: int,
) -> None:
    """Run samples ``x`` (netx order, time last) from zero state; write their rows of the records."""
    batch, n_steps = x.shape[0], x.shape[-1]
    states: list[_StateF64 | None] = []
    buffers: list[tuple[np.ndarray, float] | None] = []
    for layer in spec.layers:
        shape = (batch, *layer.shape)
        states.append(None if isinstance(layer, FlattenLayer) else _StateF64.zeros(shape))
        # Synapses start with an empty buffer: the first message each sends is zero.
        buffers.append(
            (np.zeros(shape, dtype=np.float32), 0.0)
            if isinstance(layer, (DenseLayer, ConvLayer))
            else None
        )

    x_tf = np.ascontiguousarray(np.moveaxis(x, -1, 0))  # contiguous per-step slices
    same_as_before, silent = _input_step_flags(x_tf)
    last_message: list[tuple[np.ndarray, float] | None] = [None] * len(spec.layers)
    for t in range(n_steps):
        pre: np.ndarray = x_tf[t]
        pre_is_input = True
        neuron_index = 0
        for i, (layer, plan) in enumerate(zip(spec.layers, plans)):
            if isinstance(layer, FlattenLayer):
                pre = pre.reshape(batch, -1)
                spikes_rec[i][rows, ..., t] = pre
                continue
            if isinstance(layer, InputLayer):
                # The input layer's a_in is never connected; the inputs drive its bias_mant.
                a_in, a_in_bound = np.zeros((batch, *layer.shape)), 0.0
                bias = shift_left(wrap_signed(pre, BIAS_MANT_STORAGE_BITS), BIAS_EXP).astype(
                    np.float64
                )
            else:
                (a_in, a_in_bound), bias = buffers[i], plan.bias_f64
                # A synapse's message is a function of its input alone: zero for no input, the same
                # as before for the same input (a static image repeated over T).
                if pre_is_input and silent[t]:
                    buffers[i] = (np.zeros_like(a_in), 0.0)
                elif pre_is_input and same_as_before[t] and last_message[i] is not None:
                    buffers[i] = last_message[i]
                else:
                    buffers[i] = _synapse_f64(pre, layer, plan)
                if pre_is_input:
                    last_message[i] = buffers[i]
            if _reset_due(t, neuron_index, reset_interval, reset_offset):
                states[i] = _StateF64.zeros(states[i].u.shape)
            spikes, states[i] = _cuba_step_f64(a_in, a_in_bound, bias, states[i], plan.params)
            pre = spikes
            pre_is_input = False
            spikes_rec[i][rows, ..., t] = spikes
            if record:
                u_rec[i][rows, ..., t] = states[i].u
                v_rec[i][rows, ..., t] = states[i].v
            neuron_index += 1


def run_golden(
    spec: NetworkSpec,
    inputs: np.ndarray,
    record: bool = True,
    reset_interval: int | None = None,
    reset_offset: int = 0,
) -> GoldenResult:
    """Run a batch through the integer network exactly as Lava's fixed-point simulator would.

    Args:
        spec: the network.
        inputs: (B, *lava_shape(in_shape), S) integers, Lava's (W, H, C) order, time last. For a
            network that starts with a synaptic layer, column ``t`` is what a Lava RingBuffer
            connected to the network's input port sends at step ``t`` (binary spikes, or graded
            payloads when ``spec.input_message_bits > 0``). For a network that starts with an input
            layer, column ``t`` is that layer's ``bias_mant`` at step ``t`` (module docstring).
        record: also return ``u`` and ``v`` of every neuron layer.
        reset_interval: None (default) runs each sample from zero state with no reset. An integer
            mirrors ``netx.hdf5.Network(reset_interval=..., reset_offset=...)``: the ``i``-th neuron
            layer (flatten layers do not count) zeroes ``u`` and ``v`` at the start of step ``t``
            (0-based) when ``(t + 1) % reset_interval == (reset_offset + 1 + i) % reset_interval``.
        reset_offset: netx's ``reset_offset``.

    Returns:
        Per-layer spikes (and states), see :class:`GoldenResult`.

    Raises:
        ValueError: the inputs do not match the network's input shape, or the spec is empty.
    """
    if not spec.layers:
        raise ValueError("the network has no layers")
    return _run_planned(spec, _plan(spec), inputs, record, reset_interval, reset_offset)


def _run_planned(
    spec: NetworkSpec,
    plans: list[_Plan],
    inputs: np.ndarray,
    record: bool,
    reset_interval: int | None,
    reset_offset: int,
) -> GoldenResult:
    """:func:`run_golden` with the layers' plans made beforehand (callers that run many batches
    through one network plan it once)."""
    x = _check_inputs(spec, inputs)
    batch, n_steps = x.shape[0], x.shape[-1]
    spikes_rec: list[np.ndarray] = []
    u_rec: list[np.ndarray | None] = []
    v_rec: list[np.ndarray | None] = []
    for layer in spec.layers:
        shape = (batch, *layer.shape)
        keep_state = record and not isinstance(layer, FlattenLayer)
        spikes_rec.append(np.zeros(shape + (n_steps,), dtype=np.int8))
        u_rec.append(np.zeros(shape + (n_steps,), dtype=np.int32) if keep_state else None)
        v_rec.append(np.zeros(shape + (n_steps,), dtype=np.int32) if keep_state else None)

    # Samples are independent: run them in chunks whose state stays in the CPU caches.
    for first in range(0, batch, _CHUNK_SAMPLES):
        rows = slice(first, min(first + _CHUNK_SAMPLES, batch))
        _run_chunk(
            spec,
            plans,
            x[rows],
            rows,
            spikes_rec,
            u_rec,
            v_rec,
            record,
            reset_interval,
            reset_offset,
        )

    def lava(a: np.ndarray | None, layer: Layer) -> np.ndarray | None:
        return to_lava_order(a) if a is not None and len(layer.shape) == 3 else a

    return GoldenResult(
        spikes=[lava(a, layer) for a, layer in zip(spikes_rec, spec.layers)],
        u=[lava(a, layer) for a, layer in zip(u_rec, spec.layers)],
        v=[lava(a, layer) for a, layer in zip(v_rec, spec.layers)],
    )


def golden_output_counts(spec: NetworkSpec, inputs: np.ndarray, chunk: int = 512) -> np.ndarray:
    """The output layer's spike counts in the readout window of a tsslbp-exported ``spec``.

    Args:
        inputs: (B, ...) analog inputs in [0, 1] (or event frames), encoded as
            :func:`~tsslbp.hwmodels.readout.encode_for_spec` does.
        chunk: samples per golden run (bounds the memory of a long batch).

    Returns:
        (B, n_out) int64; ``argmax(-1)`` is the prediction (lowest index on ties).
    """
    offset, n_steps = int(spec.metadata["readout_offset"]), int(spec.metadata["n_steps"])
    parts = []
    plans = _plan(spec) if len(inputs) else []
    for start in range(0, len(inputs), chunk):
        encoded = encode_for_spec(inputs[start : start + chunk], spec)
        out = _run_planned(spec, plans, encoded, False, None, 0).spikes[-1]
        parts.append(window_counts(out.reshape(len(out), -1, out.shape[-1]), offset, n_steps))
    if not parts:
        return np.zeros((0, int(np.prod(spec.layers[-1].shape))), dtype=np.int64)
    return np.concatenate(parts)
