"""Layers of a TSSL-BP network (``nn.Module``s that own parameters and call the functional code).

Tensors flowing between layers are PSP traces, time last: ``(N, C, T)``. The network input (an
analog image repeated over T steps and PSP-filtered) is the separable trace ``x[n, c] * coeff[t]``,
passed as a :class:`SeparableTrace` so that the first weight layer computes ``W x`` once.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .autograd import tsslbp_spike, tsslbp_spike_psp
from .functional import LIFParameters, TsslbpGradParameters

__all__ = [
    "SeparableTrace",
    "Trace",
    "SpikingLinear",
    "SpikingConv2d",
    "SumPooling",
    "TimeSharedDropout",
    "flatten_trace",
    "materialize",
    "fake_quantize",
    "set_weight_levels",
]


def fake_quantize(weight: torch.Tensor, levels: int) -> torch.Tensor:
    """``weight`` rounded to a symmetric grid of ``levels`` steps per sign, the largest ``|w|`` on
    the grid's top, with a straight-through gradient (the rounding passes gradients unchanged).

    The forward pass then sees the weights the export will realize (8-bit Loihi weights: 127 steps,
    ``tsslbp.export.quantize``), while the optimizer keeps updating the float weights.

    >>> fake_quantize(torch.tensor([1.0, 0.3, -0.26]), 4).tolist()
    [1.0, 0.25, -0.25]
    """
    step = weight.detach().abs().max().clamp_min(torch.finfo(weight.dtype).tiny) / levels
    rounded = torch.round(weight.detach() / step) * step
    return weight + (rounded - weight.detach())


def set_weight_levels(module: nn.Module, levels: int | None) -> None:
    """Make every spiking layer in ``module`` compute with its weights put through
    :func:`fake_quantize` with ``levels`` steps per sign (quantization-aware training), or with
    its float weights (``levels`` None)."""
    for layer in module.modules():
        if isinstance(layer, _SpikingLayer):
            layer.weight_levels = levels


class SeparableTrace(NamedTuple):
    """A trace of the form ``static[..., None] * coeff`` (a constant input through the PSP filter).

    Attributes:
        static: (N, C) or (N, C, H, W) values.
        coeff: (T,) per-step factors.
    """

    static: torch.Tensor
    coeff: torch.Tensor


Trace = torch.Tensor | SeparableTrace


def materialize(trace: Trace) -> torch.Tensor:
    """The full (N, C, T) tensor of a trace."""
    if isinstance(trace, SeparableTrace):
        coeff = trace.coeff.reshape(-1, *([1] * trace.static.dim()))
        return (coeff * trace.static).movedim(0, -1)
    return trace


class _SpikingLayer(nn.Module):
    """Synapses (a subclass's ``current``) followed by TSSL-BP LIF neurons with ``neuron``/``grad``."""

    neuron: LIFParameters
    grad: TsslbpGradParameters
    weight: nn.Parameter
    #: Quantization-aware training: the forward pass uses the weights on a grid of this many steps
    #: per sign (:func:`fake_quantize`); None uses the float weights.
    weight_levels: int | None = None

    def effective_weight(self) -> torch.Tensor:
        """The weights the synapses compute with (float, or fake-quantized)."""
        if self.weight_levels is None:
            return self.weight
        return fake_quantize(self.weight, self.weight_levels)

    def current(self, psp_in: Trace) -> torch.Tensor:
        """Synaptic current, shape (N, neurons..., T)."""
        raise NotImplementedError

    def forward(self, psp_in: Trace) -> torch.Tensor:
        """Spikes (N, neurons..., T) of the layer's neurons given the presynaptic PSP."""
        return tsslbp_spike(self.current(psp_in), self.neuron, self.grad)

    def spikes_and_psp(self, psp_in: Trace) -> tuple[torch.Tensor, torch.Tensor]:
        """(spikes, their PSP), each (N, neurons..., T): what feeds the next layer, in one pass."""
        return tsslbp_spike_psp(self.current(psp_in), self.neuron, self.grad)


class SpikingLinear(_SpikingLayer):
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
        weight = self.effective_weight()
        if isinstance(psp_in, SeparableTrace):
            # W (x c[t]) = c[t] (W x): one product instead of T.
            current_tf = psp_in.coeff[:, None, None] * F.linear(psp_in.static, weight)
        else:
            # Time-first views keep the (time-first) memory of the traces: no copies.
            current_tf = F.linear(psp_in.movedim(-1, 0), weight)
        return current_tf.movedim(0, -1)

    def extra_repr(self) -> str:
        n_out, n_in = self.weight.shape
        return f"{n_in} -> {n_out}, tau_mem={self.neuron.tau_mem}, tau_syn={self.neuron.tau_syn}, v_th={self.neuron.v_th}"


def _time_folded(trace_tf: torch.Tensor) -> torch.Tensor:
    """(T, N, C, H, W) time-first memory -> (T*N, C, H, W) view for 2-D ops."""
    return trace_tf.reshape(-1, *trace_tf.shape[2:])


def _apply_spatial(trace: Trace, fn) -> torch.Tensor:
    """Apply a linear per-step 2-D map ``fn`` ((B, C, H, W) -> (B, C', H', W')) to a trace.

    Returns the (N, C', H', W', T) result as a time-last view of time-first memory.
    """
    if isinstance(trace, SeparableTrace):
        # fn is linear: fn(x c[t]) = c[t] fn(x), one application instead of T.
        static = fn(trace.static)
        out_tf = trace.coeff.reshape(-1, *([1] * static.dim())) * static
    else:
        trace_tf = trace.movedim(-1, 0)
        n_steps, batch = trace_tf.shape[:2]
        out = fn(_time_folded(trace_tf))
        out_tf = out.reshape(n_steps, batch, *out.shape[1:])
    return out_tf.movedim(0, -1)


class SpikingConv2d(_SpikingLayer):
    """2-D convolution synapses (no bias) followed by TSSL-BP LIF neurons.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as ``nn.Conv2d``.
        neuron: LIF parameters (``v_th`` is this layer's threshold).
        weight_scale: factor on PyTorch's default conv initialisation (as the reference does).
        grad: constants of the TSSL-BP backward pass.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        neuron: LIFParameters,
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        weight_scale: float = 1.0,
        grad: TsslbpGradParameters = TsslbpGradParameters(),
    ) -> None:
        super().__init__()
        self.neuron = neuron
        self.grad = grad
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False
        )
        self.weight = nn.Parameter(conv.weight.detach() * weight_scale)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def current(self, psp_in: Trace) -> torch.Tensor:
        """Synaptic current (N, C_out, H', W', T)."""
        weight = self.effective_weight()
        return _apply_spatial(
            psp_in,
            lambda x: F.conv2d(
                x, weight, None, self.stride, self.padding, self.dilation, self.groups
            ),
        )

    def extra_repr(self) -> str:
        c_out, c_in, kh, kw = self.weight.shape
        return (
            f"{c_in * self.groups} -> {c_out}, kernel=({kh}, {kw}), stride={self.stride}, padding={self.padding}, "
            f"v_th={self.neuron.v_th}"
        )


class SumPooling(nn.Module):
    """TSSL-BP pooling: a fixed, non-learned sum of the incoming PSPs over each window, times ``scale``.

    No neurons and no parameters; stride equals the window. Linear, so it is folded exactly into the
    next layer's weights on export (docs/fixed-point.md).
    """

    def __init__(self, kernel_size: tuple[int, int], scale: float = 1.1) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.scale = scale

    def forward(self, trace: Trace) -> Trace:
        window = self.kernel_size[0] * self.kernel_size[1]
        # avg_pool2d * window = the sum over the window (the remainder rows/columns are dropped).
        fn = lambda x: F.avg_pool2d(x, self.kernel_size) * (window * self.scale)  # noqa: E731
        if isinstance(trace, SeparableTrace):
            return SeparableTrace(fn(trace.static), trace.coeff)
        return _apply_spatial(trace, fn)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel_size}, scale={self.scale}"


def flatten_trace(trace: Trace) -> Trace:
    """(N, C, H, W, T) -> (N, C*H*W, T) in (C, H, W) order; (N, C) static traces likewise."""
    if isinstance(trace, SeparableTrace):
        return SeparableTrace(trace.static.flatten(1), trace.coeff)
    if trace.dim() <= 3:
        return trace
    return trace.movedim(-1, 0).flatten(2).movedim(0, -1)


class TimeSharedDropout(nn.Module):
    """Dropout that drops the same units at every time step of a sample (scaled by 1/(1-p)); the
    masks are drawn by torch's CPU generator whatever the device."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, trace: Trace) -> Trace:
        if not self.training or self.p == 0.0:
            return trace
        reference = trace.static if isinstance(trace, SeparableTrace) else trace[..., 0]
        # The mask comes from the CPU generator on every device, so that a seed drops the same
        # units on a GPU as on the CPU (CUDA's generator draws other numbers).
        mask = torch.empty_like(reference, device="cpu").bernoulli_(1.0 - self.p)
        keep = mask.to(reference.device) / (1.0 - self.p)
        if isinstance(trace, SeparableTrace):
            return SeparableTrace(trace.static * keep, trace.coeff)
        # Multiply the time-first view so that the result keeps time-first memory.
        return (trace.movedim(-1, 0) * keep).movedim(0, -1)

    def extra_repr(self) -> str:
        return f"p={self.p}"
