"""lava-dl netx weight packing and lava-nc Dense clip/truncation, as emulated in hwmodels.weights.

Expected values are worked by hand from lava-dl 0.6 ``netx/utils.py`` (``optimize_weight_bits``) and
lava-nc 0.10 ``utils/weightutils.py``; the emulation was also compared with those functions on 59k
random matrices (identical packed weights, exponents, weight bits and applied weights).
"""

import itertools

import numpy as np
import pytest

from tsslbp.hwmodels.weights import (
    SignMode,
    applied_dense_weights,
    dense_weights_exact,
    pack_dense_weights,
)


@pytest.mark.parametrize(
    ("weights", "packed", "weight_exp", "n_bits", "mode", "applied"),
    [
        # mixed: scale = min(127/5, 128/3) = 25.4 -> s = 4 + 1; n = 0 - 1; bits = 8 - 5 + 1
        ([[-3, 5]], [[-96, 160]], -5, 4, SignMode.MIXED, [[-96, 160]]),
        # mixed at the edges: s = 0, 9 weight bits, nothing truncated
        ([[-256, 253]], [[-256, 253]], 0, 9, SignMode.MIXED, [[-256, 253]]),
        # excitatory 255: s = 0, bits 8
        ([[255, 3]], [[255, 3]], 0, 8, SignMode.EXCITATORY, [[255, 3]]),
        # inhibitory, |min| a power of two: -4 << 6 = -256 is clipped to -255, then floored to -192
        ([[-4, -3]], [[-256, -192]], -6, 2, SignMode.INHIBITORY, [[-192, -192]]),
        # max == 0, |min| > 128 with an odd weight: lava truncates -1 bits, which zeroes everything
        ([[0, -200, -3]], [[0, -200, -3]], 0, 9, SignMode.MIXED, [[0, 0, 0]]),
        # mixed, out of range: netx clips to [-256, 254] first
        ([[-300, 260]], [[-256, 254]], 0, 8, SignMode.MIXED, [[-256, 254]]),
    ],
)
def test_pack_and_apply_hand_worked(weights, packed, weight_exp, n_bits, mode, applied) -> None:
    p = pack_dense_weights(np.array(weights))
    found = (p.weights.tolist(), p.weight_exp, p.num_weight_bits, p.sign_mode)
    assert found == (packed, weight_exp, n_bits, mode), (
        f"expected {(packed, weight_exp, n_bits, mode)}, found {found}"
    )
    found_applied = applied_dense_weights(p).tolist()
    assert found_applied == applied, f"applied: expected {applied}, found {found_applied}"


def test_all_zero_weights_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="all weights are zero"):
        pack_dense_weights(np.zeros((2, 3), dtype=np.int64))


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _lossless_by_cases(w: np.ndarray) -> bool:
    """The case analysis documented on dense_weights_exact."""
    low, high = int(w.min()), int(w.max())
    if low == high == 0:
        return False
    if low < 0 < high:
        return low >= -256 and high <= 254
    if low >= 0:
        return high <= 255
    if high < 0:
        return low >= -255 and not _is_power_of_two(-low)
    return low >= -255 and not _is_power_of_two(-low) and not (-low > 128 and bool(np.any(w % 2)))


def test_lossless_set_matches_case_analysis(rng: np.random.Generator) -> None:
    """All pairs over small values and the range edges, plus random triples."""
    values = list(range(-40, 41)) + [
        -300,
        -257,
        -256,
        -255,
        -200,
        -129,
        -128,
        -127,
        127,
        128,
        200,
        254,
        255,
        256,
    ]
    cases = [np.array([pair]) for pair in itertools.product(values, repeat=2)]
    cases += [rng.integers(-260, 260, size=(1, 3)) for _ in range(2000)]
    wrong = [w.tolist() for w in cases if dense_weights_exact(w) != _lossless_by_cases(w)]
    assert not wrong, f"{len(wrong)} matrices disagree with the case analysis, e.g. {wrong[:5]}"


def test_mixed_sign_integers_are_applied_exactly(rng: np.random.Generator) -> None:
    """Every integer in [-256, 254] survives packing when a layer has both signs."""
    w = rng.integers(-256, 255, size=(30, 40))
    w[0, :3] = [-256, 254, 1]
    p = pack_dense_weights(w)
    found = applied_dense_weights(p)
    assert np.array_equal(found, w << -p.weight_exp), "packed mixed-sign weights changed"
