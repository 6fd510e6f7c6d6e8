"""A self-checking Loihi 2 bundle: ``tsslbp deploy MODEL.net --target loihi2 --bundle DIR``.

The folder carries everything a user with Intel Neuromorphic Research Community access needs to
check a chip run bit for bit against tsslbp's golden model, on a machine without tsslbp:

* ``network.net``: the netx file, its tsslbp metadata updated to the chip schedule (below);
* ``network.npz`` + ``bundle.json``: the arguments of every lava-nc process (Dense, Conv, LIFReset)
  exactly as lava-dl's netx loader derives them from ``network.net`` (weights packed as netx packs
  them, conv kernels in Lava's layout, ``du = iDecay - 1``, ``bias_exp = 6``), the schedule and
  the readout;
* ``inputs.npy`` (N, *input shape in Lava's order, P) int32 and ``labels.npy`` (N,);
* ``expected_output.npy`` (N, *output shape, P) int8: the golden model's output spikes for the N
  samples run back to back with the chip schedule, and ``expected_first_sample.npz``: every
  layer's spikes, ``u`` and ``v`` (*shape, P) at every step of the first sample (what lava-dl's
  hardware tests check: ``<layer>.npy``, ``<layer>-u.npy``, ``<layer>-v.npy``);
* ``diagnosis_reset_period_plus_1.npy``: the output if the chip reset every ``P + 1`` steps (what
  lava-dl's PilotNet recordings from Loihi 2 show), named in the report when it matches;
* ``run_bundle.py`` (numpy + lava only; see :mod:`tsslbp.deploy.bundle_runner`), ``README.txt`` and
  ``MANIFEST.sha256`` (``sha256sum -c`` format).

Chip schedule: each sample's ``S`` steps are zero-padded to the power-of-2 period
``P = hardware_period(S)`` (:mod:`tsslbp.hwmodels.schedule`), and the network is reset by lava's
``LIFReset`` with ``reset_interval = P`` and lava-dl's ``reset_offset = 1``. The expected spikes are
the golden model run over all ``N * P`` steps as one sequence with that reset schedule: exactly what
lava-dl's ``netx.hdf5.Network(reset_interval=P, reset_offset=1)`` computes, without assuming that
samples are independent. :attr:`BundleReport.isolated` says whether the readout of every sample
equals the per-sample golden run (``tsslbp verify``'s semantics).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..hwmodels.golden import run_golden
from ..hwmodels.readout import predict_counts
from ..hwmodels.schedule import HW_RESET_OFFSET, hardware_period
from ..hwmodels.spec import (
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
    lava_shape,
)
from ..hwmodels.weights import pack_dense_weights
from .netx import write_netx

__all__ = ["BUNDLE_FILES", "BundleError", "BundleReport", "lava_layers", "write_bundle"]

#: The files of a bundle, in the order MANIFEST.sha256 lists them.
BUNDLE_FILES = (
    "network.net",
    "network.npz",
    "bundle.json",
    "inputs.npy",
    "labels.npy",
    "expected_output.npy",
    "expected_first_sample.npz",
    "diagnosis_reset_period_plus_1.npy",
    "run_bundle.py",
    "README.txt",
)
# The standalone check copied into every bundle. It lives in deploy/, the one package that may
# import lava; it is read here as a file, never imported.
_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "bundle_runner.py"
# lava-dl's netx gives every CUBA/LOIHI neuron bias_exp = 6 (netx/hdf5.py get_neuron_params).
_BIAS_EXP = 6


class BundleError(ValueError):
    """The network or the inputs cannot make a bundle; the message says why in one line."""


@dataclass(frozen=True)
class BundleReport:
    """What :func:`write_bundle` wrote.

    Attributes:
        folder: the bundle folder.
        n_samples: samples in the bundle.
        steps_per_sample: S, the network's own steps per sample.
        period: P, the chip's sample period (a power of 2, >= S).
        golden_accuracy: accuracy of the expected output (chip schedule) on the labels.
        per_sample_accuracy: accuracy of the golden model run per sample from zero state
            (``tsslbp verify``), for comparison.
        isolated: True when every sample's readout window is identical in both runs.
        output_spikes: output spikes in the expected file.
    """

    folder: Path
    n_samples: int
    steps_per_sample: int
    period: int
    golden_accuracy: float
    per_sample_accuracy: float
    isolated: bool
    output_spikes: int

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}

    def summary(self, data_name: str) -> str:
        """One line for the command line: what was written and how to check it."""
        return (
            f"wrote {self.folder}: {self.n_samples} {data_name} samples x {self.period} steps "
            f"({self.steps_per_sample} zero-padded to {self.period}), golden accuracy "
            f"{100 * self.golden_accuracy:.2f}% with the chip schedule "
            f"({100 * self.per_sample_accuracy:.2f}% per sample), {self.output_spikes} expected "
            f"output spikes; check: python {self.folder / 'run_bundle.py'}"
        )


def _conv_kernel(layer: ConvLayer) -> np.ndarray:
    """The kernel lava-nc's Conv takes, (out, W, H, in), for PyTorch's (out, in, kH, kW) weights.

    Lava's Conv flips its kernel and transposes it to (out, in, H, W) before a cross-correlation;
    this is the inverse (as netx builds it; the same transform as tsslbp.deploy.runner's).
    """
    return np.ascontiguousarray(np.asarray(layer.weight).transpose(0, 3, 2, 1)[:, ::-1, ::-1])


def _bias(layer: DenseLayer | ConvLayer, shape_lava: tuple[int, ...]) -> np.ndarray:
    """Bias mantissas in Lava's neuron layout: per neuron (dense) or per channel (conv)."""
    if layer.bias is None:
        return np.zeros(shape_lava, dtype=np.int32)
    return np.ascontiguousarray(
        np.broadcast_to(np.asarray(layer.bias).reshape(-1), shape_lava)
    ).astype(np.int32)


def lava_layers(
    spec: NetworkSpec, period: int, reset_offset: int = HW_RESET_OFFSET
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The lava-nc process arguments of every layer, as lava-dl's netx loader would pass them.

    Args:
        spec: a network whose first layer is synaptic (dense or conv).
        period: LIFReset's ``reset_interval``.
        reset_offset: netx's ``reset_offset``; the ``i``-th neuron layer's LIFReset gets
            ``reset_offset + 1 + i``.

    Returns:
        (one JSON-able dict per spec layer, arrays keyed ``layer{i}_weight`` / ``layer{i}_bias``).

    Raises:
        BundleError: For a network that starts with an input layer (driven through its bias).
    """
    if not spec.layers or isinstance(spec.layers[0], (InputLayer, FlattenLayer)):
        raise BundleError(
            "a bundle needs a network whose first layer is dense or conv (input layers driven "
            "through bias_mant are not supported)"
        )
    layers: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    message_bits = int(spec.input_message_bits)
    neuron_index = 0
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, FlattenLayer):
            layers.append({"index": i, "kind": "flatten", "shape": list(layer.shape)})
            continue
        if isinstance(layer, InputLayer):
            raise BundleError(f"layer {i}: an input layer can only be the first layer")
        shape_lava = lava_shape(tuple(layer.shape))
        entry: dict[str, Any] = {
            "index": i,
            "shape": list(shape_lava),
            # lava-nc's LIF adds ds_offset = 1 to du: netx's iDecay is du + 1.
            "du": int(layer.neuron.i_decay) - 1,
            "dv": int(layer.neuron.v_decay),
            "vth": int(layer.neuron.v_th_mant),
            "bias_exp": _BIAS_EXP,
            "num_message_bits": message_bits,
            "lif_reset_offset": reset_offset + 1 + neuron_index,
        }
        if isinstance(layer, DenseLayer):
            packed = pack_dense_weights(np.asarray(layer.weight, dtype=np.int64))
            entry |= {
                "kind": "dense",
                "weight_exp": int(packed.weight_exp),
                "num_weight_bits": int(packed.num_weight_bits),
            }
            arrays[f"layer{i}_weight"] = packed.weights.astype(np.int32)
        else:
            entry |= {
                "kind": "conv",
                "input_shape": list(lava_shape(tuple(layer.in_shape))),
                # Lava takes (x, y) = (W, H) pairs; the spec holds (y, x).
                "padding": list(reversed(layer.padding)),
                "stride": list(reversed(layer.stride)),
                "dilation": list(reversed(layer.dilation)),
                "groups": int(layer.groups),
            }
            arrays[f"layer{i}_weight"] = _conv_kernel(layer).astype(np.int32)
        arrays[f"layer{i}_bias"] = _bias(layer, shape_lava)
        layers.append(entry)
        neuron_index += 1
        message_bits = 0  # lava's LIF sends binary spikes
    if isinstance(spec.layers[-1], FlattenLayer):
        raise BundleError("the last layer must have neurons, found a flatten layer")
    return layers, arrays


def _pad(inputs: np.ndarray, period: int) -> np.ndarray:
    """(N, ..., S) -> (N, ..., P) int32 with zeros after step S."""
    x = np.asarray(inputs)
    if x.shape[-1] > period:
        raise BundleError(f"the inputs have {x.shape[-1]} steps, more than the period {period}")
    out = np.zeros(x.shape[:-1] + (period,), dtype=np.int32)
    out[..., : x.shape[-1]] = x
    return out


def _as_sequence(x: np.ndarray) -> np.ndarray:
    """(N, ..., P) -> (1, ..., N * P): the samples back to back as one run."""
    return np.moveaxis(x, 0, -2).reshape(1, *x.shape[1:-1], -1)


def _per_sample(x: np.ndarray, n: int) -> np.ndarray:
    """(1, ..., N * P) -> (N, ..., P)."""
    return np.moveaxis(x[0].reshape(*x.shape[1:-1], n, -1), -2, 0)


def _ones_line(spec: NetworkSpec) -> str:
    """README.txt's word on the constant input of a network trained on normalized input."""
    if not spec.input_ones:
        return ""
    full = 2 ** int(spec.input_message_bits) - 1
    return (
        "\n                           the last input (channel) is a constant: the network was trained on"
        "\n                           normalized input, folded into its first layer (bundle.json"
        f"\n                           input_ones); {full} on the input steps, 0 after. Your own data"
        "\n                           needs it too"
    )


def _readme(spec: NetworkSpec, name: str, report: BundleReport, meta: dict[str, Any]) -> str:
    return f"""tsslbp Loihi 2 bundle: {name}
{"=" * (23 + len(name))}

Made by tsslbp {__version__} from {name}: {report.n_samples} test samples of
{report.steps_per_sample} steps each (T={meta["n_steps"]} input steps plus one step per synaptic
layer), zero-padded to {report.period} steps: Loihi 2's reset needs a power-of-2 period.

Run on a Loihi 2 system of the Intel Neuromorphic Research Community
--------------------------------------------------------------------
Needs Python with numpy, lava-nc and Intel's lava-loihi (the INRC environment); not tsslbp.
lava-dl is needed only for --graph netx. lava-nc 0.10 supports Python 3.10; on 3.11 the script
installs a small import fix for lava-nc itself.

    sha256sum -c MANIFEST.sha256          # optional: the files arrived intact
    python run_bundle.py                  # Loihi2HwCfg; add --partition NAME to pick a SLURM
                                          # partition (lava.utils.loihi.use_slurm_host)
    python run_bundle.py --graph netx     # the same, network built by lava-dl's netx loader

Without a chip, the same check runs on Lava's CPU simulator:

    python run_bundle.py --sim

The script runs the {report.n_samples} samples back to back (reset_interval={report.period},
reset_offset={HW_RESET_OFFSET}, as lava-dl's netx.hdf5.Network builds it), compares every output spike at
every step with expected_output.npy and every layer's spikes, u and v during the first sample with
expected_first_sample.npz, and prints the spike match and the accuracy. Exit code 0: bit-exact;
1: some value differs (the first difference is printed); 2: the bundle or the environment is not
usable (e.g. no lava-loihi without --sim) or the run failed. On the chip, v = 128 on the step a neuron spikes counts
as matching (Loihi 2 reports the voltage so; the simulator reports 0) and is counted in the report.

Expected: golden-model accuracy {100 * report.golden_accuracy:.2f}% on these samples,
{report.output_spikes} output spikes. Please send the printed report (and --json FILE) back to
the tsslbp maintainers, in particular any mismatch.

Files
-----
network.net                netx HDF5 (lava-dl's format); tsslbp metadata: steps_per_sample={report.period}
network.npz, bundle.json   the Lava process arguments per layer, schedule, readout
inputs.npy                 (N, *input shape in Lava's (W, H, C) order, {report.period}) int32 input spikes
                           ({"graded, " + str(spec.input_message_bits) + "-bit payloads" if spec.input_message_bits else "binary"}){_ones_line(spec)}
labels.npy                 (N,) true classes
expected_output.npy        (N, *output shape, {report.period}) golden output spikes
expected_first_sample.npz  layer<i>_spikes / _u / _v: (*shape, {report.period}) per layer, sample 0
diagnosis_reset_period_plus_1.npy  the output if the chip reset every {report.period + 1} steps (a diagnosis)
run_bundle.py              the check (numpy + lava only)
MANIFEST.sha256            SHA-256 of every file
"""


def write_bundle(
    spec: NetworkSpec,
    inputs: np.ndarray,
    labels: np.ndarray,
    folder: str | os.PathLike[str],
    period: int | None = None,
    name: str = "network",
) -> BundleReport:
    """Write a self-checking Loihi 2 bundle (module docstring) into ``folder``.

    Args:
        spec: a network exported by tsslbp (its metadata holds the readout).
        inputs: (N, *lava_shape(spec.input_shape), S) encoded input spikes, as
            :func:`~tsslbp.hwmodels.readout.encode_for_spec` makes them.
        labels: (N,) true classes.
        folder: the bundle folder; created, and must be empty if it exists.
        period: the sample period P >= S [default: the next power of 2].
        name: the network's name for the report (e.g. the netx file's name).

    Returns:
        What was written.

    Raises:
        BundleError: For a network or inputs that cannot make a bundle, or a non-empty folder.
    """
    folder = Path(folder)
    meta = dict(spec.metadata)
    missing = [k for k in ("n_steps", "readout_offset", "steps_per_sample") if k not in meta]
    if missing:
        raise BundleError(f"the netx file has no tsslbp readout metadata ({', '.join(missing)})")
    x = np.asarray(inputs)
    labels = np.asarray(labels).astype(np.int64)
    if x.ndim < 3 or len(x) == 0 or len(labels) != len(x):
        raise BundleError(f"need N >= 1 samples and N labels, got {x.shape} and {labels.shape}")
    steps = int(x.shape[-1])
    offset, n_steps = int(meta["readout_offset"]), int(meta["n_steps"])
    if steps < offset + n_steps:
        raise BundleError(f"the inputs have {steps} steps, the readout needs {offset + n_steps}")
    period = hardware_period(steps) if period is None else int(period)
    if period < steps:
        raise BundleError(f"--period {period} is shorter than the {steps} steps per sample")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BundleError(f"{folder} exists and is not an empty folder")
    layers, arrays = lava_layers(spec, period)
    padded = _pad(x, period)
    n = len(padded)

    # The chip's run: all samples as one sequence, reset by netx's schedule.
    schedule = {"reset_interval": period, "reset_offset": HW_RESET_OFFSET}
    chip = run_golden(spec, _as_sequence(padded), record=False, **schedule)
    expected = _per_sample(chip.output, n).astype(np.int8)
    # Its first P steps depend on the first sample alone: record every layer there.
    chip_first = run_golden(spec, _as_sequence(padded[:1]), record=True, **schedule)
    # A diagnosis only: the same run with resets one step further apart, as lava-dl's PilotNet
    # recordings from Loihi 2 show (tests/hwmodels/test_golden_fixtures.py; docs/hardware.md).
    longer = run_golden(
        spec,
        _as_sequence(padded),
        record=False,
        reset_interval=period + 1,
        reset_offset=HW_RESET_OFFSET,
    )
    reset_p_plus_1 = _per_sample(longer.output, n).astype(np.int8)
    first: dict[str, np.ndarray] = {}
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, FlattenLayer):
            continue
        first[f"layer{i}_spikes"] = chip_first.spikes[i][0].astype(np.int8)
        first[f"layer{i}_u"] = chip_first.u[i][0].astype(np.int32)  # type: ignore[index]
        first[f"layer{i}_v"] = chip_first.v[i][0].astype(np.int32)  # type: ignore[index]
    # tsslbp verify's run: every sample alone from zero state.
    alone = run_golden(spec, x, record=False).output
    chip_meta = meta | {"steps_per_sample": period}
    predicted = predict_counts(expected, chip_meta)
    predicted_alone = predict_counts(alone, meta)
    window = slice(offset, offset + n_steps)
    isolated = bool(np.array_equal(expected[..., window], alone[..., window]))

    report = BundleReport(
        folder=folder,
        n_samples=n,
        steps_per_sample=steps,
        period=period,
        golden_accuracy=float((predicted == labels).mean()),
        per_sample_accuracy=float((predicted_alone == labels).mean()),
        isolated=isolated,
        output_spikes=int(expected.sum()),
    )
    folder.mkdir(parents=True, exist_ok=True)
    hw_spec = replace(
        spec,
        metadata=meta
        | {
            "steps_per_sample": period,
            "hardware_schedule": {
                "period": period,
                "padded_from": steps,
                "reset_interval": period,
                "reset_offset": HW_RESET_OFFSET,
            },
        },
    )
    write_netx(hw_spec, folder / "network.net")
    # write_netx writes through a private temporary file; the bundle is meant to be shared.
    (folder / "network.net").chmod(0o644)
    np.savez(folder / "network.npz", **arrays)
    description = {
        "format": 1,
        "producer": f"tsslbp {__version__}",
        "name": name,
        "period": period,
        "reset_offset": HW_RESET_OFFSET,
        "steps_per_sample": steps,
        "n_steps": n_steps,
        "readout_offset": offset,
        "readout": meta.get("readout", "spike_count_argmax"),
        "input_message_bits": int(spec.input_message_bits),
        "input_ones": spec.input_ones,
        "n_samples": n,
        "golden_accuracy": report.golden_accuracy,
        "layers": layers,
    }
    (folder / "bundle.json").write_text(json.dumps(description, indent=2) + "\n")
    np.save(folder / "inputs.npy", padded)
    np.save(folder / "labels.npy", labels)
    np.save(folder / "expected_output.npy", expected)
    np.savez(folder / "expected_first_sample.npz", **first)
    np.save(folder / "diagnosis_reset_period_plus_1.npy", reset_p_plus_1)
    shutil.copyfile(_SCRIPT, folder / "run_bundle.py")
    (folder / "README.txt").write_text(_readme(spec, name, report, meta))
    lines = [f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}" for f in BUNDLE_FILES]
    (folder / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    return report
