"""Accuracy of each loss definition (tsslbp's and the authors' code's) on the embedded digits.

Trains the digits MLP config once per (definition, seed) and returns the final-epoch float test
accuracies; docs/training.md records the figures. Takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DEFINITIONS", "DefinitionResult", "compare_loss_definitions", "definition_lines"]

#: Name -> ``Network:`` overrides of each definition compared.
DEFINITIONS: dict[str, dict[str, str]] = {
    "kernel, target filtered once": {"loss": "kernel", "kernel_target": "once"},
    "kernel, target filtered twice": {"loss": "kernel", "kernel_target": "twice"},
    "count on spikes": {"loss": "count", "count_loss_on": "spikes"},
    "count on PSP": {"loss": "count", "count_loss_on": "psp"},
    "softmax on spike counts": {"loss": "softmax", "softmax_on": "spikes"},
    "softmax on PSP sums": {"loss": "softmax", "softmax_on": "psp"},
    "kernel twice, prediction on PSP sums": {
        "loss": "kernel",
        "kernel_target": "twice",
        "predict_on": "psp",
    },
}


@dataclass(frozen=True)
class DefinitionResult:
    name: str
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)


def compare_loss_definitions(
    config: str = "digits_mlp", seeds: Sequence[int] = (0, 1, 2)
) -> list[DefinitionResult]:
    """Final-epoch test accuracy of every definition in :data:`DEFINITIONS` for each seed."""
    import torch

    from ..config import load_config
    from ..data import load_experiment_data
    from ..train.loop import fit

    base = load_config(_config_path(config))
    data = load_experiment_data(base)
    results = []
    for name, overrides in DEFINITIONS.items():
        accs = []
        for seed in seeds:
            torch.manual_seed(seed)
            with tempfile.TemporaryDirectory() as out:
                history = fit(
                    base.replace(seed=seed, **overrides),
                    data,
                    out,
                    progress=False,
                    checkpoint_seconds=None,
                )
            accs.append(history[-1].test_acc)
        results.append(DefinitionResult(name, tuple(accs)))
    return results


def definition_lines(results: list[DefinitionResult], seeds: Sequence[int]) -> list[str]:
    """A markdown table of :func:`compare_loss_definitions`' results."""
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [f"| definition | {head} | mean |", "|---" * (len(seeds) + 2) + "|"]
    for r in results:
        cells = " | ".join(f"{100 * a:.2f}%" for a in r.accuracies)
        lines.append(f"| {r.name} | {cells} | {100 * r.mean:.2f}% |")
    return lines


def _config_path(name: str) -> str:
    from pathlib import Path

    if Path(name).suffix in (".yaml", ".yml"):
        return name
    return str(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
