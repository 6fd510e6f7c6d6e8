"""Time one TSSL-BP training step (forward + backward) of tsslbp against the plain per-step loop.

The plain loop is tests/reference_tsslbp.py (numpy, one explicit loop over time per layer, the
equations written as specified), run in float32 on the same batch. Both are timed in this one
process, interleaved, and the ratio is printed.

    .venv/bin/python benchmarks/train_step.py [--config configs/fmnist_mlp_400_400.yaml] [--batch 50] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import reference_tsslbp as ref  # noqa: E402

from tsslbp.config import load_config  # noqa: E402
from tsslbp.train.functional import psp  # noqa: E402
from tsslbp.train.losses import desired_spike_pattern, kernel_loss  # noqa: E402
from tsslbp.train.network import TsslbpNetwork  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fmnist_mlp_400_400.yaml"))
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cfg = load_config(args.config)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = TsslbpNetwork(cfg)
    x = rng.uniform(0, 1, size=(args.batch, cfg.input_size)).astype(np.float32)
    labels = rng.integers(0, cfg.data.n_class, size=args.batch)
    x_t, labels_t = torch.from_numpy(x), torch.from_numpy(labels)
    weights = [layer.weight.detach().numpy() for layer in model.layers if hasattr(layer, "weight")]
    thresholds = [layer.neuron.v_th for layer in model.layers if hasattr(layer, "neuron")]
    desired = (
        np.eye(cfg.data.n_class, dtype=np.float32)[labels][..., None]
        * desired_spike_pattern(cfg.n_steps).numpy()
    )
    target_psp = psp(torch.from_numpy(desired), cfg.neuron.tau_s).numpy()

    def ours() -> None:
        model.zero_grad(set_to_none=True)
        kernel_loss(model(x_t).spikes, labels_t, cfg.neuron.tau_s).backward()

    def plain() -> None:
        ref.network_grads(
            x, weights, target_psp, cfg.n_steps, cfg.neuron.tau_m, cfg.neuron.tau_s, thresholds
        )

    for fn in (ours, plain):  # warm-up
        fn()
    times: dict[str, list[float]] = {"tsslbp": [], "plain loop": []}
    for _ in range(args.repeats):
        for name, fn in (("tsslbp", ours), ("plain loop", plain)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    sizes = "-".join(str(w.shape[0]) for w in weights)
    print(
        f"training step (forward + backward), {cfg.input_size}-{sizes}, T={cfg.n_steps}, batch {args.batch}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}:"
    )
    for name, ms in med.items():
        print(f"  {name:<11} {ms:8.2f} ms/step   {args.batch / ms * 1e3:9.0f} samples/s")
    print(f"  speed-up    {med['plain loop'] / med['tsslbp']:8.2f}x")


if __name__ == "__main__":
    main()
