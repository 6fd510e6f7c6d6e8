"""Experiment configuration: YAML in the schema of the original TSSL-BP configs, as frozen dataclasses.

A config file has a ``Network:`` block (time steps, neuron constants, loss, optimiser, data) and a
``Layers:`` block of named layers, in order::

    Network:
      dataset: digits          # digits | mnist | fashion_mnist
      n_steps: 5
      tau_m: 5
      tau_s: 3
      lr: 0.0005
      lr_schedule: constant    # constant | cosine
      weight_decay: 0          # AdamW's decoupled decay; 0 = Adam
      ema_decay: 0             # exponential moving average of the weights; 0 = off
      quant_aware_epochs: 0    # last epochs trained on the export's 8-bit weight grid; 0 = off
      loss: kernel             # kernel | count | softmax
      kernel_target: once      # once (the paper's equation) | twice (the authors' code)
      count_loss_on: spikes    # spikes | psp (the authors' code): what the count loss counts
      softmax_on: spikes       # spikes | psp (the authors' code): the softmax loss's logits
      predict_on: spikes       # spikes | psp: prediction in PyTorch (netx always counts spikes)
      desired_count: 4
      undesired_count: 1
      batch_size: 50
      epochs: 20
    Layers:
      hidden:
        type: linear
        n_inputs: 64
        n_outputs: 128
        weight_scale: 1
        threshold: 1
      output:
        type: linear
        n_inputs: 128
        n_outputs: 10
        threshold: 1

Every key is checked (type, range, allowed values; unknown keys are rejected) and a bad file fails
with one :class:`ConfigError` line naming the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .safeio import LIMITS, UnsafeFileError, open_regular

__all__ = [
    "ConfigError",
    "LossKind",
    "KernelTarget",
    "OutputMeasure",
    "LrSchedule",
    "LayerKind",
    "Dataset",
    "NeuronConfig",
    "TrainConfig",
    "DataConfig",
    "LayerConfig",
    "ExperimentConfig",
    "load_config",
    "parse_config",
    "DATASET_INPUT_SIZE",
    "DATASET_INPUT_SHAPE",
    "layer_shapes",
    "conv_output_size",
]


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, out of range or unknown."""


class LossKind(str, enum.Enum):
    """Loss functions of TSSL-BP (see :mod:`tsslbp.train.losses`)."""

    KERNEL = "kernel"
    COUNT = "count"
    SOFTMAX = "softmax"


class KernelTarget(str, enum.Enum):
    """How many times the kernel loss filters the desired spike train into its target PSP.

    ``once``: the paper's Eq. 4-5 as written (at T=5, tau_s=3 the label target is
    [0, .333, .556, .704, .802]). ``twice``: the authors' code, whose training loop turns the
    desired train into a PSP that the loss filters again ([0, .111, .259, .407, .539]); the paper's
    published accuracies were made with it.
    """

    ONCE = "once"
    TWICE = "twice"


class OutputMeasure(str, enum.Enum):
    """What an output neuron's "count" is for the count and softmax losses and the prediction.

    ``spikes``: its number of spikes over the window (what Loihi reports; the deployed readout is
    always this). ``psp``: the sum over the window of its PSP trace (the authors' code).
    """

    SPIKES = "spikes"
    PSP = "psp"


class LrSchedule(str, enum.Enum):
    """Learning rate over the run: ``constant``, or ``cosine`` (from ``lr`` to 0 at the last batch)."""

    CONSTANT = "constant"
    COSINE = "cosine"


class LayerKind(str, enum.Enum):
    """Layer types this version builds."""

    LINEAR = "linear"
    CONV = "conv"
    POOLING = "pooling"
    DROPOUT = "dropout"


class Dataset(str, enum.Enum):
    """Data sets with a loader in :mod:`tsslbp.data`."""

    DIGITS = "digits"
    MNIST = "mnist"
    FASHION_MNIST = "fashion_mnist"
    CIFAR10 = "cifar10"
    NMNIST = "nmnist"


#: Input image shape (C, H, W) of each data set.
DATASET_INPUT_SHAPE = {
    Dataset.DIGITS: (1, 8, 8),
    Dataset.MNIST: (1, 28, 28),
    Dataset.FASHION_MNIST: (1, 28, 28),
    Dataset.CIFAR10: (3, 32, 32),
    # Event frames (polarity, y, x), one per time step.
    Dataset.NMNIST: (2, 34, 34),
}
#: Flattened input size of each data set.
DATASET_INPUT_SIZE = {name: int(math.prod(shape)) for name, shape in DATASET_INPUT_SHAPE.items()}

# Spellings used by the original TSSL-BP configs.
_DATASET_ALIASES = {
    "fashionmnist": Dataset.FASHION_MNIST,
    "fashion-mnist": Dataset.FASHION_MNIST,
    "cifar-10": Dataset.CIFAR10,
    "nmnist_spiking": Dataset.NMNIST,
    "n-mnist": Dataset.NMNIST,
}


@dataclass(frozen=True)
class NeuronConfig:
    """LIF constants shared by all spiking layers (in time steps)."""

    tau_m: float = 5.0
    tau_s: float = 3.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    lr: float = 5e-4
    lr_schedule: LrSchedule = LrSchedule.CONSTANT
    #: Decoupled weight decay (AdamW) per step, relative to the learning rate; 0 is plain Adam.
    weight_decay: float = 0.0
    #: Keep an exponential moving average of the weights (``avg = d * avg + (1 - d) * w`` after
    #: every optimizer step) and test, checkpoint-load and export it instead of the last weights;
    #: 0 is off. ``1 / (1 - d)`` steps is its memory (0.9998: 5,000 steps).
    ema_decay: float = 0.0
    #: Quantization-aware training: the last this-many epochs compute with each layer's weights
    #: rounded to the export's 8-bit grid (the largest |w| at its top, 127 steps per sign), with
    #: straight-through gradients to the float weights; their test figures are of those weights.
    quant_aware_epochs: int = 0
    loss: LossKind = LossKind.KERNEL
    kernel_target: KernelTarget = KernelTarget.ONCE
    count_loss_on: OutputMeasure = OutputMeasure.SPIKES
    softmax_on: OutputMeasure = OutputMeasure.SPIKES
    #: Prediction during training and evaluation in PyTorch; netx files always read spike counts.
    predict_on: OutputMeasure = OutputMeasure.SPIKES
    desired_count: int = 4
    undesired_count: int = 1
    batch_size: int = 50
    epochs: int = 20
    seed: int = 0
    grad_clip: float = 1.0
    weight_clip: float = 4.0


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from."""

    dataset: Dataset = Dataset.DIGITS
    data_path: str | None = None
    n_class: int = 10
    #: Training-time augmentation: CIFAR-10 random crop (padding 4) + horizontal flip; MNIST and
    #: Fashion-MNIST random crop (padding 2) only, since a mirrored digit or garment can change class.
    augment: bool = False
    #: Input normalization ``(x - mean) / std`` per input channel, as the TSSL-BP authors trained
    #: their image networks; ``None``: the [0, 1] pixels as they are. The export folds it into the
    #: first layer's weights and a constant input of ones (docs/fixed-point.md), so a normalized
    #: network still takes non-negative graded input spikes on the chip.
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class LayerConfig:
    """One entry of the ``Layers:`` block.

    ``linear``: n_inputs, n_outputs, weight_scale, threshold. ``conv``: in_channels, out_channels,
    kernel_size, stride, padding, dilation, groups, weight_scale, threshold. ``pooling``: a fixed
    sum over kernel_size windows (stride = kernel_size) of the incoming PSPs times ``scale``; no
    neurons, no weights. ``dropout``: p, the same units dropped at every step of a sample.
    """

    name: str
    type: LayerKind
    n_inputs: int | None = None
    n_outputs: int | None = None
    weight_scale: float = 1.0
    threshold: float = 1.0
    p: float = 0.0
    in_channels: int | None = None
    out_channels: int | None = None
    kernel_size: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    scale: float = 1.1

    @property
    def is_spiking(self) -> bool:
        """Whether the layer has weights and neurons."""
        return self.type in (LayerKind.LINEAR, LayerKind.CONV)


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole, validated experiment."""

    n_steps: int
    neuron: NeuronConfig
    train: TrainConfig
    data: DataConfig
    layers: tuple[LayerConfig, ...]
    #: Where the config came from (for error messages); not part of the experiment's identity.
    source: str = dataclasses.field(default="<dict>", compare=False)

    @property
    def input_size(self) -> int:
        return DATASET_INPUT_SIZE[self.data.dataset]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return DATASET_INPUT_SHAPE[self.data.dataset]

    @property
    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) per input channel when the config normalizes its input, else None."""
        mean, std = self.data.input_mean, self.data.input_std
        if mean is None or std is None:
            return None
        channels = self.input_shape[0]
        return (
            mean * channels if len(mean) == 1 else mean,
            std * channels if len(std) == 1 else std,
        )

    @property
    def architecture(self) -> str:
        """The network in the paper's notation, e.g. ``1x28x28-32C5-P2-64C5-P2-1024-10``.

        Kernels are written ``C<k>`` when square, ``C<kh>x<kw>`` otherwise; dropout is left out.
        """

        def k(pair: tuple[int, int]) -> str:
            return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"

        image = any(layer.type in (LayerKind.CONV, LayerKind.POOLING) for layer in self.layers)
        parts = ["x".join(map(str, self.input_shape)) if image else str(self.input_size)]
        for layer in self.layers:
            if layer.type is LayerKind.CONV:
                parts.append(f"{layer.out_channels}C{k(layer.kernel_size)}")
            elif layer.type is LayerKind.POOLING:
                parts.append(f"P{k(layer.kernel_size)}")
            elif layer.type is LayerKind.LINEAR:
                parts.append(str(layer.n_outputs))
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict in the YAML schema (what checkpoints store); :func:`parse_config` inverts it."""
        network: dict[str, Any] = {"n_steps": self.n_steps}
        for part in (self.neuron, self.train, self.data):
            for f in dataclasses.fields(part):
                value = getattr(part, f.name)
                if value is None and f.name in ("input_mean", "input_std"):
                    continue  # optional keys left out when unused, as in the config files
                if isinstance(value, tuple):
                    value = list(value)
                network[f.name] = value.value if isinstance(value, enum.Enum) else value
        layers = {}
        for layer in self.layers:
            entry: dict[str, Any] = {"type": layer.type.value}
            for key in _LAYER_KEYS[layer.type]:
                value = getattr(layer, key)
                entry[key] = list(value) if isinstance(value, tuple) else value
            layers[layer.name] = entry
        return {"Network": network, "Layers": layers}

    def replace(self, **network_overrides: Any) -> ExperimentConfig:
        """Copy with ``Network:`` keys overridden (validated like the file)."""
        raw = self.to_dict()
        raw["Network"].update(network_overrides)
        return parse_config(raw, self.source)


# --- validation helpers --------------------------------------------------------------------------


#: Longest ``found`` value quoted in an error message (a whole mistyped block is cut short).
_FOUND_MAX_CHARS = 80
#: Largest ``weight_scale``: beyond it the initial weights overflow float32 within a few steps.
WEIGHT_SCALE_MAX = 1000.0


def _printable(text: str) -> str:
    """``text`` with control characters (newlines from YAML keys) escaped, so messages stay one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fail(source: str, key: str, expected: str, found: Any) -> ConfigError:
    shown = repr(found)
    if len(shown) > _FOUND_MAX_CHARS:
        shown = shown[: _FOUND_MAX_CHARS - 3] + "..."
    return ConfigError(
        f"{source}: {_printable(key) or '(top level)'}: expected {expected}, found {_printable(shown)}"
    )


def _number(
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range (YAML reads 1e400 digits as int)
            return None
        if not math.isfinite(number):
            return None
        if lo is not None and (number <= lo if lo_open else number < lo):
            return None
        if hi is not None and (number >= hi if hi_open else number > hi):
            return None
        return number

    return check


def _integer(lo: int, limit: str | None = None) -> Callable[[Any], int | None]:
    """An integer >= lo, and within ``safeio.LIMITS[limit]`` when given."""
    high = LIMITS[limit].high if limit else None

    def check(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            return None
        if high is not None and value > high:
            return None
        return value

    return check


def _at_most(limit: str) -> str:
    """The range text of a bounded key: ``safeio.LIMITS`` is the one place the bounds live."""
    return f"an integer in [{LIMITS[limit].low}, {LIMITS[limit].high}] ({LIMITS[limit].why})"


def _choice(
    enum_type: type[enum.Enum], aliases: Mapping[str, enum.Enum] | None = None
) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return None
        key = value.strip().lower()
        for member in enum_type:
            if member.value == key:
                return member
        return (aliases or {}).get(key)

    return check


def _path_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _numbers(lo: float | None = None, lo_open: bool = False) -> Callable[[Any], Any]:
    """A number or a non-empty list of numbers (one per input channel) -> a tuple of floats."""
    one = _number(lo, lo_open=lo_open)

    def check(value: Any) -> tuple[float, ...] | None:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not items or len(items) > 16:
            return None
        numbers = [one(v) for v in items]
        return None if any(v is None for v in numbers) else tuple(numbers)  # type: ignore[misc]

    return check


def _constant(expected: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return (
            value if isinstance(value, str) and value.strip().lower() == expected.lower() else None
        )

    return check


# key -> (check, expected-text, default); check returns the converted value, or None when invalid.
_NETWORK_KEYS: dict[str, tuple[Callable[[Any], Any], str, Any]] = {
    "n_steps": (_integer(1, "n_steps"), _at_most("n_steps"), 5),
    "tau_m": (_number(1.0, lo_open=True), "a number > 1", NeuronConfig.tau_m),
    "tau_s": (_number(1.0), "a number >= 1", NeuronConfig.tau_s),
    "lr": (_number(0.0, lo_open=True), "a number > 0", TrainConfig.lr),
    "lr_schedule": (
        _choice(LrSchedule),
        "one of " + ", ".join(m.value for m in LrSchedule),
        TrainConfig.lr_schedule,
    ),
    "weight_decay": (_number(0.0), "a number >= 0", TrainConfig.weight_decay),
    "ema_decay": (_number(0.0, 1.0, hi_open=True), "a number in [0, 1)", TrainConfig.ema_decay),
    "quant_aware_epochs": (
        _integer(0, "epochs"),
        "an integer >= 0, at most epochs",
        TrainConfig.quant_aware_epochs,
    ),
    "loss": (_choice(LossKind), "one of " + ", ".join(m.value for m in LossKind), TrainConfig.loss),
    "kernel_target": (
        _choice(KernelTarget),
        "one of " + ", ".join(m.value for m in KernelTarget),
        TrainConfig.kernel_target,
    ),
    "count_loss_on": (
        _choice(OutputMeasure),
        "one of " + ", ".join(m.value for m in OutputMeasure),
        TrainConfig.count_loss_on,
    ),
    "softmax_on": (
        _choice(OutputMeasure),
        "one of " + ", ".join(m.value for m in OutputMeasure),
        TrainConfig.softmax_on,
    ),
    "predict_on": (
        _choice(OutputMeasure),
        "one of " + ", ".join(m.value for m in OutputMeasure),
        TrainConfig.predict_on,
    ),
    "desired_count": (_integer(0), "an integer >= 0", TrainConfig.desired_count),
    "undesired_count": (_integer(0), "an integer >= 0", TrainConfig.undesired_count),
    "batch_size": (_integer(1, "batch_size"), _at_most("batch_size"), TrainConfig.batch_size),
    "epochs": (_integer(1, "epochs"), _at_most("epochs"), TrainConfig.epochs),
    "seed": (_integer(0, "seed"), _at_most("seed"), TrainConfig.seed),
    "grad_clip": (_number(0.0, lo_open=True), "a number > 0", TrainConfig.grad_clip),
    "weight_clip": (_number(0.0, lo_open=True), "a number > 0", TrainConfig.weight_clip),
    "dataset": (
        _choice(Dataset, _DATASET_ALIASES),
        "one of " + ", ".join(m.value for m in Dataset),
        DataConfig.dataset,
    ),
    "data_path": (_path_str, "a path string or null", None),
    "n_class": (_integer(2, "n_class"), _at_most("n_class"), DataConfig.n_class),
    "augment": (lambda v: v if isinstance(v, bool) else None, "true or false", DataConfig.augment),
    "input_mean": (_numbers(), "a number or a list of numbers, one per input channel", None),
    "input_std": (
        _numbers(0.0, lo_open=True),
        "a number > 0 or a list of them, one per input channel",
        None,
    ),
    # Keys of the original TSSL-BP schema that name fixed choices of this implementation.
    "rule": (_constant("TSSLBP"), "'TSSLBP'", "TSSLBP"),
    "model": (_constant("LIF"), "'LIF'", "LIF"),
}


def _pair(lo: int) -> Callable[[Any], tuple[int, int] | None]:
    """An integer or a [y, x] pair of integers, each in [lo, ``LIMITS['layer_dim']``]."""
    high = LIMITS["layer_dim"].high

    def check(value: Any) -> tuple[int, int] | None:
        items = list(value) if isinstance(value, (list, tuple)) else [value, value]
        if len(items) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= high for v in items
        ):
            return None
        return (items[0], items[1])

    return check


_LAYER_SPEC: dict[str, tuple[Callable[[Any], Any], str]] = {
    "n_inputs": (_integer(1, "layer_neurons"), _at_most("layer_neurons")),
    "n_outputs": (_integer(1, "layer_neurons"), _at_most("layer_neurons")),
    "weight_scale": (_number(0.0, WEIGHT_SCALE_MAX, lo_open=True), "a number in (0, 1000]"),
    "threshold": (_number(0.0, lo_open=True), "a number > 0"),
    "p": (_number(0.0, 1.0), "a number in [0, 1)"),
    "in_channels": (_integer(1, "layer_dim"), _at_most("layer_dim")),
    "out_channels": (_integer(1, "layer_dim"), _at_most("layer_dim")),
    "kernel_size": (_pair(1), "an integer >= 1 or a pair [y, x] of them"),
    "stride": (_pair(1), "an integer >= 1 or a pair [y, x] of them"),
    "padding": (_pair(0), "an integer >= 0 or a pair [y, x] of them"),
    "dilation": (_pair(1), "an integer >= 1 or a pair [y, x] of them"),
    "groups": (_integer(1, "layer_dim"), _at_most("layer_dim")),
    "scale": (_number(0.0, lo_open=True), "a number > 0"),
}
_LAYER_KEYS = {
    LayerKind.LINEAR: ("n_inputs", "n_outputs", "weight_scale", "threshold"),
    LayerKind.CONV: (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "weight_scale",
        "threshold",
    ),
    LayerKind.POOLING: ("kernel_size", "scale"),
    LayerKind.DROPOUT: ("p",),
}
_LAYER_REQUIRED = {
    LayerKind.LINEAR: ("n_inputs", "n_outputs"),
    LayerKind.CONV: ("in_channels", "out_channels", "kernel_size"),
    LayerKind.POOLING: ("kernel_size",),
    LayerKind.DROPOUT: ("p",),
}


def _check_keys(source: str, where: str, block: Any, allowed: list[str]) -> Mapping[str, Any]:
    if not isinstance(block, Mapping):
        raise _fail(source, where, "a mapping of keys", block)
    for key in block:
        if key not in allowed:
            raise _fail(
                source,
                f"{where}.{key}" if where else str(key),
                "one of the keys " + ", ".join(allowed),
                "an unknown key",
            )
    return block


def _parse_network(source: str, block: Any) -> dict[str, Any]:
    block = _check_keys(source, "Network", block, list(_NETWORK_KEYS))
    values = {}
    for key, (check, expected, default) in _NETWORK_KEYS.items():
        if key not in block or (block[key] is None and default is None):
            values[key] = default
            continue
        converted = check(block[key])
        if converted is None:
            raise _fail(source, f"Network.{key}", expected, block[key])
        values[key] = converted
    return values


def _parse_layer(source: str, name: Any, block: Any) -> LayerConfig:
    where = f"Layers.{name}"
    if not isinstance(block, Mapping):
        raise _fail(source, where, "a mapping of layer keys", block)
    kind = _choice(LayerKind)(block.get("type"))
    if kind is None:
        raise _fail(
            source,
            f"{where}.type",
            "one of " + ", ".join(m.value for m in LayerKind),
            block.get("type"),
        )
    _check_keys(source, where, block, ["type", *_LAYER_KEYS[kind]])
    values: dict[str, Any] = {}
    for key in _LAYER_KEYS[kind]:
        if key not in block:
            if key in _LAYER_REQUIRED[kind]:
                raise _fail(
                    source, f"{where}.{key}", _LAYER_SPEC[key][1], "nothing (the key is missing)"
                )
            continue
        check, expected = _LAYER_SPEC[key]
        converted = check(block[key])
        if converted is None or (key == "p" and converted >= 1.0):
            raise _fail(source, f"{where}.{key}", expected, block[key])
        values[key] = converted
    return LayerConfig(name=str(name), type=kind, **values)


def parse_config(raw: Any, source: str = "<dict>") -> ExperimentConfig:
    """Validate a config already read from YAML (or from a checkpoint).

    Args:
        raw: mapping with ``Network`` and ``Layers`` blocks.
        source: file name used in error messages.

    Raises:
        ConfigError: one line naming ``source``, the key, what was expected and what was found.
    """
    raw = _check_keys(source, "", raw, ["Network", "Layers"])
    for block in ("Network", "Layers"):
        if block not in raw:
            raise _fail(source, block, "a block of keys", "nothing (the block is missing)")
    net = _parse_network(source, raw["Network"])
    layers_raw = raw["Layers"]
    if not isinstance(layers_raw, Mapping) or not layers_raw:
        raise _fail(source, "Layers", "a non-empty mapping of named layers", layers_raw)
    layers = tuple(_parse_layer(source, name, block) for name, block in layers_raw.items())

    cfg = ExperimentConfig(
        n_steps=net["n_steps"],
        neuron=NeuronConfig(tau_m=net["tau_m"], tau_s=net["tau_s"]),
        train=TrainConfig(**{f.name: net[f.name] for f in dataclasses.fields(TrainConfig)}),
        data=DataConfig(**{f.name: net[f.name] for f in dataclasses.fields(DataConfig)}),
        layers=layers,
        source=source,
    )
    _check_topology(cfg)
    return cfg


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (PyTorch's formula, also lava's).

    >>> conv_output_size(28, 5, 1, 0, 1), conv_output_size(8, 3, 2, 1, 1)
    (24, 4)
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def layer_shapes(cfg: ExperimentConfig) -> list[tuple[int, ...]]:
    """Output shape of every layer: (C, H, W) for conv/pooling, (N,) for linear; dropout keeps its input's.

    Raises:
        ConfigError: a layer does not fit the shape reaching it.
    """
    shape: tuple[int, ...] = cfg.input_shape
    shapes = []
    for layer in cfg.layers:
        where = f"Layers.{layer.name}"
        if layer.type is LayerKind.LINEAR:
            size = int(math.prod(shape))
            if layer.n_inputs != size:
                raise _fail(
                    cfg.source,
                    f"{where}.n_inputs",
                    f"{size} (the size reaching this layer)",
                    layer.n_inputs,
                )
            shape = (layer.n_outputs,)
        elif layer.type in (LayerKind.CONV, LayerKind.POOLING):
            if len(shape) != 3:
                raise _fail(
                    cfg.source,
                    f"{where}.type",
                    "a linear layer after a linear layer (no image left)",
                    layer.type.value,
                )
            c, h, w = shape
            (ky, kx) = layer.kernel_size
            if layer.type is LayerKind.CONV:
                if layer.in_channels != c:
                    raise _fail(
                        cfg.source,
                        f"{where}.in_channels",
                        f"{c} (the channels reaching this layer)",
                        layer.in_channels,
                    )
                if c % layer.groups or layer.out_channels % layer.groups:
                    raise _fail(
                        cfg.source,
                        f"{where}.groups",
                        f"a divisor of in_channels ({c}) and out_channels ({layer.out_channels})",
                        layer.groups,
                    )
                h = conv_output_size(h, ky, layer.stride[0], layer.padding[0], layer.dilation[0])
                w = conv_output_size(w, kx, layer.stride[1], layer.padding[1], layer.dilation[1])
                c = layer.out_channels
            else:
                h, w = h // ky, w // kx
            if h < 1 or w < 1:
                raise _fail(
                    cfg.source,
                    f"{where}.kernel_size",
                    f"a kernel that fits the {shape[1]}x{shape[2]} input",
                    list(layer.kernel_size),
                )
            shape = (c, h, w)
        shapes.append(shape)
    return shapes


def _check_sizes(cfg: ExperimentConfig, shapes: list[tuple[int, ...]]) -> None:
    """Layer count, neurons and weights per layer, and the training state, within
    ``safeio.LIMITS``: checked before any tensor is allocated."""
    if len(cfg.layers) > LIMITS["layers"].high:
        raise _fail(cfg.source, "Layers", _at_most("layers") + " layers", len(cfg.layers))
    cells_max = LIMITS["state_cells"].high
    for layer, shape in zip(cfg.layers, shapes):
        where = f"Layers.{layer.name}"
        neurons = math.prod(shape)
        if neurons > LIMITS["layer_neurons"].high:
            raise _fail(cfg.source, where, _at_most("layer_neurons") + " neurons", neurons)
        if layer.type is LayerKind.LINEAR:
            weights = (layer.n_inputs or 0) * (layer.n_outputs or 0)
        elif layer.type is LayerKind.CONV:
            ky, kx = layer.kernel_size or (1, 1)
            weights = (layer.out_channels or 0) * (layer.in_channels or 0) // layer.groups * ky * kx
        else:
            weights = 0
        if weights > LIMITS["layer_synapses"].high:
            raise _fail(cfg.source, where, _at_most("layer_synapses") + " weights", weights)
        cells = cfg.train.batch_size * neurons * cfg.n_steps
        if cells > cells_max:
            raise _fail(
                cfg.source,
                f"{where} (batch_size x neurons x n_steps)",
                f"at most {cells_max} state values per layer ({LIMITS['state_cells'].why})",
                cells,
            )


def _check_topology(cfg: ExperimentConfig) -> None:
    """Layer shapes must chain from the data set's input to ``n_class`` outputs."""
    spiking = [layer for layer in cfg.layers if layer.is_spiking]
    if not spiking:
        raise _fail(cfg.source, "Layers", "at least one linear or conv layer", "none")
    shapes = layer_shapes(cfg)
    _check_sizes(cfg, shapes)
    if cfg.layers[-1].type is not LayerKind.LINEAR:
        raise _fail(
            cfg.source,
            f"Layers.{cfg.layers[-1].name}.type",
            "the last layer to be 'linear'",
            cfg.layers[-1].type.value,
        )
    if shapes[-1] != (cfg.data.n_class,):
        raise _fail(
            cfg.source,
            f"Layers.{spiking[-1].name}.n_outputs",
            f"n_class = {cfg.data.n_class}",
            shapes[-1][0],
        )
    _check_normalization(cfg)
    # Network keys bounded by another: (key, its value, the other's name, the other's value).
    pairs = (
        ("desired_count", cfg.train.desired_count, "n_steps", cfg.n_steps),
        ("quant_aware_epochs", cfg.train.quant_aware_epochs, "epochs", cfg.train.epochs),
        ("undesired_count", cfg.train.undesired_count, "desired_count", cfg.train.desired_count),
    )
    for key, value, bound, limit in pairs:
        if value > limit:
            raise _fail(cfg.source, f"Network.{key}", f"at most {bound} = {limit}", value)


def _check_normalization(cfg: ExperimentConfig) -> None:
    """``input_mean`` and ``input_std`` come together, one value per input channel, on analog input."""
    mean, std = cfg.data.input_mean, cfg.data.input_std
    if mean is None and std is None:
        return
    if mean is None or std is None:
        missing = "input_mean" if mean is None else "input_std"
        other = "input_std" if mean is None else "input_mean"
        raise _fail(cfg.source, f"Network.{missing}", f"a value, since {other} is given", None)
    if cfg.data.dataset is Dataset.NMNIST:
        raise _fail(
            cfg.source,
            "Network.input_mean",
            "no input normalization on event data (N-MNIST's input is spikes, not pixels)",
            list(mean),
        )
    channels = cfg.input_shape[0]
    for key, values in (("input_mean", mean), ("input_std", std)):
        if len(values) not in (1, channels):
            raise _fail(
                cfg.source,
                f"Network.{key}",
                f"one value or {channels} (one per input channel of {cfg.data.dataset.value})",
                list(values),
            )


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names one key twice (PyYAML's default keeps the last silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in any mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                continue
            if first != key_node.start_mark.line + 1:
                raise DuplicateKeyError(
                    f"duplicate key {_printable(repr(key))[:_FOUND_MAX_CHARS]} at line "
                    f"{key_node.start_mark.line + 1} (first at line {first})"
                )
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: the file is missing, not UTF-8, not YAML, or any key is invalid (one line).
    """
    path = Path(path)
    source = str(path)
    try:
        with open_regular(path, max_bytes=LIMITS["config_bytes"].high) as fh:
            text = fh.read().decode()
    except UnsafeFileError as err:
        raise ConfigError(str(err)) from err
    except OSError as err:
        raise ConfigError(f"{source}: cannot read the file ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{source}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        ) from err
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as err:
        raise ConfigError(f"{source}: {err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from err
    return parse_config(raw, source)
