"""A TSSL-BP network built from an :class:`~tsslbp.config.ExperimentConfig`."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..config import ExperimentConfig, LayerKind
from .functional import LIFParameters, psp, static_psp_coefficients
from .layers import (
    SeparableTrace,
    SpikingConv2d,
    SpikingLinear,
    SumPooling,
    TimeSharedDropout,
    Trace,
    flatten_trace,
)

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
        self.input_shape = cfg.input_shape
        layers: list[nn.Module] = []
        for layer in cfg.layers:
            neuron = LIFParameters(cfg.neuron.tau_m, cfg.neuron.tau_s, layer.threshold)
            if layer.type is LayerKind.LINEAR:
                layers.append(
                    SpikingLinear(layer.n_inputs, layer.n_outputs, neuron, layer.weight_scale)
                )
            elif layer.type is LayerKind.CONV:
                layers.append(
                    SpikingConv2d(
                        layer.in_channels,
                        layer.out_channels,
                        layer.kernel_size,
                        neuron,
                        layer.stride,
                        layer.padding,
                        layer.dilation,
                        layer.groups,
                        layer.weight_scale,
                    )
                )
            elif layer.type is LayerKind.POOLING:
                layers.append(SumPooling(layer.kernel_size, layer.scale))
            elif layer.type is LayerKind.DROPOUT:
                layers.append(TimeSharedDropout(layer.p))
            else:  # pragma: no cover - the config parser rejects other kinds
                raise ValueError(f"unsupported layer type {layer.type}")
        self.layers = nn.ModuleList(layers)
        # Input normalization (x - mean) / std per channel, fixed (not learned); the export folds it.
        self.input_normalization = cfg.input_normalization
        if self.input_normalization is not None:
            mean, std = self.input_normalization
            self.register_buffer("input_mean", torch.tensor(mean).reshape(-1, 1), persistent=False)
            self.register_buffer("input_std", torch.tensor(std).reshape(-1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        """Run the network.

        Args:
            x: analog input repeated over the T steps, flat (N, C*H*W) or as images (N, C, H, W);
                or a time-varying input (N, C, H, W, T).

        Returns:
            NetworkOutput with output spikes (N, n_class, T).
        """
        if self.input_normalization is not None:
            x = self.normalize(x)
        if self.is_image_net and x.dim() == 2:
            x = x.reshape(x.shape[0], *self.input_shape)
        if x.dim() in (2, 4):
            coeff = static_psp_coefficients(
                self.n_steps, self.tau_syn, dtype=x.dtype, device=x.device
            )
            trace: Trace = SeparableTrace(x, coeff)
        else:
            trace = psp(x, self.tau_syn)
        spikes: list[torch.Tensor] = []
        for layer in self.layers:
            if isinstance(layer, SpikingLinear):
                trace = flatten_trace(trace)
            if isinstance(layer, (SpikingLinear, SpikingConv2d)):
                layer_spikes, trace = layer.spikes_and_psp(trace)
                spikes.append(layer_spikes)
            else:
                trace = layer(trace)
        return NetworkOutput(spikes[-1], tuple(spikes[:-1]))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per input channel of a static input, flat or as images."""
        n, channels = x.shape[0], self.input_shape[0]
        per_channel = x.reshape(n, channels, -1)
        mean, std = self.input_mean.to(x.dtype), self.input_std.to(x.dtype)
        return ((per_channel - mean) / std).reshape(x.shape)

    @property
    def is_image_net(self) -> bool:
        """Whether the input is used as an image (conv or pooling layers), rather than flat."""
        return any(isinstance(layer, (SpikingConv2d, SumPooling)) for layer in self.layers)

    @torch.no_grad()
    def clip_weights(self, limit: float) -> None:
        """Clamp every weight to [-limit, limit] (done after each optimiser step)."""
        for param in self.parameters():
            param.clamp_(-limit, limit)
