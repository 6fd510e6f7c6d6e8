"""The peers the benchmarks compare with: snnTorch's surrogate-gradient BPTT on the same architecture,
and (speed only) SpikingJelly 2.0 and norse 1.1 on the same layers.

Same layers as the tsslbp config (bias-free Linear/Conv2d, sum pooling, no dropout), snnTorch
``Leaky`` neurons with threshold 1, leak ``beta = 1 - 1/tau_m`` and reset to zero after every
weighted layer, trained as snnTorch's tutorials do: the analog input as a current at every step,
cross-entropy of output spike counts, autograd through time with the fast-sigmoid surrogate.
snnTorch is optional (``pip install --no-deps snntorch==1.0.0``, the ``bench`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..config import ExperimentConfig, LayerKind

__all__ = [
    "PEERS",
    "SNNTORCH_MISSING",
    "SPIKINGJELLY_MISSING",
    "NORSE_MISSING",
    "snntorch_available",
    "SnnTorchNet",
    "SpikingJellyNet",
    "NorseNet",
    "snntorch_loss",
    "count_loss",
    "peer_steppers",
]

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


SPIKINGJELLY_MISSING = "spikingjelly is not installed (pip install --no-deps spikingjelly==2.0.0 loguru, the 'bench' extra)"
NORSE_MISSING = (
    "norse is not installed (pip install --no-deps norse==1.1.0 nirtorch==2.6, the 'bench' extra)"
)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _synapses(cfg: ExperimentConfig) -> list[tuple[nn.Module, bool]]:
    """The config's synaptic layers in order, each with whether spiking neurons follow it."""
    ops: list[tuple[nn.Module, bool]] = []
    for layer in cfg.layers:
        if layer.type is LayerKind.LINEAR:
            ops.append(
                (
                    nn.Sequential(
                        nn.Flatten(), nn.Linear(layer.n_inputs, layer.n_outputs, bias=False)
                    ),
                    True,
                )
            )
        elif layer.type is LayerKind.CONV:
            conv = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.dilation,
                layer.groups,
                bias=False,
            )
            ops.append((conv, True))
        elif layer.type is LayerKind.POOLING:
            ops.append((_SumPool(layer.kernel_size, layer.scale), False))
    return ops


class SpikingJellyNet(nn.Module):
    """The config's network (dropout left out) with SpikingJelly 2.0 LIF neurons in multi-step mode.

    ``LIFNode(tau=tau_m, decay_input=False, v_reset=0)`` is tsslbp's membrane update
    ``u[t] = u'[t-1] (1 - 1/tau_m) + I[t]`` with reset to zero; each synaptic layer runs once on
    the whole window (time folded into the batch) and the neurons step through it with
    SpikingJelly's own multi-step LIF (its fused kernels where it has them).
    """

    def __init__(self, cfg: ExperimentConfig) -> None:
        from spikingjelly.activation_based import neuron, surrogate

        super().__init__()
        self.input_shape = cfg.input_shape
        pairs = _synapses(cfg)
        self.ops = nn.ModuleList(op for op, _ in pairs)
        self.neurons = nn.ModuleList(
            neuron.LIFNode(
                tau=cfg.neuron.tau_m,
                decay_input=False,
                v_threshold=1.0,
                v_reset=0.0,
                surrogate_function=surrogate.Sigmoid(),
                step_mode="m",
            )
            if spiking
            else nn.Identity()
            for _, spiking in pairs
        )

    def forward(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Output spikes (T, N, n_class) for the analog input ``x`` applied every step."""
        from spikingjelly.activation_based import functional

        functional.reset_net(self)  # SpikingJelly neurons keep their state between calls
        x = x.reshape(x.shape[0], *self.input_shape)
        h = x.unsqueeze(0).expand(n_steps, *x.shape)
        for op, neuron in zip(self.ops, self.neurons):
            out = op(h.flatten(0, 1))
            h = neuron(out.reshape(n_steps, -1, *out.shape[1:]))
        return h


class NorseNet(nn.Module):
    """The config's network (dropout left out) with norse 1.1 ``LIFBoxCell`` neurons, stepped in time.

    A box LIF has no synaptic current, like tsslbp's; norse integrates
    ``v += dt / tau_m (v_leak - v + I)`` (dt = 1 here), so its input is scaled by ``1/tau_m``.
    """

    def __init__(self, cfg: ExperimentConfig) -> None:
        import norse.torch as norse

        super().__init__()
        self.input_shape = cfg.input_shape
        pairs = _synapses(cfg)
        self.ops = nn.ModuleList(op for op, _ in pairs)
        params = norse.LIFBoxParameters(
            tau_mem_inv=torch.tensor(1.0 / cfg.neuron.tau_m), v_th=torch.tensor(1.0)
        )
        self.neurons = nn.ModuleList(
            norse.LIFBoxCell(params, dt=1.0) if spiking else nn.Identity() for _, spiking in pairs
        )

    def forward(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Output spikes (T, N, n_class) for the analog input ``x`` applied every step."""
        x = x.reshape(x.shape[0], *self.input_shape)
        states: list[Any] = [None] * len(self.neurons)
        out = []
        for _ in range(n_steps):
            h = x
            for i, (op, neuron) in enumerate(zip(self.ops, self.neurons)):
                h = op(h)
                if not isinstance(neuron, nn.Identity):
                    h, states[i] = neuron(h, states[i])
            out.append(h)
        return torch.stack(out)


def count_loss(spikes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of output spike counts (T, N, n_class) -> scalar (mean over the batch)."""
    return nn.functional.cross_entropy(spikes.sum(0), labels)


#: The peer libraries, in the order the tables list them.
PEERS = ("snntorch", "spikingjelly", "norse")


def peer_steppers(
    cfg: ExperimentConfig, x: torch.Tensor, y: torch.Tensor, names: Sequence[str] = PEERS
) -> dict[str, Callable[[], None] | str]:
    """A training step (forward, backward, Adam) of each peer on ``x``'s device, or why it is missing.

    snnTorch with its own count loss; SpikingJelly and norse with the same count cross-entropy.
    """
    models: dict[str, tuple[Callable[[], nn.Module], Callable, str]] = {
        "snntorch": (lambda: SnnTorchNet(cfg), snntorch_loss, SNNTORCH_MISSING),
        "spikingjelly": (lambda: SpikingJellyNet(cfg), lambda: count_loss, SPIKINGJELLY_MISSING),
        "norse": (lambda: NorseNet(cfg), lambda: count_loss, NORSE_MISSING),
    }
    steps: dict[str, Callable[[], None] | str] = {}
    for name in names:
        build, make_loss, missing = models[name]
        if not _importable(name):
            steps[name] = missing
            continue
        model = build().to(x.device)
        loss_fn = make_loss()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)

        def step(model=model, loss_fn=loss_fn, opt=opt) -> None:
            loss = loss_fn(model(x, cfg.n_steps), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[name] = step
    return steps
