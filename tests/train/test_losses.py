"""Each loss against values worked out by hand."""

import math

import torch

from tsslbp.train.losses import (
    count_loss,
    desired_spike_pattern,
    kernel_loss,
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
