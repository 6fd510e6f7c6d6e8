"""Fraction of neuron-steps that spike in each spiking layer of a network, on the first test samples:
the config's network at initialization (seed from the config), or a trained checkpoint.

    .venv/bin/python benchmarks/firing_rates.py fmnist_cnn [--first-layer-gain 3] [--samples 500]
    .venv/bin/python benchmarks/firing_rates.py runs/cnn/drop30/last.pt

``--first-layer-gain G`` multiplies the first layer's initial weights by G (what ``weight_scale: G``
on that layer gives at initialization). BENCHMARKS.md (issue 14) quotes its figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tsslbp.config import load_config
from tsslbp.configs import find_config
from tsslbp.data import load_experiment_data
from tsslbp.train.loop import model_from_checkpoint
from tsslbp.train.network import TsslbpNetwork


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a config (name or path) or a checkpoint (.pt)")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--first-layer-gain", type=float, default=1.0)
    args = parser.parse_args()
    if args.source.endswith(".pt"):
        model, cfg, _ = model_from_checkpoint(Path(args.source))
        what = args.source
    else:
        cfg = load_config(find_config(args.source))
        torch.manual_seed(cfg.train.seed)
        model = TsslbpNetwork(cfg)
        what = f"{args.source} at initialization (seed {cfg.train.seed})"
    if args.first_layer_gain != 1.0:
        first = next(p for p in model.parameters())
        with torch.no_grad():
            first.mul_(args.first_layer_gain)
        what += f", first layer's weights x{args.first_layer_gain:g}"
    x = load_experiment_data(cfg).test.images[: args.samples]
    model.eval()
    with torch.no_grad():
        out = model(x)
    rates = [f"{100 * s.float().mean().item():.1f}%" for s in (*out.hidden_spikes, out.spikes)]
    print(f"{what}, {len(x)} test samples: spiking layers {', '.join(rates)} of neuron-steps")


if __name__ == "__main__":
    main()
