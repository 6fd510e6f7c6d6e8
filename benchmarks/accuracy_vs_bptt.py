"""Test accuracy after equal epochs: tsslbp's TSSL-BP vs snnTorch's surrogate-gradient BPTT.

Same network (the config's MLP: bias-free Linear + LIF, threshold 1, leak 1 - 1/tau_m, reset to
zero), same T, data, batch size, learning rate (Adam), epochs and per-epoch data order, several
seeds. TSSL-BP trains exactly as `tsslbp train` does (kernel loss, gradient clipping, weight
clipping). snnTorch trains as its tutorials do: the pixel values as input current at every step,
cross-entropy of output spike counts, autograd through time with the fast-sigmoid surrogate.

    pip install --no-deps snntorch==1.0.0
    .venv/bin/python benchmarks/accuracy_vs_bptt.py [--epochs 5] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tsslbp.config import load_config
from tsslbp.train.data import load_experiment_data
from tsslbp.train.loop import fit

from vs_snntorch import SnnTorchMLP

ROOT = Path(__file__).resolve().parents[1]


def train_bptt(cfg, data, seed: int, epochs: int) -> float:
    import snntorch.functional as SF

    torch.manual_seed(seed)
    sizes = [cfg.input_size] + [layer.n_outputs for layer in cfg.layers if layer.n_outputs]
    model = SnnTorchMLP(sizes, beta=1.0 - 1.0 / cfg.neuron.tau_m)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    loss_fn = SF.ce_count_loss()
    x_all, y_all = data.train.images, data.train.labels
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        for start in range(0, len(order), cfg.train.batch_size):
            idx = order[start : start + cfg.train.batch_size]
            loss = loss_fn(model(x_all[idx], cfg.n_steps), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        correct = 0
        for start in range(0, len(data.test), 1000):
            out = model(data.test.images[start : start + 1000], cfg.n_steps).sum(0)
            correct += int((out.argmax(-1) == data.test.labels[start : start + 1000]).sum())
    return correct / len(data.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fmnist_mlp_400_400.yaml"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    base = load_config(args.config).replace(epochs=args.epochs)
    data = load_experiment_data(base)
    rows = []
    for seed in args.seeds:
        cfg = base.replace(seed=seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            ours = fit(cfg, data, out, progress=False)[-1].test_acc
        t1 = time.perf_counter()
        theirs = train_bptt(cfg, data, seed, args.epochs)
        t2 = time.perf_counter()
        rows.append((seed, ours, theirs, t1 - t0, t2 - t1))
        print(f"seed {seed}: TSSL-BP {100 * ours:.2f}% ({t1 - t0:.0f} s)   snnTorch BPTT {100 * theirs:.2f}% ({t2 - t1:.0f} s)", flush=True)
    mean = lambda i: statistics.mean(r[i] for r in rows)  # noqa: E731
    print(f"{base.architecture}, T={base.n_steps}, {args.epochs} epochs, seeds {args.seeds}: "
          f"TSSL-BP {100 * mean(1):.2f}% vs BPTT {100 * mean(2):.2f}% (mean test accuracy)")


if __name__ == "__main__":
    main()
