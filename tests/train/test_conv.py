"""Conv and pooling layers: exact equivalences with the dense path and with hand sums."""

import pytest
import torch
import torch.nn.functional as F
from test_config import CONFIGS

from tsslbp.config import load_config, parse_config
from tsslbp.data import load_digits
from tsslbp.train.functional import LIFParameters, psp, static_psp_coefficients
from tsslbp.train.layers import (
    SeparableTrace,
    SpikingConv2d,
    SpikingLinear,
    SumPooling,
    materialize,
)
from tsslbp.train.loop import fit

P = LIFParameters(5.0, 3.0, 1.0)


def _conv(rng_seed=0, **kw):
    torch.manual_seed(rng_seed)
    layer = SpikingConv2d(2, 3, (3, 2), P, stride=(1, 2), padding=(1, 0), **kw).double()
    with torch.no_grad():
        layer.weight.mul_(4.0)
    return layer


def test_conv_on_separable_input_equals_materialized(rng):
    layer = _conv()
    x = torch.from_numpy(rng.uniform(0, 1, size=(3, 2, 6, 5)))
    coeff = static_psp_coefficients(5, 3.0, dtype=torch.float64)
    sep = SeparableTrace(x.clone().requires_grad_(), coeff)
    full = materialize(SeparableTrace(x, coeff)).clone().requires_grad_()
    out_sep, out_full = layer(sep), layer(full)
    assert out_sep.sum() > 0, "sanity: some spikes"
    assert torch.equal(out_sep, out_full)
    g = torch.from_numpy(rng.normal(size=out_sep.shape))
    (psp(out_sep, 3.0) * g).sum().backward()
    grad_sep = layer.weight.grad.clone()
    layer.weight.grad = None
    (psp(out_full, 3.0) * g).sum().backward()
    torch.testing.assert_close(grad_sep, layer.weight.grad, rtol=1e-10, atol=1e-12)


def test_conv_equals_dense_layer_with_the_unrolled_matrix(rng):
    """A conv layer is a dense layer with a structured matrix: same spikes, same weight gradient."""
    conv = _conv()
    in_shape = (2, 5, 6)
    n_in = 2 * 5 * 6
    # Build the dense matrix column by column from the conv's response to unit inputs.
    with torch.no_grad():
        eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape)
        cols = F.conv2d(eye, conv.weight, None, conv.stride, conv.padding)
    out_shape = cols.shape[1:]
    dense = SpikingLinear(n_in, cols[0].numel(), P).double()
    with torch.no_grad():
        dense.weight.copy_(cols.reshape(n_in, -1).T)
    trace = torch.from_numpy(rng.uniform(0, 1, size=(4, *in_shape, 5)))
    s_conv = conv(trace)
    s_dense = dense(trace.reshape(4, n_in, 5))
    assert torch.equal(s_conv.reshape(4, -1, 5), s_dense)
    g = torch.from_numpy(rng.normal(size=s_dense.shape))
    (psp(s_conv, 3.0).reshape(4, -1, 5) * g).sum().backward()
    (psp(s_dense, 3.0) * g).sum().backward()
    # d/dW_conv = sum over the positions where each kernel entry appears in the dense matrix.
    expected = torch.autograd.grad(
        (
            F.conv2d(eye, conv.weight, None, conv.stride, conv.padding).reshape(n_in, -1).T
            * dense.weight.grad
        ).sum(),
        conv.weight,
    )[0]
    torch.testing.assert_close(conv.weight.grad, expected, rtol=1e-9, atol=1e-12)
    assert out_shape == (3, 5, 3)


def test_sum_pooling_by_hand():
    x = torch.arange(2 * 1 * 4 * 5 * 3, dtype=torch.float64).reshape(2, 1, 4, 5, 3)
    out = SumPooling((2, 2), scale=1.1)(x)
    assert out.shape == (2, 1, 2, 2, 3), "the fifth column is dropped"
    expected = 1.1 * (x[:, :, 0, 0] + x[:, :, 0, 1] + x[:, :, 1, 0] + x[:, :, 1, 1])
    torch.testing.assert_close(out[:, :, 0, 0], expected)
    sep = SumPooling((2, 2))(
        SeparableTrace(x[..., 0], torch.tensor([1.0, 2.0], dtype=torch.float64))
    )
    torch.testing.assert_close(materialize(sep)[..., 1], 2.0 * out[..., 0])


def test_config_shapes_chain_through_conv_and_pooling():
    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    from tsslbp.config import layer_shapes

    assert layer_shapes(cfg) == [(12, 8, 8), (12, 4, 4), (32, 4, 4), (32, 2, 2), (10,)]


def test_conv_config_errors():
    base = {
        "Network": {"dataset": "digits"},
        "Layers": {
            "c": {"type": "conv", "in_channels": 2, "out_channels": 4, "kernel_size": 3},
            "o": {"type": "linear", "n_inputs": 144, "n_outputs": 10},
        },
    }
    with pytest.raises(
        ValueError,
        match=r"Layers.c.in_channels: expected 1 \(the channels reaching this layer\), found 2",
    ):
        parse_config(base)
    base["Layers"]["c"]["in_channels"] = 1
    parse_config(base)  # 4 x 6 x 6 = 144
    base["Layers"]["c"]["kernel_size"] = [3, 0]
    with pytest.raises(
        ValueError, match="Layers.c.kernel_size: expected an integer >= 1 or a pair"
    ):
        parse_config(base)


def test_digits_cnn_learns(tmp_path):
    cfg = load_config(CONFIGS / "digits_cnn.yaml").replace(epochs=3)
    history = fit(cfg, load_digits(), tmp_path, progress=False)
    assert history[-1].test_acc > 0.4, (
        f"expected clearly above chance (10%), found {history[-1].test_acc:.3f}"
    )
