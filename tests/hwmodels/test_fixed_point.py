"""Hand-checked values of the named fixed-point helpers (lava-nc 0.10's integer rules)."""

import numpy as np
import pytest

from tsslbp.hwmodels.fixed_point import (
    STATE_HALF_RANGE,
    V_LIMIT,
    clip_voltage,
    decay,
    shift_right_floor,
    shift_right_toward_zero,
    wrap_current,
    wrap_signed,
)


def test_decay_rounds_toward_zero_not_floor() -> None:
    """-235 * (4096 - 1365) / 4096 = -156.69: lava keeps -156 (floor would give -157)."""
    found = decay(np.array([-235, 235, -3, 0]), 1365)
    expected = np.array([-156, 156, -2, 0])
    assert np.array_equal(found, expected), f"expected {expected}, found {found}"


@pytest.mark.parametrize(("constant", "expected"), [(0, [-1000, 1000]), (4096, [0, 0])])
def test_decay_extremes(constant: int, expected: list[int]) -> None:
    """Decay 0 keeps the state, decay 4096 empties it."""
    found = decay(np.array([-1000, 1000]), constant)
    assert found.tolist() == expected, (
        f"decay {constant}: expected {expected}, found {found.tolist()}"
    )


def test_shift_helpers_differ_on_negative_values() -> None:
    x = np.array([-7, -8, 7])
    floor, toward_zero = shift_right_floor(x, 2), shift_right_toward_zero(x, 2)
    assert floor.tolist() == [-2, -2, 1], f"floor shift: found {floor.tolist()}"
    assert toward_zero.tolist() == [-1, -2, 1], f"toward-zero shift: found {toward_zero.tolist()}"


def test_wrap_current_is_one_conditional_step() -> None:
    """u in (2**23, ...) loses 2**24; u <= -2**23 gains 2**24 (so -2**23 becomes +2**23)."""
    half = STATE_HALF_RANGE
    u = np.array([half, half + 1, -half, -half + 1, 3 * half + 4])
    expected = np.array([half, -half + 1, half, -half + 1, half + 4])
    found = wrap_current(u)
    assert np.array_equal(found, expected), f"expected {expected}, found {found}"


def test_clip_voltage_is_symmetric() -> None:
    found = clip_voltage(np.array([1 << 23, -(1 << 23), 12]))
    assert found.tolist() == [V_LIMIT, -V_LIMIT, 12], f"found {found.tolist()}"


def test_wrap_signed_int32() -> None:
    found = wrap_signed(np.array([(1 << 31), -(1 << 31) - 1, 5]), 32)
    assert found.tolist() == [-(1 << 31), (1 << 31) - 1, 5], f"found {found.tolist()}"
