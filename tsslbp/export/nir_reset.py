"""Which reset a NIR graph's neurons get on import, and when the graph may mean another.

NIR's LIF and CubaLIF set ``v = v_reset`` after a spike; Loihi (and so every imported network)
resets ``v`` to 0, and NIR has no subtractive reset. snnTorch's exporter writes ``v_reset = 0``
whatever the neuron's ``reset_mechanism``, and snnTorch's default is ``"subtract"``: a network trained
with it imports without a word and then spikes differently. snnTorch's graphs carry no producer
metadata, but its exporter leaves a signature, ``r = tau_mem / 1e-4`` on every neuron (its fixed
``dt``); :func:`reset_notes` warns when it sees that, and always states the reset it assumes.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

__all__ = ["SNNTORCH_DT", "RESET_ASSUMED", "looks_like_snntorch", "reset_notes"]

#: The time step snnTorch's ``export_to_nir`` writes its time constants with (seconds).
SNNTORCH_DT = 1e-4
#: What ``tsslbp nir-import`` always says about the reset.
RESET_ASSUMED = (
    "reset assumed: v = 0 after a spike (NIR's v_reset = 0, Loihi's reset; there is no "
    "subtractive reset)"
)


def _neurons(graph: nir.NIRGraph) -> list[Any]:
    return [n for n in graph.nodes.values() if isinstance(n, (nir.LIF, nir.CubaLIF))]


def looks_like_snntorch(graph: nir.NIRGraph) -> bool:
    """True for a graph with neurons, no graph metadata, and on every neuron ``v_reset = 0`` and
    ``r = tau_mem / 1e-4`` (how snnTorch's exporter writes Leaky and Synaptic neurons)."""
    neurons = _neurons(graph)
    if not neurons or graph.metadata:
        return False
    for node in neurons:
        tau = node.tau if isinstance(node, nir.LIF) else node.tau_mem
        tau, r = np.asarray(tau, dtype=np.float64), np.asarray(node.r, dtype=np.float64)
        if np.any(np.asarray(node.v_reset) != 0) or not np.allclose(
            r, tau / SNNTORCH_DT, rtol=1e-4, atol=0
        ):
            return False
    return True


def reset_notes(graph: nir.NIRGraph, exact: bool) -> tuple[str, list[str]]:
    """(the line stating the assumed reset, warnings). ``exact``: the graph has tsslbp metadata
    (written by tsslbp: the reset is Loihi's by construction, no warning)."""
    if exact or not looks_like_snntorch(graph):
        return RESET_ASSUMED, []
    return RESET_ASSUMED, [
        "this graph looks like snnTorch's export (r = tau_mem / 1e-4 s on every neuron, no "
        "producer metadata): snnTorch writes v_reset = 0 whatever the neuron's reset_mechanism, and "
        "its default is 'subtract'; a network trained with the subtractive reset spikes differently "
        "after this import. Export it with reset_mechanism='zero' for the same spikes."
    ]
