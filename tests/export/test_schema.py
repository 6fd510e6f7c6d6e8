"""netx schema constants and the weight set the quantizer targets."""

import numpy as np
import pytest

from tsslbp.export import schema as sc


def test_bit_width_constants() -> None:
    found = (
        sc.VTH_MANT_MAX,
        sc.DECAY_MAX,
        sc.BIAS_MANT_MIN,
        sc.BIAS_MANT_MAX,
        sc.WEIGHT_MIN,
        sc.WEIGHT_MAX,
    )
    expected = (131071, 4096, -4096, 4095, -256, 255)
    assert found == expected, f"expected {expected}, found {found}"


def test_quantizer_target_range_is_representable() -> None:
    """Every integer in [QUANT_WEIGHT_MIN, QUANT_WEIGHT_MAX] is exact in a mixed-sign layer."""
    values = np.arange(sc.QUANT_WEIGHT_MIN, sc.QUANT_WEIGHT_MAX + 1, sc.QUANT_WEIGHT_STEP)
    for value in values:
        w = np.array([[value, -1, 1]])
        assert sc.representable_weights(w), f"weight {value} is not exact in a mixed-sign layer"


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([[-256, 254, 3]], True),
        ([[-3, 255]], False),  # netx clips 255 in mixed-sign layers
        ([[0, 255]], True),  # excitatory layers reach 255
        ([[-5, -3]], True),
        ([[-4, -3]], False),  # inhibitory with a power-of-two extreme
        ([[0, 0]], False),  # lava-dl cannot load all-zero weights
        ([[0.5, -1.0]], False),
        ([[2.0, -1.0]], True),
    ],
)
def test_representable_weights(weights, expected) -> None:
    found = sc.representable_weights(np.array(weights))
    assert found is expected, f"{weights}: expected {expected}, found {found}"
