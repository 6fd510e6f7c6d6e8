"""The data behind the plots: confusion counts, time alignment of float and fixed-point spikes."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tsslbp.config import parse_config
from tsslbp.hwmodels.golden import to_lava_order
from tsslbp.hwmodels.spec import ConvLayer, CubaNeuron, DenseLayer, FlattenLayer, NetworkSpec
from tsslbp.train.network import TsslbpNetwork
from tsslbp.workflows.analysis import (
    confusion_counts,
    fixed_layer_spikes,
    float_layer_spikes,
    float_predictions,
    spike_rates,
)

NEURON = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=100)


def test_confusion_counts_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    preds = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2])
    counts = confusion_counts(labels, preds, 3)
    assert counts.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert counts.sum() == len(labels) and np.trace(counts) == int((labels == preds).sum())


def test_confusion_counts_rejects_bad_input():
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_counts(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_counts(np.array([0, 1]), np.array([0]), 3)


def test_fixed_spikes_are_cut_to_each_layers_window(rng):
    # conv (2 ch, 3x3) -> flatten -> dense 4 -> dense 3, T = 4: neuron layer k sees step t at t + k + 1.
    conv = ConvLayer(
        weight=np.ones((2, 1, 1, 1), dtype=np.int64),
        neuron=NEURON,
        in_shape=(1, 3, 3),
        shape=(2, 3, 3),
    )
    spec = NetworkSpec(
        layers=(
            conv,
            FlattenLayer(in_shape=(2, 3, 3)),
            DenseLayer(np.ones((4, 18), np.int64), NEURON),
            DenseLayer(np.ones((3, 4), np.int64), NEURON),
        ),
        input_shape=(1, 3, 3),
        input_message_bits=0,
        metadata={"n_steps": 4},
    )
    steps = 7
    chw = rng.integers(0, 2, size=(2, 2, 3, 3, steps)).astype(np.int8)
    dense1 = rng.integers(0, 2, size=(2, 4, steps)).astype(np.int8)
    dense2 = rng.integers(0, 2, size=(2, 3, steps)).astype(np.int8)
    run = SimpleNamespace(
        spikes=[to_lava_order(chw), rng.integers(0, 2, size=(2, 18, steps)), dense1, dense2]
    )
    out = fixed_layer_spikes(run, spec)
    assert [a.shape for a in out] == [(2, 18, 4), (2, 4, 4), (2, 3, 4)], (
        "flatten skipped, T steps each"
    )
    assert np.array_equal(out[0], chw.reshape(2, 18, steps)[..., 1:5]), (
        "conv: back in (C, H, W) order, steps 1..4"
    )
    assert np.array_equal(out[1], dense1[..., 2:6])
    assert np.array_equal(out[2], dense2[..., 3:7])
    with pytest.raises(ValueError, match="neuron layer 1: the run has 6 steps, its window needs 7"):
        fixed_layer_spikes(
            SimpleNamespace(spikes=[a[..., :6] for a in run.spikes]), spec, n_steps=5
        )


def test_float_layer_spikes_are_the_forward_pass():
    cfg = parse_config(
        {
            "Network": {"dataset": "digits", "n_steps": 5},
            "Layers": {
                "hidden": {"type": "linear", "n_inputs": 64, "n_outputs": 12, "weight_scale": 3.0},
                "drop": {"type": "dropout", "p": 0.5},
                "output": {"type": "linear", "n_inputs": 12, "n_outputs": 10, "weight_scale": 3.0},
            },
        }
    )
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    x = torch.rand(6, 64)
    spikes = float_layer_spikes(model, x)
    with torch.no_grad():
        out = model(x)  # eval mode was set: dropout off, so the same pass
    assert [s.shape for s in spikes] == [(6, 12, 5), (6, 10, 5)]
    assert np.array_equal(spikes[0], out.hidden_spikes[0].numpy()) and np.array_equal(
        spikes[1], out.spikes.numpy()
    )
    assert spikes[0].sum() > 0, "the hidden layer should spike"
    assert np.array_equal(
        float_predictions(model, x, batch_size=4), out.spikes.sum(-1).argmax(-1).numpy()
    )


def test_spike_rates():
    a = np.zeros((2, 4, 5))
    a[0, 0, :] = 1
    assert spike_rates([a, np.ones((1, 2, 5))]) == [5 / 40, 1.0]
