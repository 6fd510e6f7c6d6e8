"""Write the snnTorch-made NIR files under tests/data/nir/ and snnTorch's own spikes for them.

Run from the repository root with snnTorch and nirtorch installed (the ``nirgen`` extra, with
``--no-deps``: ``pip install --no-deps snntorch==1.0.0 nirtorch==2.6``)::

    .venv/bin/python tests/data/make_nir_snntorch.py

Seeded and deterministic on CPU. For each network it writes ``<name>.nir`` (``snntorch.export_nir``
then ``nir.write``) and ``<name>.npz`` with a fixed binary input ``x`` (B, *input shape, T) and
``spikes<i>`` (B, *layer shape, T), the spikes of the i-th spiking layer as snnTorch computes them.
``versions.json`` records the package versions and the seed.

Neurons reset to zero (``reset_mechanism="zero"``): NIR's LIF/CubaLIF set ``v = v_reset`` after a
spike and snnTorch's export writes ``v_reset = 0`` whatever the module's reset, so a subtractive
reset would not be what the file says. ``Synaptic`` needs ``reset_delay=False`` for the same
reason: with the delayed reset it discards the input of the step after a spike.
"""

from __future__ import annotations

import json
import warnings
from importlib import metadata
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

OUT = Path(__file__).resolve().parent / "nir"
SEED = 7
N_STEPS = 24
BATCH = 6
INPUT_RATE = 0.3


def _leaky(shape: tuple[int, ...], beta: float, output: bool = False) -> snn.Leaky:
    # Per-neuron beta and threshold tensors: snnTorch's export gives scalars shape (), which
    # nir's type check rejects against the layer's (n,) shape.
    return snn.Leaky(
        beta=torch.full(shape, beta),
        threshold=torch.ones(shape),
        init_hidden=True,
        reset_mechanism="zero",
        output=output,
    )


def _synaptic(
    shape: tuple[int, ...], alpha: float, beta: float, output: bool = False
) -> snn.Synaptic:
    return snn.Synaptic(
        alpha=torch.full(shape, alpha),
        beta=torch.full(shape, beta),
        threshold=torch.ones(shape),
        init_hidden=True,
        reset_mechanism="zero",
        reset_delay=False,
        output=output,
    )


def _networks() -> dict[str, tuple[torch.nn.Sequential, tuple[int, ...], tuple[float, ...]]]:
    """name -> (network, input shape, weight gains per synapse that give a few spikes per neuron)."""
    return {
        "snntorch_mlp_leaky": (
            torch.nn.Sequential(
                torch.nn.Linear(16, 12, bias=False),
                _leaky((12,), 0.8),
                torch.nn.Linear(12, 5, bias=False),
                _leaky((5,), 0.8, output=True),
            ),
            (16,),
            (2.5, 12.0),
        ),
        "snntorch_mlp_synaptic": (
            torch.nn.Sequential(
                torch.nn.Linear(16, 12, bias=False),
                _synaptic((12,), 0.6, 0.8),
                torch.nn.Linear(12, 5, bias=False),
                _synaptic((5,), 0.6, 0.8, output=True),
            ),
            (16,),
            (1.2, 2.5),
        ),
        "snntorch_cnn_avgpool": (
            torch.nn.Sequential(
                torch.nn.Conv2d(1, 4, 3, bias=False),
                _leaky((4, 6, 6), 0.8),
                torch.nn.AvgPool2d(2),
                torch.nn.Flatten(),
                torch.nn.Linear(4 * 3 * 3, 5, bias=False),
                _leaky((5,), 0.8, output=True),
            ),
            (1, 8, 8),
            (3.0, 16.0),
        ),
    }


@torch.no_grad()
def _run(net: torch.nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    """snnTorch's spikes of every spiking layer, (B, *shape, T), for input (B, *shape, T)."""
    snn_utils.reset(net)
    per_step: list[list[torch.Tensor]] = []
    for t in range(x.shape[-1]):
        h = x[..., t]
        spikes = []
        for module in net:
            h = module(h)
            if isinstance(h, tuple):  # output=True layers return (spikes, state...)
                h = h[0]
            if isinstance(module, snn.SpikingNeuron):
                spikes.append(h.clone())
        per_step.append(spikes)
    return [
        torch.stack([step[i] for step in per_step], dim=-1).numpy().astype(np.uint8)
        for i in range(len(per_step[0]))
    ]


def _recurrent() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(6, 4, bias=False),
        snn.RLeaky(
            beta=torch.full((4,), 0.8), linear_features=4, init_hidden=True, reset_mechanism="zero"
        ),
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's extract_nir_graph
    for name, (net, shape, gains) in _networks().items():
        synapses = [m for m in net if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        with torch.no_grad():
            for module, gain in zip(synapses, gains):
                module.weight.mul_(gain)
        graph = export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0])
        nir.write(OUT / f"{name}.nir", graph)
        x = (torch.rand(BATCH, *shape, N_STEPS, generator=gen) < INPUT_RATE).float()
        spikes = _run(net, x)
        np.savez_compressed(
            OUT / f"{name}.npz",
            x=x.numpy().astype(np.uint8),
            **{f"spikes{i}": s for i, s in enumerate(spikes)},
        )
        rates = ", ".join(f"{s.mean():.3f}" for s in spikes)
        print(f"{name}: {len(graph.nodes)} nodes, spike rates per layer {rates}")
    nir.write(
        OUT / "snntorch_rleaky.nir", export_to_nir(_recurrent(), torch.zeros(1, 6), ignore_dims=[0])
    )
    versions = {p: metadata.version(p) for p in ("snntorch", "nirtorch", "nir", "torch", "numpy")}
    (OUT / "versions.json").write_text(
        json.dumps(
            {"seed": SEED, "n_steps": N_STEPS, "input_rate": INPUT_RATE, "versions": versions},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
