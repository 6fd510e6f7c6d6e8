"""One training step (forward + backward + Adam) of tsslbp's TSSL-BP vs snnTorch's BPTT, side by side.

Same architecture (bias-free Linear layers with LIF neurons, reset to zero, threshold 1,
leak 1 - 1/tau_m = 0.8), same T and batch, timed interleaved in one process; median of repeats.
tsslbp: PSP-filtered input, kernel loss, the TSSL-BP gradient. snnTorch: Leaky neurons with the
fast-sigmoid surrogate, input current repeated over T, cross-entropy of spike counts (its usual
rate-coded setup), autograd through time.

    pip install --no-deps snntorch==1.0.0   # not a dependency of tsslbp
    .venv/bin/python benchmarks/vs_snntorch.py [--batch 64] [--steps 5] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from tsslbp.config import load_config
from tsslbp.train.loop import loss_function
from tsslbp.train.network import TsslbpNetwork

ROOT = Path(__file__).resolve().parents[1]


class SnnTorchMLP(nn.Module):
    def __init__(self, sizes: list[int], beta: float) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=beta, threshold=1.0, spike_grad=surrogate.fast_sigmoid(), reset_mechanism="zero")
            for _ in sizes[1:]
        )

    def forward(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        mems = [lif.init_leaky() for lif in self.lifs]
        out = []
        for _ in range(n_steps):
            h = x
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                h, mems[i] = lif(fc(h), mems[i])
            out.append(h)
        return torch.stack(out)  # (T, N, n_class)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fmnist_mlp_400_400.yaml"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="T (default: the config's)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    import snntorch.functional as SF

    cfg = load_config(args.config)
    if args.steps:
        cfg = cfg.replace(n_steps=args.steps)
    torch.manual_seed(0)
    x = torch.rand(args.batch, cfg.input_size)
    y = torch.randint(0, cfg.data.n_class, (args.batch,))

    ours = TsslbpNetwork(cfg)
    ours_opt = torch.optim.Adam(ours.parameters(), lr=cfg.train.lr)
    loss_fn = loss_function(cfg)
    sizes = [cfg.input_size] + [layer.n_outputs for layer in cfg.layers if layer.n_outputs]
    peer = SnnTorchMLP(sizes, beta=1.0 - 1.0 / cfg.neuron.tau_m)
    peer_opt = torch.optim.Adam(peer.parameters(), lr=cfg.train.lr)
    peer_loss = SF.ce_count_loss()

    def step_ours() -> None:
        loss = loss_fn(ours(x).spikes, y)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()

    def step_peer() -> None:
        loss = peer_loss(peer(x, cfg.n_steps), y)
        peer_opt.zero_grad()
        loss.backward()
        peer_opt.step()

    for fn in (step_ours, step_peer):
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {"tsslbp (TSSL-BP)": [], "snnTorch (BPTT)": []}
    for _ in range(args.repeats):
        for name, fn in zip(times, (step_ours, step_peer)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"training step, {'-'.join(map(str, sizes))}, T={cfg.n_steps}, batch {args.batch}, {torch.get_num_threads()} threads, median of {args.repeats}:")
    for name, ms in med.items():
        print(f"  {name:<17} {ms:8.2f} ms/step  {args.batch / ms * 1e3:9.0f} samples/s")
    names = list(med)
    print(f"  snnTorch / tsslbp time: {med[names[1]] / med[names[0]]:.2f}x")


if __name__ == "__main__":
    main()
