"""What lava-dl's netx reader and lava-nc's fixed-point Dense do to a dense weight matrix.

A netx file stores integer weights ``W``. Between the file and the synaptic sum, two stages change
their representation (lava-dl 0.6 ``netx/utils.py`` ``optimize_weight_bits``, then lava-nc 0.10
``proc/dense/models.py`` with ``utils/weightutils.py``):

1. netx packs ``W`` into an 8-bit mantissa and a per-layer exponent (:func:`pack_dense_weights`):
   mixed-sign matrices are first clipped to ``[-256, 254]``; then, with ``s`` the largest shift that
   keeps ``W << s`` inside the 8-bit range of its sign mode (127/-128 doubled for mixed signs, 255
   excitatory, -256 inhibitory), it passes ``W << s``, ``weight_exp = -s`` and
   ``num_weight_bits = 8 - s - n`` (``n``: trailing zero bits common to all weights, minus one for
   mixed signs) to lava's Dense. It does not pass a sign mode.
2. lava's Dense infers its own sign mode from the packed matrix, clips to 8 bits
   (``[0, 255]``, ``[-255, 0]`` or ``[-256, 255]``), truncates ``8 - num_weight_bits (+1 if mixed)``
   low bits (floor, on the magnitude for inhibitory matrices) and, each step, shifts the synaptic
   sum by ``weight_exp`` (an arithmetic shift: rounds toward -inf) (:func:`applied_dense_weights`).

For the weights the quantizer should produce (both signs present, integers in ``[-256, 254]``), the
two stages are lossless: the applied weights are ``W << s`` and the shift divides the sum by exactly
``2**s``. :func:`dense_weights_exact` tells whether a matrix is in the lossless set; the edge cases
outside it (single-sign matrices whose extreme weight is a power of two, ``max == 0`` with odd
weights, all zeros) are documented on that function.

lava's fixed-point Conv, as lava-dl builds it, applies the stored weights unchanged (no packing,
no clipping, no truncation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from .fixed_point import shift_left, shift_right_floor

__all__ = [
    "SignMode",
    "PackedDenseWeights",
    "pack_dense_weights",
    "applied_dense_weights",
    "dense_weights_exact",
]

# Synaptic weights are 8-bit mantissas (plus a sign bit for mixed-sign matrices).
_MANTISSA_BITS = 8
# netx clips mixed-sign matrices to this range before packing.
_NETX_MIXED_MIN = -256
_NETX_MIXED_MAX = 254
# netx's targets for the largest packed magnitude per sign mode.
_NETX_MIXED_POS_TARGET = 127
_NETX_MIXED_NEG_TARGET = 128
_NETX_EXCITATORY_TARGET = 255
_NETX_INHIBITORY_TARGET = 256
# lava's clip_weights(num_bits=8) ranges.
_LAVA_MAGNITUDE_MAX = (1 << _MANTISSA_BITS) - 1
_LAVA_MIXED_MIN = -(1 << _MANTISSA_BITS)
# numpy shifts of int32 by a count outside 0..31 give 0 (left) or the sign fill (right).
_INT32_SHIFT_LIMIT = 32


class SignMode(Enum):
    """Sign mode of a synaptic weight matrix (values as lava-nc's ``SignMode``)."""

    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


@dataclass(frozen=True)
class PackedDenseWeights:
    """The arguments lava-dl's netx passes to lava-nc's ``Dense`` for one weight matrix.

    Attributes:
        weights: (n_out, n_in) int64, ``W << s`` (after netx's clip).
        weight_exp: ``-s``; lava shifts each synaptic sum by it.
        num_weight_bits: netx's ``8 - s - n``; lava truncates ``8 - num_weight_bits`` low bits
            (one more for mixed signs).
        sign_mode: netx's sign mode (lava's Dense re-derives its own from ``weights``).
    """

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    sign_mode: SignMode


def _floor_log2_ratio(p: int, q: int) -> int:
    """``floor(log2(p / q))`` for positive integers, exactly.

    >>> _floor_log2_ratio(255, 1), _floor_log2_ratio(127, 254), _floor_log2_ratio(128, 256)
    (7, -1, -1)
    """
    e = p.bit_length() - q.bit_length()
    # p / q lies in [2**(e - 1), 2**(e + 1)); test 2**e <= p / q with integers.
    at_least = (q << e) <= p if e >= 0 else q <= (p << -e)
    return e if at_least else e - 1


def _common_trailing_zeros(weight: np.ndarray, limit: int) -> int:
    """Largest ``n <= limit`` such that every weight is a multiple of ``2**n``.

    All weights are multiples of ``2**n`` exactly when their bitwise OR is (two's complement keeps
    the trailing zeros of ``-x`` those of ``x``), so one reduction decides.

    >>> _common_trailing_zeros(np.array([-12, 8, 20]), 6), _common_trailing_zeros(np.zeros(3, int), 6)
    (2, 6)
    """
    combined = int(np.bitwise_or.reduce(np.asarray(weight, dtype=np.int64).ravel(), initial=0))
    if combined == 0:
        return limit
    return min(limit, (combined & -combined).bit_length() - 1)


def _shift_left_numpy(weight: np.ndarray, n: int) -> np.ndarray:
    """numpy's int32 ``left_shift`` by a possibly negative count: a negative count gives 0."""
    if n < 0 or n >= _INT32_SHIFT_LIMIT:
        return np.zeros_like(weight)
    return shift_left(weight, n)


def _truncate_low_bits(weight: np.ndarray, n: int) -> np.ndarray:
    """lava's ``(w >> n) << n`` on int32: floors to a multiple of ``2**n``; counts outside 0..31
    (numpy's out-of-range shifts) give 0."""
    if n < 0 or n >= _INT32_SHIFT_LIMIT:
        return np.zeros_like(weight)
    return shift_left(shift_right_floor(weight, n), n)


def pack_dense_weights(weight: np.ndarray) -> PackedDenseWeights:
    """Pack integer dense weights as lava-dl 0.6's netx reader does (``optimize_weight_bits``).

    Args:
        weight: (n_out, n_in) integer weights as the netx file stores them.

    Returns:
        The packed weights, exponent, weight bits and netx's sign mode.

    Raises:
        ValueError: all weights are zero: netx computes ``log2(255 / 0)`` and fails
            (``OverflowError``), so lava-dl cannot load such a layer.

    >>> p = pack_dense_weights(np.array([[-3, 5]]))
    >>> p.weights.tolist(), p.weight_exp, p.num_weight_bits, p.sign_mode.name
    ([[-96, 160]], -5, 4, 'MIXED')
    """
    w = np.asarray(weight, dtype=np.int64)
    max_w, min_w = int(w.max()), int(w.min())
    # netx clips mixed-sign matrices whose extremes do not fit (it warns with print).
    if max_w > _NETX_MIXED_MAX and min_w < 0:
        w = np.clip(w, _NETX_MIXED_MIN, _NETX_MIXED_MAX)
        max_w = int(w.max())
    if min_w < _NETX_MIXED_MIN and max_w > 0:
        w = np.clip(w, _NETX_MIXED_MIN, _NETX_MIXED_MAX)
        min_w = int(w.min())

    if max_w < 0:
        sign_mode = SignMode.INHIBITORY
        scale_bits = _floor_log2_ratio(_NETX_INHIBITORY_TARGET, -min_w)
    elif min_w >= 0:
        if max_w == 0:
            raise ValueError(
                "all weights are zero: lava-dl's optimize_weight_bits cannot pack the matrix "
                "(log2 of 255 / 0)"
            )
        sign_mode = SignMode.EXCITATORY
        scale_bits = _floor_log2_ratio(_NETX_EXCITATORY_TARGET, max_w)
    else:
        sign_mode = SignMode.MIXED
        # scale = min(127 / max, 128 / -min); 127 / 0 is +inf in netx, so only the negative side counts.
        if max_w > 0 and _NETX_MIXED_POS_TARGET * -min_w <= _NETX_MIXED_NEG_TARGET * max_w:
            scale_bits = _floor_log2_ratio(_NETX_MIXED_POS_TARGET, max_w)
        else:
            scale_bits = _floor_log2_ratio(_NETX_MIXED_NEG_TARGET, -min_w)
        # The sign bit doubles the mantissa range.
        scale_bits += 1
    is_signed = int(sign_mode is SignMode.MIXED)
    n = _common_trailing_zeros(w, _MANTISSA_BITS) - is_signed
    return PackedDenseWeights(
        weights=_shift_left_numpy(w, scale_bits),
        weight_exp=-scale_bits,
        num_weight_bits=_MANTISSA_BITS - scale_bits - n,
        sign_mode=sign_mode,
    )


def applied_dense_weights(packed: PackedDenseWeights) -> np.ndarray:
    """The weights lava-nc 0.10's fixed-point Dense multiplies with, from what netx passed it.

    lava derives its own sign mode from the packed matrix (``min >= 0``: excitatory, ``max <= 0``:
    inhibitory, else mixed; netx calls ``max == 0, min < 0`` mixed), clips to 8 bits and truncates
    ``8 - num_weight_bits + (1 if mixed)`` low bits.

    Args:
        packed: output of :func:`pack_dense_weights`.

    Returns:
        (n_out, n_in) int64 weights; the synaptic sum is then shifted by ``packed.weight_exp``.

    >>> applied_dense_weights(pack_dense_weights(np.array([[-3, 5]]))).tolist()
    [[-96, 160]]
    >>> p = pack_dense_weights(np.array([[-4, -3]]))  # -4 << 6 = -256: lava clips it to -255 ...
    >>> p.weights.tolist(), applied_dense_weights(p).tolist(), p.weight_exp  # ... and truncates
    ([[-256, -192]], [[-192, -192]], -6)
    """
    w = packed.weights
    if w.min() >= 0:
        mode = SignMode.EXCITATORY
    elif w.max() <= 0:
        mode = SignMode.INHIBITORY
    else:
        mode = SignMode.MIXED
    n_truncate = _MANTISSA_BITS - packed.num_weight_bits + int(mode is SignMode.MIXED)
    if mode is SignMode.MIXED:
        return _truncate_low_bits(np.clip(w, _LAVA_MIXED_MIN, _LAVA_MAGNITUDE_MAX), n_truncate)
    # Single-sign matrices are clipped and truncated on their magnitude.
    sign = -1 if mode is SignMode.INHIBITORY else 1
    magnitude = np.clip(sign * w, 0, _LAVA_MAGNITUDE_MAX)
    return sign * _truncate_low_bits(magnitude, n_truncate)


def dense_weights_exact(weight: np.ndarray) -> bool:
    """Whether lava-dl's netx + lava-nc's Dense apply these integer weights exactly.

    Exact means: for every input, the synaptic sum Lava computes equals ``weight @ input``. That
    holds iff the applied weights are ``weight << s`` with ``weight_exp = -s`` (an exact division).
    The lossless set, derived from the two stages (module docstring) and checked in the tests
    against this case analysis:

    * both signs present (``min < 0 < max``): every integer matrix in ``[-256, 254]``;
    * ``min >= 0``: ``1 <= max <= 255`` (all zeros cannot be loaded at all);
    * ``max < 0``: ``-255 <= min`` and ``|min|`` not a power of two (``W << s`` reaches -256, which
      lava's inhibitory clip turns into -255);
    * ``max == 0 > min``: as for ``max < 0``, and if ``|min| > 128`` no odd weight (netx calls the
      matrix mixed, lava inhibitory, and the truncation count becomes -1, which zeroes every weight).

    Args:
        weight: integer weights (any shape).

    >>> dense_weights_exact(np.array([[-256, 3, 254]])), dense_weights_exact(np.array([[-4, -3]]))
    (True, False)
    """
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0 or not np.any(w):
        return False
    packed = pack_dense_weights(w)
    if packed.weight_exp > 0:
        return False
    return bool(np.array_equal(applied_dense_weights(packed), shift_left(w, -packed.weight_exp)))
