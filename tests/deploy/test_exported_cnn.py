"""An exported pooled CNN (conv + folded pooling + flatten + dense): fixed-point fold and Lava."""

import numpy as np
import pytest
import torch

from tsslbp.config import load_config
from tsslbp.configs import CONFIG_DIR
from tsslbp.export.quantize import QuantConfig, quantize_network
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec
from tsslbp.hwmodels.spec import ConvLayer
from tsslbp.train.network import TsslbpNetwork

CONFIG = CONFIG_DIR / "digits_cnn.yaml"


@pytest.fixture
def exported():
    cfg = load_config(CONFIG)
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    calib = torch.rand(24, 64)
    spec, _ = quantize_network(model, cfg, calib, QuantConfig(input_bits=6))
    return spec, calib


def _pool_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Integer sum pooling over k x k windows of (B, C, H, W, ...)."""
    b, c, h, w = x.shape[:4]
    x = x[:, :, : h // k * k, : w // k * k]
    return x.reshape(b, c, h // k, k, w // k, k, *x.shape[4:]).sum(axis=(3, 5))


def test_folded_integer_conv_equals_integer_pooling_then_the_unfolded_conv(exported, rng):
    """Fixed point: the folded kernel is block-constant, so the folded conv on spikes equals
    integer sum-pooling of the spikes followed by the small kernel (exact integers)."""
    spec, _ = exported
    conv = spec.layers[1]
    assert isinstance(conv, ConvLayer) and conv.weight.shape[2:] == (6, 6) and conv.stride == (2, 2)
    blocks = conv.weight.reshape(*conv.weight.shape[:2], 3, 2, 3, 2)
    small = blocks[:, :, :, 0, :, 0]
    assert np.array_equal(blocks, np.broadcast_to(small[:, :, :, None, :, None], blocks.shape)), (
        "block-constant"
    )
    spikes = (rng.random((5, 12, 8, 8)) < 0.3).astype(np.int64)
    folded = torch.nn.functional.conv2d(
        torch.from_numpy(spikes).double(),
        torch.from_numpy(conv.weight).double(),
        stride=2,
        padding=2,
    )
    unfolded = torch.nn.functional.conv2d(
        torch.from_numpy(_pool_sum(spikes, 2)).double(), torch.from_numpy(small).double(), padding=1
    )
    assert torch.equal(folded, unfolded)


@pytest.mark.lava
def test_golden_and_lava_agree_on_every_layer_and_step(exported):
    pytest.importorskip("lava")
    from tsslbp.deploy.runner import run_lava
    from tsslbp.deploy.verify import compare_runs

    spec, calib = exported
    inputs = encode_for_spec(calib[:6].numpy(), spec)
    golden = run_golden(spec, inputs, record=True)
    lava = run_lava(spec, inputs, record=True)
    layers, first = compare_runs(golden, lava)
    assert first is None, first.line()
    assert all(m.golden_spikes > 0 for m in layers), "sanity: every layer spikes"
    assert all(m.spike_match == m.u_match == m.v_match == 1.0 for m in layers)


@pytest.mark.lava
def test_event_input_network_exports_with_binary_input_and_runs_bit_exact(rng):
    """N-MNIST's network (T = 30, event frames in): binary input spikes, golden == Lava."""
    pytest.importorskip("lava")
    from tsslbp.deploy.runner import run_lava
    from tsslbp.deploy.verify import compare_runs
    from tsslbp.hwmodels.readout import predict_counts
    from tsslbp.train.losses import predict

    cfg = load_config(CONFIG.parent / "nmnist_cnn_t30.yaml")
    torch.manual_seed(2)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    frames = torch.from_numpy((rng.random((6, 2, 34, 34, 30)) < 0.08).astype(np.float32))
    spec, _ = quantize_network(model, cfg, frames)
    assert spec.input_message_bits == 0 and spec.metadata["input_encoding"] == "binary"
    assert spec.metadata["steps_per_sample"] == 30 + 3
    inputs = encode_for_spec(frames.numpy(), spec)
    assert inputs.shape == (6, 34, 34, 2, 33) and inputs[..., 30:].sum() == 0
    golden = run_golden(spec, inputs, record=True)
    with torch.no_grad():
        float_pred = predict(model(frames).spikes).numpy()
    assert (predict_counts(golden.output, spec.metadata) == float_pred).mean() >= 0.5
    lava = run_lava(spec, inputs[:2], record=True)
    layers, first = compare_runs(
        type(golden)(
            [s[:2] for s in golden.spikes],
            [None if u is None else u[:2] for u in golden.u],
            [None if v is None else v[:2] for v in golden.v],
        ),
        lava,
    )
    assert first is None, first.line()
    assert all(m.golden_spikes > 0 for m in layers), "sanity: every layer spikes"


def test_folded_dense_after_pooling_stays_block_constant_with_zeros_where_pooling_dropped(exported):
    """The dense layer after the last pooling, rounded with error compensation (the default) on
    the pooled inputs: each original weight repeats over its pooled block of the map."""
    spec, _ = exported
    dense = spec.layers[-1]
    conv = spec.layers[1]
    c, h, w = conv.shape
    full = dense.weight.reshape(dense.weight.shape[0], c, h, w)
    ph, pw = h // 2, w // 2
    blocks = full[:, :, : ph * 2, : pw * 2].reshape(-1, c, ph, 2, pw, 2)
    small = blocks[:, :, :, :1, :, :1]
    assert np.array_equal(blocks, np.broadcast_to(small, blocks.shape)), "block-constant"
    assert not full[:, :, ph * 2 :, :].any() and not full[:, :, :, pw * 2 :].any(), (
        "rows and columns that pooling drops must have weight 0"
    )
