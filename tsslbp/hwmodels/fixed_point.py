"""Integer arithmetic of lava-nc's fixed-point process models, one named helper per rule.

lava-nc 0.10's bit-accurate models (``lava/proc/lif/models.py`` ``PyLifModelBitAcc``,
``lava/proc/dense/models.py``, ``lava/proc/conv/models.py``) compute in numpy ``int32`` (some
products in ``int64``) and round in three different ways:

* decays: ``sign(x) * ((|x| * (4096 - d)) >> 12)``, i.e. the magnitude is shifted: rounding toward
  zero (:func:`decay`);
* synaptic weight exponents: ``a >> -weight_exp`` on the signed sum, i.e. rounding toward -inf
  (:func:`shift_right_floor`);
* overflow: ``int32`` arithmetic wraps modulo 2**32 (:func:`wrap_signed`), the conv output is wrapped
  modulo 2**24 (``signed_clamp``), the LIF current ``u`` is wrapped by one conditional +-2**24
  (:func:`wrap_current`) and the voltage ``v`` saturates (:func:`clip_voltage`).

Every helper takes and returns numpy ``int64`` arrays (or Python ints) and never uses a bare ``>>`` on
signed values.
"""

from __future__ import annotations

import numpy as np

from .spec import DECAY_UNITY

__all__ = [
    "DECAY_SHIFT",
    "ACT_SHIFT",
    "VTH_SHIFT",
    "BIAS_EXP",
    "STATE_BITS",
    "STATE_HALF_RANGE",
    "V_LIMIT",
    "INT32_BITS",
    "CONV_OUT_BITS",
    "BIAS_MANT_STORAGE_BITS",
    "shift_left",
    "shift_right_floor",
    "shift_right_toward_zero",
    "decay",
    "wrap_signed",
    "wrap_current",
    "clip_voltage",
]

#: Decay constants are fractions of 2**12: ``x * (4096 - d)`` is shifted right by 12.
DECAY_SHIFT = 12
#: Synaptic input is shifted left by 6 before it is added to ``u`` (MSB alignment).
ACT_SHIFT = 6
#: The threshold mantissa is shifted left by 6: a spike needs ``v > vth << 6``.
VTH_SHIFT = 6
#: lava-dl's netx gives every CUBA/LOIHI neuron ``bias_exp = 6``: the bias adds ``bias_mant << 6``.
BIAS_EXP = 6
#: ``u`` and ``v`` are 24-bit signed state variables.
STATE_BITS = 24
#: ``2**23``: lava's ``max_uv_val``.
STATE_HALF_RANGE = 1 << (STATE_BITS - 1)
#: ``v`` saturates to ``[-V_LIMIT, V_LIMIT]``.
V_LIMIT = STATE_HALF_RANGE - 1
#: lava's Python models hold ``u``, ``v``, messages and synaptic sums in ``int32``.
INT32_BITS = 32
#: lava's fixed-point Conv wraps its output to 24 bits (``signed_clamp(x, bits=24)``).
CONV_OUT_BITS = 24
#: lava's LIF stores ``bias_mant`` as ``int16`` (the declared 13-bit precision is not enforced).
BIAS_MANT_STORAGE_BITS = 16


def shift_left(x: np.ndarray | int, n: int) -> np.ndarray | int:
    """``x * 2**n`` without overflow (int64); wrap afterwards where lava's dtype would.

    >>> shift_left(np.array([-3, 5]), 6)
    array([-192,  320])
    """
    if n < 0:
        raise ValueError(f"shift_left needs n >= 0, got {n}")
    return x * (1 << n)


def shift_right_floor(x: np.ndarray | int, n: int) -> np.ndarray | int:
    """Arithmetic right shift by ``n`` (numpy's ``>>`` on signed ints): rounds toward -inf.

    >>> shift_right_floor(np.array([-5, -4, 5]), 1)
    array([-3, -2,  2])
    """
    if n < 0:
        raise ValueError(f"shift_right_floor needs n >= 0, got {n}")
    return np.floor_divide(x, 1 << n)


def shift_right_toward_zero(x: np.ndarray | int, n: int) -> np.ndarray | int:
    """Sign-magnitude right shift by ``n``: ``sign(x) * (|x| >> n)``, rounds toward zero.

    >>> shift_right_toward_zero(np.array([-5, -4, 5]), 1)
    array([-2, -2,  2])
    """
    if n < 0:
        raise ValueError(f"shift_right_toward_zero needs n >= 0, got {n}")
    return np.sign(x) * np.floor_divide(np.abs(x), 1 << n)


def decay(x: np.ndarray, decay_constant: int) -> np.ndarray:
    """One step of Loihi's 12-bit decay: ``x * (4096 - decay_constant) / 4096`` rounded toward zero.

    Args:
        x: int64 state (``u`` or ``v``).
        decay_constant: 0..4096 (0 keeps the state, 4096 empties it).

    >>> decay(np.array([-1000, 1000, 7]), 1024)
    array([-750,  750,    5])
    >>> decay(np.array([-3]), 2048)  # -1.5 rounds toward zero, not to -2
    array([-1])
    """
    # The product stays far inside int64: |x| < 2**31 and the factor is at most 2**12.
    return shift_right_toward_zero(x * (DECAY_UNITY - decay_constant), DECAY_SHIFT)


def wrap_signed(x: np.ndarray | int, bits: int) -> np.ndarray | int:
    """Two's-complement wrap to ``bits`` signed bits (what ``int32`` overflow or lava's conv
    ``signed_clamp`` do).

    >>> wrap_signed(np.array([127, 128, -129]), 8)
    array([ 127, -128,  127])
    """
    half = 1 << (bits - 1)
    return np.mod(x + half, 1 << bits) - half


def wrap_current(u: np.ndarray) -> np.ndarray:
    """lava's 24-bit wrap of the current: one conditional step of 2**24, not a full modulo.

    ``u > 2**23`` becomes ``u - 2**24``, and ``u <= -2**23`` becomes ``u + 2**24``, so the result lies
    in ``(-2**23, 2**23]`` whenever ``|u| < 3 * 2**23`` (``-2**23`` itself maps to ``+2**23``).

    >>> wrap_current(np.array([1 << 23, (1 << 23) + 5, -(1 << 23), -(1 << 23) - 5]))
    array([ 8388608, -8388603,  8388608,  8388603])
    """
    wrapped = np.where(u > STATE_HALF_RANGE, u - 2 * STATE_HALF_RANGE, u)
    # lava tests the already wrapped value but adds 2**24 to the original one; the two only differ
    # where the first branch applied, and there the second condition cannot hold.
    return np.where(wrapped <= -STATE_HALF_RANGE, u + 2 * STATE_HALF_RANGE, wrapped)


def clip_voltage(v: np.ndarray) -> np.ndarray:
    """Saturate the voltage to the symmetric 24-bit range ``[-(2**23 - 1), 2**23 - 1]``.

    >>> clip_voltage(np.array([1 << 23, -(1 << 24), 5]))
    array([ 8388607, -8388607,        5])
    """
    return np.clip(v, -V_LIMIT, V_LIMIT)
