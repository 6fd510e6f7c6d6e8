"""Golden fixed-point model on tiny hand-worked networks and invariants.

The semantics (lava-nc 0.10 ``PyLifModelBitAcc``, ``PyDenseModelBitAcc``, ``PyConvModelFixed`` as
lava-dl 0.6's netx builds them) were also checked against Lava runs, spike for spike and state for
state; these tests pin them down without Lava.
"""

import dataclasses

import numpy as np
import pytest

from tsslbp.hwmodels.golden import (
    CubaParams,
    CubaState,
    conv_synapse,
    cuba_step,
    run_golden,
)
from tsslbp.hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
)


def _dense_net(
    weights: list[list[int]], neuron: CubaNeuron, bias=None, bits: int = 0
) -> NetworkSpec:
    w = np.array(weights, dtype=np.int64)
    b = None if bias is None else np.array(bias, dtype=np.int64)
    return NetworkSpec(
        layers=(DenseLayer(w, neuron, b),), input_shape=(w.shape[1],), input_message_bits=bits
    )


def test_dense_lif_hand_worked_trajectory() -> None:
    """Dense [[5, -7]] -> LIF (iDecay 1365, vDecay 819, vThMant 3, bias -1), binary input.

    A[t] = W s[t-1] (A[0] = 0): 0, 5, -7, -7, 5, 0. By hand (rtz = round toward zero):
      t=0: u = 0;                            v = 0 + 0 - 64 = -64
      t=1: u = 0 + 320 = 320;                v = rtz(-64*3277/4096 = -51.2) + 320 - 64 = 205 > 192: spike, v = 0
      t=2: u = rtz(213.36) - 448 = -235;     v = 0 - 235 - 64 = -299
      t=3: u = rtz(-156.69) - 448 = -604;    v = rtz(-239.2) - 604 - 64 = -907   (floor: u = -605)
      t=4: u = rtz(-402.72) + 320 = -82;     v = rtz(-725.6) - 82 - 64 = -871
      t=5: u = rtz(-54.67) = -54;            v = rtz(-696.8) - 54 - 64 = -814
    """
    spec = _dense_net([[5, -7]], CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=3), bias=[-1])
    inputs = np.array([[[1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 0]]])
    result = run_golden(spec, inputs)
    found = (
        result.u[0][0, 0].tolist(),
        result.v[0][0, 0].tolist(),
        result.spikes[0][0, 0].tolist(),
    )
    expected = (
        [0, 320, -235, -604, -82, -54],
        [-64, 0, -299, -907, -871, -814],
        [0, 1, 0, 0, 0, 0],
    )
    assert found == expected, f"(u, v, spikes): expected {expected}, found {found}"


def test_graded_input_multiplies_payload_binary_counts_nonzero() -> None:
    """With message bits the Dense multiplies the payload; without, any nonzero value counts as 1."""
    neuron = CubaNeuron(i_decay=4096, v_decay=4096, v_th_mant=131071)
    inputs = np.array([[[200, 0], [50, 0]]])
    graded = run_golden(_dense_net([[3, -2]], neuron, bits=8), inputs)
    binary = run_golden(_dense_net([[3, -2]], neuron, bits=0), inputs)
    # iDecay 4096 empties u each step, so u[1] = A[1] << 6.
    assert graded.u[0][0, 0, 1] == (3 * 200 - 2 * 50) * 64, (
        f"graded u[1]: found {graded.u[0][0, 0, 1]}"
    )
    assert binary.u[0][0, 0, 1] == (3 - 2) * 64, f"binary u[1]: found {binary.u[0][0, 0, 1]}"


def test_current_wraps_at_24_bits() -> None:
    """u = 131073 << 6 = 2**23 + 64 wraps to 2**23 + 64 - 2**24; -131072 << 6 = -2**23 becomes +2**23."""
    params = CubaParams(i_decay=0, v_decay=4096, v_th_mant=131071)
    _, up = cuba_step(np.array([131073]), 0, CubaState.zeros((1,)), params)
    _, down = cuba_step(np.array([-131072]), 0, CubaState.zeros((1,)), params)
    assert up.u.tolist() == [(1 << 23) + 64 - (1 << 24)], f"found {up.u.tolist()}"
    assert down.u.tolist() == [1 << 23], f"found {down.u.tolist()}"


def test_voltage_saturates_and_decays_from_the_limit() -> None:
    """u = -131071 << 6 plus bias -4096 << 6 is below -2**23: v clips to -(2**23 - 1), then decays."""
    params = CubaParams(i_decay=4096, v_decay=2048, v_th_mant=10)
    _, first = cuba_step(np.array([-131071]), -4096, CubaState.zeros((1,)), params)
    _, second = cuba_step(np.array([0]), 0, first, params)
    assert first.v.tolist() == [-(1 << 23) + 1], f"clipped v: found {first.v.tolist()}"
    # -(2**23 - 1) / 2 = -4194303.5 rounds toward zero; u was emptied (iDecay 4096).
    assert second.v.tolist() == [-4194303], f"decayed v: found {second.v.tolist()}"


def test_each_synaptic_layer_adds_one_step() -> None:
    """An input spike at step 0 reaches dense layer k (0-based) at step k + 1."""
    neuron = CubaNeuron(i_decay=4096, v_decay=4096, v_th_mant=1)
    w = np.array([[100]])
    spec = NetworkSpec(layers=tuple(DenseLayer(w, neuron) for _ in range(3)), input_shape=(1,))
    inputs = np.zeros((1, 1, 6), dtype=np.int64)
    inputs[0, 0, 0] = 1
    result = run_golden(spec, inputs, record=False)
    found = [int(np.argmax(s[0, 0])) for s in result.spikes]
    assert found == [1, 2, 3], f"first spike step per layer: expected [1, 2, 3], found {found}"
    assert all(u is None for u in result.u), "record=False must not return u"


def test_input_layer_is_driven_by_bias_mant_and_ignores_weight_and_bias() -> None:
    """lava-dl's input neurons get no synaptic input: v = bias_mant << 6 decays, no delay."""
    neuron = CubaNeuron(i_decay=4096, v_decay=2048, v_th_mant=25)
    layer = InputLayer(shape=(2,), neuron=neuron, weight=36, bias=np.array([34]))
    spec = NetworkSpec(layers=(layer,), input_shape=(2,))
    inputs = np.repeat(np.array([[[10], [30]]]), 3, axis=-1)
    result = run_golden(spec, inputs)
    # bias 10: v = 640, 320 + 640 = 960, 480 + 640 = 1120; bias 30: 1920 > 1600 spikes every step.
    assert result.v[0][0].tolist() == [[640, 960, 1120], [0, 0, 0]], (
        f"found v {result.v[0][0].tolist()}"
    )
    assert result.spikes[0][0].tolist() == [[0, 0, 0], [1, 1, 1]], (
        f"found {result.spikes[0][0].tolist()}"
    )


def test_reset_interval_follows_netx_schedule() -> None:
    """Neuron layer i zeroes u, v at step t when (t + 1) % interval == (offset + 1 + i) % interval."""
    neuron = CubaNeuron(i_decay=4096, v_decay=0, v_th_mant=131071)
    spec = NetworkSpec(layers=(InputLayer(shape=(1,), neuron=neuron),), input_shape=(1,))
    inputs = np.ones((1, 1, 9), dtype=np.int64)
    found = run_golden(spec, inputs, reset_interval=4, reset_offset=1).v[0][0, 0] // 64
    # (t + 1) % 4 == 2 at t = 1, 5: v restarts from zero there.
    expected = [1, 1, 2, 3, 4, 1, 2, 3, 4]
    assert found.tolist() == expected, f"expected {expected}, found {found.tolist()}"


def _reference_conv(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """Plain-loop PyTorch cross-correlation (C, H, W) with stride, padding, dilation and groups."""
    w = layer.weight
    c_out, c_in_group, k_h, k_w = w.shape
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = layer.stride, layer.padding, layer.dilation
    padded = np.pad(x, ((0, 0), (p_h, p_h), (p_w, p_w)))
    out = np.zeros(layer.shape, dtype=np.int64)
    per_group = c_out // layer.groups
    for o in range(c_out):
        g = o // per_group
        for y in range(layer.shape[1]):
            for xx in range(layer.shape[2]):
                for c in range(c_in_group):
                    for i in range(k_h):
                        for j in range(k_w):
                            pixel = padded[
                                g * c_in_group + c, y * s_h + i * d_h, xx * s_w + j * d_w
                            ]
                            out[o, y, xx] += w[o, c, i, j] * pixel
    return out


def test_conv_synapse_is_pytorch_cross_correlation(rng: np.random.Generator) -> None:
    """Non-square image and kernel, stride, padding, dilation and groups against a plain loop."""
    layer = ConvLayer(
        weight=rng.integers(-256, 256, size=(4, 3, 3, 2)),
        neuron=CubaNeuron(4096, 4096, 1),
        in_shape=(6, 7, 5),
        shape=(4, 3, 5),
        stride=(2, 1),
        padding=(1, 1),
        dilation=(2, 1),
        groups=2,
    )
    x = rng.integers(0, 256, size=(2, 6, 7, 5))
    found = conv_synapse(x, layer, graded=True)
    for b in range(2):
        expected = _reference_conv(x[b], layer)
        assert np.array_equal(found[b], expected), (
            f"sample {b}: expected\n{expected}\nfound\n{found[b]}"
        )


@pytest.mark.parametrize("graded", [True, False])
def test_conv_fast_path_equals_the_int64_synapse(rng: np.random.Generator, graded: bool) -> None:
    """The float32 path run_golden takes when no sum can reach 2**24 gives conv_synapse's message
    (stride, padding, dilation and groups; graded payloads and binary spikes)."""
    from tsslbp.hwmodels import golden

    layer = ConvLayer(
        weight=rng.integers(-256, 256, size=(6, 2, 3, 2)),
        neuron=CubaNeuron(4096, 4096, 1),
        in_shape=(6, 9, 7),
        shape=(6, 4, 7),
        stride=(2, 1),
        padding=(1, 1),
        dilation=(2, 1),
        groups=3,
    )
    spec = NetworkSpec(layers=(layer,), input_shape=(6, 9, 7), input_message_bits=8 * graded)
    plan = golden._plan(spec)[0]
    pre = rng.integers(0, 256, size=(5, 6, 9, 7)) * (rng.random((5, 6, 9, 7)) < 0.3)
    fast, bound = golden._synapse_f64(pre, layer, plan)
    assert fast.dtype == np.float32 and bound < 2**24, "the float32 path should be taken here"
    assert np.array_equal(fast, conv_synapse(pre, layer, graded=graded))


def _blocky(rng: np.random.Generator, shape: tuple[int, ...], ky: int, kx: int) -> np.ndarray:
    small = rng.integers(-200, 200, size=(*shape[:-2], shape[-2] // ky, shape[-1] // kx))
    return np.repeat(np.repeat(small, ky, axis=-2), kx, axis=-1)


def test_pooling_folded_into_conv_and_dense_is_computed_on_block_sums(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights constant over the stride's blocks (a pooling folded in by export) take the path that
    sums the blocks first; its messages equal the int64 synapses', a whole run equals one with the
    blocks left unrecognised, and one uneven weight turns the shortcut off."""
    from tsslbp.hwmodels import golden

    conv = ConvLayer(
        weight=_blocky(rng, (4, 3, 6, 4), 2, 2),
        neuron=CubaNeuron(4096, 4096, 1),
        in_shape=(3, 13, 11),
        shape=(4, 4, 4),
        stride=(2, 2),
    )
    # 13 rows, blocks of 2: the last row is in no block (its weights are 0, as export leaves them).
    dense_w = np.zeros((5, 4, 4, 4), dtype=np.int64)
    dense_w[:, :, :4, :4] = _blocky(rng, (5, 4, 4, 4), 2, 2)
    dense = DenseLayer(weight=dense_w.reshape(5, -1), neuron=CubaNeuron(4096, 4096, 1))
    spec = NetworkSpec(
        layers=(conv, FlattenLayer(in_shape=(4, 4, 4)), dense),
        input_shape=(3, 13, 11),
        input_message_bits=8,
    )
    plans = golden._plan(spec)
    assert plans[0].pool == (2, 2) and plans[0].pool_layer.weight.shape == (4, 3, 3, 2)
    assert plans[2].pool == (2, 2) and plans[2].weight_f32.shape == (16, 5)
    pre = rng.integers(0, 256, size=(3, 3, 13, 11)) * (rng.random((3, 3, 13, 11)) < 0.4)
    fast, _ = golden._synapse_f64(pre, conv, plans[0])
    assert np.array_equal(fast, conv_synapse(pre, conv, graded=True))
    spikes = rng.random((3, 64)) < 0.3
    fast, _ = golden._synapse_f64(spikes, dense, plans[2])
    expected = golden.dense_synapse(
        spikes.astype(np.int64), plans[2].applied_weight, plans[2].weight_exp, False
    )
    assert np.array_equal(fast, expected)
    inputs = rng.integers(0, 256, size=(4, 11, 13, 3, 6)) * (rng.random((4, 11, 13, 3, 6)) < 0.5)
    shortcut = run_golden(spec, inputs)
    monkeypatch.setattr(golden, "_conv_blocks", lambda layer: None)
    monkeypatch.setattr(golden, "_dense_blocks", lambda weight, shape: None)
    plain_run = run_golden(spec, inputs)
    assert shortcut.spikes[-1].any(), "the test network should spike"
    for name in ("spikes", "u", "v"):
        for i, (a, b) in enumerate(zip(getattr(shortcut, name), getattr(plain_run, name))):
            assert (a is None and b is None) or np.array_equal(a, b), f"layer {i} {name}"
    monkeypatch.undo()
    # Not blocky: one weight changed inside a block.
    uneven = dense_w.copy()
    uneven[0, 0, 0, 0] += 1
    plain = dataclasses.replace(dense, weight=uneven.reshape(5, -1))
    assert (
        golden._plan(dataclasses.replace(spec, layers=(conv, spec.layers[1], plain)))[2].pool
        is None
    )


def test_flatten_uses_chw_order() -> None:
    """netx flattens (W, H, C) ports as transpose([2, 1, 0]).flatten(): index c*H*W + h*W + w."""
    conv = ConvLayer(
        weight=np.ones((2, 1, 1, 1), dtype=np.int64),
        neuron=CubaNeuron(4096, 4096, 0),
        in_shape=(1, 2, 3),
        shape=(2, 2, 3),
    )
    row = np.zeros((1, 12), dtype=np.int64)
    row[0, 7], row[0, 0] = 100, -1  # listens to flat index 7 (both signs: weights exact)
    dense = DenseLayer(row, CubaNeuron(4096, 4096, 1))
    spec = NetworkSpec(
        layers=(conv, FlattenLayer(in_shape=(2, 2, 3)), dense), input_shape=(1, 2, 3)
    )
    inputs = np.zeros((1, 3, 2, 1, 3), dtype=np.int64)  # Lava order (W, H, C)
    inputs[0, 1, 0, 0, 0] = 1  # w = 1, h = 0
    result = run_golden(spec, inputs)
    flat = result.spikes[1][0, :, 1]
    # Both conv channels spike at (h=0, w=1): flat indices 0*6 + 0*3 + 1 and 1*6 + 0*3 + 1.
    assert np.flatnonzero(flat).tolist() == [1, 7], (
        f"found flat spikes at {np.flatnonzero(flat).tolist()}"
    )
    assert result.spikes[2][0, 0].tolist() == [0, 0, 1], (
        f"dense spikes {result.spikes[2][0, 0].tolist()}"
    )


def test_batch_rows_are_independent(rng: np.random.Generator) -> None:
    """A batch gives the same result as its samples run one by one; identical rows agree."""
    neuron = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=40)
    spec = NetworkSpec(
        layers=(
            DenseLayer(rng.integers(-256, 255, size=(16, 10)), neuron),
            DenseLayer(rng.integers(-40, 40, size=(4, 16)), neuron),
        ),
        input_shape=(10,),
        input_message_bits=8,
    )
    inputs = rng.integers(0, 256, size=(3, 10, 8))
    inputs[2] = inputs[0]
    batch = run_golden(spec, inputs)
    assert batch.spikes[0].sum() > 0 and batch.output.sum() > 0, "expected spikes in both layers"
    for b in range(3):
        single = run_golden(spec, inputs[b : b + 1])
        for i in range(2):
            for name in ("spikes", "u", "v"):
                a, s = getattr(batch, name)[i][b], getattr(single, name)[i][0]
                assert np.array_equal(a, s), (
                    f"sample {b} layer {i} {name} differs from a single run"
                )
    assert np.array_equal(batch.output[0], batch.output[2]), "identical rows gave different spikes"


def test_rejects_inputs_of_the_wrong_shape() -> None:
    spec = _dense_net([[1, -1]], CubaNeuron(4096, 4096, 1))
    with pytest.raises(ValueError, match=r"inputs must be \(B, 2, S\)"):
        run_golden(spec, np.zeros((1, 3, 4), dtype=np.int64))


# --- the float64 fast path run_golden takes == the int64 reference functions ---------------------


def _int64_reference_run(spec, x_lava):
    """run_golden's semantics written with the int64 reference functions only (no fast path)."""
    from tsslbp.hwmodels.golden import (
        CubaParams,
        CubaState,
        conv_synapse,
        cuba_step,
        dense_synapse,
        from_lava_order,
    )
    from tsslbp.hwmodels.weights import applied_dense_weights, pack_dense_weights

    x = x_lava.astype(np.int64)
    x = from_lava_order(x) if x.ndim == 5 else x
    batch, n_steps = x.shape[0], x.shape[-1]
    states = [
        CubaState.zeros((batch, *layer.shape)) if not isinstance(layer, FlattenLayer) else None
        for layer in spec.layers
    ]
    buffers = [np.zeros((batch, *layer.shape), dtype=np.int64) for layer in spec.layers]
    out = []
    for t in range(n_steps):
        pre = x[..., t]
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, FlattenLayer):
                pre = pre.reshape(batch, -1)
                continue
            graded = i == 0 and spec.input_message_bits > 0
            a_in = buffers[i]
            if isinstance(layer, DenseLayer):
                packed = pack_dense_weights(layer.weight)
                buffers[i] = dense_synapse(
                    pre, applied_dense_weights(packed), packed.weight_exp, graded
                )
            else:
                buffers[i] = conv_synapse(pre, layer, graded)
            spikes, states[i] = cuba_step(a_in, 0, states[i], CubaParams.from_neuron(layer.neuron))
            pre = spikes.astype(np.int64)
        out.append((pre.copy(), states[-1].u.copy(), states[-1].v.copy()))
    return out


@pytest.mark.parametrize("weight_range, input_max", [(40, 15), (254, 255), (254, 60000)])
def test_fast_path_equals_the_int64_reference_functions(rng, weight_range, input_max) -> None:
    """Dense + conv nets whose state ranges from small to wrapping (which forces the int64 fallback),
    with inputs that repeat, stop and change over time (the input memo and zero skip)."""
    conv = ConvLayer(
        weight=2 * rng.integers(-weight_range // 2, weight_range // 2 + 1, (3, 2, 3, 3)),
        neuron=CubaNeuron(1365, 819, 40),
        in_shape=(2, 4, 4),
        shape=(3, 4, 4),
        padding=(1, 1),
    )
    dense = DenseLayer(
        weight=2 * rng.integers(-weight_range // 2, weight_range // 2 + 1, (5, 48)),
        neuron=CubaNeuron(4096, 100, 3),
    )
    spec = NetworkSpec(
        layers=(conv, FlattenLayer(in_shape=(3, 4, 4)), dense),
        input_shape=(2, 4, 4),
        input_message_bits=16,
    )
    frames = rng.integers(0, input_max + 1, (6, 4, 4, 2, 1))
    x = np.concatenate(
        [frames] * 3 + [np.zeros_like(frames), frames, frames // 2, np.zeros_like(frames)], axis=-1
    )
    got = run_golden(spec, x, record=True)
    want = _int64_reference_run(spec, x)
    for t, (spikes, u, v) in enumerate(want):
        assert np.array_equal(got.spikes[-1][..., t], spikes), f"spikes differ at step {t}"
        assert np.array_equal(got.u[-1][..., t], u) and np.array_equal(got.v[-1][..., t], v), (
            f"u/v differ at step {t}"
        )
    assert np.abs(np.stack([w[1] for w in want])).max() > 0, "the network must be driven"


def test_fast_cuba_step_matches_cuba_step_at_the_edges(rng) -> None:
    from tsslbp.hwmodels.golden import CubaParams, CubaState, _cuba_step_f64, _StateF64, cuba_step

    edge = np.array(
        [
            0,
            1,
            -1,
            (1 << 23) - 1,
            1 << 23,
            -(1 << 23),
            -(1 << 23) + 1,
            (1 << 25),
            -(1 << 25),
            (1 << 30),
            -(1 << 31),
        ]
    )
    u = np.concatenate([edge, rng.integers(-(1 << 23), (1 << 23) + 1, 200)])
    v = np.concatenate([edge[:7], rng.integers(-(1 << 23) + 1, 1 << 23, 204)])
    for a_scale in (1 << 10, 1 << 17, 1 << 24, 1 << 31):
        a_in = rng.integers(-a_scale, a_scale, u.shape)
        for params in (
            CubaParams(1365, 819, 100),
            CubaParams(0, 4096, 0),
            CubaParams(4096, 0, 131071),
        ):
            bias = rng.integers(-(1 << 15), 1 << 15, u.shape)
            s_ref, st_ref = cuba_step(a_in, bias, CubaState(u, v), params)
            s_fast, st_fast = _cuba_step_f64(
                a_in.astype(float),
                float(np.abs(a_in).max()),
                (bias << 6).astype(float),
                _StateF64(u.astype(float), v.astype(float), float(np.abs(u).max())),
                params,
            )
            assert np.array_equal(s_ref, s_fast), f"spikes differ (a up to {a_scale}, {params})"
            assert np.array_equal(st_ref.u, st_fast.u) and np.array_equal(st_ref.v, st_fast.v), (
                f"state differs (a up to {a_scale}, {params})"
            )
