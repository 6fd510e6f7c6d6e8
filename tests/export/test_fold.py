"""Pooling folded into weights: the folded network is the trained network."""

import numpy as np
import pytest
import torch
from netbuild import scaled_model as _model
from test_config import CONFIGS

from tsslbp.config import load_config, parse_config
from tsslbp.export.fold import (
    FoldedConv,
    FoldedDense,
    FoldedFlatten,
    FoldError,
    fold_network,
    folded_traces,
    run_folded,
)
from tsslbp.train.network import TsslbpNetwork


def _assert_same_spikes(model, folded, x):
    with torch.no_grad():
        out = model(x.double())
    ours = run_folded(
        folded, x.reshape(x.shape[0], *model.input_shape), model.n_steps, model.tau_syn
    )
    expected = [*out.hidden_spikes, out.spikes]
    assert len(ours) == len(expected)
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert b.sum() > 0, f"sanity: layer {i} spikes"
        assert torch.equal(a, b), f"layer {i}: {int((a != b).sum())} spikes differ"


def test_folded_convs_run_in_chunks_of_frames_give_the_same_traces(rng, monkeypatch):
    """folded_traces bounds the unfolded patches of a conv call; one frame per call changes nothing."""
    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    torch.manual_seed(0)
    folded = fold_network(TsslbpNetwork(cfg).double().eval())
    x = torch.from_numpy(rng.uniform(0, 1, size=(8, 1, 8, 8)))
    whole = folded_traces(folded, x, cfg.n_steps, cfg.neuron.tau_s)
    monkeypatch.setattr("tsslbp.export.fold._CONV_CHUNK_BYTES", 1)
    chunked = folded_traces(folded, x, cfg.n_steps, cfg.neuron.tau_s)
    for (current_a, lif_a), (current_b, lif_b) in zip(whole, chunked, strict=True):
        assert torch.allclose(current_a, current_b, rtol=0, atol=1e-12)
        assert torch.equal(lif_a.spikes, lif_b.spikes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_cnn_fold_is_exact(rng, seed):
    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    torch.manual_seed(seed)
    model = TsslbpNetwork(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    folded = fold_network(model)
    assert [type(l) for l in folded] == [FoldedConv, FoldedConv, FoldedFlatten, FoldedDense]
    assert (
        folded[1].weight.shape == (32, 12, 6, 6)
        and folded[1].stride == (2, 2)
        and folded[1].padding == (2, 2)
    )
    assert folded[3].weight.shape == (10, 32 * 4 * 4)
    _assert_same_spikes(model, folded, torch.from_numpy(rng.uniform(0, 1, size=(16, 64))))


def test_consecutive_poolings_and_odd_sizes_into_dense(rng):
    layers = {
        "c": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 2},  # 7x7
        "p1": {"type": "pooling", "kernel_size": 2, "scale": 1.3},  # 3x3, one row/col dropped
        "d": {"type": "dropout", "p": 0.5},
        "p2": {"type": "pooling", "kernel_size": [3, 1], "scale": 0.9},  # 1x3
        "o": {"type": "linear", "n_inputs": 12, "n_outputs": 10},
    }
    cfg, model = _model(layers, gain=3.0)
    folded = fold_network(model)
    assert [type(l) for l in folded] == [FoldedConv, FoldedFlatten, FoldedDense]
    assert folded[1].in_shape == (4, 7, 7) and folded[2].weight.shape == (10, 4 * 7 * 7)
    assert np.all(folded[2].weight.reshape(10, 4, 7, 7)[:, :, 6, :] == 0), (
        "dropped row gets no weight"
    )
    _assert_same_spikes(model, folded, torch.from_numpy(rng.uniform(0, 1, size=(8, 64))))


def test_padded_conv_after_lossy_pooling_is_refused():
    layers = {
        "c": {"type": "conv", "in_channels": 1, "out_channels": 2, "kernel_size": 2},  # 7x7
        "p": {"type": "pooling", "kernel_size": 2},  # drops a row
        "c2": {"type": "conv", "in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": 1},
        "o": {"type": "linear", "n_inputs": 18, "n_outputs": 10},
    }
    _, model = _model(layers)
    with pytest.raises(FoldError, match="drops rows/columns that a padded conv would read"):
        fold_network(model)


def test_exported_cnn_metadata_keeps_the_layer_order(tmp_path, rng):
    """The embedded config's Layers mapping is the network: a netx round trip must keep its order."""
    from tsslbp.export.netx import read_netx, write_netx
    from tsslbp.export.quantize import QuantConfig, quantize_network

    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    spec, _ = quantize_network(model, cfg, torch.rand(16, 64), QuantConfig(input_bits=4))
    write_netx(spec, tmp_path / "m.net")
    again = parse_config(read_netx(tmp_path / "m.net").metadata["config"], "metadata")
    assert [layer.name for layer in again.layers] == [layer.name for layer in cfg.layers]
    assert again == cfg
