"""Pure tensor maths of TSSL-BP (Zhang & Li, NeurIPS 2020): PSP filter, LIF forward, TSSL-BP backward.

Discrete-time LIF neuron with time steps t = 0..T-1, ``theta_m = 1/tau_m``, ``theta_s = 1/tau_s``::

    du[t] = -theta_m * u'[t-1] + I[t]          membrane increment
    u[t]  = u'[t-1] + du[t]                    membrane before reset
    o[t]  = 1 if u[t] > v_th else 0            spike (strict inequality)
    u'[t] = u[t] * (1 - o[t])                  reset to zero
    a[t]  = (1 - theta_s) * a[t-1] + theta_s * o[t]     post-synaptic potential (PSP)

with ``u'[-1] = a[-1] = 0``. ``a`` feeds the next layer's weights at the same step (no delay).
Equivalently ``a[t] = sum_{s <= t} eps[t - s] * o[s]`` with the PSP kernel
``eps[k] = theta_s * (1 - theta_s)**k``.

The backward pass (paper Sec. 3, Eq. 10-16) maps ``g[t] = dE/do[t]`` (the gradient reaching a
spike train, which through the PSP filter is ``sum_k eps[k] * dE/da[t + k]``) to ``dE/dI[t]``:

* inter-neuron term, only at spikes: ``o[t] * min(1/du[t], max_inv_slope) * g[t]``
  (a spike fires earlier when the membrane rises faster; ``-dt/du = 1/slope``);
* intra-neuron term: a carried state ``c`` walks back in time through the leak ``1 - theta_m``
  between spikes, and through ``theta_m * u[t] / du[t]`` across a spike (the reset ties a
  neuron's consecutive spikes together);
* silent-neuron fallback: where the neuron's own PSP is below ``1 / (silent_psp_divisor * tau_s)``
  the gradient is ``sigmoid'(u[t]) * g[t]`` so that neurons that never fire stay trainable.

Layout: time is the last axis, ``(N, C, T)`` or ``(N, C, H, W, T)``. Functions accept any leading
shape and any memory layout. The window functions return time-last *views* of time-first memory
(each step's slice contiguous), and consume such views without copying. All functions are device-
and dtype-agnostic.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

__all__ = [
    "LIFParameters",
    "TsslbpGradParameters",
    "LIFState",
    "LIFTrace",
    "psp_kernel",
    "psp",
    "psp_adjoint",
    "static_psp_coefficients",
    "lif_step",
    "lif_forward",
    "inverse_slope",
    "surrogate_derivative",
    "tsslbp_backward",
]


class LIFParameters(NamedTuple):
    """Float LIF neuron parameters of one layer.

    Attributes:
        tau_mem: membrane time constant ``tau_m`` in steps (leak ``1/tau_m`` per step), > 1.
        tau_syn: synaptic (PSP) time constant ``tau_s`` in steps, >= 1.
        v_th: firing threshold (spike when ``u > v_th``).
    """

    tau_mem: float = 5.0
    tau_syn: float = 3.0
    v_th: float = 1.0


class TsslbpGradParameters(NamedTuple):
    """Constants of the TSSL-BP backward pass, as in the authors' reference implementation.

    Attributes:
        max_inv_slope: clip of ``1/du`` at a spike (reference: 8), bounding ``-dt_spike/du``
            (paper Eq. 14) where the membrane barely crosses threshold.
        surrogate_alpha: width of the sigmoid whose derivative is the silent-neuron surrogate
            (reference: 0.2).
        surrogate_clamp: clamp of ``(v_th - u) / alpha`` before the exponential (reference: 8).
        silent_psp_divisor: a neuron counts as silent at step t where its PSP
            ``a[t] < 1 / (silent_psp_divisor * tau_s)`` (reference: 4).
    """

    max_inv_slope: float = 8.0
    surrogate_alpha: float = 0.2
    surrogate_clamp: float = 8.0
    silent_psp_divisor: float = 4.0


class LIFState(NamedTuple):
    """State carried from one step to the next: membrane after reset ``u'`` (any shape)."""

    u: torch.Tensor


class LIFTrace(NamedTuple):
    """Everything a layer's forward pass produces over a window, time last.

    Attributes:
        spikes: ``o[t]`` in {0, 1}.
        u: membrane before reset ``u[t]``.
        du: membrane increment ``du[t]``.
    """

    spikes: torch.Tensor
    u: torch.Tensor
    du: torch.Tensor


def psp_kernel(
    n_steps: int,
    tau_syn: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """PSP kernel ``eps[k] = theta_s * (1 - theta_s)**k`` for k = 0..n_steps-1.

    >>> psp_kernel(3, 2.0)
    tensor([0.5000, 0.2500, 0.1250])
    """
    theta_s = 1.0 / tau_syn
    k = torch.arange(n_steps, dtype=dtype, device=device)
    return theta_s * (1.0 - theta_s) ** k


def psp(spikes: torch.Tensor, tau_syn: float) -> torch.Tensor:
    """PSP trace ``a[t] = (1 - theta_s) a[t-1] + theta_s o[t]`` of a time-last tensor.

    Args:
        spikes: (..., T) spikes or any input signal (float).
        tau_syn: synaptic time constant in steps.

    Returns:
        (..., T) PSP, same dtype and device. Differentiable (a linear map).

    >>> psp(torch.tensor([1.0, 0.0, 1.0]), 2.0)
    tensor([0.5000, 0.2500, 0.6250])
    """
    return _Psp.apply(spikes, tau_syn)


def psp_adjoint(grad: torch.Tensor, tau_syn: float) -> torch.Tensor:
    """Adjoint of :func:`psp` along the last axis: ``g[t] = sum_k eps[k] grad[t + k]``.

    Maps ``dE/da`` to the ``dE/do`` it implies (what ``psp``'s backward pass computes).

    >>> psp_adjoint(torch.tensor([1.0, 0.0, 1.0]), 2.0)
    tensor([0.6250, 0.2500, 0.5000])
    """
    return _psp_recursion_tf(grad.movedim(-1, 0), 1.0 / tau_syn, reverse=True).movedim(0, -1)


def _psp_recursion_tf(x_tf: torch.Tensor, theta: float, reverse: bool = False) -> torch.Tensor:
    """``y[t] = theta x[t] + (1 - theta) y[t -/+ 1]`` over the first (time) axis, forward or reverse.

    Forward it is the PSP filter; reversed it is the filter's adjoint ``sum_k eps[k] x[t + k]``.
    Two passes over the data (one scaling, one accumulation), on contiguous per-step slices: cheaper
    than the equivalent (T, T) matrix product, whose small inner dimension makes it memory-bound.
    """
    out = torch.mul(x_tf.contiguous(), theta)
    steps = range(out.shape[0] - 2, -1, -1) if reverse else range(1, out.shape[0])
    for t in steps:
        out[t].add_(out[t + 1] if reverse else out[t - 1], alpha=1.0 - theta)
    return out


class _Psp(torch.autograd.Function):
    """The PSP filter along the last axis, with its adjoint as the backward (time-first memory)."""

    @staticmethod
    def forward(x: torch.Tensor, tau_syn: float) -> torch.Tensor:
        return _psp_recursion_tf(x.movedim(-1, 0), 1.0 / tau_syn).movedim(0, -1)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.tau_syn = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        return psp_adjoint(grad, ctx.tau_syn), None


@functools.lru_cache(maxsize=64)
def static_psp_coefficients(
    n_steps: int,
    tau_syn: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """PSP of a constant input of 1 repeated over T steps: ``c[t] = 1 - (1 - theta_s)**(t + 1)``.

    The network input (an image repeated over T steps, then PSP-filtered) is ``x * c[t]``: a
    separable trace, which lets the first weight layer compute ``W x`` once instead of T times.
    Cached per arguments: treat the result as read-only.

    >>> static_psp_coefficients(3, 2.0)
    tensor([0.5000, 0.7500, 0.8750])
    """
    return torch.cumsum(psp_kernel(n_steps, tau_syn, dtype=dtype, device=device), 0)


def lif_step(current: torch.Tensor, state: LIFState, p: LIFParameters) -> tuple[LIFTrace, LIFState]:
    """One LIF step for any shape.

    Args:
        current: input current ``I[t]``.
        state: ``u'[t-1]``, membrane after the previous reset.
        p: neuron parameters.

    Returns:
        (trace of this step with ``spikes``, ``u``, ``du`` of the current's shape, new state).
    """
    du = current - state.u / p.tau_mem
    u = state.u + du
    spikes = (u > p.v_th).to(current.dtype)
    return LIFTrace(spikes, u, du), LIFState(u * (1.0 - spikes))


def lif_forward(current: torch.Tensor, p: LIFParameters) -> LIFTrace:
    """Run the LIF equations of :func:`lif_step` over the last (time) axis of ``current`` from rest.

    Only the membrane recursion is walked step by step; spikes and increments are then computed
    for the whole window at once (the same equations, vectorized). Internally time is put first so
    that each step works on contiguous memory; the returned tensors are time-last views.

    Args:
        current: (..., T) input current.
        p: neuron parameters.

    Returns:
        LIFTrace of (..., T) tensors.
    """
    current_tf = current.movedim(-1, 0).contiguous()
    u_tf = torch.empty_like(current_tf)
    du_tf = torch.empty_like(current_tf)
    fired_tf = torch.empty(current_tf.shape, dtype=torch.bool, device=current.device)
    zero = torch.zeros((), dtype=current.dtype, device=current.device)
    u_reset = torch.zeros_like(current_tf[0])  # u'[t-1], overwritten in place each step
    for t in range(current_tf.shape[0]):
        # du[t] = I[t] - theta_m u'[t-1];  u[t] = u'[t-1] + du[t];  u'[t] = 0 where u[t] > v_th.
        torch.sub(current_tf[t], u_reset, alpha=1.0 / p.tau_mem, out=du_tf[t])
        torch.add(u_reset, du_tf[t], out=u_tf[t])
        torch.gt(u_tf[t], p.v_th, out=fired_tf[t])
        torch.where(fired_tf[t], zero, u_tf[t], out=u_reset)
    spikes_tf = fired_tf.to(current.dtype)
    return LIFTrace(*(x.movedim(0, -1) for x in (spikes_tf, u_tf, du_tf)))


def inverse_slope(du: torch.Tensor, max_inv_slope: float) -> torch.Tensor:
    """``min(1/du, max_inv_slope)`` where ``du > 0``, else 0 (paper Eq. 14, clipped as in the reference).

    >>> inverse_slope(torch.tensor([0.5, 0.05, 0.0, -1.0]), 8.0)
    tensor([2., 8., 0., 0.])
    """
    # min(1/du, m) = 1/max(du, 1/m) for du > 0; the clamp also keeps du <= 0 away from a division by 0.
    return torch.reciprocal(du.clamp(min=1.0 / max_inv_slope)) * (du > 0).to(du.dtype)


def surrogate_derivative(u: torch.Tensor, v_th: float, alpha: float, clamp: float) -> torch.Tensor:
    """Derivative of ``sigmoid((u - v_th) / alpha)`` w.r.t. u with the exponent clamped to +-clamp.

    The reference writes it as ``s / ((1 + s)**2 * alpha)`` with
    ``s = exp(clamp((v_th - u) / alpha, -clamp, clamp))``; with ``x = clamp((u - v_th) / alpha)``
    that is ``sigmoid(x) * (1 - sigmoid(x)) / alpha``, computed here in that cheaper form.

    >>> surrogate_derivative(torch.tensor([1.0]), 1.0, 0.2, 8.0)
    tensor([1.2500])
    """
    # x = u / alpha - v_th / alpha in one pass, then sig - sig**2 in one more.
    x = torch.add(u.new_tensor(-v_th / alpha), u, alpha=1.0 / alpha).clamp_(-clamp, clamp)
    sig = x.sigmoid_()
    return torch.addcmul(sig, sig, sig, value=-1.0).mul_(1.0 / alpha)


def tsslbp_backward(
    grad_spikes: torch.Tensor,
    trace: LIFTrace,
    p: LIFParameters,
    gp: TsslbpGradParameters = TsslbpGradParameters(),
) -> torch.Tensor:
    """TSSL-BP gradient ``dE/dI`` of one LIF layer from ``dE/do`` (paper Sec. 3.2-3.3).

    Args:
        grad_spikes: (..., T) ``g[t] = dE/do[t]``: for a layer feeding others through its PSP this
            is ``sum_k eps[k] dE/da[t+k]``, i.e. the adjoint of :func:`psp`.
        trace: the layer's forward trace (spikes, u, du), each (..., T).
        p: neuron parameters used in the forward pass.
        gp: constants of the backward pass.

    Returns:
        (..., T) ``dE/dI[t]`` (= ``dE/du[t]``).
    """
    theta_m = 1.0 / p.tau_mem
    leak = 1.0 - theta_m
    # Work time-first (contiguous per-step slices); the traces already are in memory.
    spikes, u, du, grad = (x.movedim(-1, 0).contiguous() for x in (*trace, grad_spikes))
    # min(1/du, max_inv_slope) at spikes. At a spike du > v_th - u'[t-1] >= 0 (u' <= v_th), so the
    # du > 0 condition of inverse_slope() holds there and is not re-tested.
    inv_slope_at_spike = torch.reciprocal(du.clamp(min=1.0 / gp.max_inv_slope)).mul_(spikes)
    # Inter-neuron dependencies: only a spike's timing moves its PSP (all-or-none, Eq. 13-14).
    grad_current = inv_slope_at_spike * grad
    # Intra-neuron dependencies, walked backward in time: between spikes dE/du flows through the
    # leak (1 - theta_m); across a spike the reset removes theta_m * u[t] from the path to the
    # next spike (Eq. 15-16). With c the carried state:
    #   d[t] = inter[t] + c * factor[t],  factor = theta_m u / du at spikes, (1 - theta_m) elsewhere
    #   c <- d[t] o[t] + c between[t],    between = (1 - o) (1 - theta_m)
    between = spikes.mul(-leak).add_(leak)
    factor = torch.addcmul(between, inv_slope_at_spike, u, value=theta_m)
    carried = grad_current[-1] * spikes[-1]
    for t in range(grad_current.shape[0] - 2, -1, -1):
        grad_current[t].addcmul_(carried, factor[t])
        carried = torch.addcmul(grad_current[t] * spikes[t], carried, between[t])
    # Silent-neuron fallback: where the neuron's own PSP is small, use a sigmoid surrogate so that
    # neurons which never fire still receive a gradient (the carried state is unaffected).
    own_psp_tf = psp(spikes.movedim(0, -1), p.tau_syn).movedim(-1, 0)
    silent = own_psp_tf < 1.0 / (gp.silent_psp_divisor * p.tau_syn)
    surrogate = surrogate_derivative(u, p.v_th, gp.surrogate_alpha, gp.surrogate_clamp).mul_(grad)
    return torch.where(silent, surrogate, grad_current).movedim(0, -1)
