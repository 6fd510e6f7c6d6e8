"""How closely exported netx files follow their float checkpoint on the whole test split: golden
accuracy, the fraction of samples with the float model's prediction, the mean |output spike count
difference| per sample and neuron, and the samples each model alone gets right. Accuracy alone
moves by 0.1-0.2 points between exports of one checkpoint (docs/fixed-point.md, "Weight range");
the agreement figures separate export choices better.

    .venv/bin/python benchmarks/golden_vs_float.py CKPT NET [NET ...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tsslbp.data import load_experiment_data
from tsslbp.export.netx import read_netx
from tsslbp.hwmodels.golden import golden_output_counts
from tsslbp.train.loop import model_from_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("nets", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    model, cfg, _ = model_from_checkpoint(args.checkpoint)
    model.eval()
    test = load_experiment_data(cfg, args.data_dir).test
    labels = test.labels.numpy()
    with torch.no_grad():
        float_counts = np.concatenate(
            [model(part).spikes.sum(-1).numpy() for part in test.images.split(500)]
        )
    float_pred = float_counts.argmax(-1)
    float_right = float_pred == labels
    print(f"{args.checkpoint}: float {float_right.mean():.2%} on {len(labels)} test samples")
    for net in args.nets:
        counts = golden_output_counts(read_netx(net), test.images.numpy())
        pred = counts.argmax(-1)
        right = pred == labels
        print(
            f"{net}: golden {right.mean():.2%}, same prediction as float {np.mean(pred == float_pred):.2%}, "
            f"mean |count difference| {np.abs(counts - float_counts).mean():.4f}, "
            f"right only in float {int(np.sum(float_right & ~right))}, "
            f"only in golden {int(np.sum(right & ~float_right))}"
        )


if __name__ == "__main__":
    main()
