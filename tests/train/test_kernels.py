"""The fused CPU kernels (tsslbp.train.kernels) against the torch implementation of the same equations."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tsslbp.train import autograd, kernels
from tsslbp.train.autograd import _TsslbpSpike, tsslbp_spike_psp
from tsslbp.train.functional import LIFParameters, TsslbpGradParameters, lif_forward, psp

pytestmark = pytest.mark.skipif(
    not kernels.enabled(), reason="numba kernels unavailable or TSSLBP_KERNELS=torch"
)

P = LIFParameters(tau_mem=5.0, tau_syn=3.0, v_th=1.0)
GP = TsslbpGradParameters()


def _run(fused, current, grad_spikes, grad_psp, p=P, gp=GP):
    """Forward through _TsslbpSpike with the chosen implementation, backward from the given gradients."""
    x = current.clone().requires_grad_()
    spikes, a, _, _ = _TsslbpSpike.apply(x, fused, p.tau_mem, p.tau_syn, p.v_th, *gp)
    loss = sum(
        (out * g).sum() for out, g in ((spikes, grad_spikes), (a, grad_psp)) if g is not None
    )
    loss.backward()
    return spikes.detach(), a.detach(), x.grad


def _inputs(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    current = torch.rand(shape, generator=g, dtype=dtype) * (1.6 if shape[-1] == 1 else 0.9)
    return (
        current,
        torch.randn(shape, generator=g, dtype=dtype),
        torch.randn(shape, generator=g, dtype=dtype),
    )


# (N, C, H, W, T) conv layer, (N, C, T) linear layer, a neuron count that is not a multiple of the
# block size, T = 1, and a long window.
SHAPES = [(4, 8, 9, 9, 5), (16, 400, 5), (3, kernels.BLOCK + 7, 4), (5, 11, 1), (2, 13, 40)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_lif_then_psp(shape, dtype):
    current, _, _ = _inputs(shape, dtype)
    spikes_tf, u_tf, psp_tf = kernels.lif_psp_forward(current.movedim(-1, 0), P)
    trace = lif_forward(current, P)
    assert trace.spikes.sum() > 0 and (1 - trace.spikes).sum() > 0
    assert torch.equal(spikes_tf.movedim(0, -1), trace.spikes)
    tol = dict(rtol=0, atol=1e-6) if dtype == torch.float32 else dict(rtol=0, atol=1e-14)
    torch.testing.assert_close(u_tf.movedim(0, -1), trace.u, **tol)
    torch.testing.assert_close(psp_tf.movedim(0, -1), psp(trace.spikes, P.tau_syn), **tol)


def test_forward_spikes_need_strictly_more_than_threshold():
    current = torch.tensor([[1.0, 0.0, 0.0], [1.0 + 1e-6, 0.0, 0.0]])
    spikes, u, _ = (x.movedim(0, -1) for x in kernels.lif_psp_forward(current.movedim(-1, 0), P))
    assert spikes.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert u[0].tolist() == pytest.approx([1.0, 0.8, 0.64])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("uses", ["spikes", "psp", "both"])
def test_backward_equals_torch_path(shape, dtype, uses):
    current, grad_spikes, grad_psp = _inputs(shape, dtype, seed=1)
    grad_spikes = grad_spikes if uses in ("spikes", "both") else None
    grad_psp = grad_psp if uses in ("psp", "both") else None
    ref = _run(False, current, grad_spikes, grad_psp)
    out = _run(True, current, grad_spikes, grad_psp)
    assert torch.equal(out[0], ref[0])
    scale = ref[2].abs().max().item()
    assert scale > 0
    # float64 agrees to rounding; float32 to a few ulp of the largest gradient (du is rebuilt from u,
    # torch fuses some multiply-adds, the surrogate's exponential is a polynomial).
    atol = scale * (1e-6 if dtype == torch.float32 else 1e-14)
    torch.testing.assert_close(out[2], ref[2], rtol=0, atol=atol)


def test_backward_exercises_every_branch():
    # Silent neurons (surrogate), single spikes, bursts (intra-neuron carried state) all present.
    current, grad_spikes, _ = _inputs((8, 64, 6), torch.float64, seed=2)
    current[:, :16] *= 0.1  # silent
    current[:, 16:32] += 1.0  # bursts
    trace = lif_forward(current, P)
    own_psp = psp(trace.spikes, P.tau_syn)
    assert (own_psp < 1 / (4 * P.tau_syn)).any() and (own_psp >= 1 / (4 * P.tau_syn)).any()
    assert (trace.spikes.sum(-1) >= 2).any()
    ref = _run(False, current, grad_spikes, None)
    out = _run(True, current, grad_spikes, None)
    torch.testing.assert_close(out[2], ref[2], rtol=1e-12, atol=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    steps=st.integers(1, 9),
    scale=st.floats(0.05, 3.0),
    tau_mem=st.floats(1.5, 20.0),
    tau_syn=st.floats(1.0, 10.0),
    v_th=st.floats(0.2, 2.0),
    seed=st.integers(0, 2**16),
)
def test_fused_equals_torch_for_any_constants(n, steps, scale, tau_mem, tau_syn, v_th, seed):
    p = LIFParameters(tau_mem, tau_syn, v_th)
    g = torch.Generator().manual_seed(seed)
    current = torch.randn(3, n, steps, generator=g, dtype=torch.float64) * scale
    grads = [torch.randn(3, n, steps, generator=g, dtype=torch.float64) for _ in range(2)]
    ref = _run(False, current, *grads, p=p)
    out = _run(True, current, *grads, p=p)
    assert torch.equal(out[0], ref[0])
    torch.testing.assert_close(out[1], ref[1], rtol=0, atol=1e-13)
    torch.testing.assert_close(
        out[2], ref[2], rtol=1e-11, atol=1e-11 * (1 + ref[2].abs().max().item())
    )


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 8), (np.float64, 16)])
def test_sigmoid_slope_polynomial_is_accurate(dtype, ulps):
    import numba

    consts = kernels._slope_constants(torch.float32 if dtype == np.float32 else torch.float64)

    @numba.njit
    def evaluate(xs, out, k):
        for i in range(xs.size):
            out[i] = kernels._sigmoid_slope(xs[i], k)

    xs = np.linspace(-16, 16, 400_001).astype(dtype)
    out = np.empty_like(xs)
    evaluate(xs, out, consts)
    e = np.exp(-np.abs(xs.astype(np.longdouble)))  # s (1 - s) = e / (1 + e)**2 without cancellation
    exact = e / (1 + e) ** 2
    rel = np.abs(out - exact) / exact
    assert rel.max() < ulps * np.finfo(dtype).eps, f"max relative error {rel.max():.3g}"


def test_threaded_split_gives_the_serial_result(monkeypatch):
    current, grad_spikes, grad_psp = _inputs((4, 16, 9, 9, 5), torch.float32, seed=3)
    serial = _run(True, current, grad_spikes, grad_psp)
    # Every call now splits into one-block chunks over two threads.
    monkeypatch.setattr(kernels, "MIN_PER_THREAD", 1)
    monkeypatch.setattr(kernels, "CHUNKS_PER_THREAD", 10**6)
    calls = []
    real_pool = kernels._pool
    monkeypatch.setattr(
        kernels, "_pool", lambda workers: calls.append(workers) or real_pool(workers)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threaded = _run(True, current, grad_spikes, grad_psp)
    finally:
        torch.set_num_threads(threads)
    assert calls, "the threaded path was not taken"
    for a, b in zip(serial, threaded):
        assert torch.equal(a, b)


def test_dispatch(monkeypatch):
    x = torch.rand(2, 3, 4)
    assert autograd._use_kernels(x, GP)
    assert not autograd._use_kernels(x.to(torch.float16), GP)
    assert not autograd._use_kernels(x, GP._replace(surrogate_clamp=20.0))
    monkeypatch.setenv("TSSLBP_KERNELS", "torch")
    assert not autograd._use_kernels(x, GP)


def test_torch_setting_takes_the_torch_path(monkeypatch):
    monkeypatch.setenv("TSSLBP_KERNELS", "torch")

    def fail(*_):
        raise AssertionError("kernel called")

    monkeypatch.setattr(kernels, "lif_psp_forward", fail)
    monkeypatch.setattr(kernels, "tsslbp_psp_backward", fail)
    x = (torch.rand(2, 3, 4) * 2).requires_grad_()
    spikes, a = tsslbp_spike_psp(x, P)
    (spikes.sum() + a.sum()).backward()
    assert x.grad is not None


def test_unused_outputs_get_no_gradient_work():
    # Only the PSP is used: the backward pass must not need a gradient for the spikes (or u, du).
    x = (torch.rand(2, 3, 5) * 2).requires_grad_()
    _, a = tsslbp_spike_psp(x, P)
    a.sum().backward()
    y = x.detach().clone().requires_grad_()
    spikes, _ = tsslbp_spike_psp(y, P)
    psp(spikes, P.tau_syn).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-5, atol=1e-6)


def test_backward_needs_some_gradient():
    u = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="needs the gradient"):
        kernels.tsslbp_psp_backward(None, None, u, P, GP)


def test_network_gradients_match_between_paths(monkeypatch):
    from test_config import CONFIGS

    from tsslbp.config import load_config
    from tsslbp.train.network import TsslbpNetwork

    torch.manual_seed(0)
    net = TsslbpNetwork(load_config(CONFIGS / "digits_cnn.yaml")).double()
    with torch.no_grad():
        for w in net.parameters():
            w.mul_(3.0)  # enough activity at initialisation that every layer spikes
    x = torch.rand(6, 64, dtype=torch.float64)
    grads = []
    for setting in ("", "torch"):
        monkeypatch.setenv("TSSLBP_KERNELS", setting)
        net.zero_grad()
        out = net(x)
        assert out.spikes.sum() > 0
        weights = (
            torch.arange(out.spikes.numel(), dtype=torch.float64).reshape(out.spikes.shape).sin()
        )
        (out.spikes * weights).sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_threaded_kernels_work_in_a_forked_child(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(kernels, "MIN_PER_THREAD", 1)
    current, grad_spikes, _ = _inputs((4, 8, 9, 9, 5), torch.float32, seed=4)
    monkeypatch.setattr(kernels, "_threads", lambda: 2)
    expected = _run(True, current, grad_spikes, None)[2]  # the pool exists in the parent now
    assert kernels._pool.cache_info().currsize > 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_grad, (current, grad_spikes)).get(timeout=60)
    assert torch.equal(got, expected)


def _child_grad(current, grad_spikes):
    # torch's own OpenMP pool is not fork-safe (a child that uses it after the parent did can
    # hang), so the child keeps torch to one thread while the kernels still split over two.
    torch.set_num_threads(1)
    kernels.MIN_PER_THREAD = 1
    kernels._threads = lambda: 2
    calls = []
    real_pool = kernels._pool
    kernels._pool = lambda workers: calls.append(workers) or real_pool(workers)
    grad = _run(True, current, grad_spikes, None)[2]
    assert calls, "the threaded path was not taken in the child"
    return grad


_NO_CACHE_CHILD = """
import os
import tempfile

def read_only(*args, **kwargs):  # every place numba could cache in is unwritable
    raise PermissionError(13, "Read-only file system")

tempfile.TemporaryFile = read_only

import torch
from tsslbp.train import kernels
from tsslbp.train.autograd import tsslbp_spike_psp
from tsslbp.train.functional import LIFParameters, TsslbpGradParameters, lif_forward

p, gp = LIFParameters(), TsslbpGradParameters()
current = 1.6 * torch.rand(3, 40, 6, generator=torch.Generator().manual_seed(0))
spikes_tf, _, _ = kernels.lif_psp_forward(current.movedim(-1, 0).contiguous(), p)
assert spikes_tf.sum() > 0
assert torch.equal(spikes_tf.movedim(0, -1), lif_forward(current, p).spikes)
grads = []
for setting in ("", "torch"):  # the fused backward against the torch path
    os.environ["TSSLBP_KERNELS"] = setting
    x = current.clone().requires_grad_()
    tsslbp_spike_psp(x, p, gp)[1].sin().sum().backward()
    grads.append(x.grad)
assert grads[0].abs().sum() > 0
torch.testing.assert_close(grads[0], grads[1])
print("kernels ran")
"""


def test_kernels_compile_without_a_writable_cache():
    """A read-only install whose user has no writable cache directory still gets the kernels
    (numba refuses ``cache=True`` there), with a warning naming NUMBA_CACHE_DIR."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "TSSLBP_KERNELS")}
    proc = subprocess.run(
        [sys.executable, "-c", _NO_CACHE_CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "kernels ran" in proc.stdout
    assert "NUMBA_CACHE_DIR" in proc.stderr
