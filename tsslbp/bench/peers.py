"""The peer the benchmarks compare with: snnTorch's surrogate-gradient BPTT on the same architecture.

Same layers as the tsslbp config (bias-free Linear/Conv2d, sum pooling, no dropout), snnTorch
``Leaky`` neurons with threshold 1, leak ``beta = 1 - 1/tau_m`` and reset to zero after every
weighted layer, trained as snnTorch's tutorials do: the analog input as a current at every step,
cross-entropy of output spike counts, autograd through time with the fast-sigmoid surrogate.
snnTorch is optional (``pip install --no-deps snntorch==1.0.0``, the ``bench`` extra).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ExperimentConfig, LayerKind

__all__ = ["SNNTORCH_MISSING", "snntorch_available", "SnnTorchNet", "snntorch_loss"]

SNNTORCH_MISSING = (
    "snntorch is not installed (pip install --no-deps snntorch==1.0.0, the 'bench' extra)"
)


def snntorch_available() -> bool:
    try:
        import snntorch  # noqa: F401
    except ImportError:
        return False
    return True


class _SumPool(nn.Module):
    """TSSL-BP's pooling: the sum over k x k windows (stride k) times ``scale``."""

    def __init__(self, kernel_size: tuple[int, int], scale: float) -> None:
        super().__init__()
        self.kernel_size, self.factor = tuple(kernel_size), math.prod(kernel_size) * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, self.kernel_size) * self.factor


class SnnTorchNet(nn.Module):
    """The config's network (dropout left out) with snnTorch Leaky neurons, run for T steps."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        beta = 1.0 - 1.0 / cfg.neuron.tau_m
        self.input_shape = cfg.input_shape
        self.ops = nn.ModuleList()
        self.neurons = nn.ModuleList()
        for layer in cfg.layers:
            if layer.type is LayerKind.LINEAR:
                op: nn.Module = nn.Sequential(
                    nn.Flatten(), nn.Linear(layer.n_inputs, layer.n_outputs, bias=False)
                )
            elif layer.type is LayerKind.CONV:
                op = nn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.groups,
                    bias=False,
                )
            elif layer.type is LayerKind.POOLING:
                self.ops.append(_SumPool(layer.kernel_size, layer.scale))
                self.neurons.append(nn.Identity())
                continue
            else:  # dropout: left out of the speed comparison on both sides
                continue
            self.ops.append(op)
            self.neurons.append(
                snn.Leaky(
                    beta=beta,
                    threshold=1.0,
                    spike_grad=surrogate.fast_sigmoid(),
                    reset_mechanism="zero",
                )
            )

    def forward(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Output spikes (T, N, n_class) for the analog input ``x`` (N, features) applied every step."""
        x = x.reshape(x.shape[0], *self.input_shape)  # linear layers flatten their input
        mems = [
            neuron.init_leaky() if not isinstance(neuron, nn.Identity) else None
            for neuron in self.neurons
        ]
        out = []
        for _ in range(n_steps):
            h = x
            for i, (op, neuron) in enumerate(zip(self.ops, self.neurons)):
                h = op(h)
                if mems[i] is not None:
                    h, mems[i] = neuron(h, mems[i])
            out.append(h)
        return torch.stack(out)


def snntorch_loss():
    """snnTorch's cross-entropy of output spike counts (its rate-coded tutorial loss)."""
    import snntorch.functional as SF

    return SF.ce_count_loss()
