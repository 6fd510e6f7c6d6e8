"""A small Lava network on the fixed-point CPU simulator matches integer arithmetic worked out here.

The expected trajectories follow lava-nc 0.10.0's ``lava/proc/lif/models.py`` (PyLifModelBitAcc)
and ``lava/proc/dense/models.py`` (PyDenseModelBitAcc), written independently with Python ints:

    a[t] = W @ s[t - 1]                      (Dense sends the previous step's sum; a[0] = 0)
    u[t] = wrap24(decay(u[t-1], du + 1) + (a[t] << 6))
    v[t] = clip24(decay(v[t-1], dv) + u[t] + (bias_mant << bias_exp))
    spike[t] = v[t] > (vth << 6);  v[t] = 0 where spike[t]

with decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12), i.e. rounding toward zero.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

import tsslbp.deploy  # noqa: F401  (installs the Python 3.11 import hook before lava loads)

pytest.importorskip("lava")

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as SpikeSink  # noqa: E402
from lava.proc.io.source import RingBuffer as SpikeSource  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402

pytestmark = pytest.mark.lava

N_STEPS = 10
# Input spikes, (n_in, n_steps): a fixed pattern, so the test needs no random numbers.
INPUT_SPIKES = [
    [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
    [0, 1, 1, 0, 0, 1, 1, 0, 0, 1],
    [1, 1, 0, 0, 0, 1, 0, 0, 1, 0],
]
# Even values: mixed-sign Dense weights lose their lowest bit (lava's truncate_weights).
WEIGHTS = [[40, -30, 30], [20, 60, -40]]
BIAS_MANT = [3, -2]
BIAS_EXP = 6
DU = 1024
DV = 512
VTH = 100

# Loihi fixed-point constants (lava/proc/lif/models.py, AbstractPyLifModelFixed).
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6
VTH_SHIFT = 6
UV_HALF_RANGE = 1 << 23
# ds_offset: the hardware adds 1 to du so that a decay of exactly 4096 can be expressed.
DU_OFFSET = 1


def _decay_toward_zero(x: int, decay: int) -> int:
    """Multiply by (4096 - decay) / 4096, rounding the magnitude down (sign-magnitude shift)."""
    magnitude = (abs(x) * (DECAY_UNITY - decay)) >> DECAY_SHIFT
    return magnitude if x >= 0 else -magnitude


def _wrap_current(u: int) -> int:
    """Wrap the 24-bit current the way lava does (two one-sided comparisons, not a modulo)."""
    if u > UV_HALF_RANGE:
        return u - 2 * UV_HALF_RANGE
    if u <= -UV_HALF_RANGE:
        return u + 2 * UV_HALF_RANGE
    return u


def _clip_voltage(v: int) -> int:
    """Saturate the voltage to the symmetric 24-bit range."""
    return max(-UV_HALF_RANGE + 1, min(UV_HALF_RANGE - 1, v))


def _expected_trajectories() -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Integer reference run of Source -> Dense -> LIF.

    Returns:
        u, v (after reset) and spikes, each as (n_steps, n_out) nested lists of ints.
    """
    n_out = len(WEIGHTS)
    u, v = [0] * n_out, [0] * n_out
    us, vs, spikes = [], [], []
    for t in range(N_STEPS):
        step_spikes = []
        for i in range(n_out):
            # Dense adds one step of delay: the input arriving at t is the weighted spikes of t - 1.
            a_in = sum(w * row[t - 1] for w, row in zip(WEIGHTS[i], INPUT_SPIKES)) if t > 0 else 0
            u[i] = _wrap_current(_decay_toward_zero(u[i], DU + DU_OFFSET) + a_in * (1 << ACT_SHIFT))
            v[i] = _clip_voltage(
                _decay_toward_zero(v[i], DV) + u[i] + BIAS_MANT[i] * (1 << BIAS_EXP)
            )
            fired = v[i] > VTH * (1 << VTH_SHIFT)
            if fired:
                v[i] = 0
            step_spikes.append(int(fired))
        us.append(list(u))
        vs.append(list(v))
        spikes.append(step_spikes)
    return us, vs, spikes


def test_reference_trajectory_exercises_spikes_and_negative_current() -> None:
    """Sanity check of the parameters: both neurons spike, and some current goes negative."""
    us, _, spikes = _expected_trajectories()
    counts = np.sum(spikes, axis=0)
    assert np.all(counts > 0), f"expected every neuron to spike, spike counts {counts}"
    assert np.min(us) < 0, f"expected a negative current somewhere, min u {np.min(us)}"


def test_source_dense_lif_matches_integer_reference() -> None:
    """Run Source -> Dense -> LIF for N_STEPS on Loihi2SimCfg(fixed_pt) and compare exactly."""
    n_out = len(WEIGHTS)
    source = SpikeSource(data=np.array(INPUT_SPIKES, dtype=np.int32))
    dense = Dense(weights=np.array(WEIGHTS, dtype=np.int32))
    lif = LIF(
        shape=(n_out,),
        du=DU,
        dv=DV,
        vth=VTH,
        bias_mant=np.array(BIAS_MANT, dtype=np.int32),
        bias_exp=BIAS_EXP,
    )
    sink = SpikeSink(shape=(n_out,), buffer=N_STEPS)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    monitor_u, monitor_v = Monitor(), Monitor()
    monitor_u.probe(target=lif.u, num_steps=N_STEPS)
    monitor_v.probe(target=lif.v, num_steps=N_STEPS)

    try:
        lif.run(condition=RunSteps(num_steps=N_STEPS), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        found_u = monitor_u.get_data()[lif.name]["u"].astype(np.int64)
        found_v = monitor_v.get_data()[lif.name]["v"].astype(np.int64)
        found_spikes = sink.data.get().astype(np.int64).T
    finally:
        lif.stop()

    expected_u, expected_v, expected_spikes = (
        np.array(x, dtype=np.int64) for x in _expected_trajectories()
    )
    assert np.array_equal(found_spikes, expected_spikes), (
        f"spikes (step, neuron): expected\n{expected_spikes}\nfound\n{found_spikes}"
    )
    assert np.array_equal(found_u, expected_u), (
        f"u (step, neuron): expected\n{expected_u}\nfound\n{found_u}"
    )
    assert np.array_equal(found_v, expected_v), (
        f"v (step, neuron): expected\n{expected_v}\nfound\n{found_v}"
    )


def test_lava_runtime_forks_its_processes() -> None:
    """Lava's runtime forks, so its child processes inherit the patched var_model module."""
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401, PLC0415

    found = multiprocessing.get_start_method()
    assert found == "fork", f"expected lava to select the 'fork' start method, found {found!r}"
