"""A plain step-by-step implementation of TSSL-BP, written separately from the package.

numpy (float64 in the tests; any float dtype works), one explicit loop over time per layer, each equation written as in the
specification (../shared/notes/tsslbp.md): forward LIF + PSP, and the backward walk with the
inter-neuron term, the intra-neuron carried state and the silent-neuron surrogate. Tests compare
the package's vectorized autograd implementation against it, and ``tsslbp bench`` times it as
"numpy loop (tests)". It imports nothing from tsslbp (it lives in the package only so that an
installed tsslbp can run the benchmark without the source tree).
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward_layer", "input_psp", "backward_layer", "network_grads"]

MAX_INV_SLOPE = 8.0
ALPHA = 0.2
CLAMP = 8.0


def forward_layer(a_in, weight, tau_m, tau_s, v_th):
    """a_in: list over t of (N, C_in) PSPs. Returns dict of per-step lists: I, du, u, o, a."""
    theta_m, theta_s = 1.0 / tau_m, 1.0 / tau_s
    n = a_in[0].shape[0]
    u_prev = np.zeros((n, weight.shape[0]), dtype=weight.dtype)
    a = np.zeros((n, weight.shape[0]), dtype=weight.dtype)
    rec = {"I": [], "du": [], "u": [], "o": [], "a": []}
    for a_t in a_in:
        current = a_t @ weight.T
        du = -theta_m * u_prev + current
        u = u_prev + du
        o = (u > v_th).astype(np.float64)
        u_prev = u * (1.0 - o)
        a = (1.0 - theta_s) * a + theta_s * o
        for key, value in (("I", current), ("du", du), ("u", u), ("o", o), ("a", a)):
            rec[key].append(value)
    return rec


def input_psp(x, n_steps, tau_s):
    """The analog input x (N, C) repeated over T steps, PSP-filtered: list over t."""
    theta_s = 1.0 / tau_s
    acc = np.zeros_like(x)
    out = []
    for _ in range(n_steps):
        acc = (1.0 - theta_s) * acc + theta_s * x
        out.append(acc.copy())
    return out


def backward_layer(grad_a, rec, tau_m, tau_s, v_th):
    """grad_a: list over t of dE/da[t]. Returns list over t of dE/dI[t]."""
    theta_m, theta_s = 1.0 / tau_m, 1.0 / tau_s
    n_steps = len(grad_a)
    eps = [theta_s * (1.0 - theta_s) ** k for k in range(n_steps)]
    carried = np.zeros_like(grad_a[0])
    grad_current = [None] * n_steps
    for t in range(n_steps - 1, -1, -1):
        o, u, du = rec["o"][t], rec["u"][t], rec["du"][t]
        total = sum(eps[k] * grad_a[t + k] for k in range(n_steps - t))
        with np.errstate(divide="ignore"):
            inv = np.where(du > 0, np.minimum(1.0 / np.where(du > 0, du, 1.0), MAX_INV_SLOPE), 0.0)
        inter = o * inv * total
        if t == n_steps - 1:
            d = inter
        else:
            d = inter + carried * theta_m * u * inv * o + carried * (1.0 - theta_m) * (1.0 - o)
        carried = d * o + carried * (1.0 - o) * (1.0 - theta_m)
        s = np.exp(np.clip((v_th - u) / ALPHA, -CLAMP, CLAMP))
        surrogate = s / ((1.0 + s) ** 2 * ALPHA) * total
        silent = rec["a"][t] < 1.0 / (4.0 * tau_s)
        grad_current[t] = np.where(silent, surrogate, d)
    return grad_current


def network_grads(x, weights, labels_target_psp, n_steps, tau_m, tau_s, thresholds):
    """Kernel loss E = 1/2 sum (a_L - y)^2 of a chain of linear LIF layers and its weight gradients.

    Args:
        x: (N, C) analog input.
        weights: list of (C_out, C_in) arrays.
        labels_target_psp: (N, n_class, T) desired PSP y.
    Returns:
        (loss, [dE/dW per layer]).
    """
    a_in = input_psp(x, n_steps, tau_s)
    inputs, recs = [], []
    for weight, v_th in zip(weights, thresholds):
        inputs.append(a_in)
        rec = forward_layer(a_in, weight, tau_m, tau_s, v_th)
        recs.append(rec)
        a_in = rec["a"]
    y = [labels_target_psp[..., t] for t in range(n_steps)]
    loss = 0.5 * sum(((recs[-1]["a"][t] - y[t]) ** 2).sum() for t in range(n_steps))
    grad_a = [recs[-1]["a"][t] - y[t] for t in range(n_steps)]
    grads = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        d = backward_layer(grad_a, recs[i], tau_m, tau_s, thresholds[i])
        grads[i] = sum(d[t].T @ inputs[i][t] for t in range(n_steps))
        grad_a = [d[t] @ weights[i] for t in range(n_steps)]
    return loss, grads
