"""Fused CPU kernels (numba) for a TSSL-BP layer: LIF + PSP forward, TSSL-BP + PSP-adjoint backward.

The torch implementation in :mod:`.functional` makes many elementwise passes over a layer's
(T, neurons) state: the LIF recursion four per step, the PSP filter two, the backward pass about
twenty (inverse slope, the intra-neuron walk, the layer's own PSP for the silent-neuron test, the
sigmoid surrogate, the final select) and the PSP's adjoint two more. On a CPU those passes over
memory, not the arithmetic, set the time of a convolutional layer. The kernels here compute the
same equations in one pass each way:

* forward: reads the current ``I``, writes the spikes ``o``, the membrane ``u`` and the PSP ``a``;
* backward: reads ``dE/do``, ``dE/da`` and ``u`` and writes ``dE/dI``. Everything else is rebuilt
  from ``u``: ``o[t] = u[t] > v_th`` (the forward's own test), ``du[t] = u[t] - u'[t-1]`` with
  ``u'`` the membrane after reset, and the layer's own PSP for the silent-neuron test.

Neurons are cut into blocks; a block is walked through time with its per-neuron state in small
local buffers that stay in cache. Large layers are split into chunks of blocks that the calling
thread and a small thread pool take in turn (the compiled kernels release the GIL); see
:func:`_run`. numba's own parallel threading layers were measured and not used: its OpenMP layer
shares the OpenMP runtime with torch and left torch's later operations twice as slow, and fixed
halves on its workqueue layer waited on cores that torch's OpenMP workers were still spinning on.

They are used for float32/float64 CPU tensors when numba imports and ``TSSLBP_KERNELS`` is not
``torch``; everything else takes the torch path. Agreement with the torch path: the spikes are the
same equations and agree exactly unless a value lies within rounding of the threshold (torch fuses
some multiply-adds); ``u``, the PSP and the gradients agree to a few units in the last place (``du``
is rebuilt from ``u``, and the surrogate's exponential is a polynomial: :func:`_sigmoid_slope`).
The tests hold the two paths to that.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
import os
import threading
from typing import NamedTuple

import numpy as np
import torch

from .functional import LIFParameters, TsslbpGradParameters

__all__ = [
    "BackwardConstants",
    "ForwardConstants",
    "enabled",
    "available",
    "supports",
    "lif_psp_forward",
    "tsslbp_psp_backward",
]

try:  # numba is a dependency, but a broken or missing install must not stop training.
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

#: Neurons per block: a block's state over T steps (a few arrays of BLOCK values) stays in cache.
BLOCK = 2048
#: Values (T x neurons) per thread below which a kernel runs on the calling thread alone.
MIN_PER_THREAD = 2**18
#: Chunks per thread in a parallel call (see _run).
CHUNKS_PER_THREAD = 8
_DTYPES = (torch.float32, torch.float64)


class ForwardConstants(NamedTuple):
    """What the forward kernel needs, in the tensors' precision (:func:`_typed`).

    Attributes:
        theta_m: 1 / tau_mem, the membrane's leak per step.
        theta_s: 1 / tau_syn, the PSP filter's gain (its decay is 1 - theta_s).
        v_th: firing threshold (a spike needs ``u > v_th``).
        one, zero: 1 and 0 (typed literals keep float32 arithmetic in float32).
    """

    theta_m: float
    theta_s: float
    v_th: float
    one: float = 1.0
    zero: float = 0.0


class BackwardConstants(NamedTuple):
    """What the backward kernel needs, in the tensors' precision (:func:`_typed`).

    Attributes:
        theta_m, theta_s, v_th: as in :class:`ForwardConstants`.
        silent_level: PSP below which a neuron counts as silent (1 / (silent_psp_divisor tau_syn)).
        min_du: the smallest membrane jump the inverse slope divides by (1 / max_inv_slope).
        inv_alpha: 1 / surrogate_alpha, the sigmoid surrogate's input scale.
        clamp: the surrogate's argument is clamped to [-clamp, clamp].
        one, zero: 1 and 0.
    """

    theta_m: float
    theta_s: float
    v_th: float
    silent_level: float
    min_du: float
    inv_alpha: float
    clamp: float
    one: float = 1.0
    zero: float = 0.0


def enabled() -> bool:
    """Whether the fused kernels may be used at all (numba imports; ``TSSLBP_KERNELS`` is not ``torch``)."""
    return numba is not None and os.environ.get("TSSLBP_KERNELS", "").strip().lower() != "torch"


def available(*tensors: torch.Tensor | None) -> bool:
    """Whether the fused kernels apply to these tensors: enabled, CPU, float32/float64, one dtype."""
    present = [t for t in tensors if t is not None]
    if not enabled() or not present:
        return False
    dtype = present[0].dtype
    return dtype in _DTYPES and all(t.device.type == "cpu" and t.dtype == dtype for t in present)


def supports(gp: TsslbpGradParameters) -> bool:
    """Whether the kernels handle these backward constants (the surrogate's polynomial exponential
    covers arguments up to 16: ``surrogate_clamp <= 16``)."""
    return gp.surrogate_clamp <= 16.0


_log = logging.getLogger(__name__)


def _compiler(**options):
    """``numba.njit(cache=True, **options)``, or without the on-disk cache where numba finds no
    writable place for it (a read-only install with an unwritable home and no ``NUMBA_CACHE_DIR``):
    numba refuses the decoration then, and the kernels would be lost for want of a cache."""

    def decorate(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError as err:  # "cannot cache function ...: no locator available ..."
            if "cannot cache" not in str(err):
                raise
            _warn_no_cache()
            return numba.njit(**options)(fn)

    return decorate


@functools.cache
def _warn_no_cache() -> None:
    _log.warning(
        "numba has no writable cache directory: the TSSL-BP kernels compile in every process "
        "(a few seconds); set NUMBA_CACHE_DIR to a writable directory to keep them"
    )


if numba is not None:
    _jit = _compiler(error_model="numpy", nogil=True)
    _inline = _compiler(inline="always", error_model="numpy")

    @_inline
    def _sigmoid_slope(x, k):  # pragma: no cover - compiled
        """``s(x) (1 - s(x))`` for the logistic ``s``, as ``e / (1 + e)**2`` with ``e = exp(-|x|)``.

        Plain arithmetic in the precision of ``x`` (constants ``k`` from :func:`_slope_constants`),
        which the compiler vectorizes, where a call to ``exp`` would run once per element:
        ``exp(-z) = 2**-n * exp(-r)`` with ``n = floor(z / ln 2)``, ``r`` in [0, ln 2); ``exp(-r)``
        is a Taylor polynomial around ln(2)/2; ``2**-n`` a product of exact powers of two chosen by
        the bits of n (z <= surrogate_clamp <= 16 here, so n < 32). Error: a few ulp (tested).
        """
        z = abs(x)
        n = np.floor(z * k[0])
        d = -((z - n * k[1]) - n * k[2] - k[3])  # ln(2)/2 - r, |d| <= ln(2)/2
        # Horner, written out (a loop here would be the innermost loop and stop vectorization).
        # k ends with the Taylor coefficients 1/m!, highest degree first: degree 13 in float64
        # (truncation below 1e-17 relative), degree 7 in float32 (below 6e-9, under half an ulp).
        p = k[-8]  # 1/7!
        if len(k) > _SLOPE_FIXED + 8:  # fixed when compiling: the float64 constants
            p = k[-14] * d + k[-13]
            p = p * d + k[-12]
            p = p * d + k[-11]
            p = p * d + k[-10]
            p = p * d + k[-9]
            p = p * d + k[-8]
        p = p * d + k[-7]
        p = p * d + k[-6]
        p = p * d + k[-5]
        p = p * d + k[-4]
        p = p * d + k[-3]
        p = p * d + k[-2]
        p = p * d + k[-1]
        e = p * k[4]  # * exp(-ln(2)/2)
        bits = np.int32(n)
        e = e * (k[5] if bits & 1 else k[10])  # 2**-1 or 1
        e = e * (k[6] if bits & 2 else k[10])  # 2**-2
        e = e * (k[7] if bits & 4 else k[10])  # 2**-4
        e = e * (k[8] if bits & 8 else k[10])  # 2**-8
        e = e * (k[9] if bits & 16 else k[10])  # 2**-16
        q = k[10] + e
        return e / (q * q)

    @_jit
    def _forward_kernel(current, spikes, u, psp, c, start, stop):  # pragma: no cover - compiled
        theta_m, theta_s, v_th, one, zero = c.theta_m, c.theta_s, c.v_th, c.one, c.zero
        n_steps = current.shape[0]
        decay_s = one - theta_s
        for lo in range(start, stop, BLOCK):  # neurons start..stop-1, a block at a time
            hi = min(lo + BLOCK, stop)
            u_reset = np.zeros(hi - lo, current.dtype)  # u'[t-1]
            a_prev = np.zeros(hi - lo, current.dtype)  # a[t-1]
            for t in range(n_steps):
                i_t, u_t, o_t, a_t = current[t, lo:hi], u[t, lo:hi], spikes[t, lo:hi], psp[t, lo:hi]
                for j in range(hi - lo):
                    v = u_reset[j] + (i_t[j] - u_reset[j] * theta_m)
                    fired = v > v_th
                    o = one if fired else zero
                    a = theta_s * o + decay_s * a_prev[j]
                    u_t[j] = v
                    o_t[j] = o
                    a_t[j] = a
                    u_reset[j] = zero if fired else v
                    a_prev[j] = a

    @_jit
    def _backward_kernel(
        grad_spikes, has_gs, grad_psp, has_gp, u, out, c, k, start, stop
    ):  # pragma: no cover - compiled
        theta_m, theta_s, v_th, one, zero = c.theta_m, c.theta_s, c.v_th, c.one, c.zero
        silent_level, min_du, inv_alpha, clamp = c.silent_level, c.min_du, c.inv_alpha, c.clamp
        n_steps = u.shape[0]
        leak = one - theta_m
        decay_s = one - theta_s
        for lo in range(start, stop, BLOCK):  # neurons start..stop-1, a block at a time
            hi = min(lo + BLOCK, stop)
            n = hi - lo
            # The layer's own PSP, forward in time, decides where the silent-neuron surrogate applies.
            silent = np.empty((n_steps, n), np.bool_)
            a_prev = np.zeros(n, u.dtype)
            for t in range(n_steps):
                u_t = u[t, lo:hi]
                for j in range(n):
                    a = theta_s * (one if u_t[j] > v_th else zero) + decay_s * a_prev[j]
                    a_prev[j] = a
                    silent[t, j] = a < silent_level
            # Backward in time (see functional.tsslbp_backward): g = dE/do, plus the PSP's adjoint of
            # dE/da, r[t] = theta_s dE/da[t] + (1 - theta_s) r[t+1]; the inter-neuron term at spikes;
            # the intra-neuron carried state (leak between spikes, theta_m u / du across one); the
            # surrogate where silent.
            carried = np.zeros(n, u.dtype)
            adjoint = np.zeros(n, u.dtype)
            for t in range(n_steps - 1, -1, -1):
                u_t, out_t, silent_t = u[t, lo:hi], out[t, lo:hi], silent[t]
                u_p = u[max(t - 1, 0), lo:hi]  # u[t-1] (unused at t = 0)
                # out_t <- g = dE/do over both uses of the spikes (has_gs / has_gp: which arrived).
                gp_t, gs_t = grad_psp[t, lo:hi], grad_spikes[t, lo:hi]
                if has_gp:
                    for j in range(n):
                        r = theta_s * gp_t[j] + decay_s * adjoint[j]
                        adjoint[j] = r
                        out_t[j] = r + gs_t[j] if has_gs else r
                else:
                    out_t[:] = gs_t
                first = t == 0
                for j in range(n):  # out_t holds g = dE/do (all uses) here
                    v = u_t[j]
                    g = out_t[j]
                    o = one if v > v_th else zero
                    v_prev = zero if first or u_p[j] > v_th else u_p[j]  # u'[t-1]
                    inv_slope = o / max(v - v_prev, min_du)
                    between = leak - o * leak
                    cj = carried[j]
                    g_cur = inv_slope * g + cj * (between + inv_slope * v * theta_m)
                    carried[j] = g_cur * o + cj * between
                    x = min(max((v - v_th) * inv_alpha, -clamp), clamp)
                    surrogate = _sigmoid_slope(x, k) * inv_alpha * g
                    out_t[j] = surrogate if silent_t[j] else g_cur


_LN2 = math.log(2.0)
_LN2_HI = (
    0.693145751953125  # ln 2 in few enough bits that n * _LN2_HI is exact in float32 (Cody-Waite)
)
#: Constants of _sigmoid_slope: 1/ln2, ln2 split in two, ln2/2, exp(-ln2/2), 2**-1, 2**-2, 2**-4,
#: 2**-8, 2**-16, 1; then the Taylor coefficients (see _slope_constants).
_SLOPE_HEAD = (
    1 / _LN2,
    _LN2_HI,
    _LN2 - _LN2_HI,
    _LN2 / 2,
    math.exp(-_LN2 / 2),
    2.0**-1,
    2.0**-2,
    2.0**-4,
    2.0**-8,
    2.0**-16,
    1.0,
)
_SLOPE_FIXED = len(_SLOPE_HEAD)


def _slope_constants(dtype: torch.dtype) -> tuple:
    """_sigmoid_slope's constants: the head, then 1/m! for m = degree .. 0 (13 in float64, 7 in float32)."""
    degree = 13 if dtype == torch.float64 else 7
    return _constants(dtype, *_SLOPE_HEAD, *(1 / math.factorial(m) for m in range(degree, -1, -1)))


def _flat(x: torch.Tensor) -> np.ndarray:
    """(T, ...) tensor -> (T, neurons) C-contiguous numpy view (a copy only if not contiguous)."""
    return x.detach().contiguous().reshape(x.shape[0], -1).numpy()


def _threads() -> int:
    """Threads a kernel call may use: as many as torch's intra-op pool."""
    return torch.get_num_threads()


@functools.cache
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """Worker threads for :func:`_run` (the calling thread takes chunks too)."""
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tsslbp-kernel")


# A forked child has the pool object but not its threads: give it a fresh pool.
os.register_at_fork(after_in_child=_pool.cache_clear)


def _run(kernel, *args) -> None:
    """Call ``kernel(*args, start, stop)`` over all neurons, on several threads when it pays.

    The neurons are cut into chunks of whole blocks that the calling thread and the pool's workers
    take in turn until none is left (the kernels release the GIL). Taking chunks rather than fixed
    halves matters: right after a torch operation, torch's OpenMP workers keep spinning on the
    cores for a while, and a worker that gets little CPU then simply takes fewer chunks.
    """
    n_steps, n_neurons = args[0].shape  # every array argument has this (T, neurons) shape
    threads = min(_threads(), max(1, n_steps * n_neurons // MIN_PER_THREAD))
    if threads <= 1:
        kernel(*args, 0, n_neurons)
        return
    per_chunk = max(BLOCK, -(-n_neurons // (CHUNKS_PER_THREAD * threads * BLOCK)) * BLOCK)
    chunks = iter(range(0, n_neurons, per_chunk))
    lock = threading.Lock()

    def take_chunks() -> None:
        while True:
            with lock:
                lo = next(chunks, None)
            if lo is None:
                return
            kernel(*args, lo, min(lo + per_chunk, n_neurons))

    futures = [_pool(threads - 1).submit(take_chunks) for _ in range(threads - 1)]
    take_chunks()
    for future in futures:
        future.result()


def _constants(dtype: torch.dtype, *values: float) -> tuple:
    """Constants in the tensors' precision, as a tuple (Python floats in a kernel would promote
    float32 to float64; a tuple's entries are plain values to the compiler, where loads from an
    array might alias the outputs and keep the loops from vectorizing)."""
    kind = np.float32 if dtype == torch.float32 else np.float64
    return tuple(kind(v) for v in values)


def _typed(constants: NamedTuple, dtype: torch.dtype) -> NamedTuple:
    """The same named constants, each as a numpy scalar of the tensors' precision."""
    return type(constants)._make(_constants(dtype, *constants))


def lif_psp_forward(
    current_tf: torch.Tensor, p: LIFParameters
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LIF neurons and their PSP over the first (time) axis: (spikes, u, psp), time-first, contiguous.

    Same equations as :func:`.functional.lif_forward` followed by :func:`.functional.psp`.
    """
    spikes, u, psp = (torch.empty(current_tf.shape, dtype=current_tf.dtype) for _ in range(3))
    consts = _typed(ForwardConstants(1.0 / p.tau_mem, 1.0 / p.tau_syn, p.v_th), current_tf.dtype)
    _run(_forward_kernel, _flat(current_tf), _flat(spikes), _flat(u), _flat(psp), consts)
    return spikes, u, psp


def tsslbp_psp_backward(
    grad_spikes_tf: torch.Tensor | None,
    grad_psp_tf: torch.Tensor | None,
    u_tf: torch.Tensor,
    p: LIFParameters,
    gp: TsslbpGradParameters,
) -> torch.Tensor:
    """``dE/dI`` (time-first) of a layer whose spikes and PSP received ``dE/do`` and ``dE/da``.

    Either gradient may be None (that output was not used). Same result as
    :func:`.functional.tsslbp_backward` applied to ``dE/do + psp_adjoint(dE/da)``.
    """
    out = torch.empty(u_tf.shape, dtype=u_tf.dtype)
    constants = BackwardConstants(
        theta_m=1.0 / p.tau_mem,
        theta_s=1.0 / p.tau_syn,
        v_th=p.v_th,
        silent_level=1.0 / (gp.silent_psp_divisor * p.tau_syn),
        min_du=1.0 / gp.max_inv_slope,
        inv_alpha=1.0 / gp.surrogate_alpha,
        clamp=gp.surrogate_clamp,
    )
    consts = _typed(constants, u_tf.dtype)
    if grad_spikes_tf is None and grad_psp_tf is None:
        raise ValueError(
            "tsslbp_psp_backward needs the gradient of the spikes, of the PSP, or both"
        )
    u_flat = _flat(u_tf)
    # A missing gradient is flagged and its slot filled with any array of the right shape (unread).
    grads = [
        (u_flat, False) if g is None else (_flat(g), True) for g in (grad_spikes_tf, grad_psp_tf)
    ]
    _run(
        _backward_kernel,
        *grads[0],
        *grads[1],
        u_flat,
        _flat(out),
        consts,
        _slope_constants(u_tf.dtype),
    )
    return out
