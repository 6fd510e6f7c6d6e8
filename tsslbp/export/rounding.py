"""Error-compensating weight rounding: each weight's rounding error is absorbed by the weights not
yet rounded, so that the layer's current on calibration data moves as little as possible.

Rounding every weight to the nearest grid point makes each output's current error
``sum_i e_i x_i`` (``e`` the rounding errors, ``x`` the inputs) grow with the fan-in. Rounding the
inputs one at a time and adjusting the remaining weights of the same output neuron by the
least-squares correction ``-e_i * H^-1[i, j] / H^-1[i, i]``, with ``H = X^T X`` the inputs' Gram
matrix over calibration samples and time steps, minimises that error greedily: the Optimal Brain
Quantization step of Frantar & Alistarh (2022), in the Cholesky form of GPTQ (Frantar et al., ICLR
2023). Here the "inputs" are the PSP traces the layer receives on the calibration batch (the
graded input codes for the first layer), so what is kept is the current ``I[t] = W a[t]`` that
Loihi's synapse computes.

Pure numpy/torch on float64; the grid is any ``(min, max, step)`` of
:func:`tsslbp.export.quantize.weight_grid`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RELATIVE_DAMPING", "input_gram", "compensated_round"]

#: Added to the Gram matrix's diagonal, relative to its mean, so that inputs never active on the
#: calibration batch (and correlated ones) leave it invertible; GPTQ's default.
RELATIVE_DAMPING = 0.01
#: Calibration samples per chunk when the Gram matrix is accumulated (bounds the memory of conv
#: patch matrices).
_CHUNK = 64


def input_gram(
    trace: torch.Tensor,
    *,
    kernel: tuple[int, int] | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """Gram matrices ``X^T X`` of the inputs each output neuron's weights multiply.

    Args:
        trace: the layer's input over the calibration batch, time last: (N, C_in, T) for a dense
            layer, (N, C_in, H, W, T) for a conv layer.
        kernel, stride, padding, dilation, groups: the conv's geometry (``kernel`` None: dense).

    Returns:
        float64 (groups, K, K) with K the fan-in of one output neuron (``C_in`` for dense,
        ``C_in / groups * kH * kW`` for conv, in the order of the flattened weight).
    """
    trace = trace.to(torch.float64)
    if kernel is None:
        rows = trace.movedim(-1, 1).reshape(-1, trace.shape[1])  # (N*T, C_in)
        return (rows.T @ rows).numpy()[None]
    c_in = trace.shape[1]
    k = c_in // groups * kernel[0] * kernel[1]
    gram = torch.zeros(groups, k, k, dtype=torch.float64)
    for start in range(0, trace.shape[0], _CHUNK):
        frames = trace[start : start + _CHUNK].movedim(-1, 1).reshape(-1, *trace.shape[1:-1])
        for g in range(groups):
            part = frames[:, g * (c_in // groups) : (g + 1) * (c_in // groups)]
            cols = F.unfold(part, kernel, dilation=dilation, padding=padding, stride=stride)
            rows = cols.transpose(1, 2).reshape(-1, k)  # (frames * positions, K)
            gram[g] += rows.T @ rows
    return gram.numpy()


def compensated_round(
    weight: np.ndarray, gram: np.ndarray, grid: tuple[int, int, int]
) -> tuple[np.ndarray, int]:
    """Round ``weight`` (already in integer units) onto ``grid`` with error compensation.

    Args:
        weight: (out, K) float weights times the layer's gain (``K`` = one neuron's fan-in), or
            (out, ...) reshaped to that; output neurons are split into ``len(gram)`` equal groups.
        gram: (groups, K, K) from :func:`input_gram`.
        grid: ``(min, max, step)``: the allowed integers are the multiples of ``step`` in
            ``[min, max]``.

    Returns:
        (int64 weights of ``weight``'s shape, how many were clipped to the range: values whose
        nearest grid point, after compensation, lay outside it).

    >>> x = np.array([[1.0, 1.0]])  # one sample, two equal inputs: only w0 + w1 matters
    >>> compensated_round(np.array([[0.6, 0.6]]), x.T @ x[None], (-4, 4, 1))[0]
    array([[1, 0]])
    """
    lo, hi, step = grid
    groups, k = gram.shape[0], gram.shape[-1]
    w = weight.reshape(weight.shape[0], k).astype(np.float64) / step
    out = np.empty_like(w)
    clipped = 0
    per_group = w.shape[0] // groups
    for g in range(groups):
        rows = slice(g * per_group, (g + 1) * per_group)
        h = gram[g] + np.eye(k) * RELATIVE_DAMPING * max(float(np.mean(np.diag(gram[g]))), 1e-12)
        # Upper Cholesky factor of H^-1: row i holds the corrections that rounding input i asks
        # of inputs i+1.. (scaled by its diagonal), as in GPTQ.
        h_inv = torch.cholesky_inverse(torch.linalg.cholesky(torch.from_numpy(h)))
        u = torch.linalg.cholesky(h_inv, upper=True).numpy()
        part = w[rows].copy()
        for i in range(k):
            rounded = np.round(part[:, i])
            q = np.clip(rounded, lo / step, hi / step)
            clipped += int(np.count_nonzero(q != rounded))
            error = (part[:, i] - q) / u[i, i]
            part[:, i + 1 :] -= error[:, None] * u[i, i + 1 :][None, :]
            out[rows, i] = q
    return (out * step).astype(np.int64).reshape(weight.shape), clipped
