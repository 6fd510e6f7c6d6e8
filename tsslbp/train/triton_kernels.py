"""Fused CUDA kernels (Triton) for a TSSL-BP layer: LIF + PSP forward, TSSL-BP + PSP-adjoint backward.

The GPU counterpart of :mod:`.kernels` (numba, CPU), computing the same equations in the same
order: one program per block of neurons walks the (T, neurons) time-first state through time,
so a layer costs one launch each way instead of the ~20 elementwise launches per layer of the
torch path in :mod:`.functional`.

* forward: reads the current ``I``, writes the spikes ``o``, the membrane ``u`` and the PSP ``a``;
* backward: reads ``dE/do``, ``dE/da`` and ``u`` and writes ``dE/dI``. A first pass forward in time
  writes the layer's own PSP into the output (the silent-neuron test needs it at every step); the
  second pass, backward in time, reads it at each step before writing the gradient there.
  ``o`` and ``du`` are rebuilt from ``u`` as in :mod:`.kernels`.

Used for float32 CUDA tensors when triton imports and ``TSSLBP_KERNELS`` is not ``torch``. The
sigmoid surrogate uses ``exp`` (the CPU kernels use a polynomial), and the GPU compiler may fuse
multiply-adds: results agree with the CPU kernels to a few units in the last place (spikes exactly,
unless a membrane lies within rounding of the threshold). With ``TRITON_INTERPRET=1`` set before
triton is imported, the same kernels run on CPU tensors (slowly), which is how the tests check
them without a GPU.
"""

from __future__ import annotations

import functools
import os
from unittest import mock

import torch

from .functional import LIFParameters, TsslbpGradParameters

__all__ = ["enabled", "available", "supports", "lif_psp_forward", "tsslbp_psp_backward"]

try:  # optional: the GPU machine has triton; CPU-only installs need not.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

#: Neurons per program (a power of two).
BLOCK = 256


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def enabled() -> bool:
    """Whether the Triton kernels may be used (triton imports; ``TSSLBP_KERNELS`` is not ``torch``)."""
    return triton is not None and os.environ.get("TSSLBP_KERNELS", "").strip().lower() != "torch"


def available(*tensors: torch.Tensor | None) -> bool:
    """Whether the kernels apply: enabled, float32, on CUDA (or on CPU under Triton's interpreter)."""
    present = [t for t in tensors if t is not None]
    if not enabled() or not present:
        return False
    device = present[0].device
    on_device = device.type == "cuda" or (device.type == "cpu" and _interpreted())
    return on_device and all(t.dtype == torch.float32 and t.device == device for t in present)


def supports(gp: TsslbpGradParameters) -> bool:
    """Whether the kernels handle these backward constants (all finite ones)."""
    return all(abs(float(v)) < float("inf") for v in gp)


# The kernels are plain functions, compiled by triton.jit on first use (_compiled): decorating at
# import would fix the mode (compiled or interpreted) before a test can ask for the interpreter.
if triton is not None:

    def _forward_kernel(
        current, spikes, u, psp, n, n_steps, theta_m, theta_s, v_th, BLOCK: tl.constexpr
    ):  # pragma: no cover - compiled
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        u_reset = tl.zeros([BLOCK], dtype=tl.float32)  # u'[t-1]
        a_prev = tl.zeros([BLOCK], dtype=tl.float32)  # a[t-1]
        decay_s = 1.0 - theta_s
        for t in range(n_steps):
            at = t * n + offs
            i_t = tl.load(current + at, mask=mask, other=0.0)
            v = u_reset + (i_t - u_reset * theta_m)
            fired = v > v_th
            o = tl.where(fired, 1.0, 0.0)
            a = theta_s * o + decay_s * a_prev
            tl.store(u + at, v, mask=mask)
            tl.store(spikes + at, o, mask=mask)
            tl.store(psp + at, a, mask=mask)
            u_reset = tl.where(fired, 0.0, v)
            a_prev = a

    def _backward_kernel(
        grad_spikes,
        grad_psp,
        u,
        out,
        n,
        n_steps,
        theta_m,
        theta_s,
        v_th,
        silent_level,
        min_du,
        inv_alpha,
        clamp,
        HAS_GS: tl.constexpr,
        HAS_GP: tl.constexpr,
        BLOCK: tl.constexpr,
    ):  # pragma: no cover - compiled
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        leak = 1.0 - theta_m
        decay_s = 1.0 - theta_s
        # Pass 1, forward in time: the layer's own PSP, parked in `out` until pass 2 reads it.
        a_prev = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(n_steps):
            at = t * n + offs
            v = tl.load(u + at, mask=mask, other=0.0)
            a = theta_s * tl.where(v > v_th, 1.0, 0.0) + decay_s * a_prev
            tl.store(out + at, a, mask=mask)
            a_prev = a
        # Pass 2, backward in time (see functional.tsslbp_backward and kernels._backward_kernel).
        carried = tl.zeros([BLOCK], dtype=tl.float32)
        adjoint = tl.zeros([BLOCK], dtype=tl.float32)
        for step in range(n_steps):
            t = n_steps - 1 - step
            at = t * n + offs
            own_psp = tl.load(out + at, mask=mask, other=0.0)
            v = tl.load(u + at, mask=mask, other=0.0)
            # g = dE/do over both uses of the spikes: directly, and through the PSP's adjoint.
            if HAS_GP:
                r = theta_s * tl.load(grad_psp + at, mask=mask, other=0.0) + decay_s * adjoint
                adjoint = r
                if HAS_GS:
                    g = r + tl.load(grad_spikes + at, mask=mask, other=0.0)
                else:
                    g = r
            else:
                g = tl.load(grad_spikes + at, mask=mask, other=0.0)
            o = tl.where(v > v_th, 1.0, 0.0)
            u_p = tl.load(u + tl.maximum(t - 1, 0) * n + offs, mask=mask, other=0.0)
            v_prev = tl.where((t == 0) | (u_p > v_th), 0.0, u_p)  # u'[t-1]
            inv_slope = o / tl.maximum(v - v_prev, min_du)
            between = leak - o * leak
            g_cur = inv_slope * g + carried * (between + inv_slope * v * theta_m)
            carried = g_cur * o + carried * between
            x = tl.minimum(tl.maximum((v - v_th) * inv_alpha, -clamp), clamp)
            e = tl.exp(-tl.abs(x))
            q = 1.0 + e
            surrogate = (e / (q * q)) * inv_alpha * g
            tl.store(out + at, tl.where(own_psp < silent_level, surrogate, g_cur), mask=mask)


@functools.cache
def _compiled(interpreted: bool) -> tuple:
    """The jitted (forward, backward) kernels, per mode (``TRITON_INTERPRET`` when compiled)."""
    with mock.patch.dict(os.environ, {"TRITON_INTERPRET": "1" if interpreted else "0"}):
        return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(T, ...) -> (T, neurons) contiguous."""
    return x.detach().contiguous().reshape(x.shape[0], -1)


def _f32(value: float) -> float:
    """A constant rounded to float32, as the CPU kernels hold it."""
    return float(torch.tensor(value, dtype=torch.float32))


def lif_psp_forward(
    current_tf: torch.Tensor, p: LIFParameters
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LIF neurons and their PSP over the first (time) axis: (spikes, u, psp), time-first, contiguous.

    Same contract as :func:`.kernels.lif_psp_forward`, for float32 tensors on the GPU.
    """
    flat = _flat(current_tf)
    n_steps, n = flat.shape
    spikes, u, psp = (torch.empty_like(flat) for _ in range(3))
    if n:
        grid = (triton.cdiv(n, BLOCK),)
        _compiled(_interpreted())[0][grid](
            flat,
            spikes,
            u,
            psp,
            n,
            n_steps,
            _f32(1.0 / p.tau_mem),
            _f32(1.0 / p.tau_syn),
            _f32(p.v_th),
            BLOCK=BLOCK,
        )
    return tuple(x.reshape(current_tf.shape) for x in (spikes, u, psp))


def tsslbp_psp_backward(
    grad_spikes_tf: torch.Tensor | None,
    grad_psp_tf: torch.Tensor | None,
    u_tf: torch.Tensor,
    p: LIFParameters,
    gp: TsslbpGradParameters,
) -> torch.Tensor:
    """``dE/dI`` (time-first) of a layer whose spikes and PSP received ``dE/do`` and ``dE/da``.

    Same contract as :func:`.kernels.tsslbp_psp_backward`; either gradient may be None.
    """
    if grad_spikes_tf is None and grad_psp_tf is None:
        raise ValueError(
            "tsslbp_psp_backward needs the gradient of the spikes, of the PSP, or both"
        )
    u_flat = _flat(u_tf)
    n_steps, n = u_flat.shape
    out = torch.empty_like(u_flat)
    # A missing gradient is flagged off and its slot filled with u (never read).
    gs = u_flat if grad_spikes_tf is None else _flat(grad_spikes_tf)
    gpsp = u_flat if grad_psp_tf is None else _flat(grad_psp_tf)
    if n:
        grid = (triton.cdiv(n, BLOCK),)
        _compiled(_interpreted())[1][grid](
            gs,
            gpsp,
            u_flat,
            out,
            n,
            n_steps,
            _f32(1.0 / p.tau_mem),
            _f32(1.0 / p.tau_syn),
            _f32(p.v_th),
            _f32(1.0 / (gp.silent_psp_divisor * p.tau_syn)),
            _f32(1.0 / gp.max_inv_slope),
            _f32(1.0 / gp.surrogate_alpha),
            _f32(gp.surrogate_clamp),
            HAS_GS=grad_spikes_tf is not None,
            HAS_GP=grad_psp_tf is not None,
            BLOCK=BLOCK,
        )
    return out.reshape(u_tf.shape)
