"""Autograd functions of TSSL-BP: the spiking nonlinearity with its custom gradient."""

from __future__ import annotations

from typing import Any

import torch

from . import kernels
from .functional import (
    LIFParameters,
    LIFTrace,
    TsslbpGradParameters,
    lif_forward,
    psp,
    psp_adjoint,
    tsslbp_backward,
)

__all__ = ["tsslbp_spike", "tsslbp_spike_psp", "straight_through"]


class _TsslbpSpike(torch.autograd.Function):
    """Spikes and PSP of a LIF layer from its input current; the backward pass is TSSL-BP's.

    Two implementations of the same equations: fused kernels, :mod:`.kernels` on CPU and
    :mod:`.triton_kernels` on CUDA (each saves only ``u`` for the backward pass), and the torch
    functions of :mod:`.functional` (saves the spikes, ``u`` and ``du``), chosen per call by
    :func:`_use_kernels`.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        current: torch.Tensor,
        fused: bool,
        tau_mem: float,
        tau_syn: float,
        v_th: float,
        *grad_consts: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # u and du are returned (as non-differentiable outputs) only so that setup_context can save
        # them for the backward pass; the fused path rebuilds du and returns an empty placeholder.
        p = LIFParameters(tau_mem, tau_syn, v_th)
        if fused:
            spikes, u, psp_out = (
                x.movedim(0, -1)
                for x in _fused_kernels(current).lif_psp_forward(current.movedim(-1, 0), p)
            )
            return spikes, psp_out, u, current.new_empty(0)
        trace = lif_forward(current, p)
        return trace.spikes, psp(trace.spikes, tau_syn), trace.u, trace.du

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, ctx.fused, tau_mem, tau_syn, v_th, *grad_consts = inputs
        ctx.p = LIFParameters(tau_mem, tau_syn, v_th)
        ctx.gp = TsslbpGradParameters(*grad_consts)
        spikes, _, u, du = output
        ctx.mark_non_differentiable(u, du)
        # Unused outputs (u, du; often the spikes or the PSP) get None instead of zero-filled
        # tensors of the layer's full size on every backward pass.
        ctx.set_materialize_grads(False)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(*((u,) if ctx.fused else (spikes, u, du)))

    @staticmethod
    def backward(
        ctx: Any, grad_spikes: torch.Tensor | None, grad_psp: torch.Tensor | None, *_: Any
    ) -> tuple:  # type: ignore[override]
        grad_current = None
        if ctx.needs_input_grad[0] and (grad_spikes is not None or grad_psp is not None):
            if ctx.fused:
                (u,) = ctx.saved_tensors
                time_first = (
                    None if g is None else g.movedim(-1, 0) for g in (grad_spikes, grad_psp, u)
                )
                grad_current = (
                    _fused_kernels(u).tsslbp_psp_backward(*time_first, ctx.p, ctx.gp).movedim(0, -1)
                )
            else:
                spikes, u, du = ctx.saved_tensors
                # dE/do over both uses of the spikes: directly, and through the PSP (its adjoint).
                grad_o = grad_spikes
                if grad_psp is not None:
                    through_psp = psp_adjoint(grad_psp, ctx.p.tau_syn)
                    grad_o = through_psp if grad_o is None else through_psp + grad_o
                grad_current = tsslbp_backward(grad_o, LIFTrace(spikes, u, du), ctx.p, ctx.gp)
        return (grad_current,) + (None,) * (
            len(ctx.needs_input_grad) - 1
        )  # no gradient for the constants


def _fused_kernels(tensor: torch.Tensor) -> Any:
    """The fused kernels for ``tensor``'s device: numba's on CPU, Triton's on CUDA (imported only
    when a CUDA tensor needs them)."""
    if tensor.device.type == "cuda":
        from . import triton_kernels

        return triton_kernels
    return kernels


def _use_kernels(current: torch.Tensor, gp: TsslbpGradParameters) -> bool:
    """Whether fused kernels compute this layer (see :func:`.kernels.available`)."""
    fused = _fused_kernels(current)
    return fused.available(current) and fused.supports(gp)


def tsslbp_spike_psp(
    current: torch.Tensor, p: LIFParameters, gp: TsslbpGradParameters = TsslbpGradParameters()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike trains of a LIF layer and their PSP, with the TSSL-BP gradient.

    One call computes what ``psp(tsslbp_spike(current, p, gp), p.tau_syn)`` does, in one pass over
    the layer's state where the fused kernels apply; gradients may reach it through either output.

    Args:
        current: (..., T) input current ``I[t]`` (time last).
        p: neuron parameters.
        gp: constants of the backward pass.

    Returns:
        (spikes, psp), each (..., T) of ``current``'s dtype: spikes in {0, 1} and the PSP
        ``a[t] = (1 - 1/tau_s) a[t-1] + o[t]/tau_s``.

    >>> i = torch.tensor([[0.9, 0.9, 0.0]], requires_grad=True)
    >>> spikes, a = tsslbp_spike_psp(i, LIFParameters(tau_mem=5.0, tau_syn=2.0, v_th=1.0))
    >>> spikes.detach(), a.detach()
    (tensor([[0., 1., 0.]]), tensor([[0.0000, 0.5000, 0.2500]]))
    """
    spikes, psp_out, _, _ = _TsslbpSpike.apply(
        current,
        _use_kernels(current, gp),
        float(p.tau_mem),
        float(p.tau_syn),
        float(p.v_th),
        *map(float, gp),
    )
    return spikes, psp_out


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
    return tsslbp_spike_psp(current, p, gp)[0]


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
