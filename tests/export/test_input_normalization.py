"""Input normalization (x - mean) / std: trained as such, exported as [x, 1] into the first layer."""

import numpy as np
import pytest
import torch
from netbuild import scaled_model

from tsslbp.config import ConfigError, parse_config
from tsslbp.export.fold import (
    FoldedConv,
    FoldedDense,
    FoldError,
    fold_network,
    folded_traces,
    with_constant_ones,
)
from tsslbp.export.quantize import QuantConfig, quantize_network
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec

CNN = {
    "c1": {"type": "conv", "in_channels": 3, "out_channels": 6, "kernel_size": 3, "padding": 1},
    "p1": {"type": "pooling", "kernel_size": 4},
    "c2": {"type": "conv", "in_channels": 6, "out_channels": 8, "kernel_size": 3, "padding": 1},
    "p2": {"type": "pooling", "kernel_size": 2},
    "o": {"type": "linear", "n_inputs": 128, "n_outputs": 10},
}
MLP = {
    "h": {"type": "linear", "n_inputs": 64, "n_outputs": 30},
    "o": {"type": "linear", "n_inputs": 30, "n_outputs": 10},
}


def _check_fold(model, x, images):
    """The folded network on [x, 1] has the trained network's currents (to rounding) and spikes."""
    with torch.no_grad():
        out = model(x)
    expected = [*out.hidden_spikes, out.spikes]
    folded = fold_network(model)
    shaped = x.reshape(x.shape[0], *model.input_shape) if images else x
    traces = folded_traces(folded, with_constant_ones(shaped), model.n_steps, model.tau_syn)
    assert len(traces) == len(expected)
    for i, ((_, lif), spikes) in enumerate(zip(traces, expected)):
        assert spikes.sum() > 0, f"sanity: layer {i} spikes"
        assert torch.equal(lif.spikes, spikes), (
            f"layer {i}: {int((lif.spikes != spikes).sum())} differ"
        )
    return folded


def test_normalization_changes_what_the_network_computes(rng):
    """Sanity for the tests below: the normalized network is not the plain one."""
    _, plain = scaled_model(dataset="digits", raw_layers=MLP)
    _, normed = scaled_model(dataset="digits", raw_layers=MLP, input_mean=0.3, input_std=0.4)
    x = torch.from_numpy(rng.uniform(0, 1, size=(16, 64)))
    with torch.no_grad():
        assert not torch.equal(plain(x).spikes, normed(x).spikes)
        assert torch.equal(normed(x).spikes, plain((x - 0.3) / 0.4).spikes)


def test_conv_fold_is_exact_per_channel_and_at_the_padded_borders(rng):
    cfg, model = scaled_model(
        dataset="cifar10",
        raw_layers=CNN,
        input_mean=[0.49, 0.48, 0.45],
        input_std=[0.25, 0.24, 0.26],
        gain=1.5,
    )
    x = torch.from_numpy(rng.uniform(0, 1, size=(6, 3 * 32 * 32)))
    folded = _check_fold(model, x, images=True)
    first = folded[0]
    assert isinstance(first, FoldedConv) and first.in_shape == (4, 32, 32)
    w = model.layers[0].weight.detach().double().numpy()
    std = np.array([0.25, 0.24, 0.26])[None, :, None, None]
    mean = np.array([0.49, 0.48, 0.45])[None, :, None, None]
    np.testing.assert_allclose(first.weight[:, :3], w / std)
    np.testing.assert_allclose(first.weight[:, 3], -(w * mean / std).sum(axis=1))


def test_dense_fold_adds_one_constant_input(rng):
    cfg, model = scaled_model(
        dataset="digits", raw_layers=MLP, input_mean=0.3, input_std=0.4, gain=3.0
    )
    folded = _check_fold(model, torch.from_numpy(rng.uniform(0, 1, size=(32, 64))), images=False)
    assert isinstance(folded[0], FoldedDense) and folded[0].weight.shape == (30, 65)


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            {
                "p": {"type": "pooling", "kernel_size": 2},
                "o": {"type": "linear", "n_inputs": 16, "n_outputs": 10},
            },
            "a pooling layer before it",
        ),
        (
            {
                "c": {"type": "conv", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
                "p": {"type": "pooling", "kernel_size": 2},
                "o": {"type": "linear", "n_inputs": 18, "n_outputs": 10},
            },
            None,
        ),
    ],
)
def test_what_cannot_take_the_constant_input_is_refused(layers, message):
    _, model = scaled_model(dataset="digits", raw_layers=layers, input_mean=0.3, input_std=0.4)
    if message is None:  # the same network with a conv first folds
        fold_network(model)
        return
    with pytest.raises(FoldError, match=message):
        fold_network(model)


def test_grouped_first_conv_is_refused():
    layers = {
        "c": {"type": "conv", "in_channels": 3, "out_channels": 3, "kernel_size": 3, "groups": 3},
        "p": {"type": "pooling", "kernel_size": 10},
        "o": {"type": "linear", "n_inputs": 27, "n_outputs": 10},
    }
    _, model = scaled_model(dataset="cifar10", raw_layers=layers, input_mean=0.5, input_std=0.25)
    with pytest.raises(FoldError, match="groups 1, found 3"):
        fold_network(model)


@pytest.mark.parametrize(
    "network, message",
    [
        ({"input_mean": 0.3}, "Network.input_std: expected a value, since input_mean is given"),
        ({"input_std": 0.3}, "Network.input_mean: expected a value, since input_std is given"),
        ({"input_mean": 0.3, "input_std": 0}, "Network.input_std: expected a number > 0"),
        ({"input_mean": "a", "input_std": 1}, "Network.input_mean: expected a number or a list"),
        ({"input_mean": [0.1, 0.2], "input_std": 1}, "one value or 1 \\(one per input channel"),
        ({"input_mean": [], "input_std": 1}, "Network.input_mean: expected"),
    ],
)
def test_config_errors_name_the_key(network, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"Network": {"dataset": "digits", **network}, "Layers": MLP})


def test_config_refuses_event_data_and_round_trips():
    conv = {
        "c": {"type": "conv", "in_channels": 2, "out_channels": 2, "kernel_size": 3},
        "o": {"type": "linear", "n_inputs": 2 * 32 * 32, "n_outputs": 10},
    }
    with pytest.raises(ConfigError, match="no input normalization on event data"):
        parse_config(
            {"Network": {"dataset": "nmnist", "input_mean": 0, "input_std": 1}, "Layers": conv}
        )
    cfg = parse_config(
        {
            "Network": {"dataset": "cifar10", "input_mean": 0.5, "input_std": [1, 2, 3]},
            "Layers": CNN,
        }
    )
    assert cfg.input_normalization == ((0.5, 0.5, 0.5), (1.0, 2.0, 3.0))
    assert parse_config(cfg.to_dict()) == cfg
    plain = parse_config({"Network": {"dataset": "digits"}, "Layers": MLP})
    assert plain.input_normalization is None and "input_mean" not in plain.to_dict()["Network"]


@pytest.mark.parametrize("layers", [MLP, None], ids=["mlp", "cnn"])
def test_exported_file_takes_the_data_and_adds_the_constant(tmp_path, rng, layers):
    """The spec says input_ones; encoding appends a full-scale constant; golden ~ float."""
    from tsslbp.export.netx import read_netx, write_netx
    from tsslbp.workflows.inputs import encode_array

    if layers is None:
        layers = {
            "c": {
                "type": "conv",
                "in_channels": 1,
                "out_channels": 6,
                "kernel_size": 3,
                "padding": 1,
            },
            "p": {"type": "pooling", "kernel_size": 2},
            "o": {"type": "linear", "n_inputs": 96, "n_outputs": 10},
        }
    cfg, model = scaled_model(
        dataset="digits", raw_layers=layers, input_mean=0.3, input_std=0.4, gain=2.0
    )
    model = model.float()
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64))).float()
    spec, _ = quantize_network(model, cfg, x, QuantConfig(input_bits=8))
    write_netx(spec, tmp_path / "m.net")
    spec = read_netx(tmp_path / "m.net")
    image = "c" in layers
    assert spec.input_ones and spec.input_shape == ((2, 8, 8) if image else (65,))
    assert spec.data_shape == ((1, 8, 8) if image else (64,))
    inputs = encode_for_spec(x.numpy(), spec)
    constant = inputs[:, :, :, 1] if image else inputs[:, 64]  # Lava order (W, H, C) for images
    assert np.all(constant[..., :5] == 255) and np.all(constant[..., 5:] == 0)
    assert np.array_equal(encode_array(spec, x[0].numpy()), inputs[0])
    with pytest.raises(Exception, match="the network takes 64"):
        encode_array(spec, np.zeros(65))
    counts = run_golden(spec, inputs).spikes[-1][..., 2:7].sum(-1)
    with torch.no_grad():
        float_counts = model(x).spikes.sum(-1).numpy()
    assert float_counts.sum() > 0, "sanity: the float network spikes"
    agree = np.mean(counts.argmax(-1) == float_counts.argmax(-1))
    assert agree >= 0.9, f"golden and float predictions agree on {agree:.0%} of the samples"


@pytest.mark.lava
def test_normalized_cnn_runs_bit_exact_on_lava(rng):
    pytest.importorskip("lava")
    from tsslbp.deploy.runner import run_lava
    from tsslbp.deploy.verify import compare_runs

    layers = {
        "c": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
        "p": {"type": "pooling", "kernel_size": 2},
        "o": {"type": "linear", "n_inputs": 64, "n_outputs": 10},
    }
    cfg, model = scaled_model(
        dataset="digits", raw_layers=layers, input_mean=0.3, input_std=0.4, gain=2.0
    )
    x = torch.from_numpy(rng.uniform(0, 1, size=(16, 64))).float()
    spec, _ = quantize_network(model.float(), cfg, x, QuantConfig(input_bits=6))
    inputs = encode_for_spec(x[:4].numpy(), spec)
    golden = run_golden(spec, inputs, record=True)
    layers_cmp, first = compare_runs(golden, run_lava(spec, inputs, record=True))
    assert first is None, first.line()
    assert all(m.golden_spikes > 0 for m in layers_cmp), "sanity: every layer spikes"
