"""Read and write netx HDF5 networks (the format lava-dl's ``netx.hdf5.Network`` loads).

:func:`read_netx` turns a file into a :class:`~tsslbp.hwmodels.spec.NetworkSpec` and
:func:`write_netx` does the reverse; the schema, key names and bit widths are in
:mod:`tsslbp.export.schema`. Both check the network with :func:`spec_problems` (sizes that chain
from layer to layer, Loihi's value ranges, what lava-dl can load) and raise :class:`NetxError`, a
``ValueError`` whose one-line message names the file, the layer index in the file and the problem.

Supported: layer types input, dense, conv, flatten; neuron types CUBA and LOIHI. A file's shape-only
input layer (no ``neuron``) becomes ``spec.input_shape``; :func:`write_netx` writes one whenever the
first layer of the spec is not an input layer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..config import conv_output_size
from ..hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    Layer,
    NetworkSpec,
)
from ..safeio import (
    LIMITS,
    LimitError,
    UnsafeFileError,
    atomic_output,
    check_limit,
    dataset_size_problem,
    open_hdf5,
)
from . import schema as sc

__all__ = ["NetxError", "read_netx", "write_netx", "spec_problems", "metadata_problem"]


class NetxError(ValueError):
    """A netx file (or a spec about to be written) that tsslbp or lava-dl cannot use."""


class _Problem(Exception):
    """A problem found while parsing one layer; turned into a :class:`NetxError` with the file name."""


#: What h5py raises for an object it cannot open: a dangling soft or external link (KeyError), a
#: damaged object header or a file cut short (OSError, RuntimeError).
_H5_OPEN_ERRORS = (KeyError, OSError, RuntimeError)
#: What reading a dataset's or attribute's value raises besides: unreadable data (OSError,
#: RuntimeError) and types numpy has no equivalent for (TypeError, ValueError).
_H5_READ_ERRORS = (OSError, RuntimeError, TypeError, ValueError)


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (h5py's messages can span several)."""
    return " ".join(str(exc).split())


# ----------------------------------------------------------------------------------------- checks


def _check_range(name: str, values: np.ndarray | int, low: int, high: int) -> Iterator[str]:
    arr = np.asarray(values)
    if arr.size and (arr.min() < low or arr.max() > high):
        yield f"{name} outside Loihi's range [{low}, {high}]: found {arr.min()}..{arr.max()}"


def _neuron_problems(neuron: CubaNeuron) -> Iterator[str]:
    yield from _check_range(sc.KEY_I_DECAY, neuron.i_decay, sc.DECAY_MIN, sc.DECAY_MAX)
    yield from _check_range(sc.KEY_V_DECAY, neuron.v_decay, sc.DECAY_MIN, sc.DECAY_MAX)
    yield from _check_range(sc.KEY_V_TH_MANT, neuron.v_th_mant, sc.VTH_MANT_MIN, sc.VTH_MANT_MAX)
    if neuron.ref_delay < 0:
        yield f"{sc.KEY_REF_DELAY} must be >= 0, found {neuron.ref_delay}"


def _integer_array_problem(name: str, values: Any, ndim: int | None = None) -> str | None:
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        return f"{name} must be an integer array, found dtype {arr.dtype}"
    if ndim is not None and arr.ndim != ndim:
        return f"{name} must have {ndim} dims, found shape {arr.shape}"
    return None


def _bias_problems(name: str, must: str, bias: np.ndarray | None, size: int) -> Iterator[str]:
    """Problems of an optional per-neuron (dense) or per-channel (conv) bias of ``size`` entries."""
    if bias is None:
        return
    problem = _integer_array_problem(name, bias, ndim=1)
    if problem:
        yield problem
    elif bias.shape != (size,):
        yield f"{name} must {must} ({size},), found {bias.shape}"
    else:
        yield from _check_range("bias", bias, sc.BIAS_MANT_MIN, sc.BIAS_MANT_MAX)


def _layer_problems(
    layer: Layer, index: int, prev_shape: tuple[int, ...], next_layer: Layer | None
) -> Iterator[str]:
    """Problems of one spec layer whose input has shape ``prev_shape`` (netx order)."""
    if isinstance(layer, InputLayer):
        if index != 0:
            yield "an input layer can only be the first layer"
        if tuple(layer.shape) != tuple(prev_shape):
            yield f"input layer shape {tuple(layer.shape)} differs from the network input shape {prev_shape}"
        yield from _neuron_problems(layer.neuron)
        bias = np.asarray(layer.bias)
        if bias.size != 1:
            yield f"input layer bias must be a single value (lava-dl reads int(bias)), found shape {bias.shape}"
        return
    if isinstance(layer, FlattenLayer):
        if len(prev_shape) != 3:
            yield f"flatten needs a (C, H, W) input, found {prev_shape}"
        elif tuple(layer.in_shape) != tuple(prev_shape):
            yield f"flatten in_shape {tuple(layer.in_shape)} differs from the previous output {prev_shape}"
        if not isinstance(next_layer, DenseLayer):
            yield "flatten must be followed by a dense layer (lava-dl connects the flattened port to it)"
        return
    if isinstance(layer, DenseLayer):
        problem = _integer_array_problem("dense weight", layer.weight, ndim=2)
        if problem:
            yield problem
            return
        n_out, n_in = layer.weight.shape
        if len(prev_shape) != 1:
            yield f"dense layer after a {prev_shape} output needs a flatten layer before it"
        elif n_in != prev_shape[0]:
            yield f"dense weight has {n_in} inputs, the previous layer gives {prev_shape[0]}"
        yield from _check_range("weight", layer.weight, sc.WEIGHT_MIN, sc.WEIGHT_MAX)
        if not np.any(layer.weight):
            yield "all dense weights are zero: lava-dl's optimize_weight_bits cannot load them"
        yield from _bias_problems("dense bias", "have shape", layer.bias, n_out)
        yield from _neuron_problems(layer.neuron)
        return
    if isinstance(layer, ConvLayer):
        problem = _integer_array_problem("conv weight", layer.weight, ndim=4)
        if problem:
            yield problem
            return
        c_out, c_in_group, k_h, k_w = layer.weight.shape
        pairs = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation}
        for name, pair in pairs.items():
            if len(pair) != 2:
                yield f"conv {name} must be a (y, x) pair, found {pair}"
                return
        if (
            min(layer.stride) < 1
            or min(layer.dilation) < 1
            or min(layer.padding) < 0
            or layer.groups < 1
        ):
            yield (
                f"conv stride/dilation/groups must be >= 1 and padding >= 0, found stride {layer.stride}, "
                f"padding {layer.padding}, dilation {layer.dilation}, groups {layer.groups}"
            )
            return
        if len(prev_shape) != 3:
            yield f"conv needs a (C, H, W) input, found {prev_shape}"
            return
        if tuple(layer.in_shape) != tuple(prev_shape):
            yield f"conv in_shape {tuple(layer.in_shape)} differs from the previous output {prev_shape}"
        if len(layer.shape) != 3:
            yield f"conv shape must be (C, H, W), found {layer.shape}"
            return
        if c_out % layer.groups or prev_shape[0] % layer.groups:
            yield f"groups={layer.groups} must divide in ({prev_shape[0]}) and out ({c_out}) channels"
        if c_in_group * layer.groups != prev_shape[0]:
            yield (
                f"conv weight expects {c_in_group * layer.groups} input channels ({c_in_group} per group "
                f"x {layer.groups} groups), the previous layer gives {prev_shape[0]}"
            )
        expected = (
            c_out,
            conv_output_size(
                prev_shape[1], k_h, layer.stride[0], layer.padding[0], layer.dilation[0]
            ),
            conv_output_size(
                prev_shape[2], k_w, layer.stride[1], layer.padding[1], layer.dilation[1]
            ),
        )
        if tuple(layer.shape) != expected:
            yield f"conv shape {tuple(layer.shape)} does not match its input and kernel, expected {expected}"
        yield from _check_range("weight", layer.weight, sc.WEIGHT_MIN, sc.WEIGHT_MAX)
        yield from _bias_problems("conv bias", "be per channel, shape", layer.bias, c_out)
        yield from _neuron_problems(layer.neuron)
        return
    yield f"unsupported layer object {type(layer).__name__}"


def spec_problems(spec: NetworkSpec) -> list[tuple[int | None, str]]:
    """Everything that keeps a spec from being a valid netx network for tsslbp and lava-dl.

    Args:
        spec: the network.

    Returns:
        (spec layer index or None for the whole network, problem) pairs; empty when valid.
    """
    problems: list[tuple[int | None, str]] = []
    if not spec.layers:
        return [(None, "the network has no layers")]
    if not 0 <= spec.input_message_bits <= sc.MESSAGE_BITS_MAX:
        problems.append(
            (
                None,
                f"input_message_bits must be in 0..{sc.MESSAGE_BITS_MAX}, found {spec.input_message_bits}",
            )
        )
    try:
        json.dumps(spec.metadata)
    except (TypeError, ValueError) as exc:
        problems.append((None, f"metadata is not JSON-serializable: {exc}"))
    prev_shape = tuple(int(n) for n in spec.input_shape)
    if not prev_shape or min(prev_shape) < 1:
        problems.append(
            (None, f"input_shape must be non-empty positive sizes, found {spec.input_shape}")
        )
        return problems
    for i, layer in enumerate(spec.layers):
        next_layer = spec.layers[i + 1] if i + 1 < len(spec.layers) else None
        found = list(_layer_problems(layer, i, prev_shape, next_layer))
        problems.extend((i, p) for p in found)
        if found:
            break
        prev_shape = tuple(int(n) for n in layer.shape)
    return problems


def _meta_int(meta: dict[str, Any], key: str, limit: str) -> int | None:
    if key not in meta:
        return None
    return check_limit(limit, meta[key], key)


def metadata_problem(spec: NetworkSpec) -> str | None:
    """Why a spec's tsslbp metadata contradicts its layers or is out of range (None: consistent).

    Only keys present are checked (files from other tools carry none): ``n_steps``,
    ``steps_per_sample``, ``readout_offset`` (within :data:`tsslbp.safeio.LIMITS`, and the read-out
    window inside the sample), ``n_class`` (= the output layer's size), ``input_bits`` (=
    ``input_message_bits``), ``input_scale`` and ``layer_scales`` (finite, > 0), ``input_encoding``,
    ``input_ones`` (a bool; true only on graded input with a data channel besides the constant).
    """
    meta = spec.metadata
    try:
        n_steps = _meta_int(meta, "n_steps", "n_steps")
        total = _meta_int(meta, "steps_per_sample", "steps")
        offset = _meta_int(meta, "readout_offset", "readout_offset")
        n_class = _meta_int(meta, "n_class", "n_class")
        bits = _meta_int(meta, "input_bits", "input_bits")
    except LimitError as exc:
        return str(exc)
    if total is not None and n_steps is not None and (offset or 0) + n_steps > total:
        return f"readout_offset ({offset or 0}) + n_steps ({n_steps}) exceeds steps_per_sample ({total})"
    if n_class is not None:
        n_out = math.prod(int(n) for n in spec.layers[-1].shape)
        if n_class != n_out:
            return f"n_class is {n_class} but the output layer has {n_out} neurons"
    if bits is not None and bits != spec.input_message_bits:
        return f"input_bits is {bits} but input_message_bits is {spec.input_message_bits}"
    scales = {"input_scale": meta["input_scale"]} if "input_scale" in meta else {}
    if "layer_scales" in meta:
        if not isinstance(meta["layer_scales"], list):
            return f"layer_scales must be a list of numbers, found {str(meta['layer_scales']):.40}"
        scales |= {f"layer_scales[{i}]": v for i, v in enumerate(meta["layer_scales"])}
    for key, value in scales.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            return f"{key} must be a finite number > 0, found {str(value):.40}"
    encoding = meta.get("input_encoding", "graded")
    if encoding not in ("graded", "binary"):
        return f"input_encoding must be 'graded' or 'binary', found {str(encoding):.40}"
    if "config" in meta and not isinstance(meta["config"], dict):
        return "config must be a mapping"
    if "input_ones" in meta:
        if not isinstance(meta["input_ones"], bool):
            return f"input_ones must be true or false, found {str(meta['input_ones']):.40}"
        if meta["input_ones"] and (encoding != "graded" or spec.input_shape[0] < 2):
            return (
                "input_ones needs graded input with at least one data channel (or input) besides "
                f"the constant, found {encoding} input of shape {tuple(spec.input_shape)}"
            )
    return None


def _raise_first(problems: list[tuple[int | None, str]], path: Path, offset: int) -> None:
    if problems:
        index, message = problems[0]
        where = f"{path}" if index is None else f"{path}: layer {index + offset}"
        raise NetxError(f"{where}: {message}")


# ----------------------------------------------------------------------------------------- reading


def _decode(value: Any) -> str:
    """A netx string dataset's value (fixed or variable length, scalar or shape (1,)) as str."""
    arr = np.asarray(value)
    if arr.ndim > 0:
        if arr.size != 1:
            raise _Problem(f"expected a single string, found shape {arr.shape}")
        arr = arr.reshape(())
    item = arr.item()
    if isinstance(item, bytes):
        return item.decode("ascii", errors="replace")
    if isinstance(item, str):
        return item
    raise _Problem(f"expected a string, found {arr.dtype}")


#: Most values a scalar, shape, pair or type-string dataset may declare (checked before reading).
_SMALL = 16


def _read(group: h5py.Group, key: str, parent: str = "", max_elements: int = _SMALL) -> Any:
    """The value of dataset ``key``; ``parent`` prefixes the key in messages (e.g. ``neuron``).

    The dataset's declared shape is checked against ``max_elements`` before anything is read.
    """
    name = f"{parent}/{key}" if parent else key
    if key not in group:
        raise _Problem(f"missing key '{name}'")
    item = group[key]
    if not isinstance(item, h5py.Dataset):
        raise _Problem(f"'{name}' must be a dataset, found a group")
    too_big = dataset_size_problem(item, max_elements)
    if too_big:
        raise _Problem(f"'{name}' {too_big}")
    try:
        return item[()]
    except _H5_READ_ERRORS as exc:
        raise _Problem(f"cannot read '{name}' ({_one_line(exc)})") from None


def _int_array(value: Any, key: str) -> np.ndarray:
    """A numeric dataset whose values are integers (netx casts with ``astype(int)``, which would
    silently truncate fractions), as int64."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise _Problem(f"'{key}' must be numeric, found dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise _Problem(f"'{key}' must hold integers, found non-integer values")
        # 2**63 is exact in every float type; int64 holds [-2**63, 2**63).
        if arr.size and (arr.min() < -(2.0**63) or arr.max() >= 2.0**63):
            raise _Problem(f"'{key}' holds values beyond 64-bit integers")
    elif arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise _Problem(f"'{key}' holds values beyond 64-bit signed integers")
    return arr.astype(np.int64)


def _int_scalar(value: Any, key: str) -> int:
    arr = _int_array(value, key)
    if arr.size != 1:
        raise _Problem(f"'{key}' must be a single integer, found shape {arr.shape}")
    return int(arr.reshape(()))


def _pair(value: Any, key: str) -> tuple[int, int]:
    """A scalar or a (y, x) pair (netx's ``expand`` accepts both)."""
    arr = _int_array(value, key)
    if arr.size == 1:
        n = int(arr.reshape(()))
        return n, n
    if arr.shape != (2,):
        raise _Problem(f"'{key}' must be a scalar or a (y, x) pair, found shape {arr.shape}")
    return int(arr[0]), int(arr[1])


def _shape(group: h5py.Group) -> tuple[int, ...]:
    arr = _int_array(_read(group, sc.KEY_SHAPE), sc.KEY_SHAPE)
    if arr.ndim != 1 or arr.size == 0 or arr.min() < 1:
        raise _Problem(f"'{sc.KEY_SHAPE}' must be a list of positive sizes, found {arr.tolist()}")
    shape = tuple(int(n) for n in arr)
    try:
        for n in shape:
            check_limit("layer_dim", n, f"'{sc.KEY_SHAPE}' entry")
        check_limit("layer_neurons", math.prod(shape), f"'{sc.KEY_SHAPE}' {list(shape)} neurons")
    except LimitError as exc:
        raise _Problem(str(exc)) from None
    return shape


def _weight_bound(n_out: int, n_in: int | None) -> int:
    """Most values a layer's weight dataset may declare: out x in when the input is known."""
    cap = LIMITS["layer_synapses"].high
    return cap if n_in is None else min(cap, n_out * n_in)


def _read_neuron(group: h5py.Group) -> CubaNeuron:
    if sc.KEY_NEURON not in group or not isinstance(group[sc.KEY_NEURON], h5py.Group):
        raise _Problem(f"missing group '{sc.KEY_NEURON}'")
    neuron = group[sc.KEY_NEURON]
    kind = _decode(_read(neuron, sc.KEY_TYPE, sc.KEY_NEURON))
    supported = [t.value for t in sc.NeuronType]
    if kind not in supported:
        raise _Problem(f"unsupported neuron type {kind!r} (supported: {', '.join(supported)})")
    values = {
        key: _int_scalar(_read(neuron, key, sc.KEY_NEURON), f"{sc.KEY_NEURON}/{key}")
        for key in (sc.KEY_I_DECAY, sc.KEY_V_DECAY, sc.KEY_V_TH_MANT)
    }
    ref_delay = sc.REF_DELAY_DEFAULT
    if sc.KEY_REF_DELAY in neuron:
        ref_delay = _int_scalar(
            _read(neuron, sc.KEY_REF_DELAY), f"{sc.KEY_NEURON}/{sc.KEY_REF_DELAY}"
        )
    graded = False
    if sc.KEY_GRADED_SPIKE in neuron:
        graded = bool(
            _int_scalar(
                _read(neuron, sc.KEY_GRADED_SPIKE), f"{sc.KEY_NEURON}/{sc.KEY_GRADED_SPIKE}"
            )
        )
    return CubaNeuron(
        i_decay=values[sc.KEY_I_DECAY],
        v_decay=values[sc.KEY_V_DECAY],
        v_th_mant=values[sc.KEY_V_TH_MANT],
        ref_delay=ref_delay,
        graded_spike=graded,
    )


def _optional_bias(group: h5py.Group, size: int, what: str) -> np.ndarray | None:
    if sc.KEY_BIAS not in group:
        return None
    bias = _int_array(_read(group, sc.KEY_BIAS, max_elements=size), sc.KEY_BIAS)
    if bias.size != size:
        raise _Problem(f"{what} bias must have {size} values, found shape {bias.shape}")
    return bias.reshape(size)


def _check_declared(group: h5py.Group, key: str, expected: Any) -> None:
    """Optional descriptive keys (inFeatures, kernelSize, ...) must agree with the weights."""
    if key in group:
        found = _int_array(_read(group, key), key)
        if found.reshape(-1).tolist() != np.reshape(expected, -1).tolist():
            given = np.reshape(expected, -1).tolist()
            raise _Problem(f"'{key}' is {found.reshape(-1).tolist()} but the weights give {given}")


def _read_input(group: h5py.Group) -> InputLayer | tuple[int, ...]:
    shape = _shape(group)
    if sc.KEY_NEURON not in group:
        return shape
    weight = (
        _int_scalar(_read(group, sc.KEY_WEIGHT), sc.KEY_WEIGHT)
        if sc.KEY_WEIGHT in group
        else sc.INPUT_LAYER_DEFAULT_WEIGHT
    )
    bias = (
        _int_array(
            _read(group, sc.KEY_BIAS, max_elements=LIMITS["layer_neurons"].high), sc.KEY_BIAS
        )
        if sc.KEY_BIAS in group
        else np.array([sc.INPUT_LAYER_DEFAULT_BIAS], dtype=np.int64)
    )
    return InputLayer(shape=shape, neuron=_read_neuron(group), weight=weight, bias=bias.reshape(-1))


def _read_dense(group: h5py.Group, in_shape: tuple[int, ...] | None) -> DenseLayer:
    n_out = math.prod(_shape(group))  # Python ints: np.prod wraps around silently
    n_in = math.prod(in_shape) if in_shape is not None else None
    weight = _int_array(
        _read(group, sc.KEY_WEIGHT, max_elements=_weight_bound(n_out, n_in)), sc.KEY_WEIGHT
    )
    if weight.ndim == 1:
        # netx reshapes a flat weight to (out, -1).
        if weight.size % n_out:
            raise _Problem(
                f"flat dense weight of {weight.size} values does not split into {n_out} rows"
            )
        weight = weight.reshape(n_out, -1)
    if weight.ndim != 2 or weight.shape[0] != n_out:
        raise _Problem(
            f"dense weight must be ({n_out}, in) for shape {n_out}, found {weight.shape}"
        )
    _check_declared(group, sc.KEY_OUT_FEATURES, n_out)
    _check_declared(group, sc.KEY_IN_FEATURES, weight.shape[1])
    return DenseLayer(
        weight=weight, neuron=_read_neuron(group), bias=_optional_bias(group, n_out, "dense")
    )


def _read_conv(group: h5py.Group, in_shape: tuple[int, ...] | None) -> ConvLayer:
    shape = _shape(group)
    if len(shape) != 3:
        raise _Problem(f"conv shape must be (C, H, W), found {list(shape)}")
    if in_shape is None:
        raise _Problem("conv layer without an input shape: add a shape-only input layer before it")
    weight = _int_array(
        _read(group, sc.KEY_WEIGHT, max_elements=_weight_bound(shape[0], None)), sc.KEY_WEIGHT
    )
    if weight.ndim == 5 and weight.shape[-1] == 1:
        # slayer's older exports keep the size-1 time axis of its Conv3d kernel.
        weight = weight[..., 0]
    if weight.ndim != 4:
        raise _Problem(
            f"conv weight must be (out, in / groups, kH, kW), found shape {weight.shape}"
        )
    groups = (
        _int_scalar(_read(group, sc.KEY_GROUPS), sc.KEY_GROUPS) if sc.KEY_GROUPS in group else 1
    )
    stride, padding, dilation = (
        _pair(_read(group, key), key) if key in group else default
        for key, default in (
            (sc.KEY_STRIDE, (1, 1)),
            (sc.KEY_PADDING, (0, 0)),
            (sc.KEY_DILATION, (1, 1)),
        )
    )
    _check_declared(group, sc.KEY_OUT_CHANNELS, weight.shape[0])
    _check_declared(group, sc.KEY_IN_CHANNELS, weight.shape[1] * groups)
    _check_declared(group, sc.KEY_KERNEL_SIZE, weight.shape[2:])
    return ConvLayer(
        weight=weight,
        neuron=_read_neuron(group),
        in_shape=tuple(in_shape),  # type: ignore[arg-type]
        shape=shape,  # type: ignore[arg-type]
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=_optional_bias(group, weight.shape[0], "conv"),
    )


def _read_metadata(f: h5py.File) -> tuple[dict[str, Any], int]:
    if sc.TSSLBP_GROUP not in f:
        return {}, 0
    attrs = f[sc.TSSLBP_GROUP].attrs
    metadata = {}
    if sc.ATTR_METADATA in attrs:
        raw = _read_attr(attrs, sc.ATTR_METADATA)
        try:
            # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
            metadata = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError as exc:
            raise _Problem(
                f"'{sc.TSSLBP_GROUP}' metadata is not valid JSON: {_one_line(exc)}"
            ) from None
        if not isinstance(metadata, dict):
            raise _Problem(f"'{sc.TSSLBP_GROUP}' metadata must be a JSON object")
    if sc.ATTR_FORMAT_VERSION in attrs:
        raw = np.asarray(_read_attr(attrs, sc.ATTR_FORMAT_VERSION))
        try:
            version = _int_scalar(raw, sc.ATTR_FORMAT_VERSION)
        except _Problem:
            version = None
        if version is None or not 1 <= version <= sc.FORMAT_VERSION:
            raise _Problem(
                f"'{sc.TSSLBP_GROUP}' {sc.ATTR_FORMAT_VERSION} must be an integer in "
                f"1..{sc.FORMAT_VERSION} (this tsslbp's format), found {raw.tolist()!r:.40}"
            )
    bits = 0
    if sc.ATTR_INPUT_MESSAGE_BITS in attrs:
        raw = np.asarray(_read_attr(attrs, sc.ATTR_INPUT_MESSAGE_BITS))
        try:
            bits = _int_scalar(raw, sc.ATTR_INPUT_MESSAGE_BITS)
        except _Problem:
            raise _Problem(
                f"'{sc.TSSLBP_GROUP}' {sc.ATTR_INPUT_MESSAGE_BITS} must be an integer, found {raw.tolist()!r:.40}"
            ) from None
    return metadata, bits


def _read_attr(attrs: h5py.AttributeManager, key: str) -> Any:
    try:
        return attrs[key]
    except _H5_READ_ERRORS as exc:
        raise _Problem(
            f"cannot read '{sc.TSSLBP_GROUP}' attribute {key} ({_one_line(exc)})"
        ) from None


def _layer_keys(layers: h5py.Group) -> list[str]:
    # h5py gives names that are not valid UTF-8 as bytes; their repr never matches a layer index.
    keys = [k if isinstance(k, str) else repr(k) for k in layers.keys()]
    expected = [str(i) for i in range(len(keys))]
    if sorted(keys, key=lambda k: (len(k), k)) != expected:
        raise _Problem(f"layer keys must be 0..{len(keys) - 1}, found {sorted(keys)}")
    return expected


def read_netx(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read a netx HDF5 file into a :class:`NetworkSpec`.

    Args:
        path: the file.

    Returns:
        The network; ``metadata`` and ``input_message_bits`` come from tsslbp's group (empty and 0
        for files from other tools).

    Raises:
        NetxError: the file is not HDF5, or (naming the layer index in the file) a layer has an
            unsupported layer or neuron type, a missing key, a wrong dtype or shape, sizes that do
            not chain with the previous layer, or a value outside Loihi's ranges.
    """
    path = Path(path)
    try:
        with open_hdf5(path) as f:
            return _read_netx_file(f, path)
    except UnsafeFileError as exc:
        raise NetxError(str(exc)) from None


def _read_netx_file(f: h5py.File, path: Path) -> NetworkSpec:
    """:func:`read_netx` of a file already opened and audited by :func:`tsslbp.safeio.open_hdf5`."""
    try:
        metadata, message_bits = _read_metadata(f)
        if sc.LAYER_GROUP not in f or not isinstance(f[sc.LAYER_GROUP], h5py.Group):
            raise _Problem(f"missing group '{sc.LAYER_GROUP}'")
        keys = _layer_keys(f[sc.LAYER_GROUP])
        if not keys:
            raise _Problem("no layers")
    except _Problem as exc:
        raise NetxError(f"{path}: {exc}") from None
    except _H5_OPEN_ERRORS as exc:
        raise NetxError(
            f"{path}: cannot open an object, damaged file or dangling link ({_one_line(exc)})"
        ) from None

    layers: list[Layer] = []
    input_shape: tuple[int, ...] | None = None
    prev_shape: tuple[int, ...] | None = None
    offset = 0
    for i, key in enumerate(keys):
        try:
            group = f[sc.LAYER_GROUP][key]
            if not isinstance(group, h5py.Group):
                raise _Problem("must be a group")
            kind = _decode(_read(group, sc.KEY_TYPE))
            supported = [t.value for t in sc.LayerType]
            if kind not in supported:
                raise _Problem(
                    f"unsupported layer type {kind!r} (supported: {', '.join(supported)})"
                )
            layer_type = sc.LayerType(kind)
            if layer_type is sc.LayerType.INPUT:
                if i != 0:
                    raise _Problem("an input layer can only be the first layer")
                item = _read_input(group)
                if isinstance(item, tuple):
                    input_shape = prev_shape = item
                    offset = 1
                    continue
                layer: Layer = item
                input_shape = item.shape
            elif layer_type is sc.LayerType.DENSE:
                layer = _read_dense(group, prev_shape)
                if prev_shape is None:
                    input_shape = prev_shape = (int(layer.weight.shape[1]),)
            elif layer_type is sc.LayerType.CONV:
                layer = _read_conv(group, prev_shape)
            else:
                if prev_shape is None:
                    raise _Problem("flatten needs a layer with a (C, H, W) output before it")
                layer = FlattenLayer(in_shape=prev_shape)
                if sc.KEY_SHAPE in group:
                    _check_flat_shape(group, prev_shape)
        except _Problem as exc:
            raise NetxError(f"{path}: layer {i}: {exc}") from None
        except _H5_OPEN_ERRORS as exc:
            raise NetxError(
                f"{path}: layer {i}: cannot open an object, damaged file or dangling link ({_one_line(exc)})"
            ) from None
        layers.append(layer)
        prev_shape = tuple(layer.shape)

    if input_shape is None or not layers:
        raise NetxError(f"{path}: no layers besides the input shape")
    spec = NetworkSpec(
        layers=tuple(layers),
        input_shape=input_shape,
        input_message_bits=message_bits,
        metadata=metadata,
    )
    _raise_first(spec_problems(spec), path, offset)
    problem = metadata_problem(spec)
    if problem:
        raise NetxError(f"{path}: '{sc.TSSLBP_GROUP}' metadata: {problem}")
    return spec


def _check_flat_shape(group: h5py.Group, prev_shape: tuple[int, ...]) -> None:
    """A flatten layer's stored shape (lava-dl ignores it) may be any shape of the right size."""
    stored = _int_array(_read(group, sc.KEY_SHAPE), sc.KEY_SHAPE).reshape(-1).tolist()
    n = math.prod(prev_shape)  # Python ints: np.prod wraps around silently
    if math.prod(stored) != n:
        raise _Problem(f"flatten shape {stored} has {math.prod(stored)} elements, its input {n}")


# ----------------------------------------------------------------------------------------- writing

#: gzip level of the weight datasets: 4 is within a few percent of 9's size at a tenth of its time.
_GZIP_LEVEL = 4


def _write_type(group: h5py.Group, layer_type: sc.LayerType) -> None:
    # As slayer's export_hdf5: a fixed-length (1,) byte string.
    group.create_dataset(sc.KEY_TYPE, (1,), "S10", [layer_type.value.encode("ascii")])


def _write_neuron(group: h5py.Group, neuron: CubaNeuron) -> None:
    g = group.create_group(sc.KEY_NEURON)
    g.create_dataset(sc.KEY_TYPE, data=sc.NeuronType.CUBA.value)
    g.create_dataset(sc.KEY_I_DECAY, data=np.int64(neuron.i_decay))
    g.create_dataset(sc.KEY_V_DECAY, data=np.int64(neuron.v_decay))
    g.create_dataset(sc.KEY_V_TH_MANT, data=np.int64(neuron.v_th_mant))
    g.create_dataset(sc.KEY_REF_DELAY, data=np.int64(neuron.ref_delay))
    g.create_dataset(sc.KEY_GRADED_SPIKE, data=np.bool_(neuron.graded_spike))


def _write_weights(group: h5py.Group, weight: np.ndarray, bias: np.ndarray | None) -> None:
    # gzip-compressed: h5py (so lava-dl's loader) reads it transparently, and a conv -> pool ->
    # dense network's folded weights, repeated over each pooling block, shrink about five-fold.
    group.create_dataset(
        sc.KEY_WEIGHT,
        data=np.asarray(weight, dtype=np.int16),
        compression="gzip",
        compression_opts=_GZIP_LEVEL,
    )
    if bias is not None:
        group.create_dataset(sc.KEY_BIAS, data=np.asarray(bias, dtype=np.int16))


def _write_layer(group: h5py.Group, layer: Layer) -> None:
    if isinstance(layer, InputLayer):
        _write_type(group, sc.LayerType.INPUT)
        group.create_dataset(sc.KEY_SHAPE, data=np.asarray(layer.shape, dtype=np.int64))
        group.create_dataset(sc.KEY_WEIGHT, data=np.int64(layer.weight))
        group.create_dataset(sc.KEY_BIAS, data=np.asarray(layer.bias, dtype=np.int64).reshape(1))
        _write_neuron(group, layer.neuron)
    elif isinstance(layer, DenseLayer):
        _write_type(group, sc.LayerType.DENSE)
        group.create_dataset(sc.KEY_SHAPE, data=np.asarray(layer.shape, dtype=np.int64))
        group.create_dataset(sc.KEY_IN_FEATURES, data=np.int64(layer.weight.shape[1]))
        group.create_dataset(sc.KEY_OUT_FEATURES, data=np.int64(layer.weight.shape[0]))
        _write_weights(group, layer.weight, layer.bias)
        _write_neuron(group, layer.neuron)
    elif isinstance(layer, ConvLayer):
        _write_type(group, sc.LayerType.CONV)
        group.create_dataset(sc.KEY_SHAPE, data=np.asarray(layer.shape, dtype=np.int64))
        group.create_dataset(sc.KEY_IN_CHANNELS, data=np.int64(layer.in_shape[0]))
        group.create_dataset(sc.KEY_OUT_CHANNELS, data=np.int64(layer.weight.shape[0]))
        group.create_dataset(
            sc.KEY_KERNEL_SIZE, data=np.asarray(layer.weight.shape[2:], dtype=np.int64)
        )
        group.create_dataset(sc.KEY_STRIDE, data=np.asarray(layer.stride, dtype=np.int64))
        group.create_dataset(sc.KEY_PADDING, data=np.asarray(layer.padding, dtype=np.int64))
        group.create_dataset(sc.KEY_DILATION, data=np.asarray(layer.dilation, dtype=np.int64))
        group.create_dataset(sc.KEY_GROUPS, data=np.int64(layer.groups))
        _write_weights(group, layer.weight, layer.bias)
        _write_neuron(group, layer.neuron)
    else:
        _write_type(group, sc.LayerType.FLATTEN)
        group.create_dataset(sc.KEY_SHAPE, data=np.asarray(layer.shape, dtype=np.int64))


def write_netx(spec: NetworkSpec, path: str | os.PathLike[str]) -> None:
    """Write a spec as a netx HDF5 file lava-dl's ``netx.hdf5.Network`` loads.

    The spec is checked first (:func:`spec_problems`); the file is written to a temporary file in
    the same directory and renamed over ``path``, so readers never see a partial file.

    Args:
        spec: the network.
        path: destination.

    Raises:
        NetxError: the spec is not a valid netx network (message names the file and layer index).
    """
    path = Path(path)
    offset = 0 if isinstance(spec.layers[0] if spec.layers else None, InputLayer) else 1
    _raise_first(spec_problems(spec), path, offset)
    with atomic_output(path) as tmp_name, h5py.File(tmp_name, "w") as f:
        layers = f.create_group(sc.LAYER_GROUP)
        if offset:
            # A shape-only input layer: lava-dl takes the network's input shape from it.
            first = layers.create_group("0")
            _write_type(first, sc.LayerType.INPUT)
            first.create_dataset(sc.KEY_SHAPE, data=np.asarray(spec.input_shape, dtype=np.int64))
        for i, layer in enumerate(spec.layers):
            _write_layer(layers.create_group(str(i + offset)), layer)
        own = f.create_group(sc.TSSLBP_GROUP)
        own.attrs[sc.ATTR_FORMAT_VERSION] = sc.FORMAT_VERSION
        own.attrs[sc.ATTR_INPUT_MESSAGE_BITS] = int(spec.input_message_bits)
        own.attrs[sc.ATTR_METADATA] = json.dumps(
            spec.metadata
        )  # key order is meaning (the Layers mapping)
