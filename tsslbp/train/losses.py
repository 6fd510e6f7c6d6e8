"""TSSL-BP losses on the output layer's spike trains (N, n_class, T), and the prediction.

The paper and the authors' code (stonezwr/TSSL-BP) define the losses differently; both are here
and the config picks one (../shared/notes/tsslbp.md states the reference's definitions):

* kernel: ``1/2 sum (psp(o) - y)**2`` with ``y`` the desired spike train of the label neuron
  (silence for the others) filtered once by the PSP kernel, as the paper's Eq. 4-5 write it
  (``KernelTarget.ONCE``), or twice, as the authors' code does (``KernelTarget.TWICE``). Summed
  over the batch.
* count: per output neuron ``delta = (count - target) / T``, kept only in the useful direction
  (label neuron below ``desired_count``, others above ``undesired_count``), injected as the error
  at every step: ``E = 1/2 sum_t delta**2``. The "count" is the number of spikes with the error on
  the spikes (``OutputMeasure.SPIKES``, tsslbp's variant), or the sum of the output PSP with the
  error on the PSP (``OutputMeasure.PSP``, the authors' code). Summed over the batch.
* softmax: cross-entropy of the spike counts summed over the batch (``SPIKES``), or of the PSP
  sums averaged over the batch (``PSP``, the authors' code).

Prediction: the class with the most spikes (``SPIKES``: what a deployed network reports) or the
largest PSP sum (``PSP``: the authors' code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import KernelTarget, OutputMeasure
from .autograd import straight_through
from .functional import psp

__all__ = [
    "desired_spike_pattern",
    "desired_psp",
    "output_scores",
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


def desired_psp(
    labels: torch.Tensor,
    n_class: int,
    n_steps: int,
    tau_syn: float,
    *,
    target: KernelTarget = KernelTarget.ONCE,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The kernel loss's target: the desired spike train on each label neuron and silence
    elsewhere, filtered by the PSP kernel once or twice; shape (N, n_class, T).

    >>> desired_psp(torch.tensor([1]), 2, 5, 2.0)
    tensor([[[0.0000, 0.0000, 0.0000, 0.0000, 0.0000],
             [0.0000, 0.5000, 0.7500, 0.8750, 0.9375]]])
    >>> desired_psp(torch.tensor([0]), 1, 5, 2.0, target=KernelTarget.TWICE)
    tensor([[[0.0000, 0.2500, 0.5000, 0.6875, 0.8125]]])
    """
    onehot = F.one_hot(labels, n_class).to(dtype)
    trace = onehot[..., None] * desired_spike_pattern(n_steps, dtype=dtype, device=device)
    for _ in range(2 if target is KernelTarget.TWICE else 1):
        trace = psp(trace, tau_syn)
    return trace


def output_scores(spikes: torch.Tensor, on: OutputMeasure, tau_syn: float) -> torch.Tensor:
    """Per-class score (N, n_class): spike counts, or sums over time of the output PSP.

    Differentiable in ``spikes`` (the PSP is a linear map of them).

    >>> o = torch.tensor([[[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]])
    >>> output_scores(o, OutputMeasure.SPIKES, 2.0)
    tensor([[2., 2.]])
    >>> output_scores(o, OutputMeasure.PSP, 2.0)
    tensor([[1.2500, 1.6250]])
    """
    trace = spikes if on is OutputMeasure.SPIKES else psp(spikes, tau_syn)
    return trace.sum(-1)


def kernel_loss(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    tau_syn: float,
    target: KernelTarget = KernelTarget.ONCE,
) -> torch.Tensor:
    """Spike-sequence (kernel) loss: squared error between output PSPs and desired PSPs.

    Args:
        spikes: (N, n_class, T) output spikes.
        labels: (N,) int64 class indices.
        tau_syn: PSP time constant (steps).
        target: the desired train filtered once (the paper) or twice (the authors' code).

    Returns:
        scalar ``1/2 * sum_{n,i,t} (a - y)**2``.
    """
    n_class, n_steps = spikes.shape[-2], spikes.shape[-1]
    y = desired_psp(
        labels, n_class, n_steps, tau_syn, target=target, dtype=spikes.dtype, device=spikes.device
    )
    return 0.5 * ((psp(spikes, tau_syn) - y) ** 2).sum()


def count_loss(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    desired_count: int,
    undesired_count: int,
    *,
    on: OutputMeasure = OutputMeasure.SPIKES,
    tau_syn: float = 1.0,
) -> torch.Tensor:
    """Count loss; ``on`` picks spike counts (tsslbp) or PSP sums (the authors' code).

    ``delta = (count - target) / T`` per output neuron, with target ``desired_count`` for the label
    neuron (kept only where it counts too little) and ``undesired_count`` for the others (kept
    only where they count too much). ``delta`` is the error at every step of the counted trace
    (the spikes, or the PSP ``a``): ``E = 1/2 sum_t delta**2`` and ``dE/do[t]`` (or ``dE/da[t]``)
    ``= delta``, straight through the count.

    Args:
        spikes: (N, n_class, T) output spikes.
        labels: (N,) int64 class indices.
        desired_count, undesired_count: targets of the label neuron and of the others.
        on: what is counted.
        tau_syn: PSP time constant (steps), used when ``on`` is ``PSP``.

    Returns:
        scalar loss summed over the batch.
    """
    n_class, n_steps = spikes.shape[-2], spikes.shape[-1]
    trace = spikes if on is OutputMeasure.SPIKES else psp(spikes, tau_syn)
    count = trace.detach().sum(-1)
    is_label = F.one_hot(labels, n_class).bool()
    target = torch.where(is_label, float(desired_count), float(undesired_count)).to(spikes.dtype)
    delta = (count - target) / n_steps
    keep = torch.where(is_label, delta < 0, delta > 0)
    delta = torch.where(keep, delta, torch.zeros_like(delta))
    error = straight_through(delta[..., None].expand_as(trace), trace)
    return 0.5 * (error**2).sum()


def softmax_loss(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    *,
    on: OutputMeasure = OutputMeasure.SPIKES,
    tau_syn: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy of the output scores: spike counts summed over the batch (``SPIKES``), or
    PSP sums averaged over the batch (``PSP``, the authors' code)."""
    reduction = "sum" if on is OutputMeasure.SPIKES else "mean"
    return F.cross_entropy(output_scores(spikes, on, tau_syn), labels, reduction=reduction)


def predict(
    spikes: torch.Tensor, on: OutputMeasure = OutputMeasure.SPIKES, tau_syn: float = 1.0
) -> torch.Tensor:
    """Predicted class, shape (N,): the output neuron with the most spikes (``SPIKES``) or the
    largest PSP sum (``PSP``); the lowest index on ties."""
    return output_scores(spikes, on, tau_syn).argmax(-1)
