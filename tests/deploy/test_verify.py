"""The bit-accuracy report: compare_runs on hand-made recordings (no Lava needed)."""

from types import SimpleNamespace

import numpy as np

from tsslbp.deploy.verify import compare_runs


def _run(spikes, u, v):
    return SimpleNamespace(spikes=spikes, u=u, v=v)


def test_identical_runs_match_everywhere_including_flatten_layers():
    s = [np.zeros((2, 3, 4), np.int8), np.zeros((2, 3, 4), np.int8)]
    u = [np.arange(24).reshape(2, 3, 4), None]
    layers, first = compare_runs(_run(s, u, u), _run([x.copy() for x in s], u, u))
    assert first is None
    assert all(m.spike_match == m.u_match == m.v_match == 1.0 for m in layers)


def test_first_mismatch_is_the_earliest_step_with_both_states():
    g_s = np.zeros((2, 3, 5), np.int8)
    l_s = g_s.copy()
    l_s[1, 2, 4] = 1  # later step
    l_s[0, 1, 3] = 1  # earliest differing step: 3
    g_u = np.zeros((2, 3, 5), np.int32)
    l_u = g_u.copy()
    l_u[0, 1, 3] = 77
    layers, first = compare_runs(_run([g_s], [g_u], [g_u]), _run([l_s], [l_u], [g_u]))
    assert (first.layer, first.sample, first.neuron, first.step) == (0, 0, (1,), 3)
    assert first.golden == {"spikes": 0, "u": 0, "v": 0} and first.lava == {
        "spikes": 1,
        "u": 77,
        "v": 0,
    }
    assert (
        layers[0].spike_match == 1 - 2 / 30
        and layers[0].golden_spikes == 0
        and layers[0].lava_spikes == 2
    )
    assert "first mismatch: layer 0, sample 0, neuron (1,), step 3" in first.line()
