"""The Triton kernels (tsslbp.train.triton_kernels) against the numba CPU kernels and the torch path.

Without a GPU they run under Triton's interpreter on CPU tensors (TRITON_INTERPRET=1, set here
before the kernels are first compiled); with one, on the GPU, and the CUDA tests below run too.
"""

import os

import pytest
import torch
from paths import REPO

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from tsslbp.config import load_config  # noqa: E402
from tsslbp.train import autograd, kernels, triton_kernels  # noqa: E402
from tsslbp.train.functional import LIFParameters, TsslbpGradParameters  # noqa: E402
from tsslbp.train.loop import loss_function  # noqa: E402
from tsslbp.train.network import TsslbpNetwork  # noqa: E402

DEVICE = torch.device("cuda" if CUDA else "cpu")
P = LIFParameters(tau_mem=5.0, tau_syn=3.0, v_th=1.0)
GP = TsslbpGradParameters()
# Small for the interpreter: a conv layer, a linear one, a count that is not a multiple of the
# block, T = 1, a long window.
SHAPES = [(2, 4, 6, 6, 5), (8, 100, 5), (3, triton_kernels.BLOCK + 7, 4), (5, 11, 1), (2, 13, 40)]

pytestmark = pytest.mark.skipif(
    not kernels.enabled(), reason="the numba kernels (the reference here) are unavailable"
)


def _inputs(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    current = torch.rand(shape, generator=g) * (1.6 if shape[-1] == 1 else 0.9)
    return current, torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_applies_to_float32_on_cuda_or_under_the_interpreter():
    x = torch.zeros(2, 3, device=DEVICE)
    assert triton_kernels.available(x)
    assert not triton_kernels.available(x.double())
    assert triton_kernels.supports(GP)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_equals_cpu_kernels(shape):
    current, _, _ = _inputs(shape)
    ref = kernels.lif_psp_forward(current.movedim(-1, 0), P)
    out = triton_kernels.lif_psp_forward(current.movedim(-1, 0).to(DEVICE), P)
    spikes_ref = ref[0]
    assert spikes_ref.sum() > 0 and (1 - spikes_ref).sum() > 0
    assert torch.equal(out[0].cpu(), spikes_ref), "spikes must agree exactly"
    for name, a, b in zip(("u", "psp"), out[1:], ref[1:], strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("uses", ["spikes", "psp", "both"])
def test_backward_equals_cpu_kernels(shape, uses):
    current, grad_spikes, grad_psp = _inputs(shape, seed=1)
    grad_spikes = grad_spikes.movedim(-1, 0) if uses in ("spikes", "both") else None
    grad_psp = grad_psp.movedim(-1, 0) if uses in ("psp", "both") else None
    _, u, _ = kernels.lif_psp_forward(current.movedim(-1, 0), P)
    ref = kernels.tsslbp_psp_backward(grad_spikes, grad_psp, u, P, GP)
    on = [None if g is None else g.to(DEVICE) for g in (grad_spikes, grad_psp, u)]
    out = triton_kernels.tsslbp_psp_backward(*on, P, GP).cpu()
    scale = ref.abs().max().item()
    assert scale > 0
    # A few ulp of the largest gradient: exp vs the CPU kernels' polynomial, fused multiply-adds.
    torch.testing.assert_close(out, ref, rtol=0, atol=4e-7 * scale)


def test_backward_needs_some_gradient():
    u = torch.zeros(3, 4, device=DEVICE)
    with pytest.raises(ValueError, match="needs the gradient"):
        triton_kernels.tsslbp_psp_backward(None, None, u, P, GP)


def _network_grads(cfg, device, monkeypatch=None):
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg).to(device)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, cfg.input_size, generator=g).to(device)
    y = torch.randint(0, cfg.data.n_class, (6,), generator=g).to(device)
    loss_function(cfg)(model(x).spikes, y).backward()
    return [p.grad.cpu() for p in model.parameters()]


@pytest.mark.parametrize("config", ["digits_mlp.yaml", "digits_cnn.yaml"])
def test_network_gradients_through_triton_equal_the_cpu_kernels(config, monkeypatch):
    cfg = load_config(REPO / "configs" / config)
    ref = _network_grads(cfg, "cpu")
    # Route every layer through the Triton kernels (on CPU: under the interpreter).
    monkeypatch.setattr(autograd, "_fused_kernels", lambda tensor: triton_kernels)
    out = _network_grads(cfg, DEVICE)
    scale = max(b.abs().max().item() for b in ref)
    assert scale > 0, "the check needs a gradient"
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_layers_take_the_triton_kernels():
    current = torch.rand(4, 10, 5, device="cuda", requires_grad=True)
    assert autograd._use_kernels(current, GP) and autograd._fused_kernels(current) is triton_kernels
    spikes, a = autograd.tsslbp_spike_psp(current, P)
    (spikes.sum() + a.sum()).backward()
    assert current.grad is not None and current.grad.device.type == "cuda"
