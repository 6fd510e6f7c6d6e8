"""A TSSL-BP network built from an :class:`~tsslbp.config.ExperimentConfig`."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..config import ExperimentConfig, LayerKind
from .functional import LIFParameters, psp, static_psp_coefficients
from .layers import SeparableTrace, SpikingLinear, TimeSharedDropout, Trace

__all__ = ["NetworkOutput", "TsslbpNetwork"]


class NetworkOutput(NamedTuple):
    """Result of a forward pass.

    Attributes:
        spikes: (N, n_class, T) output spikes.
        hidden_spikes: spikes of every spiking layer before the output, each (N, C, T).
    """

    spikes: torch.Tensor
    hidden_spikes: tuple[torch.Tensor, ...]


class TsslbpNetwork(nn.Module):
    """Feed-forward spiking network: PSP-filtered analog input, then spiking layers in order.

    Args:
        cfg: a validated experiment config (its ``Layers`` block, ``n_steps`` and neuron constants).
    """

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.n_steps = cfg.n_steps
        self.tau_syn = cfg.neuron.tau_s
        layers: list[nn.Module] = []
        for layer in cfg.layers:
            if layer.type is LayerKind.LINEAR:
                neuron = LIFParameters(cfg.neuron.tau_m, cfg.neuron.tau_s, layer.threshold)
                layers.append(SpikingLinear(layer.n_inputs, layer.n_outputs, neuron, layer.weight_scale))
            elif layer.type is LayerKind.DROPOUT:
                layers.append(TimeSharedDropout(layer.p))
            else:  # pragma: no cover - the config parser rejects other kinds
                raise ValueError(f"unsupported layer type {layer.type}")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        """Run the network.

        Args:
            x: (N, C) analog input repeated over the T steps, or (N, C, T) a time-varying input.

        Returns:
            NetworkOutput with output spikes (N, n_class, T).
        """
        if x.dim() == 2:
            coeff = static_psp_coefficients(self.n_steps, self.tau_syn, dtype=x.dtype, device=x.device)
            trace: Trace = SeparableTrace(x, coeff)
        else:
            trace = psp(x, self.tau_syn)
        spikes: list[torch.Tensor] = []
        for layer in self.layers:
            if isinstance(layer, SpikingLinear):
                spikes.append(layer(trace))
                trace = psp(spikes[-1], self.tau_syn)
            else:
                trace = layer(trace)
        return NetworkOutput(spikes[-1], tuple(spikes[:-1]))

    @torch.no_grad()
    def clip_weights(self, limit: float) -> None:
        """Clamp every weight to [-limit, limit] (done after each optimiser step)."""
        for param in self.parameters():
            param.clamp_(-limit, limit)
