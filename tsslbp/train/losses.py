"""TSSL-BP losses on the output layer's spike trains (N, n_class, T); each sums over the batch.

* kernel: ``1/2 sum (psp(o) - psp(y))**2`` with y a desired spike train for the label neuron and
  silence for the others (paper Eq. 4-5);
* count: the reference implementation's spike-count error, pushed only in the useful direction;
* softmax: cross-entropy of the spike counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .autograd import straight_through
from .functional import psp

__all__ = [
    "desired_spike_pattern",
    "desired_psp",
    "kernel_loss",
    "count_loss",
    "softmax_loss",
    "predict",
]


def desired_spike_pattern(
    n_steps: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Desired spike train of the label neuron, shape (T,).

    For T < 10: spikes at t = 1..4 of every 5 steps (pattern 0,1,1,1,1); for T >= 10: 0,1 repeated.

    >>> desired_spike_pattern(5)
    tensor([0., 1., 1., 1., 1.])
    >>> desired_spike_pattern(10)
    tensor([0., 1., 0., 1., 0., 1., 0., 1., 0., 1.])
    """
    t = torch.arange(n_steps, device=device)
    period = 5 if n_steps < 10 else 2
    return (t % period != 0).to(dtype)


def kernel_loss(spikes: torch.Tensor, labels: torch.Tensor, tau_syn: float) -> torch.Tensor:
    """Spike-sequence (kernel) loss: squared error between output PSPs and desired PSPs.

    Args:
        spikes: (N, n_class, T) output spikes.
        labels: (N,) int64 class indices.
        tau_syn: PSP time constant (steps).

    Returns:
        scalar ``1/2 * sum_{n,i,t} (a - y)**2``.
    """
    target = desired_psp(
        labels,
        spikes.shape[-2],
        spikes.shape[-1],
        tau_syn,
        dtype=spikes.dtype,
        device=spikes.device,
    )
    return 0.5 * ((psp(spikes, tau_syn) - target) ** 2).sum()


def desired_psp(
    labels: torch.Tensor,
    n_class: int,
    n_steps: int,
    tau_syn: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The kernel loss's target: the PSP of the desired spike train on each label neuron and of
    silence elsewhere, shape (N, n_class, T).

    >>> desired_psp(torch.tensor([1]), 2, 5, 2.0)
    tensor([[[0.0000, 0.0000, 0.0000, 0.0000, 0.0000],
             [0.0000, 0.5000, 0.7500, 0.8750, 0.9375]]])
    """
    onehot = F.one_hot(labels, n_class).to(dtype)
    return psp(
        onehot[..., None] * desired_spike_pattern(n_steps, dtype=dtype, device=device), tau_syn
    )


def count_loss(
    spikes: torch.Tensor, labels: torch.Tensor, desired_count: int, undesired_count: int
) -> torch.Tensor:
    """Spike-count loss as the reference implementation defines it.

    ``delta = (count - target) / T`` per output neuron, with target ``desired_count`` for the label
    neuron (kept only where it fires too little) and ``undesired_count`` for the others (kept only
    where they fire too much). ``delta`` is the error at every step: ``E = 1/2 sum_t delta**2`` and
    ``dE/do[t] = delta`` (straight through the count).

    Returns:
        scalar loss summed over the batch.
    """
    n_class, n_steps = spikes.shape[-2], spikes.shape[-1]
    count = spikes.detach().sum(-1)
    is_label = F.one_hot(labels, n_class).bool()
    target = torch.where(is_label, float(desired_count), float(undesired_count)).to(spikes.dtype)
    delta = (count - target) / n_steps
    keep = torch.where(is_label, delta < 0, delta > 0)
    delta = torch.where(keep, delta, torch.zeros_like(delta))
    error = straight_through(delta[..., None].expand_as(spikes), spikes)
    return 0.5 * (error**2).sum()


def softmax_loss(spikes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the output spike counts (summed over the batch)."""
    return F.cross_entropy(spikes.sum(-1), labels, reduction="sum")


def predict(spikes: torch.Tensor) -> torch.Tensor:
    """Predicted class: the output neuron with the most spikes (lowest index on ties), shape (N,)."""
    return spikes.sum(-1).argmax(-1)
