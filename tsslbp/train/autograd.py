"""Autograd functions of TSSL-BP: the spiking nonlinearity with its custom gradient."""

from __future__ import annotations

from typing import Any

import torch

from .functional import LIFParameters, LIFTrace, TsslbpGradParameters, lif_forward, tsslbp_backward

__all__ = ["tsslbp_spike", "straight_through"]


def _tsslbp_fwd(current: torch.Tensor, p: LIFParameters) -> LIFTrace:
    return lif_forward(current, p)


def _tsslbp_bwd(grad_spikes: torch.Tensor, trace: LIFTrace, p: LIFParameters, gp: TsslbpGradParameters) -> torch.Tensor:
    return tsslbp_backward(grad_spikes, trace, p, gp)


class _TsslbpSpike(torch.autograd.Function):
    """Spikes of a LIF layer from its input current; backward is the TSSL-BP gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        current: torch.Tensor,
        tau_mem: float,
        tau_syn: float,
        v_th: float,
        max_inv_slope: float,
        surrogate_alpha: float,
        surrogate_clamp: float,
        silent_psp_divisor: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # u and du are returned (as non-differentiable outputs) only so that setup_context can
        # save them for the backward pass.
        return tuple(_tsslbp_fwd(current, LIFParameters(tau_mem, tau_syn, v_th)))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, tau_mem, tau_syn, v_th, *grad_consts = inputs
        ctx.p = LIFParameters(tau_mem, tau_syn, v_th)
        ctx.gp = TsslbpGradParameters(*grad_consts)
        ctx.mark_non_differentiable(output[1], output[2])
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(*output)

    @staticmethod
    def backward(ctx: Any, grad_spikes: torch.Tensor, _grad_u: Any, _grad_du: Any) -> tuple:  # type: ignore[override]
        grad_current = None
        if ctx.needs_input_grad[0]:
            trace = LIFTrace(*ctx.saved_tensors)
            grad_current = _tsslbp_bwd(grad_spikes, trace, ctx.p, ctx.gp)
        return (grad_current,) + (None,) * 7


def tsslbp_spike(
    current: torch.Tensor, p: LIFParameters, gp: TsslbpGradParameters = TsslbpGradParameters()
) -> torch.Tensor:
    """Spike trains of a LIF layer with the TSSL-BP gradient.

    Args:
        current: (..., T) input current ``I[t]`` (time last).
        p: neuron parameters.
        gp: constants of the backward pass.

    Returns:
        (..., T) spikes in {0, 1}, same dtype as ``current``.

    >>> i = torch.tensor([[0.9, 0.9, 0.0]], requires_grad=True)
    >>> tsslbp_spike(i, LIFParameters(tau_mem=5.0, tau_syn=3.0, v_th=1.0))
    tensor([[0., 1., 0.]], grad_fn=<_TsslbpSpikeBackward>)
    """
    spikes, _, _ = _TsslbpSpike.apply(current, float(p.tau_mem), float(p.tau_syn), float(p.v_th), *map(float, gp))
    return spikes


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(value: torch.Tensor, source: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return value.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        return None, grad


def straight_through(value: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Return ``value`` in the forward pass and pass the gradient unchanged to ``source``.

    Used where the reference implementation treats a non-differentiable quantity (a spike-count
    error) as if it were the spike train itself.

    >>> s = torch.zeros(2, requires_grad=True)
    >>> straight_through(torch.tensor([3.0, 4.0]), s).sum().backward()
    >>> s.grad
    tensor([1., 1.])
    """
    return _StraightThrough.apply(value.detach(), source)
