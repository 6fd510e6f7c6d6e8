"""TSSL-BP written step by step: the baseline the benchmarks time tsslbp's training step against.

The same equations as :mod:`tsslbp.train.functional` (../shared/notes/tsslbp.md), in the form they are
usually written down and first implemented: an explicit loop over the T time steps in every layer,
one synaptic operation and one :func:`~tsslbp.train.functional.lif_step` per step, and the backward walk from the last step to the first with the
inter-neuron sum over later steps (the term over pairs of time steps, O(T^2)), the intra-neuron
carried state and the silent-neuron surrogate. No custom autograd: the gradients are computed
explicitly, the synaptic ones per step with :mod:`torch.nn.grad`.

It covers linear, conv and sum-pooling layers (no dropout) with the kernel loss, and reads its
weights from a :class:`~tsslbp.train.network.TsslbpNetwork`, so both run on the same parameters;
tests check that both give the same gradients. The tests' numpy loop (:mod:`.numpy_loop`)
is the independent check of the MLP case.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

from ..train.functional import LIFState, TsslbpGradParameters, lif_step
from ..train.layers import SpikingLinear, SumPooling, TimeSharedDropout
from ..train.losses import desired_psp
from ..train.network import TsslbpNetwork

__all__ = ["step_by_step_grads"]


def _neuron_backward(
    grad_a: list[torch.Tensor],
    rec: dict[str, list[torch.Tensor]],
    tau_m: float,
    tau_s: float,
    v_th: float,
    p: TsslbpGradParameters,
) -> list[torch.Tensor]:
    """dE/dI[t] of one layer of LIF neurons from dE/da[t] of its PSPs (lists over t)."""
    theta_m, theta_s = 1.0 / tau_m, 1.0 / tau_s
    n_steps = len(grad_a)
    eps = [theta_s * (1.0 - theta_s) ** k for k in range(n_steps)]  # a spike's effect on later PSPs
    carried = torch.zeros_like(grad_a[0])
    grad_current: list[torch.Tensor] = [grad_a[0]] * n_steps
    for t in range(n_steps - 1, -1, -1):
        o, u, du = rec["o"][t], rec["u"][t], rec["du"][t]
        total = sum(
            eps[k] * grad_a[t + k] for k in range(n_steps - t)
        )  # the pairwise (t, t+k) term
        inv = torch.where(
            du > 0,
            torch.clamp(1.0 / torch.where(du > 0, du, torch.ones_like(du)), max=p.max_inv_slope),
            torch.zeros_like(du),
        )
        inter = o * inv * total
        if t == n_steps - 1:
            d = inter
        else:
            d = inter + carried * theta_m * u * inv * o + carried * (1.0 - theta_m) * (1.0 - o)
        carried = d * o + carried * (1.0 - o) * (1.0 - theta_m)
        s = torch.exp(
            torch.clamp((v_th - u) / p.surrogate_alpha, -p.surrogate_clamp, p.surrogate_clamp)
        )
        surrogate = s / ((1.0 + s) ** 2 * p.surrogate_alpha) * total
        silent = rec["a"][t] < 1.0 / (p.silent_psp_divisor * tau_s)
        grad_current[t] = torch.where(silent, surrogate, d)
    return grad_current


def step_by_step_grads(
    model: TsslbpNetwork, x: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Kernel loss and its gradients for every weight of ``model``, one time step at a time.

    Args:
        model: the network (its layers' weights and neuron settings are used; dropout is skipped).
        x: analog input (N, C*H*W) or (N, C, H, W), repeated over the T steps.
        labels: (N,) class indices.

    Returns:
        (loss, gradients in the order of the model's weighted layers).
    """
    n_steps, tau_s = model.n_steps, model.tau_syn
    if model.is_image_net and x.dim() == 2:
        x = x.reshape(x.shape[0], *model.input_shape)
    # The analog input, repeated and PSP-filtered step by step.
    a_in, acc = [], torch.zeros_like(x)
    for _ in range(n_steps):
        acc = (1.0 - 1.0 / tau_s) * acc + x / tau_s
        a_in.append(acc)

    tape = []  # (layer, inputs per step, neuron record per step)
    for layer in model.layers:
        if isinstance(layer, TimeSharedDropout):
            continue
        if isinstance(layer, SumPooling):
            window = math.prod(layer.kernel_size)
            tape.append((layer, a_in, None))
            a_in = [F.avg_pool2d(a, layer.kernel_size) * (window * layer.scale) for a in a_in]
            continue
        if isinstance(layer, SpikingLinear):
            a_in = [a.reshape(a.shape[0], -1) for a in a_in]
        n = layer.neuron
        rec: dict[str, list[torch.Tensor]] = {"du": [], "u": [], "o": [], "a": []}
        state = a_prev = None
        for a_t in a_in:
            if isinstance(layer, SpikingLinear):
                current = a_t @ layer.weight.T
            else:
                current = F.conv2d(
                    a_t,
                    layer.weight,
                    None,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.groups,
                )
            if state is None:
                state, a_prev = LIFState(torch.zeros_like(current)), torch.zeros_like(current)
            step, state = lif_step(current, state, n)
            a_prev = (1.0 - 1.0 / n.tau_syn) * a_prev + step.spikes / n.tau_syn
            for key, value in (("du", step.du), ("u", step.u), ("o", step.spikes), ("a", a_prev)):
                rec[key].append(value)
        tape.append((layer, a_in, rec))
        a_in = rec["a"]

    # Kernel loss: E = 1/2 sum_t (a_L[t] - y[t])^2, y the PSP of the desired spike train.
    out = torch.stack(a_in, dim=-1)
    target = desired_psp(labels, out.shape[1], n_steps, tau_s, dtype=out.dtype, device=out.device)
    loss = 0.5 * ((out - target) ** 2).sum()
    grad_a = [a_in[t] - target[..., t] for t in range(n_steps)]

    grads: list[torch.Tensor] = []
    for layer, inputs, rec in reversed(tape):
        if rec is None:  # sum pooling: each input position receives its window's gradient x scale
            kh, kw = layer.kernel_size
            (n_batch, channels, h, w) = inputs[0].shape
            grad_a = [g.reshape(n_batch, channels, h // kh, w // kw) for g in grad_a]
            grad_a = [
                F.pad(
                    g.repeat_interleave(kh, -2).repeat_interleave(kw, -1) * layer.scale,
                    (0, w - g.shape[-1] * kw, 0, h - g.shape[-2] * kh),
                )
                for g in grad_a
            ]
            continue
        n = layer.neuron
        grad_a = [
            g.reshape(o.shape) for g, o in zip(grad_a, rec["o"])
        ]  # flat when a linear layer follows
        grad_current = _neuron_backward(grad_a, rec, n.tau_mem, n.tau_syn, n.v_th, layer.grad)
        if isinstance(layer, SpikingLinear):
            grads.append(sum(g.T @ a for g, a in zip(grad_current, inputs)))
            grad_a = [g @ layer.weight for g in grad_current]
        else:
            conv = dict(
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=layer.groups,
            )
            grads.append(
                sum(
                    conv2d_weight(a, layer.weight.shape, g, **conv)
                    for g, a in zip(grad_current, inputs)
                )
            )
            grad_a = [
                conv2d_input(a.shape, layer.weight, g, **conv) for g, a in zip(grad_current, inputs)
            ]
    grads.reverse()
    return loss.detach(), [g.detach() for g in grads]
