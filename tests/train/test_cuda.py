"""Training on a CUDA device (skipped without one): the GPU path agrees with the CPU path."""

import pytest
import torch
from paths import REPO

from tsslbp.config import load_config
from tsslbp.data import load_digits
from tsslbp.train import distributed
from tsslbp.train.loop import fit, loss_function, resolve_device
from tsslbp.train.network import TsslbpNetwork

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _grads(cfg, device):
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg).to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(32, cfg.input_size, generator=g).to(device)
    y = torch.randint(0, cfg.data.n_class, (32,), generator=g).to(device)
    out = model(x).spikes
    loss_function(cfg)(out, y).backward()
    return out.detach().cpu(), [p.grad.cpu() for p in model.parameters()]


@pytest.fixture
def full_precision_convs():
    """cuDNN convolutions in float32 (torch allows TF32 for them by default: 10-bit mantissas)."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("config", ["digits_mlp.yaml", "digits_cnn.yaml", "fmnist_cnn.yaml"])
def test_cuda_step_equals_cpu_step(config, full_precision_convs):
    cfg = load_config(REPO / "configs" / config)
    spikes_cpu, grads_cpu = _grads(cfg, "cpu")
    spikes_gpu, grads_gpu = _grads(cfg, "cuda")
    # Spikes may flip where a membrane lies within rounding of the threshold (cuDNN sums in
    # another order): allow a tiny fraction.
    flipped = (spikes_cpu != spikes_gpu).float().mean().item()
    assert flipped < 1e-3, f"{100 * flipped:.3f}% of output spikes differ"
    scale = max(g.abs().max().item() for g in grads_cpu)
    for a, b in zip(grads_gpu, grads_cpu, strict=True):
        diff = (a - b).abs().max().item()
        assert diff <= 2e-2 * scale, f"gradient differs by {diff:.3g} (largest {scale:.3g})"


def test_digits_training_on_cuda_learns(tmp_path):
    cfg = load_config(REPO / "configs" / "digits_mlp.yaml").replace(epochs=3)
    history = fit(cfg, load_digits(), tmp_path, device=resolve_device("cuda"), progress=False)
    assert history[-1].test_acc > 0.6, f"test accuracy {history[-1].test_acc:.3f} after 3 epochs"


def test_torchrun_local_rank_picks_its_device(monkeypatch):
    env = dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    replicas = distributed.from_environment(torch.device("cuda"))
    assert replicas.device == torch.device("cuda", 0) and not replicas.distributed
