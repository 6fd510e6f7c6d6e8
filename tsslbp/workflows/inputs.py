"""Inputs for one run of a netx file: a test sample or a user's image/array in the network's
encoding and layout, and the checks on an input file (``tsslbp encode``, ``tsslbp simulate``).

A tsslbp file takes graded input: pixel values in [0, 1] become payloads ``round(x * (2**bits - 1))``
sent at steps 0..T-1, zeros for the remaining steps of the sample (docs/fixed-point.md); event data
sets (N-MNIST) send their frames as 0/1 spikes. Arrays are in Lava's order, (W, H, C, steps) for
images, (N, steps) for vectors: :func:`tsslbp.hwmodels.readout.encode_for_spec` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..hwmodels.readout import encode_for_spec
from ..hwmodels.spec import NetworkSpec, input_range_problem, lava_shape
from .common import WorkflowError, spec_test_data

__all__ = [
    "EncodeResult",
    "InputError",
    "encode",
    "encode_test_sample",
    "encode_array",
    "load_array",
    "check_input",
]


class InputError(WorkflowError):
    """An input that cannot be fed to the network (wrong shape or values, no metadata)."""


def _need_metadata(spec: NetworkSpec, what: str) -> None:
    if "config" not in spec.metadata or "steps_per_sample" not in spec.metadata:
        raise InputError(
            f"this netx file has no tsslbp metadata (data set, encoding), so {what} is not "
            "possible: give the input spikes as an array to `tsslbp simulate --input`"
        )


def encode_test_sample(
    spec: NetworkSpec, index: int, data_dir: str | Path | None = None
) -> tuple[np.ndarray, int, str]:
    """Test sample ``index`` of the spec's data set as its input: (x (*Lava input shape, steps),
    label, a description such as ``digits test sample 3``)."""
    _need_metadata(spec, "reading its data set")
    data = spec_test_data(spec, None if data_dir is None else Path(data_dir))
    n = len(data.test)
    if not 0 <= index < n:
        raise InputError(f"sample {index} out of range: the {data.name} test split has 0..{n - 1}")
    x = encode_for_spec(data.test.images[index : index + 1].numpy(), spec)[0]
    return x, int(data.test.labels[index]), f"{data.name} test sample {index}"


def load_array(path: str | Path) -> np.ndarray:
    """An image or array file: ``.npy`` as stored, ``.png`` (and other matplotlib-readable images)
    as floats in [0, 1], (H, W) for grey, (C, H, W) for colour (alpha dropped)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from err
    import matplotlib.image

    try:
        image = np.asarray(matplotlib.image.imread(path), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from err
    if image.dtype.kind in "iu" or image.max(initial=0) > 1:  # 8-bit formats other than PNG
        image = image / 255.0
    if image.ndim == 3:
        image = np.moveaxis(image[..., :3], -1, 0)
    return image


def encode_array(spec: NetworkSpec, values: np.ndarray, name: str = "the array") -> np.ndarray:
    """An analog sample (values in [0, 1], ``prod(input shape)`` of them in (C, H, W) order, any
    shape) as the spec's input (*Lava input shape, steps). A colour image given to a one-channel
    network is averaged to grey; event frames of binary-input files need (C, H, W, T) values."""
    _need_metadata(spec, "encoding an array")
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected numbers, found dtype {values.dtype}")
    binary = spec.metadata.get("input_encoding") == "binary"
    shape = spec.data_shape  # without the constant input of a normalizing network
    size = int(np.prod(shape))
    if binary:
        size *= int(spec.metadata["n_steps"])
    if values.size == 3 * size and shape[0] == 1 and values.shape[0] == 3:
        values = values.mean(axis=0)
    if values.size != size:
        want = "x".join(map(str, shape)) + ("xT" if binary else "")
        want = f" ({want})" if len(shape) > 1 or binary else ""
        raise InputError(
            f"{name}: {values.size} values (shape {values.shape}), the network takes {size}{want}"
        )
    values = values.astype(np.float64)
    if not binary and (values.min() < 0 or values.max() > 1):
        hint = " (divide 8-bit pixels by 255)" if values.max() <= 255 and values.min() >= 0 else ""
        raise InputError(
            f"{name}: values must lie in [0, 1], found {values.min():g}..{values.max():g}{hint}"
        )
    return encode_for_spec(values.reshape(1, -1), spec)[0]


def check_input(spec: NetworkSpec, x: np.ndarray, name: str = "input") -> np.ndarray:
    """An input file's array as int64 (*Lava input shape, steps); :class:`InputError` naming the
    expected shape when it does not fit, or when the values are not integers."""
    expected = lava_shape(spec.input_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[:-1]) != expected:
        raise InputError(
            f"{name}: expected shape ({', '.join(map(str, expected))}, S), found {x.shape} "
            "(Lava's order, time last; `tsslbp encode` writes one)"
        )
    if x.dtype.kind not in "biuf" or (x.dtype.kind == "f" and not np.array_equal(x, np.round(x))):
        raise InputError(
            f"{name}: spikes must be integers (0/1, or graded payloads 0..2**bits-1), found "
            f"{x.dtype} values"
        )
    problem = input_range_problem(x, spec)
    if problem:
        raise InputError(f"{name}: {problem}")
    return x.astype(np.int64)


@dataclass(frozen=True)
class EncodeResult:
    """One input written for a netx file: what it holds and its shape."""

    output: Path
    source: str
    shape: tuple[int, ...]
    input_message_bits: int
    low: int
    high: int
    n_steps: int | None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "output": str(self.output), "shape": list(self.shape)}

    def lines(self) -> list[str]:
        bits = self.input_message_bits
        kind = f"graded {bits}-bit, values {self.low}..{self.high}" if bits else "0/1 spikes"
        return [
            f"wrote {self.output}: {self.source}, shape {self.shape} (Lava order, steps last), "
            f"{kind}, {self.n_steps} input steps of {self.shape[-1]}"
        ]


def encode(
    model: Path,
    output: Path,
    *,
    sample: int | None = None,
    image_path: Path | None = None,
    data_dir: Path | None = None,
) -> EncodeResult:
    """Write one input for a tsslbp netx file, in its encoding and layout: test sample ``sample``
    of its data set, or the image/array ``image_path`` (values in [0, 1]).

    Raises:
        InputError: neither or both sources, a sample out of range, a wrong size or range.
    """
    from ..export.netx import read_netx

    spec = read_netx(model)
    if (image_path is None) == (sample is None):
        raise InputError("give exactly one of --sample I and --image FILE")
    if sample is not None:
        x, label, what = encode_test_sample(spec, sample, data_dir)
        what = f"{what} (label {label})"
    else:
        x = encode_array(spec, load_array(image_path), str(image_path))
        what = str(image_path)
    np.save(output, x)
    return EncodeResult(
        output,
        what,
        tuple(x.shape),
        int(spec.input_message_bits),
        int(x.min()),
        int(x.max()),
        spec.metadata.get("n_steps"),
    )
