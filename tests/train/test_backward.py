"""The TSSL-BP autograd function against the plain step-by-step loop in tests/reference_tsslbp.py."""

import numpy as np
import pytest
import reference_tsslbp as ref
import torch

from tsslbp.config import parse_config
from tsslbp.train.autograd import tsslbp_spike
from tsslbp.train.functional import LIFParameters, psp
from tsslbp.train.losses import desired_spike_pattern, kernel_loss
from tsslbp.train.network import TsslbpNetwork


@pytest.mark.parametrize("n_steps", [1, 2, 5, 12])
@pytest.mark.parametrize("tau_m,tau_s,v_th", [(5.0, 3.0, 1.0), (8.0, 4.0, 0.5)])
def test_layer_gradient_matches_loop_reference(rng, n_steps, tau_m, tau_s, v_th):
    n, c_in, c_out = 6, 10, 7
    x_psp = [rng.uniform(0, 1, size=(n, c_in)) for _ in range(n_steps)]
    weight = rng.normal(0, 0.8, size=(c_out, c_in))
    grad_a = [rng.normal(size=(n, c_out)) for _ in range(n_steps)]

    rec = ref.forward_layer(x_psp, weight, tau_m, tau_s, v_th)
    expected = np.stack(ref.backward_layer(grad_a, rec, tau_m, tau_s, v_th), axis=-1)

    current = torch.from_numpy(np.stack(rec["I"], axis=-1)).requires_grad_()
    spikes = tsslbp_spike(current, LIFParameters(tau_m, tau_s, v_th))
    a = psp(spikes, tau_s)
    np.testing.assert_array_equal(spikes.detach().numpy(), np.stack(rec["o"], axis=-1))
    np.testing.assert_allclose(
        a.detach().numpy(), np.stack(rec["a"], axis=-1), rtol=1e-12, atol=1e-12
    )
    (a * torch.from_numpy(np.stack(grad_a, axis=-1))).sum().backward()
    assert rec["o"][0].sum() + sum(o.sum() for o in rec["o"]) > 0, "sanity: some neuron must spike"
    np.testing.assert_allclose(current.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


def _config(layers, n_steps):
    return parse_config(
        {
            "Network": {
                "dataset": "digits",
                "n_steps": n_steps,
                "tau_m": 5,
                "tau_s": 3,
                "loss": "kernel",
            },
            "Layers": layers,
        }
    )


@pytest.mark.parametrize("n_steps", [5, 8])
def test_network_weight_gradients_match_loop_reference(rng, n_steps):
    layers = {
        "h1": {"type": "linear", "n_inputs": 64, "n_outputs": 30, "threshold": 1.0},
        "h2": {"type": "linear", "n_inputs": 30, "n_outputs": 20, "threshold": 0.8},
        "out": {"type": "linear", "n_inputs": 20, "n_outputs": 10, "threshold": 1.0},
    }
    cfg = _config(layers, n_steps)
    torch.manual_seed(3)
    model = TsslbpNetwork(cfg).double()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(2.0)  # more activity than the default init
    x = rng.uniform(0, 1, size=(9, 64))
    labels = rng.integers(0, 10, size=9)

    out = model(torch.from_numpy(x))
    loss = kernel_loss(out.spikes, torch.from_numpy(labels), 3.0)
    loss.backward()

    desired = (
        np.eye(10)[labels][..., None] * desired_spike_pattern(n_steps, dtype=torch.float64).numpy()
    )
    target_psp = psp(torch.from_numpy(desired), 3.0).numpy()
    weights = [layer.weight.detach().numpy() for layer in model.layers]
    ref_loss, ref_grads = ref.network_grads(
        x, weights, target_psp, n_steps, 5.0, 3.0, [1.0, 0.8, 1.0]
    )

    assert out.spikes.sum() > 0 and all(s.sum() > 0 for s in out.hidden_spikes), (
        "sanity: every layer spikes"
    )
    np.testing.assert_allclose(float(loss.detach()), ref_loss, rtol=1e-12)
    for layer, expected in zip(model.layers, ref_grads):
        np.testing.assert_allclose(layer.weight.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_gradient_does_not_depend_on_device_placement_of_batch(rng):
    """Vectorized over the batch: a sample's gradient is the same alone or in a batch."""
    p = LIFParameters(5.0, 3.0, 1.0)
    current = torch.from_numpy(rng.normal(0.6, 0.7, size=(5, 12, 5)))
    g = torch.from_numpy(rng.normal(size=(5, 12, 5)))
    full = current.clone().requires_grad_()
    (tsslbp_spike(full, p) * g).sum().backward()
    for i in range(5):
        one = current[i : i + 1].clone().requires_grad_()
        (tsslbp_spike(one, p) * g[i : i + 1]).sum().backward()
        torch.testing.assert_close(one.grad[0], full.grad[i], rtol=0, atol=0)
