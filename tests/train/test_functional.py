"""Float LIF/PSP dynamics against values worked out by hand, and invariants."""

import math

import torch

from tsslbp.train.functional import (
    LIFParameters,
    LIFState,
    TsslbpGradParameters,
    lif_forward,
    lif_step,
    psp,
    psp_kernel,
    static_psp_coefficients,
    tsslbp_backward,
)

P = LIFParameters(tau_mem=5.0, tau_syn=3.0, v_th=1.0)


def test_lif_forward_matches_hand_computed_trajectory():
    # theta_m = 0.2, v_th = 1. By hand:
    # t0: u = 0.6 (no spike)   t1: u = 0.8*0.6 + 0.6 = 1.08 -> spike, reset
    # t2: u = 0.6              t3: u = 0.8*0.6 + 0.0 = 0.48
    current = torch.tensor([[0.6, 0.6, 0.6, 0.0]], dtype=torch.float64)
    trace = lif_forward(current, P)
    assert trace.spikes.tolist() == [[0.0, 1.0, 0.0, 0.0]]
    torch.testing.assert_close(trace.u, torch.tensor([[0.6, 1.08, 0.6, 0.48]], dtype=torch.float64))
    torch.testing.assert_close(
        trace.du, torch.tensor([[0.6, 0.48, 0.6, -0.12]], dtype=torch.float64)
    )


def test_psp_matches_hand_computed_trace():
    # theta_s = 1/3: a0 = 0, a1 = 1/3, a2 = 2/9, a3 = 4/27 + 1/3
    spikes = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 1 / 3, 2 / 9, 4 / 27 + 1 / 3], dtype=torch.float64)
    torch.testing.assert_close(psp(spikes, 3.0), expected)


def test_spike_needs_strictly_more_than_threshold():
    trace = lif_forward(torch.tensor([[1.0, 0.0]]), P)
    assert trace.spikes.sum() == 0, f"u == v_th must not spike, found spikes {trace.spikes}"


def test_static_coefficients_equal_psp_of_repeated_input():
    ones = torch.ones(7, dtype=torch.float64)
    torch.testing.assert_close(static_psp_coefficients(7, 3.0, dtype=torch.float64), psp(ones, 3.0))


def test_psp_kernel_sums_to_geometric_series():
    eps = psp_kernel(4, 2.0, dtype=torch.float64)
    assert eps.tolist() == [0.5, 0.25, 0.125, 0.0625]


def test_window_forward_equals_repeated_step(rng):
    current = torch.from_numpy(rng.normal(0.5, 0.6, size=(3, 8, 6)))
    trace = lif_forward(current, P)
    state = LIFState(torch.zeros(3, 8, dtype=torch.float64))
    for t in range(6):
        step, state = lif_step(current[..., t], state, P)
        assert torch.equal(step.spikes, trace.spikes[..., t]), f"spikes differ at t={t}"
        torch.testing.assert_close(step.u, trace.u[..., t])
        torch.testing.assert_close(step.du, trace.du[..., t])


def test_identical_rows_give_identical_outputs(rng):
    row = torch.from_numpy(rng.normal(0.5, 0.6, size=(1, 16, 5)))
    trace = lif_forward(row.expand(4, 16, 5), P)
    assert all(torch.equal(trace.spikes[0], trace.spikes[i]) for i in range(4))
    assert trace.spikes.sum() > 0, "sanity: the input must make some neuron spike"


def test_backward_single_spike_by_hand():
    # I = [1.5, 0]: spike at t0 (du = 1.5), silent after. dE/da = [1, 0]:
    # dE/do[0] = eps0 = 1/3; inter = (1/1.5) * 1/3 = 2/9; t1 has o = 0 and c = 0 -> 0.
    # PSP a = [1/3, 2/9] >= 1/(4*3), so no surrogate.
    current = torch.tensor([[1.5, 0.0]], dtype=torch.float64)
    trace = lif_forward(current, P)
    grad_spikes = torch.tensor([[1 / 3, 0.0]], dtype=torch.float64)  # adjoint of psp of [1, 0]
    grad = tsslbp_backward(grad_spikes, trace, P)
    torch.testing.assert_close(grad, torch.tensor([[2 / 9, 0.0]], dtype=torch.float64))


def test_backward_silent_neuron_uses_sigmoid_surrogate():
    # I = [0.5, 0.5] never fires: u = [0.5, 0.9]; dE/da = [1, 1] -> dE/do = [1/3 + 2/9, 1/3].
    current = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    trace = lif_forward(current, P)
    grad_spikes = torch.tensor([[5 / 9, 1 / 3]], dtype=torch.float64)
    gp = TsslbpGradParameters()

    def sig_prime(u):
        s = math.exp(min(max((1.0 - u) / 0.2, -8.0), 8.0))
        return s / ((1.0 + s) ** 2 * 0.2)

    expected = torch.tensor([[sig_prime(0.5) * 5 / 9, sig_prime(0.9) * 1 / 3]], dtype=torch.float64)
    torch.testing.assert_close(tsslbp_backward(grad_spikes, trace, P, gp), expected)


def test_psp_passes_gradcheck(rng):
    x = torch.from_numpy(rng.normal(size=(2, 3, 5))).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: psp(v, 3.0), (x,))


def test_psp_backward_is_its_adjoint_gradcheck():
    x = torch.rand(3, 2, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: psp(v, 3.0), (x,))
    # The same filter as the lower-triangular Toeplitz matrix K[t, s] = eps[t - s], on time-last and
    # time-first memory.
    eps = psp_kernel(6, 3.0, dtype=torch.float64)
    k = torch.stack([torch.cat([eps[: t + 1].flip(0), eps.new_zeros(5 - t)]) for t in range(6)])
    expected = torch.einsum("ts,ncs->nct", k, x.detach())
    assert torch.allclose(psp(x.detach(), 3.0), expected, rtol=1e-12)
    time_first = x.detach().movedim(-1, 0).contiguous().movedim(0, -1)
    assert torch.allclose(psp(time_first, 3.0), expected, rtol=1e-12)
