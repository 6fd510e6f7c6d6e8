"""Run a :class:`~tsslbp.hwmodels.spec.NetworkSpec` on lava-nc's fixed-point CPU simulator.

:func:`run_lava` builds a Lava process graph with lava-nc's own processes, as lava-dl's
``netx.hdf5.Network`` would build it from the same netx file, runs a batch of samples back to back
in one Lava run (``Loihi2SimCfg(select_tag="fixed_pt")``) and returns the same arrays, in the same
layout and timing, as the golden model (:func:`tsslbp.hwmodels.golden.run_golden`)::

    RingBuffer source -> [Dense | Conv] -> SampleResetLIF -> ... -> SampleResetLIF -> RingBuffer sink

* Source: lava-nc's ``io.source.RingBuffer`` sends column ``t`` of the sample-major input at step
  ``t``. The first synapse reads it graded (``num_message_bits = spec.input_message_bits``) or as
  binary spikes (any nonzero value is a spike); a first input layer takes it as its ``bias_mant``.
* Synapses: lava-nc's ``Dense`` with the weights packed as lava-dl's netx reader packs them
  (:func:`tsslbp.hwmodels.weights.pack_dense_weights`), and ``Conv`` with the kernel flipped into
  Lava's (out, W, H, in) convolution layout. Each sends one step after it receives, so layer ``l``
  (counting synaptic layers from 1) sees input column ``t`` at step ``t + l``.
* Neurons: :class:`~tsslbp.deploy.processes.SampleResetLIF`, lava-nc's ``LIFReset`` process model
  reset at the first step of every sample, which also drops the previous sample's synaptic sum still
  in flight (see :mod:`tsslbp.deploy.processes` for why ``LIFReset`` alone leaks). Every layer
  resets at the same offset; each sample then runs exactly as it would alone from zero state.
* Output: lava-nc's ``io.sink.RingBuffer`` on the last layer.

Lava holds some values in narrower types than the spec allows; the checks here raise
:class:`LavaSpecError` where its result would silently differ from the golden model (they are not
Loihi design rules, which :mod:`tsslbp.export.netx` checks).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as SpikeSink
from lava.proc.io.source import RingBuffer as SpikeSource

from tsslbp.deploy.processes import TRACE_NAMES, SampleResetLIF
from tsslbp.deploy.supervise import (
    Heartbeat,
    LavaRunError,
    LavaTimeoutError,
    supervise,
    terminate_children,
)
from tsslbp.deploy.target import deploy_target_check
from tsslbp.hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
    input_range_problem,
    lava_shape,
)
from tsslbp.hwmodels.weights import pack_dense_weights

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "LavaResult",
    "LavaRunError",
    "LavaSpecError",
    "LavaTimeoutError",
    "LavaTiming",
    "deploy_target_check",
    "run_lava",
]

_log = logging.getLogger(__name__)

#: Default for :func:`run_lava`'s ``timeout_s``: the longest Lava may take to start up, to run one
#: sample, or to read out and stop.
DEFAULT_TIMEOUT_S = 300.0

# lava-dl's netx gives every CUBA/LOIHI neuron bias_exp = 6: the bias adds bias_mant << 6.
BIAS_EXP = 6
# PyLifModelBitAcc holds bias_mant as int16: larger mantissas wrap.
BIAS_MANT_MIN, BIAS_MANT_MAX = -(1 << 15), (1 << 15) - 1
# lava-nc's Conv computes through torch in float32: integer sums are exact below 2**24.
CONV_FLOAT32_EXACT = 1 << 24
# Lava's channels carry int32 messages.
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# lava-nc's decays are fractions of 4096; du is iDecay - 1 (its model adds ds_offset = 1).
DECAY_MIN, DECAY_MAX = 0, 1 << 12
# Lava's ProcessModel search re-executes every module next to a process's source file (here
# tsslbp/deploy/) and warns about any it cannot execute standalone: not a problem for this run.
_MODEL_SEARCH_WARNING = r"Cannot import module .* when searching ProcessModels"


class LavaSpecError(ValueError):
    """The spec (or input) holds values Lava's fixed-point processes would not compute exactly."""


@dataclass(frozen=True)
class LavaTiming:
    """Where the wall-clock time of one :func:`run_lava` call went.

    Attributes:
        build_s: building the Lava process graph (Python objects only).
        startup_s: compiling it and starting the Lava processes: the time before step 1.
        run_s: stepping through all samples.
        readout_s: reading the sink and traces, and stopping the runtime.
        n_steps: steps run (samples x steps per sample).
        n_samples: samples run.
    """

    build_s: float
    startup_s: float
    run_s: float
    readout_s: float
    n_steps: int
    n_samples: int

    @property
    def steps_per_s(self) -> float:
        """Simulated steps per second of stepping time."""
        return self.n_steps / self.run_s if self.run_s > 0 else math.inf

    @property
    def samples_per_s(self) -> float:
        """Samples per second of stepping time."""
        return self.n_samples / self.run_s if self.run_s > 0 else math.inf

    @property
    def total_s(self) -> float:
        """Wall-clock seconds of the whole call."""
        return self.build_s + self.startup_s + self.run_s + self.readout_s


@dataclass(frozen=True)
class LavaResult:
    """Per-layer results of :func:`run_lava`, in the golden model's layout.

    Lists are aligned with ``spec.layers``. Arrays are ``(B, *lava_shape(layer.shape), S)``: sample
    ``b``'s column ``t`` is what a sink on that layer receives (or the state after) step ``t`` of the
    sample.

    Attributes:
        spikes: int8 spikes per layer (a flatten layer: its flattened input). Without recording
            only the last entry, what the sink on the output layer received, is set.
        u: int32 current per neuron layer when recorded, else None.
        v: int32 voltage after the spike reset per neuron layer when recorded, else None.
        steps_per_sample: S.
        timing: where the time went.
    """

    spikes: list[np.ndarray | None]
    u: list[np.ndarray | None]
    v: list[np.ndarray | None]
    steps_per_sample: int
    timing: LavaTiming

    @property
    def output(self) -> np.ndarray:
        """The output layer's spikes, ``(B, *lava_shape(spec.layers[-1].shape), S)``."""
        return self.spikes[-1]  # type: ignore[return-value]


@dataclass
class _Graph:
    """The built process graph and where each trace goes."""

    source: SpikeSource
    sink: SpikeSink
    trace_files: dict[tuple[int, str], Path] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Spec -> Lava processes
# ---------------------------------------------------------------------------------------------


def _integers(index: int, what: str, values: np.ndarray) -> np.ndarray:
    """``values`` as int64, or LavaSpecError if they are not integers."""
    arr = np.asarray(values)
    if not (np.issubdtype(arr.dtype, np.integer) or np.array_equal(arr, np.round(arr))):
        raise LavaSpecError(f"layer {index}: {what} must be integers")
    return arr.astype(np.int64)


def _check_neuron(index: int, neuron: CubaNeuron) -> None:
    """Reject neuron parameters lava-nc's LIF process cannot hold (its Vars are 12/17-bit)."""
    for name in ("i_decay", "v_decay"):
        value = getattr(neuron, name)
        if not DECAY_MIN <= value <= DECAY_MAX:
            raise LavaSpecError(
                f"layer {index}: {name} must lie in {DECAY_MIN}..{DECAY_MAX}, got {value}"
            )
    if neuron.v_th_mant < 0:
        raise LavaSpecError(f"layer {index}: v_th_mant must be >= 0, got {neuron.v_th_mant}")


def _bias_mant(
    index: int, layer: DenseLayer | ConvLayer, shape_lava: tuple[int, ...]
) -> np.ndarray:
    """The layer's bias mantissas as an int32 array in Lava's neuron layout (zeros if none).

    Dense biases are per neuron; conv biases per channel, broadcast over (W, H) as netx does.
    """
    if layer.bias is None:
        return np.zeros(shape_lava, dtype=np.int32)
    bias = _integers(index, "bias", layer.bias).reshape(-1)
    if bias.size and (bias.min() < BIAS_MANT_MIN or bias.max() > BIAS_MANT_MAX):
        raise LavaSpecError(
            f"layer {index}: bias mantissas must lie in {BIAS_MANT_MIN}..{BIAS_MANT_MAX} (Lava "
            f"holds them as int16), got {bias.min()}..{bias.max()}"
        )
    if bias.size != shape_lava[-1]:
        raise LavaSpecError(f"layer {index}: {bias.size} biases for {shape_lava[-1]} channels")
    return np.ascontiguousarray(np.broadcast_to(bias, shape_lava)).astype(np.int32)


def _dense(index: int, layer: DenseLayer, message_bits: int) -> Dense:
    """lava-nc's Dense with exactly the arguments lava-dl's netx reader passes it.

    netx repacks the weights into ``W << s`` with ``weight_exp = -s`` and a weight width; lava's
    Dense then derives its sign mode, clips and truncates. For the weights the quantizer writes
    this is lossless (:func:`tsslbp.hwmodels.weights.dense_weights_exact`); for others Lava
    computes what lava-dl would, which the golden model reproduces.
    """
    weight = _integers(index, "dense weights", layer.weight)
    try:
        packed = pack_dense_weights(weight)
    except ValueError as exc:
        raise LavaSpecError(f"layer {index}: {exc}") from None
    return Dense(
        weights=packed.weights.astype(np.int32),
        weight_exp=packed.weight_exp,
        num_weight_bits=packed.num_weight_bits,
        num_message_bits=message_bits,
        name=f"layer{index}_dense",
    )


def _conv(index: int, layer: ConvLayer, message_bits: int, max_input: int) -> Conv:
    """lava-nc's Conv computing PyTorch's ``conv2d`` with ``layer.weight``.

    Lava's Conv flips its (out, W, H, in) kernel and transposes it to (out, in, H, W) before a
    cross-correlation; the kernel passed here is the inverse of that (as netx builds it).
    """
    weight = _integers(index, "conv weights", layer.weight)
    bound = int(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1).max(initial=0)) * max_input
    if bound >= CONV_FLOAT32_EXACT:
        raise LavaSpecError(
            f"layer {index}: conv sums can reach {bound}; Lava's Conv computes in float32, which is "
            f"exact only below 2**24"
        )
    kernel = weight.transpose(0, 3, 2, 1)[:, ::-1, ::-1]
    return Conv(
        weight=np.ascontiguousarray(kernel).astype(np.int32),
        input_shape=lava_shape(layer.in_shape),
        # Lava takes (x, y) = (W, H) pairs; the spec holds (y, x).
        padding=tuple(reversed(layer.padding)),
        stride=tuple(reversed(layer.stride)),
        dilation=tuple(reversed(layer.dilation)),
        groups=layer.groups,
        num_message_bits=message_bits,
        name=f"layer{index}_conv",
    )


def _flatten(port: OutPort) -> OutPort:
    """netx's flatten: Lava's (W, H, C) back to (C, H, W), then row-major order."""
    if len(port.shape) == 1:
        return port
    return port.transpose(list(reversed(range(len(port.shape))))).flatten()


def _expect_shape(index: int, what: str, found: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(found) != tuple(expected):
        raise LavaSpecError(
            f"layer {index}: {what} has Lava shape {tuple(found)}, expected {expected}"
        )


def _build_graph(
    spec: NetworkSpec,
    data: np.ndarray,
    steps_per_sample: int,
    netx_reset: tuple[int, int] | None,
    trace_dir: Path | None,
) -> _Graph:
    """Build source -> layers -> sink.

    Args:
        spec: the network.
        data: ``(*input_lava_shape, n_steps)`` int32, samples back to back.
        steps_per_sample: S.
        netx_reset: ``(reset_interval, reset_offset)`` of lava-dl's netx schedule, or None.
        trace_dir: where to put per-layer trace files, or None for no recording.
    """
    n_steps = data.shape[-1]
    source = SpikeSource(data=data)
    port: OutPort = source.s_out
    message_bits = spec.input_message_bits
    max_input = int(np.abs(data).max(initial=0)) if message_bits > 0 else 1
    trace_files: dict[tuple[int, str], Path] = {}
    neuron_index = 0
    for index, layer in enumerate(spec.layers):
        if isinstance(layer, FlattenLayer):
            port = _flatten(port)
            _expect_shape(index, "flatten output", port.shape, lava_shape(layer.shape))
            continue
        if isinstance(layer, InputLayer) and index > 0:
            raise LavaSpecError(f"layer {index}: an input layer can only be the first layer")
        shape_lava = lava_shape(layer.shape)
        _check_neuron(index, layer.neuron)
        layer_traces: dict[str, str] = {}
        if trace_dir is not None:
            for name in TRACE_NAMES:
                path = trace_dir / f"layer{index}_{name}.npy"
                np.lib.format.open_memmap(
                    path, mode="w+", dtype=np.int32, shape=(n_steps, *shape_lava)
                )
                trace_files[(index, name)] = path
                layer_traces[name] = str(path)
        synapse: Dense | Conv | None = None
        if isinstance(layer, InputLayer):
            # lava-dl's input block leaves a_in unconnected and drives bias_mant; the file's
            # weight/bias are never applied. Here the source delivers each step's bias_mant.
            _expect_shape(index, "input", port.shape, shape_lava)
            bias = np.zeros(shape_lava, dtype=np.int32)
        elif isinstance(layer, DenseLayer):
            _expect_shape(index, "dense input", port.shape, (int(layer.weight.shape[1]),))
            synapse = _dense(index, layer, message_bits)
            bias = _bias_mant(index, layer, shape_lava)
        elif isinstance(layer, ConvLayer):
            _expect_shape(index, "conv input", port.shape, lava_shape(layer.in_shape))
            synapse = _conv(index, layer, message_bits, max_input)
            _expect_shape(index, "conv output", synapse.a_out.shape, shape_lava)
            bias = _bias_mant(index, layer, shape_lava)
        else:
            raise LavaSpecError(f"layer {index}: unsupported layer type {type(layer).__name__}")
        lif = SampleResetLIF(
            shape=shape_lava,
            # lava-nc's model adds ds_offset = 1 to du: netx's iDecay is du + 1.
            du=layer.neuron.i_decay - 1,
            dv=layer.neuron.v_decay,
            vth=layer.neuron.v_th_mant,
            bias_mant=bias,
            bias_exp=BIAS_EXP,
            steps_per_sample=steps_per_sample,
            drop_input_at_sample_start=synapse is not None,
            bias_from_input=synapse is None,
            # netx gives the i-th neuron layer LIFReset offset reset_offset + 1 + i.
            netx_reset=(
                None if netx_reset is None else (netx_reset[0], netx_reset[1] + 1 + neuron_index)
            ),
            trace_paths=layer_traces,
            name=f"layer{index}_lif",
        )
        if synapse is None:
            port.connect(lif.a_in)
        else:
            port.connect(synapse.s_in)
            synapse.a_out.connect(lif.a_in)
        port = lif.s_out
        neuron_index += 1
        message_bits = 0  # lava-nc's LIF sends binary spikes
        max_input = 1
    if isinstance(spec.layers[-1], FlattenLayer):
        raise LavaSpecError("the last layer must have neurons, found a flatten layer")
    sink = SpikeSink(shape=port.shape, buffer=n_steps)
    port.connect(sink.a_in)
    return _Graph(source=source, sink=sink, trace_files=trace_files)


# ---------------------------------------------------------------------------------------------
# Inputs and outputs
# ---------------------------------------------------------------------------------------------


def _source_data(spec: NetworkSpec, inputs: np.ndarray, steps_per_sample: int | None) -> np.ndarray:
    """Validate ``(B, *input_lava_shape, T)`` inputs and lay the samples back to back in time.

    Returns:
        ``(*input_lava_shape, B * S)`` int32, each sample zero-padded from T to S steps.
    """
    if not spec.layers:
        raise ValueError("the network has no layers")
    x = np.asarray(inputs)
    first = spec.layers[0]
    expected = lava_shape(first.shape if isinstance(first, InputLayer) else spec.input_shape)
    if x.ndim != len(expected) + 2 or tuple(x.shape[1:-1]) != expected:
        raise ValueError(
            f"inputs must have shape (B, {', '.join(map(str, expected))}, S) in Lava's order, "
            f"found {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[-1] == 0:
        raise ValueError(f"inputs must hold at least one sample and one step, found {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.bool_)):
        if not np.array_equal(x, np.round(x)):
            raise ValueError(f"inputs must be integers, found {x.dtype} values")
    problem = input_range_problem(x, spec)
    if problem:
        raise ValueError(problem)
    x = x.astype(np.int64)
    if x.min() < INT32_MIN or x.max() > INT32_MAX:
        raise ValueError(f"inputs must fit Lava's int32 messages, found {x.min()}..{x.max()}")
    n_steps = x.shape[-1]
    steps = n_steps if steps_per_sample is None else int(steps_per_sample)
    if steps < n_steps:
        raise ValueError(f"steps_per_sample ({steps}) is shorter than the inputs ({n_steps} steps)")
    padded = np.zeros(x.shape[:-1] + (steps,), dtype=np.int32)
    padded[..., :n_steps] = x
    # (B, *shape, S) -> (*shape, B, S) -> (*shape, B * S): sample b's step t is column b * S + t.
    return np.ascontiguousarray(np.moveaxis(padded, 0, -2).reshape(*expected, -1))


def _per_sample(time_major: np.ndarray, n_samples: int, dtype: type) -> np.ndarray:
    """``(B * S, *shape)`` -> ``(B, *shape, S)``."""
    split = time_major.reshape(n_samples, -1, *time_major.shape[1:])
    return np.moveaxis(split, 1, -1).astype(dtype)


def _flatten_spikes(spikes: np.ndarray) -> np.ndarray:
    """``(B, W, H, C, S)`` -> ``(B, C * H * W, S)`` in netx's flatten order."""
    if spikes.ndim == 3:
        return spikes
    chw = np.moveaxis(spikes, (1, 2, 3), (3, 2, 1))
    return chw.reshape(spikes.shape[0], -1, spikes.shape[-1])


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def _progress_bar(
    enabled: bool, n_samples: int
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar over samples (or no-ops): returns (update to n done, close)."""
    if not enabled:
        return (lambda _: None), (lambda: None)
    from tqdm.auto import tqdm  # noqa: PLC0415 - only when asked for

    bar = tqdm(total=n_samples, unit="sample", desc="lava")

    def update(done: int) -> None:
        if done > bar.n:
            bar.update(done - bar.n)

    return update, bar.close


def _watch_runtime(runtime: object, heartbeat: Heartbeat) -> None:
    """Hand the runtime's OS processes to the watchdog, named, and register a clean abort.

    Uses two attributes of lava-nc 0.10's ``Runtime`` that are not public API
    (``_executable.proc_builders`` and ``_messaging_infrastructure``). Without them the watchdog
    still finds the processes, but names only pids, and an abort kills the shared-memory server
    instead of shutting it down (its segments then stay in /dev/shm until the interpreter exits).
    """
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", []))
    heartbeat.watch(actors)
    procs = list(getattr(getattr(runtime, "_executable", None), "proc_builders", None) or {})
    # Lava starts one actor per process builder, in order, then the runtime service(s).
    for index, actor in enumerate(actors):
        heartbeat.process_names[actor.pid] = (
            procs[index].name if index < len(procs) else "Lava runtime service"
        )
    if infra is None:
        return

    def abort() -> None:
        terminate_children(actors)
        # With the workers gone the shared-memory server still answers: it unlinks its segments.
        infra.smm.shutdown()

    heartbeat.on_abort = abort


def run_lava(
    spec: NetworkSpec,
    inputs: np.ndarray,
    record: bool = False,
    steps_per_sample: int | None = None,
    progress: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    reset_interval: int | None = None,
    reset_offset: int = 0,
) -> LavaResult:
    """Run a batch of samples through ``spec`` on Lava's fixed-point CPU simulator, in one run.

    Each sample runs for ``S`` steps exactly as it would alone from zero state, which is how
    :func:`tsslbp.hwmodels.golden.run_golden` runs every sample of a batch. The Lava runtime is
    always stopped before this returns or raises.

    Args:
        spec: the integer network.
        inputs: ``(B, *lava_shape(spec.input_shape), T)`` integers. Column ``t`` is sent at step
            ``t`` of its sample: spikes (binary: any nonzero value is a spike) or graded payloads
            when ``spec.input_message_bits > 0``; for a network starting with an input layer, that
            layer's ``bias_mant`` (lava-dl's convention: an image, repeated over time).
        record: also return every layer's spikes, u and v at every step.
        steps_per_sample: ``S >= T``; inputs are zero-padded to it. Default: ``T``.
        progress: show a tqdm progress bar over samples.
        timeout_s: the longest Lava may take to start, to run one sample, or to read out and stop;
            beyond it its processes are killed and :class:`LavaTimeoutError` is raised.
        reset_interval: None, or lava-dl's ``netx.hdf5.Network(reset_interval=...)`` schedule,
            counted within each sample as ``run_golden`` counts it: the ``i``-th neuron layer
            (flatten layers do not count) also restarts from ``u = v = 0`` at step ``k`` when
            ``(k + 1) % reset_interval == (reset_offset + 1 + i) % reset_interval``.
        reset_offset: netx's ``reset_offset``.

    Returns:
        :class:`LavaResult` with arrays ``(B, *lava_shape(layer.shape), S)``.

    Raises:
        ValueError: If the inputs do not fit the spec.
        LavaSpecError: If Lava would not hold the spec's values as the golden model does.
        LavaTimeoutError: If Lava stalled (its processes were killed).
        LavaRunError: If a Lava process raised or died (its processes were killed).
    """
    t_start = time.perf_counter()
    data = _source_data(spec, inputs, steps_per_sample)
    if reset_interval is not None and reset_interval < 1:
        raise ValueError(f"reset_interval must be >= 1 or None, got {reset_interval}")
    n_samples = np.asarray(inputs).shape[0]
    steps = data.shape[-1] // n_samples
    netx_reset = None if reset_interval is None else (int(reset_interval), int(reset_offset))
    with tempfile.TemporaryDirectory(prefix="tsslbp-lava-") as tmp:
        graph = _build_graph(spec, data, steps, netx_reset, Path(tmp) if record else None)
        t_built = time.perf_counter()
        update_bar, close_bar = _progress_bar(progress, n_samples)
        marks: dict[str, float] = {}
        done = [0]

        def job(heartbeat: Heartbeat) -> np.ndarray:
            heartbeat.beat("compiling and starting the Lava processes")
            started = False
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=_MODEL_SEARCH_WARNING)
                    graph.source.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
                started = True
                _watch_runtime(graph.source.runtime, heartbeat)
                marks["started"] = time.perf_counter()
                # One run call per sample (about 0.4 ms each): progress and the stall timeout
                # work per sample.
                for sample in range(n_samples):
                    heartbeat.beat(f"running sample {sample + 1}/{n_samples}")
                    graph.source.run(condition=RunSteps(num_steps=steps))
                    done[0] = sample + 1
                marks["ran"] = time.perf_counter()
                heartbeat.beat("reading the output sink")
                return graph.sink.data.get()
            finally:
                if started:
                    heartbeat.beat("stopping the Lava runtime")
                    heartbeat.release_children()
                    graph.source.stop()

        try:
            sink_data = supervise(job, timeout_s=timeout_s, on_poll=lambda: update_bar(done[0]))
        finally:
            close_bar()
        output = _per_sample(np.moveaxis(np.asarray(sink_data), -1, 0), n_samples, np.int8)
        traces = {
            key: _per_sample(np.load(path), n_samples, np.int8 if key[1] == "spikes" else np.int32)
            for key, path in graph.trace_files.items()
        }
    t_end = time.perf_counter()
    spikes: list[np.ndarray | None] = [traces.get((i, "spikes")) for i in range(len(spec.layers))]
    if record:
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, FlattenLayer):
                before = (
                    spikes[i - 1]
                    if i > 0
                    else _per_sample(np.moveaxis(data, -1, 0), n_samples, np.int8)
                )
                spikes[i] = _flatten_spikes(before)
    spikes[-1] = output
    timing = LavaTiming(
        build_s=t_built - t_start,
        startup_s=marks["started"] - t_built,
        run_s=marks["ran"] - marks["started"],
        readout_s=t_end - marks["ran"],
        n_steps=n_samples * steps,
        n_samples=n_samples,
    )
    _log.info(
        "lava: %d samples x %d steps, startup %.2f s, %.0f steps/s",
        n_samples,
        steps,
        timing.startup_s,
        timing.steps_per_s,
    )
    return LavaResult(
        spikes=spikes,
        u=[traces.get((i, "u")) for i in range(len(spec.layers))],
        v=[traces.get((i, "v")) for i in range(len(spec.layers))],
        steps_per_sample=steps,
        timing=timing,
    )
