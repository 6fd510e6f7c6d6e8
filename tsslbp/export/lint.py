"""Design-rule checks of a netx network against Loihi 2 and lava-dl 0.6 (``tsslbp lint``).

Each violated rule is its own :class:`Finding` (severity, rule, layer index in the file and name,
limit, found value); :func:`check_design_rules` raises :class:`DesignRuleError` carrying all of them
when any is an error. Two sources of rules:

* the file: layer and neuron types lava-dl's ``netx.hdf5.Network`` cannot build (``pool``,
  ``convT``, ``unpool``, ``average``, ``concat`` raise NotImplementedError there; an unknown type is
  skipped silently, which breaks the network), or that tsslbp cannot check (``dense_rec``,
  ``dense_comp``, SDNN/RF neurons); a file that :func:`~tsslbp.export.netx.read_netx` rejects is one
  error with the reader's message;
* the network (:func:`lint_spec`): bit widths of weights (signed 9 bits at most), decays (12 bits),
  thresholds (17 bits), biases (13 bits), graded input (24 bits, and the width tsslbp's metadata
  says the encoder uses), neuron fields lava ignores (``gradedSpike``, ``refDelay``), and the
  per-core limits of :mod:`tsslbp.hwmodels.resources` (a neuron whose fan-in alone overflows a
  core; more cores than one chip has), and the sample period of tsslbp's metadata, which Loihi 2's
  reset needs as a power of 2 (:mod:`tsslbp.hwmodels.schedule`; the CPU simulator accepts any).

Limits and their sources: :mod:`tsslbp.export.schema` (bit widths), :mod:`tsslbp.hwmodels.resources`
(cores), docs/energy.md.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..hwmodels.resources import CoreLimits, LayerPacking, pack_network
from ..hwmodels.schedule import hardware_period, is_power_of_two
from ..hwmodels.spec import ConvLayer, DenseLayer, FlattenLayer, InputLayer, NetworkSpec
from ..safeio import UnsafeFileError, open_hdf5
from . import schema as sc
from .netx import NetxError, read_netx

__all__ = [
    "Severity",
    "Rule",
    "Finding",
    "DesignRuleError",
    "LAVA_DL_UNSUPPORTED_LAYERS",
    "LAVA_DL_ONLY_LAYERS",
    "LAVA_DL_ONLY_NEURONS",
    "WEIGHT_BITS_MAX",
    "layer_names",
    "lint_spec",
    "lint_file",
    "check_design_rules",
]

#: Layer types lava-dl 0.6's netx reader raises NotImplementedError for (netx/hdf5.py ``_create``).
LAVA_DL_UNSUPPORTED_LAYERS = ("pool", "convT", "unpool", "average", "concat")
#: Layer types lava-dl reads and tsslbp does not (no golden model, no checks).
LAVA_DL_ONLY_LAYERS = ("dense_rec", "dense_comp")
#: Every layer type lava-dl 0.6's netx reader builds (what a finding on a layer type expects).
LAVA_DL_LAYERS = ("input", "dense", *LAVA_DL_ONLY_LAYERS, "conv", "flatten")
#: Neuron types lava-dl maps (``get_neuron_params``) besides CUBA/LOIHI: sigma-delta and resonate-
#: and-fire (any type containing "RF").
LAVA_DL_ONLY_NEURONS = ("SDNN",)
#: Loihi's widest synaptic weight: signed 9 bits ("from 1- to signed 9-b values", Davies et al.
#: 2021; lava-nc clips mixed-sign weights to [-256, 255]).
WEIGHT_BITS_MAX = 9


class Severity(Enum):
    """ERROR: the network cannot be loaded or run as intended; WARNING: it runs, with a caveat."""

    ERROR = "error"
    WARNING = "warning"


class Rule(Enum):
    """The design rules, one per kind of finding."""

    LAYER_TYPE = "layer-type"
    NEURON_TYPE = "neuron-type"
    NETX_READ = "netx-read"
    WEIGHT_BITS = "weight-bits"
    WEIGHT_EXACT = "weight-exact"
    DECAY_BITS = "decay-bits"
    THRESHOLD_BITS = "threshold-bits"
    BIAS_BITS = "bias-bits"
    INPUT_BITS = "input-bits"
    GRADED_SPIKE = "graded-spike"
    REF_DELAY = "ref-delay"
    FAN_IN = "fan-in"
    FAN_OUT = "fan-out"
    SYNAPSE_MEMORY = "synapse-memory"
    CHIP_CORES = "chip-cores"
    HW_PERIOD = "hw-period"


@dataclass(frozen=True)
class Finding:
    """One design-rule violation.

    Attributes:
        severity: error or warning.
        rule: which rule.
        layer: the layer's index in the netx file, or None for the whole network.
        name: the layer's name (tsslbp's config name, else its type and index), or "network".
        limit: the limit, as text with its unit.
        found: the value found, as text.
        message: one line saying what is wrong and why it matters.
    """

    severity: Severity
    rule: Rule
    layer: int | None
    name: str
    limit: str
    found: str
    message: str

    def line(self) -> str:
        where = "network" if self.layer is None else f"layer {self.layer} ({self.name})"
        return f"{self.severity.value}: {where}: [{self.rule.value}] {self.message} (limit {self.limit}, found {self.found})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"], d["rule"] = self.severity.value, self.rule.value
        return d


class DesignRuleError(ValueError):
    """A network that breaks at least one design rule with severity error; ``findings`` has all."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        errors = [f for f in findings if f.severity is Severity.ERROR]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0].line() + more if errors else "design-rule check failed")


def layer_names(spec: NetworkSpec) -> list[str]:
    """A name per spec layer: the config's layer names for tsslbp exports (synaptic layers in
    order), else the type and spec index (``conv1``, ``flatten5``)."""
    names = [
        f"{type(layer).__name__.replace('Layer', '').lower()}{i}"
        for i, layer in enumerate(spec.layers)
    ]
    config = spec.metadata.get("config") if isinstance(spec.metadata, dict) else None
    if isinstance(config, dict) and isinstance(config.get("Layers"), dict):
        trained = [
            name
            for name, entry in config["Layers"].items()
            if isinstance(entry, dict) and entry.get("type") in ("linear", "conv")
        ]
        synaptic = [
            i for i, layer in enumerate(spec.layers) if isinstance(layer, (DenseLayer, ConvLayer))
        ]
        if len(trained) == len(synaptic):
            for i, name in zip(synaptic, trained):
                names[i] = str(name)
    return names


def _file_offset(spec: NetworkSpec) -> int:
    """File index of spec layer 0: write_netx adds a shape-only input layer unless the first layer is
    an input layer."""
    return 0 if spec.layers and isinstance(spec.layers[0], InputLayer) else 1


def _range_finding(
    rule: Rule, index: int, name: str, what: str, values: Any, low: int, high: int, why: str
) -> Finding | None:
    arr = np.asarray(values)
    if arr.size == 0 or (arr.min() >= low and arr.max() <= high):
        return None
    return Finding(
        Severity.ERROR,
        rule,
        index,
        name,
        f"{low}..{high}",
        f"{arr.min()}..{arr.max()}",
        f"{what} outside Loihi's range: {why}",
    )


def _neuron_findings(neuron: Any, index: int, name: str) -> list[Finding]:
    found = [
        _range_finding(
            Rule.DECAY_BITS,
            index,
            name,
            sc.KEY_I_DECAY,
            neuron.i_decay,
            sc.DECAY_MIN,
            sc.DECAY_MAX,
            "decays are 12-bit fractions of 4096",
        ),
        _range_finding(
            Rule.DECAY_BITS,
            index,
            name,
            sc.KEY_V_DECAY,
            neuron.v_decay,
            sc.DECAY_MIN,
            sc.DECAY_MAX,
            "decays are 12-bit fractions of 4096",
        ),
        _range_finding(
            Rule.THRESHOLD_BITS,
            index,
            name,
            sc.KEY_V_TH_MANT,
            neuron.v_th_mant,
            sc.VTH_MANT_MIN,
            sc.VTH_MANT_MAX,
            "the threshold mantissa is a 17-bit field",
        ),
    ]
    if neuron.graded_spike:
        found.append(
            Finding(
                Severity.WARNING,
                Rule.GRADED_SPIKE,
                index,
                name,
                "binary spikes",
                "gradedSpike=1",
                "gradedSpike is set but lava's LIF (and lava-dl's netx for CUBA/LOIHI) sends 0/1 spikes",
            )
        )
    if neuron.ref_delay != sc.REF_DELAY_DEFAULT:
        found.append(
            Finding(
                Severity.WARNING,
                Rule.REF_DELAY,
                index,
                name,
                str(sc.REF_DELAY_DEFAULT),
                str(neuron.ref_delay),
                "refDelay is ignored: lava's LIF has no refractory period, so the deployed network has none",
            )
        )
    return [f for f in found if f is not None]


def _weight_findings(layer: DenseLayer | ConvLayer, index: int, name: str) -> list[Finding]:
    w = np.asarray(layer.weight, dtype=np.int64)
    out = []
    if w.size and (w.min() < sc.WEIGHT_MIN or w.max() > sc.WEIGHT_MAX):
        out.append(
            Finding(
                Severity.ERROR,
                Rule.WEIGHT_BITS,
                index,
                name,
                f"{WEIGHT_BITS_MAX}-bit signed [{sc.WEIGHT_MIN}, {sc.WEIGHT_MAX}]",
                f"{w.min()}..{w.max()}",
                "weights do not fit Loihi's synaptic weight field",
            )
        )
    elif isinstance(layer, DenseLayer) and not sc.representable_weights(w):
        out.append(
            Finding(
                Severity.WARNING,
                Rule.WEIGHT_EXACT,
                index,
                name,
                "8-bit mantissa after netx's packing",
                f"{w.min()}..{w.max()}",
                "lava-dl's weight packing changes some of these weights (see schema.representable_weights)",
            )
        )
    if layer.bias is not None:
        f = _range_finding(
            Rule.BIAS_BITS,
            index,
            name,
            "bias",
            layer.bias,
            sc.BIAS_MANT_MIN,
            sc.BIAS_MANT_MAX,
            "bias mantissas are 13-bit signed",
        )
        if f is not None:
            out.append(f)
    return out


def _resource_findings(
    spec: NetworkSpec, names: list[str], offset: int, limits: CoreLimits
) -> list[Finding]:
    out = []
    packings: list[LayerPacking] = pack_network(spec, limits)
    for p in packings:
        if not p.unplaceable:
            continue
        index, name = p.layer + offset, names[p.layer]
        worst = max(
            p.chunks,
            key=lambda c: (c.in_axons / limits.in_axons, c.synapse_bits / limits.synapse_bits),
        )
        if worst.in_axons > limits.in_axons:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.FAN_IN,
                    index,
                    name,
                    f"{limits.in_axons} input axons per core",
                    f"{worst.in_axons}",
                    "one neuron's presynaptic neurons exceed a core's input axons",
                )
            )
        if worst.synapse_bits > limits.synapse_bits:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.SYNAPSE_MEMORY,
                    index,
                    name,
                    f"{limits.synapse_bits} bits of synaptic memory per core",
                    f"{worst.synapse_bits} bits",
                    "one neuron's weights exceed a core's synaptic memory",
                )
            )
        if worst.out_axons > limits.out_axons:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.FAN_OUT,
                    index,
                    name,
                    f"{limits.out_axons} output axons per core",
                    f"{worst.out_axons}",
                    "one neuron sends to more cores than a core has output axons",
                )
            )
    cores = sum(p.cores for p in packings)
    if cores > limits.cores_per_chip:
        out.append(
            Finding(
                Severity.WARNING,
                Rule.CHIP_CORES,
                None,
                "network",
                f"{limits.cores_per_chip} cores per chip",
                f"{cores} cores",
                f"needs {math.ceil(cores / limits.cores_per_chip)} Loihi 2 chips",
            )
        )
    return out


def _period_findings(spec: NetworkSpec) -> list[Finding]:
    """Loihi 2 resets a network between samples with lava's LIFReset, whose ``reset_interval`` has
    to be a power of 2 on the chip (lava-dl's netx MNIST tutorial,
    tutorials/lava/lib/dl/netx/mnist/run.ipynb: "reset_interval on Loihi-2 hardware has to be a
    power of 2"); Lava's CPU simulator runs any interval."""
    steps = spec.metadata.get("steps_per_sample") if isinstance(spec.metadata, dict) else None
    if not isinstance(steps, int) or steps < 1 or is_power_of_two(steps):
        return []
    period = hardware_period(steps)
    return [
        Finding(
            Severity.WARNING,
            Rule.HW_PERIOD,
            None,
            "network",
            "a power-of-2 sample period on Loihi 2",
            f"{steps} steps per sample",
            f"Loihi 2 resets need a power-of-2 reset_interval: run each sample for {period} steps "
            f"(zero-padded; `tsslbp deploy --target loihi2 --bundle` does, `--period {period}` "
            "runs the same schedule in simulation)",
        )
    ]


def lint_spec(
    spec: NetworkSpec, limits: CoreLimits = CoreLimits(), offset: int | None = None
) -> list[Finding]:
    """Design-rule findings of a network (see the module docstring for the rules).

    Args:
        spec: the network.
        limits: per-core limits for the resource rules.
        offset: file index of ``spec.layers[0]`` [default: as :func:`~tsslbp.export.netx.write_netx`
            writes it: 1 after a shape-only input layer, else 0].

    Returns:
        findings in layer order, network-wide ones last; empty when the network passes.
    """
    offset = _file_offset(spec) if offset is None else offset
    names = layer_names(spec)
    out: list[Finding] = []
    bits = int(spec.input_message_bits)
    if not 0 <= bits <= sc.MESSAGE_BITS_MAX:
        out.append(
            Finding(
                Severity.ERROR,
                Rule.INPUT_BITS,
                None,
                "network",
                f"0..{sc.MESSAGE_BITS_MAX} bits",
                str(bits),
                "graded input spikes carry at most 24 bits in lava's fixed-point models",
            )
        )
    quant = spec.metadata.get("quantization") if isinstance(spec.metadata, dict) else None
    declared = quant.get("input_bits") if isinstance(quant, dict) else None
    binary = isinstance(spec.metadata, dict) and spec.metadata.get("input_encoding") == "binary"
    if isinstance(declared, int) and not binary and declared != bits:
        out.append(
            Finding(
                Severity.ERROR,
                Rule.INPUT_BITS,
                None,
                "network",
                f"{declared} bits (tsslbp metadata)",
                f"{bits} bits",
                "the file's input_message_bits differs from the width the encoder uses",
            )
        )
    for i, layer in enumerate(spec.layers):
        index, name = i + offset, names[i]
        if isinstance(layer, FlattenLayer):
            continue
        if isinstance(layer, (DenseLayer, ConvLayer)):
            out.extend(_weight_findings(layer, index, name))
        out.extend(_neuron_findings(layer.neuron, index, name))
    out.extend(_resource_findings(spec, names, offset, limits))
    out.extend(_period_findings(spec))
    return out


def _raw_types(path: Path) -> tuple[list[tuple[int, str, str | None]], int]:
    """(file index, layer type, neuron type or None) of every layer, and the file index of the first
    layer read_netx keeps (1 after a shape-only input layer)."""
    out = []
    offset = 0
    with open_hdf5(path) as f:
        group = f.get(sc.LAYER_GROUP)
        if not isinstance(group, h5py.Group):
            return [], 0
        keys = sorted((k for k in group.keys() if k.isdigit()), key=int)
        for k in keys:
            layer = group[k]
            if not isinstance(layer, h5py.Group) or sc.KEY_TYPE not in layer:
                continue
            kind = _text(_small(layer[sc.KEY_TYPE]))
            neuron = None
            if (
                isinstance(layer.get(sc.KEY_NEURON), h5py.Group)
                and sc.KEY_TYPE in layer[sc.KEY_NEURON]
            ):
                neuron = _text(_small(layer[sc.KEY_NEURON][sc.KEY_TYPE]))
            if int(k) == 0 and kind == sc.LayerType.INPUT.value and neuron is None:
                offset = 1
            out.append((int(k), kind, neuron))
    return out, offset


def _small(dataset: Any) -> Any:
    """A type string's value, read only when it declares a handful of values."""
    if not isinstance(dataset, h5py.Dataset) or dataset.size > 16:
        raise ValueError("not a type string")
    return dataset[()]


def _text(value: Any) -> str:
    item = np.asarray(value).reshape(-1)[0] if np.asarray(value).size else b""
    return item.decode("ascii", errors="replace") if isinstance(item, bytes) else str(item)


def lint_file(
    path: str | os.PathLike[str], limits: CoreLimits = CoreLimits()
) -> tuple[list[Finding], NetworkSpec | None]:
    """Design-rule findings of a netx file, and its spec when tsslbp can read it.

    Raises:
        NetxError: the file is not HDF5 at all.
    """
    path = Path(path)
    try:
        with open_hdf5(path):
            pass  # refuses non-regular files, foreign HDF5 structure and size bombs up front
    except UnsafeFileError as exc:
        raise NetxError(str(exc)) from None
    try:
        raw, offset = _raw_types(path)
    except (OSError, KeyError, RuntimeError, TypeError, ValueError):
        raw, offset = [], 0  # a damaged file: read_netx below names the problem
    out: list[Finding] = []
    supported_layers = {t.value for t in sc.LayerType}
    supported_neurons = {t.value for t in sc.NeuronType}
    for index, kind, neuron in raw:
        name = f"{kind}{index}"
        if kind in LAVA_DL_UNSUPPORTED_LAYERS:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.LAYER_TYPE,
                    index,
                    name,
                    ", ".join(LAVA_DL_LAYERS),
                    kind,
                    f"lava-dl's netx raises NotImplementedError for '{kind}' layers",
                )
            )
        elif kind in LAVA_DL_ONLY_LAYERS:
            out.append(
                Finding(
                    Severity.WARNING,
                    Rule.LAYER_TYPE,
                    index,
                    name,
                    ", ".join(sorted(supported_layers)),
                    kind,
                    f"lava-dl reads '{kind}' but tsslbp has no model of it: nothing below was checked",
                )
            )
        elif kind not in supported_layers:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.LAYER_TYPE,
                    index,
                    name,
                    ", ".join(LAVA_DL_LAYERS),
                    kind,
                    "unknown layer type: lava-dl's netx skips it silently and the layers around it do not connect",
                )
            )
        if neuron is None or neuron in supported_neurons:
            continue
        if neuron in LAVA_DL_ONLY_NEURONS or "RF" in neuron:
            out.append(
                Finding(
                    Severity.WARNING,
                    Rule.NEURON_TYPE,
                    index,
                    name,
                    ", ".join(sorted(supported_neurons)),
                    neuron,
                    f"lava-dl builds '{neuron}' neurons but tsslbp has no model of them",
                )
            )
        else:
            out.append(
                Finding(
                    Severity.ERROR,
                    Rule.NEURON_TYPE,
                    index,
                    name,
                    "CUBA, LOIHI, SDNN, RF*",
                    neuron,
                    "lava-dl's netx has no process for this neuron type",
                )
            )
    try:
        spec = read_netx(path)
    except NetxError as exc:
        if not any(f.severity is Severity.ERROR for f in out):
            # Only types lava-dl runs and tsslbp does not know: a warning, the rest is unchecked.
            severity = Severity.WARNING if out else Severity.ERROR
            out.append(
                Finding(
                    severity,
                    Rule.NETX_READ,
                    None,
                    "network",
                    "a netx file tsslbp reads",
                    "unreadable",
                    str(exc),
                )
            )
        return out, None
    return out + lint_spec(spec, limits, offset), spec


def check_design_rules(spec: NetworkSpec, limits: CoreLimits = CoreLimits()) -> list[Finding]:
    """:func:`lint_spec`, raising :class:`DesignRuleError` when any finding is an error.

    Returns:
        the warnings.
    """
    findings = lint_spec(spec, limits)
    if any(f.severity is Severity.ERROR for f in findings):
        raise DesignRuleError(findings)
    return findings
