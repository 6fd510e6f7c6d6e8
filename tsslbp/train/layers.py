"""Layers of a TSSL-BP network (``nn.Module``s that own parameters and call the functional code).

Tensors flowing between layers are PSP traces, time last: ``(N, C, T)``. The network input (an
analog image repeated over T steps and PSP-filtered) is the separable trace ``x[n, c] * coeff[t]``,
passed as a :class:`SeparableTrace` so that the first weight layer computes ``W x`` once.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .autograd import tsslbp_spike
from .functional import LIFParameters, TsslbpGradParameters

__all__ = ["SeparableTrace", "Trace", "SpikingLinear", "TimeSharedDropout", "materialize"]


class SeparableTrace(NamedTuple):
    """A trace of the form ``static[..., None] * coeff`` (a constant input through the PSP filter).

    Attributes:
        static: (N, C) values.
        coeff: (T,) per-step factors.
    """

    static: torch.Tensor
    coeff: torch.Tensor


Trace = Union[torch.Tensor, SeparableTrace]


def materialize(trace: Trace) -> torch.Tensor:
    """The full (N, C, T) tensor of a trace."""
    if isinstance(trace, SeparableTrace):
        return (trace.coeff[:, None, None] * trace.static).movedim(0, -1)
    return trace


class SpikingLinear(nn.Module):
    """Bias-free dense synapses followed by TSSL-BP LIF neurons.

    Args:
        n_inputs: presynaptic size.
        n_outputs: number of neurons.
        neuron: LIF parameters (``v_th`` is this layer's threshold).
        weight_scale: factor on the Kaiming-normal initial weights.
        grad: constants of the TSSL-BP backward pass.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        neuron: LIFParameters,
        weight_scale: float = 1.0,
        grad: TsslbpGradParameters = TsslbpGradParameters(),
    ) -> None:
        super().__init__()
        self.neuron = neuron
        self.grad = grad
        self.weight = nn.Parameter(torch.empty(n_outputs, n_inputs))
        nn.init.kaiming_normal_(self.weight)
        with torch.no_grad():
            self.weight.mul_(weight_scale)

    def current(self, psp_in: Trace) -> torch.Tensor:
        """Synaptic current ``I[t] = W a[t]``, shape (N, n_outputs, T)."""
        if isinstance(psp_in, SeparableTrace):
            # W (x c[t]) = c[t] (W x): one product instead of T.
            current_tf = psp_in.coeff[:, None, None] * F.linear(psp_in.static, self.weight)
        else:
            # Time-first views keep the (time-first) memory of the traces: no copies.
            current_tf = F.linear(psp_in.movedim(-1, 0), self.weight)
        return current_tf.movedim(0, -1)

    def forward(self, psp_in: Trace) -> torch.Tensor:
        """Spikes (N, n_outputs, T) of the layer's neurons given the presynaptic PSP."""
        return tsslbp_spike(self.current(psp_in), self.neuron, self.grad)

    def extra_repr(self) -> str:
        n_out, n_in = self.weight.shape
        return f"{n_in} -> {n_out}, tau_mem={self.neuron.tau_mem}, tau_syn={self.neuron.tau_syn}, v_th={self.neuron.v_th}"


class TimeSharedDropout(nn.Module):
    """Dropout that drops the same units at every time step of a sample (scaled by 1/(1-p))."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, trace: Trace) -> Trace:
        if not self.training or self.p == 0.0:
            return trace
        reference = trace.static if isinstance(trace, SeparableTrace) else trace[..., 0]
        keep = torch.empty_like(reference).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        if isinstance(trace, SeparableTrace):
            return SeparableTrace(trace.static * keep, trace.coeff)
        return trace * keep[..., None]

    def extra_repr(self) -> str:
        return f"p={self.p}"
