"""Each loss against values worked out by hand."""

import math

import torch

from tsslbp.config import KernelTarget, OutputMeasure
from tsslbp.train.losses import (
    count_loss,
    desired_psp,
    desired_spike_pattern,
    kernel_loss,
    output_scores,
    predict,
    softmax_loss,
)


def _psp_by_hand(train, theta_s):
    acc, out = 0.0, []
    for o in train:
        acc = (1 - theta_s) * acc + theta_s * o
        out.append(acc)
    return out


def test_desired_pattern_for_long_windows_alternates():
    assert desired_spike_pattern(7).tolist() == [0, 1, 1, 1, 1, 0, 1]
    assert desired_spike_pattern(12).tolist() == [0, 1] * 6


def test_kernel_loss_of_silent_output_is_half_the_desired_psp_energy():
    spikes = torch.zeros(1, 3, 5, dtype=torch.float64)
    desired = _psp_by_hand([0, 1, 1, 1, 1], 1 / 3)
    expected = 0.5 * sum(v * v for v in desired)
    loss = kernel_loss(spikes, torch.tensor([2]), 3.0)
    assert math.isclose(float(loss), expected, rel_tol=1e-12), (
        f"expected {expected}, found {float(loss)}"
    )


def test_kernel_loss_is_zero_for_the_desired_output():
    spikes = torch.zeros(2, 4, 5)
    spikes[0, 1] = desired_spike_pattern(5)
    spikes[1, 3] = desired_spike_pattern(5)
    assert float(kernel_loss(spikes, torch.tensor([1, 3]), 3.0)) == 0.0


def test_count_loss_pushes_label_up_and_others_down_only():
    spikes = torch.zeros(1, 3, 5, dtype=torch.float64, requires_grad=False)
    spikes[0, 0, :1] = 1  # label neuron: 1 spike, desired 4 -> delta = -0.6 (kept)
    spikes[0, 1, :3] = 1  # other: 3 spikes, undesired 1 -> delta = +0.4 (kept)
    # neuron 2: 0 spikes, undesired 1 -> delta = -0.2, dropped (others only pushed down)
    spikes.requires_grad_()
    loss = count_loss(spikes, torch.tensor([0]), desired_count=4, undesired_count=1)
    expected = 0.5 * 5 * (0.6**2 + 0.4**2)
    found = float(loss.detach())
    assert math.isclose(found, expected, rel_tol=1e-12), f"expected {expected}, found {found}"
    loss.backward()
    expected_grad = torch.tensor([[-0.6] * 5, [0.4] * 5, [0.0] * 5], dtype=torch.float64)
    torch.testing.assert_close(spikes.grad[0], expected_grad)


def test_count_loss_is_zero_when_counts_are_on_the_right_side():
    spikes = torch.ones(1, 2, 5)
    spikes[0, 1] = 0
    assert float(count_loss(spikes, torch.tensor([0]), 4, 1)) == 0.0


def test_softmax_loss_is_cross_entropy_of_counts():
    spikes = torch.zeros(1, 3, 5, dtype=torch.float64)
    spikes[0, 0, :2] = 1
    spikes[0, 2, :4] = 1
    counts = [2.0, 0.0, 4.0]
    expected = -counts[2] + math.log(sum(math.exp(c) for c in counts))
    assert math.isclose(float(softmax_loss(spikes, torch.tensor([2]))), expected, rel_tol=1e-12)


def test_predict_takes_most_spikes_lowest_index_on_ties():
    spikes = torch.zeros(2, 3, 5)
    spikes[0, 2, :3] = 1
    spikes[1, 0, :2] = 1
    spikes[1, 1, :2] = 1
    assert predict(spikes).tolist() == [2, 0]


# --- The reference's definitions (issue 19): values worked out by hand at T=5, tau_s=3 ----------

# The label neuron's target: the desired train 0,1,1,1,1 filtered once (the paper's Eq. 4-5) and
# twice (the authors' code), as exact fractions of the recursion a[t] = 2/3 a[t-1] + 1/3 x[t].
_ONCE = [0.0, 1 / 3, 5 / 9, 19 / 27, 65 / 81]  # 0, .333, .556, .704, .802
_TWICE = [0.0, 1 / 9, 7 / 27, 33 / 81, 131 / 243]  # 0, .111, .259, .407, .539


def test_desired_psp_filtered_once_and_twice_match_the_worked_fractions():
    labels = torch.tensor([1])
    once = desired_psp(labels, 2, 5, 3.0, dtype=torch.float64)
    twice = desired_psp(labels, 2, 5, 3.0, target=KernelTarget.TWICE, dtype=torch.float64)
    torch.testing.assert_close(once[0, 1], torch.tensor(_ONCE, dtype=torch.float64))
    torch.testing.assert_close(twice[0, 1], torch.tensor(_TWICE, dtype=torch.float64))
    assert once[0, 0].abs().sum() == 0 and twice[0, 0].abs().sum() == 0, "non-label targets silent"


def test_kernel_loss_twice_of_silent_output_is_half_the_twice_filtered_energy():
    spikes = torch.zeros(1, 3, 5, dtype=torch.float64)
    expected = 0.5 * sum(v * v for v in _TWICE)
    loss = kernel_loss(spikes, torch.tensor([0]), 3.0, KernelTarget.TWICE)
    assert math.isclose(float(loss), expected, rel_tol=1e-12), f"expected {expected}, found {loss}"


def test_kernel_loss_gradients_pass_gradcheck_for_both_targets():
    gen = torch.Generator().manual_seed(0)
    spikes = torch.rand(2, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 2])
    for target in KernelTarget:
        assert torch.autograd.gradcheck(lambda s, t=target: kernel_loss(s, labels, 3.0, t), spikes)


def test_count_loss_on_psp_counts_the_psp_and_injects_the_error_on_it():
    # Label neuron 0 fires once at t=0: PSP 1/3 (2/3)^t, sum 1 - (2/3)^5 = 211/243 < 4, so
    # delta = (211/243 - 4) / 5 is kept. Neuron 1 fires at t=0..4: PSP sum
    # 1/3 + 5/9 + 19/27 + 65/81 + 211/243 = 3.2593 > 1, delta = (3.2593 - 1) / 5 kept. Neuron 2
    # is silent: delta = -1/5, dropped (others are only pushed down).
    spikes = torch.zeros(1, 3, 5, dtype=torch.float64)
    spikes[0, 0, 0] = 1
    spikes[0, 1] = 1
    spikes.requires_grad_()
    sums = [211 / 243, 1 / 3 + 5 / 9 + 19 / 27 + 65 / 81 + 211 / 243]
    deltas = [(sums[0] - 4) / 5, (sums[1] - 1) / 5]
    loss = count_loss(spikes, torch.tensor([0]), 4, 1, on=OutputMeasure.PSP, tau_syn=3.0)
    expected = 0.5 * 5 * (deltas[0] ** 2 + deltas[1] ** 2)
    assert math.isclose(float(loss.detach()), expected, rel_tol=1e-12), (
        f"expected {expected}, found {loss}"
    )
    loss.backward()
    # dE/da[t] = delta at every t, so dE/do[t] = delta * sum_{k <= 4 - t} eps[k] = delta (1 - (2/3)^(5-t)).
    reach = torch.tensor([1 - (2 / 3) ** (5 - t) for t in range(5)], dtype=torch.float64)
    expected_grad = torch.stack([deltas[0] * reach, deltas[1] * reach, torch.zeros(5).double()])
    torch.testing.assert_close(spikes.grad[0], expected_grad)


def test_softmax_on_psp_is_the_batch_mean_cross_entropy_of_psp_sums():
    spikes = torch.zeros(2, 2, 5, dtype=torch.float64)
    spikes[0, 0, 0] = 1  # PSP sum 211/243
    spikes[1, 1] = 1  # PSP sum 3.2593 (see the count test)
    s1, s5 = 211 / 243, 1 / 3 + 5 / 9 + 19 / 27 + 65 / 81 + 211 / 243
    ce0 = -s1 + math.log(math.exp(s1) + 1.0)  # sample 0: logits (s1, 0), label 0
    ce1 = -0.0 + math.log(1.0 + math.exp(s5))  # sample 1: logits (0, s5), label 0
    loss = softmax_loss(spikes, torch.tensor([0, 0]), on=OutputMeasure.PSP, tau_syn=3.0)
    assert math.isclose(float(loss), (ce0 + ce1) / 2, rel_tol=1e-12), f"found {float(loss)}"
    spikes.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s: softmax_loss(s, torch.tensor([1, 0]), on=OutputMeasure.PSP, tau_syn=3.0), spikes
    )


def test_predict_on_psp_prefers_early_spikes_where_counts_prefer_more_spikes():
    # Neuron 0: 3 late spikes (t=2..4), PSP sum 1/3 + 5/9 + 19/27 = 1.593.
    # Neuron 1: 2 early spikes (t=0,1), PSP sum 1/3 + 5/9 + 10/27 + 20/81 + 40/243 = 1.675.
    spikes = torch.zeros(1, 2, 5)
    spikes[0, 0, 2:] = 1
    spikes[0, 1, :2] = 1
    assert predict(spikes).tolist() == [0]
    assert predict(spikes, OutputMeasure.PSP, 3.0).tolist() == [1]
    scores = output_scores(spikes.double(), OutputMeasure.PSP, 3.0)[0].tolist()
    expected = [1 / 3 + 5 / 9 + 19 / 27, 1 / 3 + 5 / 9 + 10 / 27 + 20 / 81 + 40 / 243]
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(scores, expected)), scores
