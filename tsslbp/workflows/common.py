"""What the workflows share: text tables, manifests, the test data a netx file names, and the
float checkpoint it was exported from.

torch is imported only inside the functions that load data or checkpoints, so the jobs that only
read a netx file (``info``, ``lint``) start without it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import parse_config
from ..hwmodels.readout import encode_for_spec
from ..hwmodels.spec import NetworkSpec
from ..manifest import write_manifest

if TYPE_CHECKING:
    from ..data import DataSplits

__all__ = [
    "Log",
    "SourceCheckpoint",
    "WorkflowError",
    "float_accuracy",
    "format_table",
    "load_source_checkpoint",
    "record",
    "spec_test_data",
    "spec_test_inputs",
]

#: Where a workflow sends its progress lines (``click.echo`` from the CLI; None: silent).
Log = Callable[[str], None] | None


class WorkflowError(ValueError):
    """A problem with the inputs the user gave a workflow (wrong shape, missing metadata)."""


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Right-aligned columns, two spaces apart, header first.

    >>> format_table([["a", "10"]], ["name", "n"])
    ['name   n', '   a  10']
    """
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [header, *rows]]


def record(
    artifact: Path,
    inputs: Sequence[Path | str | None] = (),
    outputs: Sequence[Path | str | None] = (),
    config: dict[str, Any] | None = None,
    figures: dict[str, Any] | None = None,
    command: Sequence[str] | None = None,
) -> Path:
    """``ARTIFACT.manifest.json`` (:func:`tsslbp.manifest.write_manifest`); ``None`` inputs and
    outputs are skipped and the seed is the config's."""
    seed = (config or {}).get("Network", {}).get("seed")
    return write_manifest(
        artifact,
        inputs=[p for p in inputs if p is not None],
        outputs=[p for p in outputs if p is not None],
        config=config,
        seed=seed,
        figures=figures,
        command=None if command is None else list(command),
    )


def spec_test_data(spec: NetworkSpec, data_dir: Path | None) -> DataSplits:
    """The test data of a spec exported by tsslbp (its embedded config names the data set).

    Raises:
        WorkflowError: the file has no tsslbp metadata.
    """
    if "config" not in spec.metadata:
        raise WorkflowError(
            "this netx file has no tsslbp metadata (data set, readout): use `tsslbp simulate`"
        )
    from ..data import load_experiment_data

    return load_experiment_data(parse_config(spec.metadata["config"], "netx metadata"), data_dir)


def spec_test_inputs(
    spec: NetworkSpec, data: DataSplits, samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` test samples encoded as the spec's input spikes, and their labels."""
    n = min(samples, len(data.test))
    return encode_for_spec(data.test.images[:n].numpy(), spec), data.test.labels[:n].numpy()


@dataclass(frozen=True)
class SourceCheckpoint:
    """The float model a netx file was exported from: model, its config and the checkpoint path."""

    model: Any
    config: Any
    path: Path


def load_source_checkpoint(spec: NetworkSpec) -> SourceCheckpoint | None:
    """The checkpoint the spec was exported from, when that file is still there unchanged
    (SHA-256 in the metadata); None otherwise."""
    from ..export.quantize import file_sha256
    from ..train.loop import CheckpointError, model_from_checkpoint

    path = spec.metadata.get("source_checkpoint")
    if (
        not path
        or not Path(path).is_file()
        or file_sha256(path) != spec.metadata.get("source_sha256")
    ):
        return None
    try:
        model, cfg, _ = model_from_checkpoint(path)
    except CheckpointError:
        return None
    return SourceCheckpoint(model, cfg, Path(path))


def float_accuracy(source: SourceCheckpoint | None, data: DataSplits, n: int) -> float | None:
    """Float accuracy of the source checkpoint on the first n test samples (None without one)."""
    from ..data import Split
    from ..train.loop import evaluate

    if source is None:
        return None
    split = Split(data.test.images[:n], data.test.labels[:n])
    return evaluate(source.model, split, source.config).accuracy
