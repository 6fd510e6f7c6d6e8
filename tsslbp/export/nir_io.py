"""Exchange networks with NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

Export: a :class:`~tsslbp.hwmodels.spec.NetworkSpec` (e.g. from a netx file) becomes a
``nir.NIRGraph`` chain ``Input -> [Linear | Conv2d -> CubaLIF | Flatten]... -> Output`` whose float
parameters describe the integer network's dynamics in NIR's continuous-time form, and whose node
metadata carry the exact integers, so :func:`nir_to_spec` rebuilds the spec exactly.

Import: a ``nir.NIRGraph`` becomes a spec. With tsslbp's metadata the integers are taken from it
(and checked against the float parameters); without (a graph from another producer) the float
graph is quantized to Loihi fixed point.

The discrete-time reading of NIR's equations (docs/nir.md). NIR defines CubaLIF as
``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + r I``, spike when ``v > v_threshold``,
then ``v = v_reset``. With a time step ``dt`` and forward Euler (the convention of snnTorch's and
Norse's NIR export and import), one step is::

    I[t] = (1 - dt/tau_syn) I[t-1] + (dt w_in / tau_syn) S[t]
    v[t] = (1 - dt/tau_mem) v[t-1] + (dt / tau_mem) (v_leak + r I[t])

NIR's LIF is the same without the synaptic filter: ``I[t] = S[t]`` (``dt/tau_syn = 1``, ``w_in = 1``).
Loihi's CUBA neuron (:mod:`tsslbp.hwmodels.golden`) is, in units of ``2**6`` state LSBs::

    u[t] = (1 - iDecay/4096) u[t-1] + W_int s[t-1]
    v[t] = (1 - vDecay/4096) v[t-1] + u[t] + bias,   spike when v > vThMant, then v = 0

Export therefore writes, per layer, ``dt/tau_syn = iDecay/4096``, ``w_in = tau_syn/dt``,
``dt/tau_mem = vDecay/4096``, ``r = tau_mem/dt``, ``v_threshold = vThMant``, ``v_reset = 0``,
``v_leak = bias * tau_mem/dt`` and synaptic weights ``W = W_int`` (as floats; times ``2**bits - 1`` in
the first layer of a graded-input network, whose graph input is then ``x`` in [0, 1] where Loihi
receives ``round(x (2**bits - 1))``): the float graph *is*
the integer network, without the round-toward-zero of Loihi's decays and without Loihi's one step
of delay per synaptic layer (the network's output is the same, shifted by that many steps, when
no bias is set).

Import without metadata inverts this with a per-layer scale ``S`` as tsslbp's quantizer does
(:mod:`tsslbp.export.quantize`): ``iDecay = round(4096 dt/tau_syn)``, ``vDecay = round(4096 dt/tau_mem)``,
``W_int`` = ``S g W / 64`` rounded to even integers in [-256, 254] with ``g = (dt w_in/tau_syn)
(dt r/tau_mem)`` (divided by ``2**bits - 1`` for graded input), ``vThMant = round(S v_threshold / 64)``,
``S`` as large as the weights and the threshold field allow. Graphs that do not map are refused with
a :class:`NirError` naming the node: see :func:`nir_to_spec`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import h5py
import nir
import numpy as np

from .. import __version__
from ..hwmodels.fixed_point import ACT_SHIFT
from ..hwmodels.spec import (
    DECAY_UNITY,
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    Layer,
    NetworkSpec,
)
from ..safeio import UnsafeFileError, atomic_output, audit_hdf5, open_regular
from .fold import FoldedConv, FoldedDense, _fold_into_conv, _fold_into_dense
from .netx import spec_problems
from .quantize import V_TH_MANT_MAX, WEIGHT_INT_MAX, decay_constant, quantize_weights
from .schema import MESSAGE_BITS_MAX, representable_weights

__all__ = [
    "DEFAULT_DT",
    "METADATA_KEY",
    "NIR_FORMAT_VERSION",
    "NirError",
    "spec_to_nir",
    "nir_to_spec",
    "read_nir",
    "write_nir",
]

#: Export's time step in seconds: one Loihi step = 1 ms (NIR's parameters are in seconds; any dt
#: gives the same discrete dynamics because only dt/tau enters).
DEFAULT_DT = 1e-3
#: Key of tsslbp's entry in the graph's and the nodes' ``metadata``.
METADATA_KEY = "tsslbp"
#: Version of the metadata layout below; bump when a field changes meaning.
NIR_FORMAT_VERSION = 1
#: Float parameters of a graph with tsslbp metadata must equal what export writes from the
#: integers to this relative tolerance (float32 re-saves by other tools pass).
_CONSISTENCY_RTOL = 1e-6
_UNITS = "state in units of 2**6 LSB: weights and thresholds are Loihi's integers"

# Keys of the per-node metadata.
_K_WEIGHT = "weight"
_K_BIAS = "bias"
_K_I_DECAY = "i_decay"
_K_V_DECAY = "v_decay"
_K_V_TH_MANT = "v_th_mant"
_K_REF_DELAY = "ref_delay"
_K_GRADED = "graded_spike"
_K_KIND = "kind"
_KIND_INPUT = "input_layer"
# Keys of the graph metadata.
_K_FORMAT = "format_version"
_K_PRODUCER = "producer"
_K_DT = "dt"
_K_BITS = "input_message_bits"
_K_NETX_META = "netx_metadata"
_K_UNITS = "units"


class NirError(ValueError):
    """A NIR graph (or file) that cannot be mapped onto tsslbp's Loihi layers, or a spec that has no
    NIR form; the one-line message names the node, its type and the rule."""


# ------------------------------------------------------------------------------------------ export


def _cuba_node(
    neuron: CubaNeuron,
    shape: tuple[int, ...],
    bias: np.ndarray | None,
    dt: float,
    instant_synapse: bool,
    fixed: dict[str, Any],
    where: str,
) -> nir.CubaLIF:
    """The CubaLIF node of one layer (module docstring) with ``fixed`` as its tsslbp metadata."""
    for name, value in ((_K_I_DECAY, neuron.i_decay), (_K_V_DECAY, neuron.v_decay)):
        if value == 0 and not (instant_synapse and name == _K_I_DECAY):
            # dt/tau = 0 would need an infinite w_in (or r) to keep the input gain of 1.
            raise NirError(
                f"{where}: {name} = 0 (a state that never decays) has no CubaLIF form with finite parameters"
            )
    tau_mem_steps = DECAY_UNITY / neuron.v_decay
    tau_syn_steps = 1.0 if instant_synapse else DECAY_UNITY / neuron.i_decay
    full = np.ones(shape, dtype=np.float64)
    v_leak = np.zeros(shape, dtype=np.float64)
    if bias is not None:
        # Loihi adds the bias to v every step; Euler adds (dt/tau_mem) v_leak.
        per_channel = np.asarray(bias, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))
        v_leak = np.broadcast_to(per_channel * tau_mem_steps, shape).copy()
    fixed = {
        **fixed,
        _K_I_DECAY: int(neuron.i_decay),
        _K_V_DECAY: int(neuron.v_decay),
        _K_V_TH_MANT: int(neuron.v_th_mant),
        _K_REF_DELAY: int(neuron.ref_delay),
        _K_GRADED: int(neuron.graded_spike),
    }
    return nir.CubaLIF(
        tau_syn=full * (tau_syn_steps * dt),
        tau_mem=full * (tau_mem_steps * dt),
        r=full * tau_mem_steps,
        v_leak=v_leak,
        v_threshold=full * float(neuron.v_th_mant),
        v_reset=np.zeros(shape, dtype=np.float64),
        w_in=full * tau_syn_steps,
        metadata={METADATA_KEY: fixed},
    )


def spec_to_nir(spec: NetworkSpec, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """The NIR graph of an integer network (module docstring for the float parameters).

    Nodes, in order: ``input``, then per layer ``dense<i>`` (Linear) or ``conv<i>`` (Conv2d) followed
    by ``cuba<i>`` (CubaLIF), ``flatten<i>`` (Flatten) or, for a lava-dl input layer, ``cuba<i>``
    alone (its input enters ``v`` directly, so its synapse is instantaneous), then ``output``.
    Pooling has no node: netx networks hold it folded into the next layer's weights.

    Args:
        spec: the network.
        dt: seconds per step written into the time constants.

    Returns:
        The graph. Its metadata (``tsslbp``) holds the spec's metadata as JSON, the input width and
        ``dt``; every node that carries integers holds them in its own ``tsslbp`` metadata.

    Raises:
        NirError: a decay of 0 (no finite CubaLIF form), or dt not positive.
    """
    if not (dt > 0 and np.isfinite(dt)):
        raise NirError(f"dt must be a positive number of seconds, found {dt}")
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.asarray(spec.input_shape)})
    }
    shape = tuple(spec.input_shape)
    # Graded input: the graph takes x in [0, 1], Loihi receives round(x (2**bits - 1)).
    input_scale = float((1 << spec.input_message_bits) - 1) if spec.input_message_bits else 1.0
    for i, layer in enumerate(spec.layers):
        where = f"layer {i} ({type(layer).__name__})"
        if isinstance(layer, InputLayer):
            fixed = {
                _K_KIND: _KIND_INPUT,
                _K_WEIGHT: int(layer.weight),
                _K_BIAS: np.asarray(layer.bias, dtype=np.int64).reshape(-1),
            }
            nodes[f"cuba{i}"] = _cuba_node(
                layer.neuron, tuple(layer.shape), None, dt, True, fixed, where
            )
        elif isinstance(layer, DenseLayer):
            nodes[f"dense{i}"] = nir.Linear(
                weight=np.asarray(layer.weight, dtype=np.float64)
                * (input_scale if i == 0 else 1.0),
                metadata={METADATA_KEY: {_K_WEIGHT: np.asarray(layer.weight, dtype=np.int64)}},
            )
            fixed = {} if layer.bias is None else {_K_BIAS: np.asarray(layer.bias, dtype=np.int64)}
            nodes[f"cuba{i}"] = _cuba_node(
                layer.neuron, tuple(layer.shape), layer.bias, dt, False, fixed, where
            )
        elif isinstance(layer, ConvLayer):
            nodes[f"conv{i}"] = nir.Conv2d(
                input_shape=tuple(int(n) for n in layer.in_shape[1:]),
                weight=np.asarray(layer.weight, dtype=np.float64)
                * (input_scale if i == 0 else 1.0),
                stride=tuple(int(n) for n in layer.stride),
                padding=tuple(int(n) for n in layer.padding),
                dilation=tuple(int(n) for n in layer.dilation),
                groups=int(layer.groups),
                # netx's conv bias is a per-channel bias on v: it goes to the neurons' v_leak.
                bias=np.zeros(layer.weight.shape[0], dtype=np.float64),
                metadata={METADATA_KEY: {_K_WEIGHT: np.asarray(layer.weight, dtype=np.int64)}},
            )
            fixed = {} if layer.bias is None else {_K_BIAS: np.asarray(layer.bias, dtype=np.int64)}
            nodes[f"cuba{i}"] = _cuba_node(
                layer.neuron, tuple(layer.shape), layer.bias, dt, False, fixed, where
            )
        else:
            nodes[f"flatten{i}"] = nir.Flatten(
                input_type={"input": np.asarray(layer.in_shape)}, start_dim=0, end_dim=-1
            )
        shape = tuple(layer.shape)
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    names = list(nodes)
    meta = {
        _K_FORMAT: NIR_FORMAT_VERSION,
        _K_PRODUCER: f"tsslbp {__version__}",
        _K_DT: float(dt),
        _K_BITS: int(spec.input_message_bits),
        _K_UNITS: _UNITS,
        # JSON keeps the key order of the netx metadata (h5py groups would sort the keys).
        _K_NETX_META: json.dumps(spec.metadata),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata={METADATA_KEY: meta}
    )


# ----------------------------------------------------------------------------------- graph walking

_Shape = tuple[int, ...]


@dataclass(frozen=True)
class _Synapse:
    """A synapse node (after pooling folded in) and the neuron node that follows it."""

    name: str
    node: nir.Linear | nir.Affine | nir.Conv2d
    weight: np.ndarray  # float64, pooling folded in
    in_shape: _Shape  # what the synapse reads (before pooling, if pooling was folded)
    shape: _Shape  # neuron layer shape
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    pooled: bool
    neuron_name: str
    neuron: nir.CubaLIF | nir.LIF


@dataclass(frozen=True)
class _Flatten:
    in_shape: _Shape


@dataclass(frozen=True)
class _InputNeurons:
    name: str
    neuron: nir.CubaLIF | nir.LIF
    shape: _Shape


_Stage = _Synapse | _Flatten | _InputNeurons


@dataclass(frozen=True)
class _Pool:
    """A pooling node about to be folded; ``kernel_size``/``scale`` as fold.py's SumPooling has them."""

    kernel_size: tuple[int, int]
    scale: float
    pooled_from: _Shape
    name: str


def _kind(name: str, node: Any) -> str:
    return f"node {name!r} ({type(node).__name__})"


def _chain(graph: nir.NIRGraph) -> list[tuple[str, nir.NIRNode]]:
    """The nodes from the Input to the Output node, which must form a single path."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NirError(
                f"{_kind(name, node)}: subgraphs (e.g. snnTorch's recurrent RLeaky/RSynaptic) are not supported"
            )
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(
            f"the graph needs exactly one Input and one Output node, found {len(inputs)} and {len(outputs)}"
        )
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    n_in: dict[str, int] = {n: 0 for n in graph.nodes}
    for a, b in graph.edges:
        if a not in succ or b not in succ:
            raise NirError(f"edge {a!r} -> {b!r} names a node that is not in the graph")
        succ[a].append(b)
        n_in[b] += 1
    _refuse_cycles(graph, succ)
    path = [(inputs[0], graph.nodes[inputs[0]])]
    current = inputs[0]
    while current != outputs[0]:
        nxt = succ[current]
        if len(nxt) != 1:
            raise NirError(
                f"{_kind(current, graph.nodes[current])}: {len(nxt)} outgoing edges; only a chain Input -> ... -> Output maps onto layers"
            )
        current = nxt[0]
        if n_in[current] != 1:
            raise NirError(
                f"{_kind(current, graph.nodes[current])}: {n_in[current]} incoming edges; only a chain Input -> ... -> Output maps onto layers"
            )
        path.append((current, graph.nodes[current]))
    if len(path) != len(graph.nodes):
        stray = sorted(set(graph.nodes) - {n for n, _ in path})
        raise NirError(
            f"node {stray[0]!r} ({type(graph.nodes[stray[0]]).__name__}) is not on the path from Input to Output"
        )
    return path


def _refuse_cycles(graph: nir.NIRGraph, succ: dict[str, list[str]]) -> None:
    """Raise on the first edge that closes a cycle (a recurrent connection), found by DFS."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    for root in graph.nodes:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                raise NirError(
                    f"edge {node!r} -> {child!r} closes a cycle (a recurrent connection into "
                    f"{_kind(child, graph.nodes[child])}): only feed-forward chains map onto tsslbp layers"
                )
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))


def _ints(values: Any, count: int, where: str, field: str) -> tuple[int, ...]:
    arr = np.asarray(values).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, count)
    if (
        arr.size != count
        or not np.all(np.isfinite(arr.astype(np.float64)))
        or not np.array_equal(arr, np.round(arr))
    ):
        raise NirError(
            f"{where}: {field} must be {count} integers, found {np.asarray(values).tolist()}"
        )
    return tuple(int(v) for v in arr)


def _pool(name: str, node: Any, shape: _Shape) -> _Pool:
    where = _kind(name, node)
    if len(shape) != 3:
        raise NirError(f"{where}: pooling needs a (C, H, W) input, found {shape}")
    kernel = _ints(node.kernel_size, 2, where, "kernel_size")
    stride = _ints(node.stride, 2, where, "stride")
    padding = _ints(node.padding, 2, where, "padding")
    if stride != kernel or padding != (0, 0) or min(kernel) < 1:
        # Only non-overlapping windows fold into the next layer's weights (fold.py).
        raise NirError(
            f"{where}: only pooling with stride == kernel_size and no padding folds into the next layer, found kernel {kernel}, stride {stride}, padding {padding}"
        )
    scale = 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (kernel[0] * kernel[1])
    return _Pool(kernel, scale, shape, name)


#: Node types a chain may hold (Input only at its start).
_SUPPORTED = (
    nir.Output,
    nir.Linear,
    nir.Affine,
    nir.Conv2d,
    nir.SumPool2d,
    nir.AvgPool2d,
    nir.Flatten,
    nir.CubaLIF,
    nir.LIF,
)


def _stages(chain: list[tuple[str, nir.NIRNode]]) -> tuple[_Shape, list[_Stage]]:
    """Input shape and layer stages of a chain, pooling folded into the synapse after it."""
    _, first = chain[0]
    shape: _Shape = tuple(int(n) for n in np.asarray(first.output_type["output"]).reshape(-1))
    input_shape = shape
    stages: list[_Stage] = []
    pool: _Pool | None = None
    synapse: dict[str, Any] | None = None  # a synapse waiting for its neurons
    for name, node in chain[1:]:
        where = _kind(name, node)
        if not isinstance(node, _SUPPORTED):
            raise NirError(
                f"{where}: unsupported node type (supported: {', '.join(t.__name__ for t in _SUPPORTED)})"
            )
        if synapse is not None and not isinstance(node, (nir.CubaLIF, nir.LIF)):
            raise NirError(
                f"{where} follows {_kind(synapse['name'], synapse['node'])}: every synapse needs CubaLIF or LIF neurons right after it"
            )
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            if pool is not None:
                raise NirError(f"{where}: two pooling nodes in a row (fold them into one)")
            pool = _pool(name, node, shape)
            shape = (shape[0], shape[1] // pool.kernel_size[0], shape[2] // pool.kernel_size[1])
        elif isinstance(node, nir.Flatten):
            if len(shape) == 1:
                continue  # already flat
            if len(shape) != 3:
                raise NirError(f"{where}: flatten needs a (C, H, W) input, found {shape}")
            declared = (node.output_type or {}).get("output")
            if declared is not None and np.asarray(declared).size != 1:
                raise NirError(
                    f"{where}: only a flatten of the whole (C, H, W) map is supported, found output {np.asarray(declared).tolist()}"
                )
            stages.append(_Flatten(pool.pooled_from if pool is not None else shape))
            shape = (int(np.prod(shape)),)
        elif isinstance(node, (nir.Linear, nir.Affine)):
            weight = np.asarray(node.weight, dtype=np.float64)
            if weight.ndim != 2:
                raise NirError(f"{where}: weight must be (out, in), found shape {weight.shape}")
            if len(shape) != 1:
                raise NirError(f"{where}: reads a {shape} map; add a Flatten node before it")
            if weight.shape[1] != shape[0]:
                raise NirError(
                    f"{where}: weight has {weight.shape[1]} inputs, the previous node gives {shape[0]}"
                )
            in_shape = shape
            if pool is not None:
                folded = _fold_into_dense(pool, FoldedDense(weight, None), pool.pooled_from)  # type: ignore[arg-type]
                weight, in_shape = folded.weight, (int(np.prod(pool.pooled_from)),)
            synapse = {
                "name": name,
                "node": node,
                "weight": weight,
                "in_shape": in_shape,
                "shape": (weight.shape[0],),
                "stride": (1, 1),
                "padding": (0, 0),
                "dilation": (1, 1),
                "groups": 1,
                "pooled": pool is not None,
            }
            pool = None
        elif isinstance(node, nir.Conv2d):
            synapse = _conv(name, node, shape, pool)
            pool = None
        elif isinstance(node, (nir.CubaLIF, nir.LIF)):
            size = int(np.prod(node.v_threshold.shape))
            if synapse is None:
                if stages or pool is not None:
                    raise NirError(
                        f"{where}: neurons without a synapse node before them (Linear, Affine or Conv2d)"
                    )
                stages.append(_InputNeurons(name, node, shape))
                continue
            if size != int(np.prod(synapse["shape"])):
                raise NirError(
                    f"{where}: {size} neurons after a synapse with {int(np.prod(synapse['shape']))} outputs"
                )
            stages.append(_Synapse(neuron_name=name, neuron=node, **synapse))
            shape = tuple(synapse["shape"])
            synapse = None
        elif isinstance(node, nir.Output):
            if pool is not None:
                raise NirError(
                    f"{where}: the graph ends with pooling {pool.name!r}; pooling must feed a Conv2d or Flatten -> Linear"
                )
            if not stages:
                raise NirError(f"{where}: the graph has no layers")
    return input_shape, stages


def _conv(name: str, node: nir.Conv2d, shape: _Shape, pool: _Pool | None) -> dict[str, Any]:
    where = _kind(name, node)
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 4:
        raise NirError(
            f"{where}: weight must be (out, in / groups, kH, kW), found shape {weight.shape}"
        )
    if len(shape) != 3:
        raise NirError(f"{where}: needs a (C, H, W) input, found {shape}")
    padding: Any = node.padding
    if isinstance(padding, (str, bytes)):
        if (padding.decode() if isinstance(padding, bytes) else padding) != "valid":
            raise NirError(
                f"{where}: padding {padding!r} is not supported (give the padding as integers)"
            )
        padding = (0, 0)
    stride = _ints(node.stride, 2, where, "stride")
    pad = _ints(padding, 2, where, "padding")
    dilation = _ints(node.dilation, 2, where, "dilation")
    groups = _ints(node.groups, 1, where, "groups")[0]
    if weight.shape[1] * groups != shape[0]:
        raise NirError(
            f"{where}: weight expects {weight.shape[1] * groups} input channels, the previous node gives {shape[0]}"
        )
    from ..config import conv_output_size

    out = (
        weight.shape[0],
        conv_output_size(shape[1], weight.shape[2], stride[0], pad[0], dilation[0]),
        conv_output_size(shape[2], weight.shape[3], stride[1], pad[1], dilation[1]),
    )
    conv = FoldedConv(weight, None, shape, out, stride, pad, dilation, groups)  # type: ignore[arg-type]
    if pool is not None:
        try:
            conv = _fold_into_conv(pool, conv, pool.pooled_from, where)  # type: ignore[arg-type]
        except ValueError as exc:
            raise NirError(str(exc)) from None
    return {
        "name": name,
        "node": node,
        "weight": conv.weight,
        "in_shape": conv.in_shape,
        "shape": out,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": groups,
        "pooled": pool is not None,
    }


# ---------------------------------------------------------------------------------- import: exact


def _fixed(name: str, node: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    meta = node.metadata.get(METADATA_KEY) if isinstance(node.metadata, dict) else None
    if not isinstance(meta, dict):
        raise NirError(
            f"{_kind(name, node)}: no '{METADATA_KEY}' metadata, although the graph has tsslbp metadata"
        )
    for key in keys:
        if key not in meta:
            raise NirError(f"{_kind(name, node)}: '{METADATA_KEY}' metadata lacks '{key}'")
    return meta


def _fixed_int(meta: dict[str, Any], key: str, where: str) -> int:
    arr = np.asarray(meta[key])
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
        raise NirError(
            f"{where}: '{METADATA_KEY}' metadata '{key}' must be one integer, found {arr.tolist()!r:.40}"
        )
    return int(arr.reshape(()))


def _fixed_array(meta: dict[str, Any], key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    arr = np.asarray(meta[key])
    if not np.issubdtype(arr.dtype, np.integer) or arr.shape != shape:
        raise NirError(
            f"{where}: '{METADATA_KEY}' metadata '{key}' must be integers of shape {shape}, found {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int64)


def _fixed_neuron(name: str, node: Any) -> tuple[CubaNeuron, dict[str, Any]]:
    meta = _fixed(name, node, (_K_I_DECAY, _K_V_DECAY, _K_V_TH_MANT, _K_REF_DELAY, _K_GRADED))
    where = _kind(name, node)
    neuron = CubaNeuron(
        i_decay=_fixed_int(meta, _K_I_DECAY, where),
        v_decay=_fixed_int(meta, _K_V_DECAY, where),
        v_th_mant=_fixed_int(meta, _K_V_TH_MANT, where),
        ref_delay=_fixed_int(meta, _K_REF_DELAY, where),
        graded_spike=bool(_fixed_int(meta, _K_GRADED, where)),
    )
    return neuron, meta


def _exact_layer(stage: _Stage) -> Layer:
    if isinstance(stage, _Flatten):
        return FlattenLayer(in_shape=stage.in_shape)
    if isinstance(stage, _InputNeurons):
        neuron, meta = _fixed_neuron(stage.name, stage.neuron)
        where = _kind(stage.name, stage.neuron)
        if meta.get(_K_KIND) != _KIND_INPUT:
            raise NirError(
                f"{where}: neurons without a synapse must be a tsslbp input layer ('{_K_KIND}' metadata)"
            )
        for key in (_K_WEIGHT, _K_BIAS):
            if key not in meta:
                raise NirError(f"{where}: '{METADATA_KEY}' metadata lacks '{key}'")
        bias = np.asarray(meta[_K_BIAS]).reshape(-1)
        return InputLayer(
            shape=stage.shape,
            neuron=neuron,
            weight=_fixed_int(meta, _K_WEIGHT, where),
            bias=_fixed_array({_K_BIAS: bias}, _K_BIAS, bias.shape, where),
        )
    if stage.pooled:
        raise NirError(
            f"{_kind(stage.name, stage.node)}: pooling before a synapse in a graph with tsslbp metadata (tsslbp writes pooling folded)"
        )
    syn_meta = _fixed(stage.name, stage.node, (_K_WEIGHT,))
    weight = _fixed_array(syn_meta, _K_WEIGHT, stage.weight.shape, _kind(stage.name, stage.node))
    neuron, meta = _fixed_neuron(stage.neuron_name, stage.neuron)
    n_bias = stage.shape[0]
    bias = (
        _fixed_array(meta, _K_BIAS, (n_bias,), _kind(stage.neuron_name, stage.neuron))
        if _K_BIAS in meta
        else None
    )
    if isinstance(stage.node, nir.Conv2d):
        return ConvLayer(
            weight=weight,
            neuron=neuron,
            in_shape=stage.in_shape,
            shape=stage.shape,  # type: ignore[arg-type]
            stride=stage.stride,
            padding=stage.padding,
            dilation=stage.dilation,
            groups=stage.groups,
            bias=bias,
        )
    return DenseLayer(weight=weight, neuron=neuron, bias=bias)


def _graph_meta(graph: nir.NIRGraph) -> dict[str, Any] | None:
    meta = graph.metadata.get(METADATA_KEY) if isinstance(graph.metadata, dict) else None
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise NirError(
            f"graph metadata '{METADATA_KEY}' must be a group, found {type(meta).__name__}"
        )
    for key in (_K_FORMAT, _K_DT, _K_BITS, _K_NETX_META):
        if key not in meta:
            raise NirError(f"graph metadata '{METADATA_KEY}' lacks '{key}'")
    version = _fixed_int(meta, _K_FORMAT, "graph")
    if version != NIR_FORMAT_VERSION:
        raise NirError(
            f"graph metadata '{METADATA_KEY}' has format_version {version}, this tsslbp reads {NIR_FORMAT_VERSION}"
        )
    return meta


def _check_floats(graph_chain: list[tuple[str, nir.NIRNode]], expected: nir.NIRGraph) -> None:
    """Every float parameter of the graph equals what export writes from its integers."""
    exp_chain = _chain(expected)
    if [type(n) for _, n in graph_chain] != [type(n) for _, n in exp_chain]:
        raise NirError("the graph's node types differ from what its tsslbp metadata describes")
    fields = (
        "weight",
        "tau_syn",
        "tau_mem",
        "r",
        "v_leak",
        "v_threshold",
        "v_reset",
        "w_in",
        "tau",
        "bias",
    )
    for (name, node), (_, ref) in zip(graph_chain, exp_chain):
        for field in fields:
            if not hasattr(ref, field):
                continue
            found = np.asarray(getattr(node, field), dtype=np.float64)
            want = np.asarray(getattr(ref, field), dtype=np.float64)
            if found.shape != want.shape or not np.allclose(
                found, want, rtol=_CONSISTENCY_RTOL, atol=0.0
            ):
                raise NirError(
                    f"{_kind(name, node)}: {field} disagrees with its tsslbp metadata (edited after export?); "
                    f"remove the graph's '{METADATA_KEY}' metadata to quantize the float parameters instead"
                )


# ------------------------------------------------------------------------------ import: quantized


def _uniform(name: str, node: Any, field: str) -> float:
    values = np.asarray(getattr(node, field), dtype=np.float64)
    if values.size == 0 or np.isnan(values).any():
        raise NirError(f"{_kind(name, node)}: {field} is empty or NaN")
    low, high = float(values.min()), float(values.max())
    if low != high:
        raise NirError(
            f"{_kind(name, node)}: {field} differs between neurons ({low:g}..{high:g}); Loihi has one value per layer"
        )
    return low


def _decay(name: str, node: Any, field: str, tau: float, dt: float) -> int:
    """12-bit decay of ``dt/tau``: the fraction of the state lost per step."""
    if not tau >= dt:
        raise NirError(
            f"{_kind(name, node)}: {field} = {tau:g} s is shorter than dt = {dt:g} s (forward Euler would overshoot)"
        )
    return decay_constant(tau / dt)


def _neuron_floats(name: str, node: Any, dt: float) -> tuple[int, int, float, float]:
    """(iDecay, vDecay, input gain g, threshold) of a foreign CubaLIF or LIF node."""
    where = _kind(name, node)
    if _uniform(name, node, "v_reset") != 0.0:
        raise NirError(
            f"{where}: v_reset = {_uniform(name, node, 'v_reset'):g}; Loihi resets v to 0 only"
        )
    if _uniform(name, node, "v_leak") != 0.0:
        raise NirError(
            f"{where}: v_leak = {_uniform(name, node, 'v_leak'):g}; a leak target maps to a bias on v, which Loihi "
            "applies without the one-step synaptic delay: set v_leak to 0"
        )
    v_th = _uniform(name, node, "v_threshold")
    if not (v_th > 0 and np.isfinite(v_th)):
        raise NirError(f"{where}: v_threshold = {v_th:g}; Loihi needs a positive threshold")
    if isinstance(node, nir.CubaLIF):
        tau_syn, tau_mem = _uniform(name, node, "tau_syn"), _uniform(name, node, "tau_mem")
        i_decay = _decay(name, node, "tau_syn", tau_syn, dt)
        g_syn = dt * _uniform(name, node, "w_in") / tau_syn
    else:
        tau_mem = _uniform(name, node, "tau")
        i_decay, g_syn = DECAY_UNITY, 1.0  # an instantaneous synapse: the current lasts one step
    v_decay = _decay(name, node, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau", tau_mem, dt)
    gain = g_syn * dt * _uniform(name, node, "r") / tau_mem
    if not (np.isfinite(gain) and gain > 0):
        raise NirError(
            f"{where}: the input gain (dt w_in / tau_syn)(dt r / tau_mem) = {gain:g} must be positive and finite"
        )
    return i_decay, v_decay, gain, v_th


def _quantized_layer(stage: _Stage, dt: float, input_gain: float) -> tuple[Layer, float | None]:
    """A layer of a foreign graph, and its scale S (None for flatten)."""
    if isinstance(stage, _Flatten):
        return FlattenLayer(in_shape=stage.in_shape), None
    if isinstance(stage, _InputNeurons):
        raise NirError(
            f"{_kind(stage.name, stage.neuron)}: neurons right after the Input node map onto a lava-dl input "
            "layer, which tsslbp only imports with tsslbp metadata; add a synapse (Linear) before them"
        )
    where = _kind(stage.name, stage.node)
    bias = np.asarray(getattr(stage.node, "bias", 0.0), dtype=np.float64)
    if np.any(bias != 0):
        raise NirError(
            f"{where}: nonzero bias; Loihi adds biases to v without the one-step synaptic delay, "
            "so a biased network would not run the producer's dynamics: export it without bias"
        )
    i_decay, v_decay, gain, v_th = _neuron_floats(stage.neuron_name, stage.neuron, dt)
    # Loihi: u += (W_int << 6) s and v > vThMant << 6; float: I' += g W s and v > v_th (module docstring).
    effective = stage.weight * gain / input_gain
    max_w = float(np.abs(effective).max())
    if max_w == 0.0:
        raise NirError(f"{where}: all weights are zero (lava-dl cannot load such a layer)")
    one = 1 << ACT_SHIFT
    scale = min(WEIGHT_INT_MAX * one / max_w, V_TH_MANT_MAX * one / v_th)
    w_int, _ = quantize_weights(effective, scale / one)
    v_th_mant = int(round(v_th * scale / one))
    if v_th_mant < 1:
        raise NirError(
            f"{_kind(stage.neuron_name, stage.neuron)}: threshold {v_th:g} quantizes to 0 (weights {max_w:g} times larger)"
        )
    if not representable_weights(w_int):
        raise NirError(
            f"{where}: the quantized weights ({int(w_int.min())}..{int(w_int.max())}) are not applied exactly by netx + Lava"
        )
    neuron = CubaNeuron(i_decay=i_decay, v_decay=v_decay, v_th_mant=v_th_mant)
    if isinstance(stage.node, nir.Conv2d):
        layer: Layer = ConvLayer(
            weight=w_int,
            neuron=neuron,
            in_shape=stage.in_shape,
            shape=stage.shape,  # type: ignore[arg-type]
            stride=stage.stride,
            padding=stage.padding,
            dilation=stage.dilation,
            groups=stage.groups,
        )
    else:
        layer = DenseLayer(weight=w_int, neuron=neuron)
    return layer, scale


# ------------------------------------------------------------------------------------------ import


def nir_to_spec(graph: nir.NIRGraph, dt: float | None = None, input_bits: int = 0) -> NetworkSpec:
    """The integer network of a NIR graph.

    Graphs written by :func:`spec_to_nir` (with ``tsslbp`` metadata) give back exactly the spec that
    was exported; their float parameters must agree with the integers. Other graphs are quantized
    (module docstring) under these rules, each violation raising :class:`NirError`:

    * a single chain ``Input -> ... -> Output``: no branches, no recurrent edges, no subgraphs;
    * node types Linear/Affine, Conv2d (integer padding or ``valid``), SumPool2d/AvgPool2d (stride ==
      kernel, no padding; folded into the next Conv2d or Flatten -> Linear as tsslbp's fold does,
      AvgPool2d as a sum times ``1/k**2``), Flatten (of a whole map), CubaLIF, LIF; each synapse is
      followed by CubaLIF or LIF neurons;
    * no bias (Affine or Conv2d bias, v_leak) and ``v_reset = 0`` (Loihi resets to zero; NIR has no
      subtractive reset, a producer that resets by subtraction must not export it as LIF);
    * per layer one value of every neuron parameter, ``tau >= dt``, ``v_threshold > 0``.

    Args:
        graph: the graph.
        dt: the producer's time step in seconds (snnTorch's export assumes 1e-4, Norse 1e-3). Needed
            for graphs without tsslbp metadata; for those with, it must match (or be None).
        input_bits: graphs without metadata: 0 feeds binary spikes; 1..24 feeds graded values in
            [0, 1] sent as ``round(x * (2**bits - 1))``.

    Returns:
        The spec; for foreign graphs its metadata records the producer, dt, the input encoding, the
        per-layer scales and ``readout_offset`` (one step of delay per synaptic layer).

    Raises:
        NirError: the graph does not map (message names the node and its type).
    """
    meta = _graph_meta(graph)
    chain = _chain(graph)
    input_shape, stages = _stages(chain)
    if meta is not None:
        file_dt = float(np.asarray(meta[_K_DT]))
        if dt is not None and not np.isclose(dt, file_dt, rtol=1e-9, atol=0.0):
            raise NirError(
                f"dt = {dt:g} s given, but the graph's tsslbp metadata says {file_dt:g} s"
            )
        try:
            netx_meta = json.loads(str(meta[_K_NETX_META]))
        except ValueError as exc:
            raise NirError(
                f"graph metadata '{METADATA_KEY}' {_K_NETX_META} is not valid JSON: {exc}"
            ) from None
        if not isinstance(netx_meta, dict):
            raise NirError(f"graph metadata '{METADATA_KEY}' {_K_NETX_META} must be a JSON object")
        layers = tuple(_exact_layer(stage) for stage in stages)
        spec = NetworkSpec(
            layers=layers,
            input_shape=input_shape,
            input_message_bits=_fixed_int(meta, _K_BITS, "graph"),
            metadata=netx_meta,
        )
        _raise_problems(spec)
        _check_floats(chain, spec_to_nir(spec, file_dt))
        return spec
    if dt is None:
        raise NirError(
            "the graph has no tsslbp metadata: give the producer's time step dt (snnTorch's export uses 1e-4 s)"
        )
    if not (dt > 0 and np.isfinite(dt)):
        raise NirError(f"dt must be a positive number of seconds, found {dt}")
    if not 0 <= input_bits <= MESSAGE_BITS_MAX:
        raise NirError(f"input_bits must be in 0..{MESSAGE_BITS_MAX}, found {input_bits}")
    layers_q: list[Layer] = []
    scales: list[float] = []
    first = True
    for stage in stages:
        input_gain = float((1 << input_bits) - 1) if first and input_bits else 1.0
        layer, scale = _quantized_layer(stage, dt, input_gain)
        layers_q.append(layer)
        if scale is not None:
            scales.append(scale)
            first = False
    metadata = {
        "producer": f"tsslbp {__version__} nir import",
        "nir_dt": float(dt),
        "input_encoding": "graded" if input_bits else "binary",
        "input_bits": int(input_bits),
        "input_scale": (1 << input_bits) - 1 if input_bits else 1,
        "layer_scales": scales,
        # Each synaptic layer delays by one step in Lava: the output is the producer's, this much later.
        "readout_offset": len(scales),
    }
    spec = NetworkSpec(
        layers=tuple(layers_q),
        input_shape=input_shape,
        input_message_bits=int(input_bits),
        metadata=metadata,
    )
    _raise_problems(spec)
    return spec


def _raise_problems(spec: NetworkSpec) -> None:
    problems = spec_problems(spec)
    if problems:
        index, text = problems[0]
        raise NirError(f"{'layer ' + str(index) + ': ' if index is not None else ''}{text}")


# -------------------------------------------------------------------------------------------- files


def write_nir(graph: nir.NIRGraph, path: str | os.PathLike[str]) -> None:
    """Write a graph with ``nir.write`` through :func:`tsslbp.safeio.atomic_output` (a temporary
    file renamed over ``path``, which must be a regular file or nothing)."""
    with atomic_output(path) as tmp:
        nir.write(tmp, graph)


def read_nir(path: str | os.PathLike[str]) -> nir.NIRGraph:
    """Read a NIR file with ``nir.read``, after :func:`tsslbp.safeio.audit_hdf5` (regular file, no
    links out of the file, declared sizes bounded) of the very descriptor nir reads.

    Raises:
        NirError: the file is refused by the audit or is not a NIR graph nir can read (one line).
    """
    try:
        with open_regular(path) as fh:
            try:
                with h5py.File(fh, "r") as f:
                    audit_hdf5(f, path)
            except (OSError, RuntimeError, ValueError) as exc:
                if isinstance(exc, UnsafeFileError):
                    raise
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise NirError(
                    f"{path}: not a NIR graph nir {nir.version} can read ({reason})"
                ) from None
            fh.seek(0)
            graph = nir.read(fh)
    except UnsafeFileError as exc:
        raise NirError(str(exc)) from None
    except (OSError, KeyError, ValueError, TypeError, AssertionError, AttributeError) as exc:
        if isinstance(exc, NirError):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise NirError(f"{path}: not a NIR graph nir {nir.version} can read ({reason})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NirError(f"{path}: holds a single {type(graph).__name__} node, not a graph")
    return graph
