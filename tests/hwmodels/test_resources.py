"""Resource model: synapse counts, fan-in/out, core packing at the limits, synops, energy, latency."""

import numpy as np
import pytest

from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.resources import (
    E_NEURON_ACTIVE_PJ,
    E_NEURON_INACTIVE_PJ,
    E_SPIKE_TILE_PJ,
    E_SYNOP_PJ,
    CoreLimits,
    fan_in,
    fan_out,
    layer_synapses,
    pack_network,
    resource_report,
    row_bits,
    weight_storage_bits,
)
from tsslbp.hwmodels.spec import ConvLayer, CubaNeuron, DenseLayer, FlattenLayer, NetworkSpec

NEURON = CubaNeuron(i_decay=4096, v_decay=4096, v_th_mant=0)  # spikes on any positive input


def _conv(in_shape, out_channels, k, stride=1, padding=0, groups=1, dilation=1):
    c, h, w = in_shape
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    weight = np.ones((out_channels, c // groups, k, k), dtype=np.int64)
    return ConvLayer(
        weight,
        NEURON,
        in_shape,
        (out_channels, ho, wo),
        (stride, stride),
        (padding, padding),
        (dilation, dilation),
        groups,
    )


def test_dense_synapses_fan_in_fan_out():
    layer = DenseLayer(np.ones((3, 4), dtype=np.int64), NEURON)
    assert layer_synapses(layer) == 12 and fan_in(layer) == 4
    assert fan_out(layer).tolist() == [3, 3, 3, 3]


def test_conv_synapses_leave_out_padding_taps():
    # 4x4 input, 3x3 kernel, padding 1: 4 corners see 4 taps, 8 edge pixels 6, 4 interior 9.
    layer = _conv((1, 4, 4), 2, 3, padding=1)
    assert layer.shape == (2, 4, 4)
    assert layer_synapses(layer) == 2 * (4 * 4 + 8 * 6 + 4 * 9), "2 output channels x 100 taps"
    assert fan_in(layer) == 9


def test_conv_synapses_with_stride_and_groups():
    strided = _conv((1, 5, 5), 1, 3, stride=2)
    assert strided.shape == (1, 2, 2) and layer_synapses(strided) == 4 * 9
    # A 5x5 input with stride 2: the centre pixel (2, 2) feeds all four outputs, a corner one.
    assert fan_out(strided).reshape(5, 5)[2, 2] == 4 and fan_out(strided).reshape(5, 5)[0, 0] == 1
    grouped = _conv((4, 3, 3), 4, 1, groups=2)
    assert layer_synapses(grouped) == 4 * 9 * 2, (
        "4 output channels x 9 pixels x 2 input channels per group"
    )
    assert fan_in(grouped) == 2
    assert fan_out(grouped).tolist() == [2] * 36, (
        "each input feeds the 2 output channels of its group"
    )


@pytest.mark.parametrize(
    "k, stride, padding, dilation, groups",
    [(3, 1, 0, 1, 1), (5, 2, 2, 1, 1), (3, 2, 1, 2, 2), (2, 3, 1, 1, 4)],
)
def test_fan_out_adds_up_to_the_synapses(k, stride, padding, dilation, groups):
    layer = _conv((4, 9, 11), 8, k, stride, padding, groups, dilation)
    assert fan_out(layer).sum() == layer_synapses(layer), (
        "every synapse leaves exactly one input neuron"
    )


def test_weight_storage_bits():
    assert weight_storage_bits(np.array([[1, -1]])) == 2, "1 magnitude bit + sign"
    assert weight_storage_bits(np.array([[0, 255]])) == 8
    assert weight_storage_bits(np.array([[-256, 254]])) == 9
    assert weight_storage_bits(np.array([[64, -128]])) == 3, (
        "factor 64 goes to the exponent: 1, -2 need 2 bits + sign"
    )


def test_row_bits_rows_of_64_with_header():
    assert row_bits(np.array([0, 1, 6, 7, 64, 128]), 8).tolist() == [0, 64, 64, 128, 576, 1152]


def _dense_spec(n_out, n_in, weight=None):
    w = np.ones((n_out, n_in), dtype=np.int64) if weight is None else weight
    return NetworkSpec(layers=(DenseLayer(w, NEURON),), input_shape=(n_in,))


def test_packing_at_the_neuron_limit():
    (p,) = pack_network(_dense_spec(10, 2), CoreLimits(neurons=4))
    assert [c.neurons for c in p.chunks] == [4, 4, 2] and p.limited_by == "neurons"
    (p,) = pack_network(_dense_spec(4, 2), CoreLimits(neurons=4))
    assert p.cores == 1 and p.limited_by == "layer size"


def test_packing_at_the_synapse_memory_limit():
    # Weights 0/1 take 1 bit: 2 axons x 64 bits per row holds 54 targets; 128 bits per core -> 54 neurons.
    limits = CoreLimits(synapse_bits=128)
    (p,) = pack_network(_dense_spec(60, 2), limits)
    assert [c.neurons for c in p.chunks] == [54, 6] and p.limited_by == "synapse memory"
    assert all(c.synapse_bits <= 128 for c in p.chunks)


def test_packing_input_and_output_axons():
    (p,) = pack_network(_dense_spec(3, 5), CoreLimits(in_axons=4))
    assert p.unplaceable, "a neuron with 5 presynaptic neurons cannot fit 4 input axons"
    # Layer 0 (4 neurons) feeds 6 neurons packed 2 per core: each of its spikes goes to 3 cores.
    spec = NetworkSpec(
        layers=(
            DenseLayer(np.ones((4, 2), np.int64), NEURON),
            DenseLayer(np.ones((6, 4), np.int64), NEURON),
        ),
        input_shape=(2,),
    )
    first, second = pack_network(spec, CoreLimits(neurons=2, out_axons=7))
    assert second.cores == 3 and second.sources_reached.tolist() == [3, 3, 3, 3]
    assert [c.out_axons for c in first.chunks] == [6, 6] and first.cores == 2


def test_conv_tiles_respect_every_limit():
    layer = _conv((3, 12, 12), 8, 3, padding=1)
    spec = NetworkSpec(layers=(layer,), input_shape=(3, 12, 12))
    limits = CoreLimits(neurons=200, in_axons=150, synapse_bits=1 << 20)
    (p,) = pack_network(spec, limits)
    assert sum(c.neurons for c in p.chunks) == 8 * 12 * 12
    assert all(c.neurons <= 200 and c.in_axons <= 150 for c in p.chunks), [
        (c.neurons, c.in_axons) for c in p.chunks
    ]
    assert p.cores >= -(-8 * 12 * 12 // 200)


def test_synops_from_a_known_spike_pattern():
    # 2 inputs -> 3 neurons -> 1 neuron; binary input spikes: input 0 at steps 0 and 2, input 1 at 1.
    spec = NetworkSpec(
        layers=(
            DenseLayer(np.ones((3, 2), np.int64), NEURON),
            DenseLayer(np.ones((1, 3), np.int64), NEURON),
        ),
        input_shape=(2,),
    )
    x = np.zeros((1, 2, 6), np.int64)
    x[0, 0, [0, 2]] = 1
    x[0, 1, 1] = 1
    run = run_golden(spec, x, record=True)
    rep = resource_report(spec, x, run.spikes, run.u, run.v)
    first, second = rep.activity
    assert first.input_events == 3 and first.synops == 3 * 3, "3 input spikes x fan-out 3"
    assert first.output_spikes == run.spikes[0].sum() == 9, (
        "every neuron fires one step after each input spike"
    )
    assert second.synops == 9 * 1 and second.output_spikes == 3
    assert first.spike_messages == 9, "one destination core"
    assert first.silent_fraction == 0.0
    expected = (
        (first.synops + second.synops) * E_SYNOP_PJ
        + (first.neuron_updates_active + second.neuron_updates_active) * E_NEURON_ACTIVE_PJ
        + (first.neuron_updates_inactive + second.neuron_updates_inactive) * E_NEURON_INACTIVE_PJ
        + 9 * E_SPIKE_TILE_PJ
    )
    assert rep.energy_pj["total"] == pytest.approx(expected)
    assert first.neuron_updates_active + first.neuron_updates_inactive == 3 * 6
    assert rep.latency_ns is not None and rep.latency_ns > 0


def test_graded_input_counts_one_op_per_nonzero_value():
    spec = NetworkSpec(
        layers=(DenseLayer(np.ones((4, 3), np.int64), NEURON),),
        input_shape=(3,),
        input_message_bits=8,
    )
    x = np.zeros((2, 3, 3), np.int64)
    x[0, :, 0] = [5, 0, 255]  # two nonzero values
    x[1, 1, 1] = 1
    run = run_golden(spec, x, record=True)
    (act,) = resource_report(spec, x, run.spikes, run.u, run.v).activity
    assert act.input_events == 3 / 2 and act.synops == 3 * 4 / 2, (
        "per sample: 1.5 events x fan-out 4"
    )


def test_conv_flatten_dense_activity_and_silent_neurons():
    conv = _conv((1, 3, 3), 2, 2)
    dense = DenseLayer(np.ones((2, 8), np.int64), CubaNeuron(4096, 4096, 1000))  # never fires
    spec = NetworkSpec(layers=(conv, FlattenLayer((2, 2, 2)), dense), input_shape=(1, 3, 3))
    x = np.zeros((1, 3, 3, 1, 4), np.int64)  # Lava order (W, H, C)
    x[0, 0, 0, 0, 0] = 1  # pixel (y=0, x=0) feeds only output pixel (0, 0) of each channel
    run = run_golden(spec, x, record=True)
    rep = resource_report(spec, x, run.spikes, run.u, run.v)
    conv_act, dense_act = rep.activity
    assert conv_act.synops == 2 and conv_act.output_spikes == 2
    assert dense_act.synops == 2 * 2 and dense_act.output_spikes == 0
    assert dense_act.silent_fraction == 1.0 and conv_act.silent_fraction == 6 / 8
    assert [p.layer for p in rep.packings] == [0, 1, 2] and rep.packings[1].cores == 0
