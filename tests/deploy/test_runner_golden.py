"""Lava's fixed-point simulator (via run_lava) against the golden model, at every layer and step.

Every comparison is exact (``array_equal``) on spikes, u and v of every layer. Networks are drawn
from seeded generators covering graded and binary inputs, mixed-sign weights, biases, conv with
stride/padding/groups, flatten, an input layer, the u wrap and the v clip. Several samples run in
one Lava run; isolation is checked by running samples alone.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")
golden = pytest.importorskip("tsslbp.hwmodels.golden")

from tsslbp.deploy import processes  # noqa: E402
from tsslbp.deploy.runner import LavaResult, run_lava  # noqa: E402
from tsslbp.hwmodels.spec import (  # noqa: E402
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
)

pytestmark = pytest.mark.lava

TRACES = ("spikes", "u", "v")
V_LIMIT = (1 << 23) - 1


def _neuron(rng: np.random.Generator, v_th_max: int = 120) -> CubaNeuron:
    return CubaNeuron(
        i_decay=int(rng.integers(0, 4097)),
        v_decay=int(rng.integers(0, 4097)),
        v_th_mant=int(rng.integers(1, v_th_max)),
    )


def _mixed_weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Integers in [-256, 254] with both signs: what lava-dl + Lava apply exactly."""
    w = rng.integers(-256, 255, shape)
    w.flat[0], w.flat[-1] = -256, 254
    return w


def _dense_spec(rng: np.random.Generator, sizes: list[int], input_bits: int) -> NetworkSpec:
    layers = tuple(
        DenseLayer(
            weight=_mixed_weights(rng, (n_out, n_in)) // (1 if input_bits == 0 else 8),
            neuron=_neuron(rng),
            bias=rng.integers(-40, 40, n_out) if rng.random() < 0.5 else None,
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    return NetworkSpec(layers=layers, input_shape=(sizes[0],), input_message_bits=input_bits)


def _conv_spec(rng: np.random.Generator) -> NetworkSpec:
    """input layer (3, 9, 8) -> conv 3x3 s2 p(1, 0) -> grouped conv 2x2 -> flatten -> dense."""
    c1 = ConvLayer(
        weight=rng.integers(-40, 41, (4, 3, 3, 3)),
        neuron=_neuron(rng, 40),
        in_shape=(3, 9, 8),
        shape=(4, 5, 3),
        stride=(2, 2),
        padding=(1, 0),
        bias=rng.integers(-20, 20, 4),
    )
    c2 = ConvLayer(
        weight=rng.integers(-40, 41, (6, 2, 2, 2)),
        neuron=_neuron(rng, 40),
        in_shape=(4, 5, 3),
        shape=(6, 4, 2),
        groups=2,
    )
    dense = DenseLayer(weight=_mixed_weights(rng, (5, 48)), neuron=_neuron(rng, 60))
    return NetworkSpec(
        layers=(
            InputLayer(shape=(3, 9, 8), neuron=CubaNeuron(4096, 1024, 25)),
            c1,
            c2,
            FlattenLayer(in_shape=(6, 4, 2)),
            dense,
        ),
        input_shape=(3, 9, 8),
    )


def _assert_same(spec: NetworkSpec, found: LavaResult, expected: object) -> None:
    """Every recorded array of Lava equals the golden model's."""
    for index in range(len(spec.layers)):
        for name in TRACES:
            want, got = getattr(expected, name)[index], getattr(found, name)[index]
            assert (want is None) == (got is None), (
                f"layer {index} {name}: golden {want is None=}, lava {got is None=}"
            )
            if want is None:
                continue
            assert got.shape == want.shape, (
                f"layer {index} {name}: shape {got.shape}, golden {want.shape}"
            )
            bad = np.argwhere(got != want)
            assert bad.size == 0, (
                f"layer {index} {name}: {len(bad)} of {got.size} values differ, first at "
                f"{tuple(bad[0])}: golden {want[tuple(bad[0])]}, lava {got[tuple(bad[0])]}"
            )


def _assert_active(result: object) -> None:
    """Sanity: the comparison is not between silent networks."""
    counts = [int(s.sum()) for s in result.spikes if s is not None]
    assert all(c > 0 for c in counts), f"every layer should spike, spike counts {counts}"


@pytest.mark.parametrize(("seed", "input_bits"), [(0, 0), (1, 0), (2, 8), (3, 8), (4, 4)])
def test_random_dense_nets_match_golden(seed: int, input_bits: int) -> None:
    """Random 3-layer dense nets, binary or graded input, 4 samples x 9 steps (6 of input)."""
    rng = np.random.default_rng(seed)
    spec = _dense_spec(rng, [12, 16, 10, 6], input_bits)
    top = 1 if input_bits == 0 else (1 << input_bits) - 1
    x = rng.integers(0, top + 1, (4, 12, 6)) * (rng.random((4, 12, 6)) < 0.6)
    expected = golden.run_golden(spec, np.pad(x, ((0, 0), (0, 0), (0, 3))), record=True)
    _assert_active(expected)
    found = run_lava(spec, x, record=True, steps_per_sample=9)
    _assert_same(spec, found, expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_conv_net_with_input_layer_matches_golden(seed: int) -> None:
    """Input layer driven by per-step bias_mant, strided/padded and grouped convs, flatten, dense."""
    rng = np.random.default_rng(100 + seed)
    spec = _conv_spec(rng)
    x = rng.integers(-10, 50, (3, 8, 9, 3, 8))
    expected = golden.run_golden(spec, x, record=True)
    _assert_active(expected)
    found = run_lava(spec, x, record=True)
    _assert_same(spec, found, expected)


def test_saturating_graded_input_wraps_u_and_clips_v() -> None:
    """Full-scale 8-bit inputs on full-scale weights: u wraps past 2**23, v saturates."""
    rng = np.random.default_rng(7)
    n_in = 16
    weight = np.concatenate(
        [np.full((3, n_in), 254), np.full((3, n_in), -256), _mixed_weights(rng, (4, n_in))]
    )
    spec = NetworkSpec(
        layers=(
            DenseLayer(
                weight=weight, neuron=CubaNeuron(i_decay=64, v_decay=16, v_th_mant=(1 << 17) - 1)
            ),
            DenseLayer(weight=_mixed_weights(rng, (3, 10)), neuron=CubaNeuron(1024, 512, 30)),
        ),
        input_shape=(n_in,),
        input_message_bits=8,
    )
    x = np.full((2, n_in, 6), 255)
    x[1, :, ::2] = 0
    # The synaptic drive alone, shifted left by 6, exceeds the 24-bit range of u.
    assert (weight @ x[0, :, 0]).max() << 6 > 1 << 23
    expected = golden.run_golden(spec, np.pad(x, ((0, 0), (0, 0), (0, 2))), record=True)
    assert expected.v[0].min() == -V_LIMIT, "the negative drive should saturate v"
    found = run_lava(spec, x, record=True, steps_per_sample=8)
    _assert_same(spec, found, expected)


def test_netx_reset_schedule_matches_golden() -> None:
    """lava-dl's reset_interval/reset_offset schedule (within each sample) as run_golden has it."""
    rng = np.random.default_rng(11)
    spec = _conv_spec(rng)
    x = rng.integers(-10, 50, (2, 8, 9, 3, 10))
    expected = golden.run_golden(spec, x, record=True, reset_interval=4, reset_offset=1)
    found = run_lava(spec, x, record=True, reset_interval=4, reset_offset=1)
    _assert_same(spec, found, expected)


def _leaky_spec(rng: np.random.Generator) -> NetworkSpec:
    """Biased dense layers whose last steps keep spiking: the previous sample's messages in flight
    would reach the next sample's first step."""
    return NetworkSpec(
        layers=(
            DenseLayer(
                weight=_mixed_weights(rng, (10, 8)),
                neuron=CubaNeuron(2048, 1024, 20),
                bias=rng.integers(0, 40, 10),
            ),
            DenseLayer(
                weight=_mixed_weights(rng, (6, 10)),
                neuron=CubaNeuron(2048, 1024, 20),
                bias=rng.integers(-10, 40, 6),
            ),
        ),
        input_shape=(8,),
        input_message_bits=8,
    )


def test_samples_in_one_run_are_isolated() -> None:
    """A sample run alone and the same sample run after others give identical traces."""
    rng = np.random.default_rng(21)
    spec = _leaky_spec(rng)
    x = rng.integers(0, 256, (3, 8, 6))
    batch = run_lava(spec, x, record=True)
    # The leak channels are live: the sample before each checked one ends with input and spikes.
    assert x[:2, :, -1].any(axis=1).all(), (
        "the previous samples' last input column should be nonzero"
    )
    assert batch.spikes[0][:2, :, -1].any(axis=1).all(), "layer 0 should spike in the last step"
    for sample in (1, 2):
        alone = run_lava(spec, x[sample : sample + 1], record=True)
        for name in TRACES:
            for index in range(len(spec.layers)):
                got, want = getattr(batch, name)[index][sample], getattr(alone, name)[index][0]
                assert np.array_equal(got, want), (
                    f"sample {sample} layer {index} {name}: alone\n{want}\nin the batch\n{got}"
                )
    _assert_same(spec, batch, golden.run_golden(spec, x, record=True))


def test_isolation_test_detects_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dropping the in-flight synaptic sum, the batched run differs from the golden model:
    the isolation check above is not vacuous."""
    original = processes.PySampleResetLifModel.__init__

    def keep_in_flight_input(self: processes.PySampleResetLifModel, proc_params: dict) -> None:
        original(self, proc_params)
        self._drop_input = False

    # Lava forks its processes after this patch, so they inherit it.
    monkeypatch.setattr(processes.PySampleResetLifModel, "__init__", keep_in_flight_input)
    rng = np.random.default_rng(21)
    spec = _leaky_spec(rng)
    x = rng.integers(0, 256, (3, 8, 6))
    leaky = run_lava(spec, x, record=True)
    expected = golden.run_golden(spec, x, record=True)
    assert np.array_equal(leaky.u[0][0], expected.u[0][0]), "the first sample has nothing in flight"
    assert not np.array_equal(leaky.u[0][1:], expected.u[0][1:]), (
        "later samples should see the leak"
    )


def test_output_without_recording() -> None:
    """Without record, only the output layer's spikes come back: those the sink received."""
    rng = np.random.default_rng(5)
    spec = _dense_spec(rng, [6, 8, 4], 0)
    x = (rng.random((2, 6, 7)) < 0.5).astype(np.int64)
    found = run_lava(spec, x)
    assert found.u == [None, None] and found.v == [None, None] and found.spikes[0] is None, (
        "nothing but the output should come back without record"
    )
    assert found.output.shape == (2, 4, 7) and found.output.dtype == np.int8
    expected = golden.run_golden(spec, x, record=False).output
    assert expected.any(), "the output layer should spike"
    assert np.array_equal(found.output, expected), f"golden\n{expected}\nlava\n{found.output}"
