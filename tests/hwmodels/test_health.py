import dataclasses

import numpy as np

from tsslbp.export.quantize import LayerQuant
from tsslbp.hwmodels.health import STATE_LIMIT, state_health


def test_state_health_counts_saturated_v_and_near_wrap_u():
    u = np.zeros((2, 5, 4), np.int32)
    v = np.zeros((2, 5, 4), np.int32)
    v[0, 1, 2] = STATE_LIMIT - 1
    v[1, 3, 0] = -(STATE_LIMIT - 1)
    v[1, 3, 1] = -(STATE_LIMIT - 1)
    v[1, 4, 1] = -(STATE_LIMIT - 2)  # just above the floor
    u[0, 0, 0] = int(0.995 * STATE_LIMIT)
    u[1, 0, 1] = int(0.98 * STATE_LIMIT)  # below the edge
    health = state_health([u, None], [v, None])
    assert len(health) == 1, "layers without state (flatten) are skipped"
    assert health[0].v_saturated == 1 / 40, "the top of v only"
    assert health[0].v_floor == 2 / 40, "the floor of v counted apart"
    assert health[0].u_near_wrap == 1 / 40 and not health[0].healthy
    assert state_health([np.zeros((1, 2, 3))], [np.zeros((1, 2, 3))])[0].healthy


def test_voltage_at_the_floor_alone_is_healthy():
    """Deep inhibition held at -(2**23 - 1) is what the export allows (its scale bounds the
    current and the membrane's positive side): counted, not a problem."""
    v = np.zeros((1, 3, 2), np.int32)
    v[0, 0, :] = -(STATE_LIMIT - 1)
    (health,) = state_health([np.zeros_like(v)], [v])
    assert health.v_floor == 2 / 6 and health.v_saturated == 0.0 and health.healthy


def test_quantization_warnings_name_the_layer_and_fraction():
    base = LayerQuant(
        name="hidden",
        scale=1.0,
        weight_gain=1.0,
        limited_by="weights",
        weight_bits_used=8.0,
        n_weights=200,
        n_clipped=0,
        weight_rmse=0.0,
        v_th_mant=1,
        v_th_error=0.0,
        i_decay=1365,
        v_decay=819,
        tau_syn_realized=3.0,
        tau_mem_realized=5.0,
        float_max_abs_current=1.0,
        float_max_abs_u=1.0,
    )
    assert base.warnings() == []
    bad = dataclasses.replace(base, n_clipped=3, v_saturated=0.25, u_near_wrap=0.001)
    assert bad.warnings() == [
        "layer hidden: 3 of 200 weights (1.50%) clipped to [-256, 254]",
        "layer hidden: v saturated at 2**23 - 1 in 25.000% of the calibration values",
        "layer hidden: |u| within 1% of the 24-bit wrap in 0.100% of the calibration values",
    ]


def test_state_health_of_a_long_record_counts_every_chunk():
    """Fractions taken 64 samples at a time (no whole-array copies) are the whole array's."""
    rng = np.random.default_rng(0)
    top = STATE_LIMIT - 1
    v = rng.integers(-top, top + 1, size=(200, 7, 3), dtype=np.int32)
    u = rng.integers(-top, top + 1, size=(200, 7, 3), dtype=np.int32)
    v.flat[rng.choice(v.size, 50, replace=False)] = top
    v.flat[rng.choice(v.size, 30, replace=False)] = -top
    (h,) = state_health([u], [v])
    assert h.v_saturated == np.mean(v.astype(np.int64) >= top)
    assert h.v_floor == np.mean(v.astype(np.int64) <= -top)
    assert h.u_near_wrap == np.mean(np.abs(u.astype(np.int64)) >= 0.99 * STATE_LIMIT)
    assert h.v_saturated > 0 and h.v_floor > 0 and h.u_near_wrap > 0
