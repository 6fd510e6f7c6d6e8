"""The benchmarks' step-by-step TSSL-BP baseline computes the same gradients as tsslbp."""

import numpy as np
import pytest
import reference_tsslbp as numpy_ref
import torch
from test_config import CONFIGS

from tsslbp.bench.reference import step_by_step_grads
from tsslbp.config import load_config
from tsslbp.train.losses import kernel_loss
from tsslbp.train.network import TsslbpNetwork


def _package_grads(model, x, labels):
    model.zero_grad(set_to_none=True)
    loss = kernel_loss(model(x).spikes, labels, model.tau_syn)
    loss.backward()
    return loss.detach(), [layer.weight.grad for layer in model.layers if hasattr(layer, "weight")]


@pytest.mark.parametrize("config", ["digits_mlp.yaml", "digits_cnn.yaml"])
def test_step_by_step_gradients_equal_the_package_gradients(config, rng):
    cfg = load_config(CONFIGS / config)
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg).double()
    with torch.no_grad():  # enough activity at initialisation that every layer gets a gradient
        for weight in model.parameters():
            weight.mul_(3.0)
    x = torch.from_numpy(rng.uniform(0, 1, (6, cfg.input_size)))
    labels = torch.from_numpy(rng.integers(0, 10, 6))
    loss_ref, grads_ref = step_by_step_grads(model, x, labels)
    loss_pkg, grads_pkg = _package_grads(model, x, labels)
    assert torch.allclose(loss_ref, loss_pkg, rtol=1e-12), f"loss {loss_ref} vs {loss_pkg}"
    assert len(grads_ref) == len(grads_pkg)
    for i, (a, b) in enumerate(zip(grads_ref, grads_pkg)):
        assert a.abs().max() > 0, f"layer {i}: the test needs a nonzero gradient"
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), (
            f"layer {i}: max diff {(a - b).abs().max():.3e}"
        )


def test_step_by_step_mlp_equals_the_independent_numpy_loop(rng):
    cfg = load_config(CONFIGS / "digits_mlp.yaml")
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg).double()
    x = rng.uniform(0, 1, (5, cfg.input_size))
    labels = rng.integers(0, 10, 5)
    _, grads = step_by_step_grads(model, torch.from_numpy(x), torch.from_numpy(labels))
    from tsslbp.train.functional import psp
    from tsslbp.train.losses import desired_spike_pattern

    desired = (
        np.eye(10)[labels][..., None]
        * desired_spike_pattern(cfg.n_steps, dtype=torch.float64).numpy()
    )
    target = psp(torch.from_numpy(desired), cfg.neuron.tau_s).numpy()
    weights = [layer.weight.detach().numpy() for layer in model.layers]
    thresholds = [layer.neuron.v_th for layer in model.layers]
    _, expected = numpy_ref.network_grads(
        x, weights, target, cfg.n_steps, cfg.neuron.tau_m, cfg.neuron.tau_s, thresholds
    )
    for a, b in zip(grads, expected):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-9, atol=1e-12)
