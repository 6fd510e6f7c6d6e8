"""The ``export``, ``nir-export`` and ``nir-import`` jobs: checkpoint -> netx, netx <-> NIR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..export.exporter import ExportResult, export_checkpoint
from ..export.lava_dl import lava_dl_usage
from ..export.netx import read_netx, write_netx
from ..export.nir_io import DEFAULT_DT, METADATA_KEY, nir_to_spec, read_nir, spec_to_nir, write_nir
from ..export.nir_reset import reset_notes
from ..export.quantize import QuantConfig, QuantReport
from ..hwmodels.health import STATE_LIMIT
from ..hwmodels.spec import NetworkSpec
from ..manifest import write_manifest
from ..safeio import write_text
from .common import format_table, record

__all__ = [
    "ExportSummary",
    "NirExportResult",
    "NirImportResult",
    "export",
    "export_lines",
    "nir_export",
    "nir_import",
    "quant_table",
]

_QUANT_HEADER = [
    "layer",
    "scale",
    "limited by",
    "w bits",
    "clipped",
    "w rmse",
    "vThMant",
    "iDecay/vDecay",
    "max|u|/2^23",
    "v at floor",
]

# QuantizedLayer fields in the netx file's manifest.
_MANIFEST_FIELDS = (
    "name",
    "scale",
    "limited_by",
    "weight_range",
    "weight_bits_used",
    "n_clipped",
    "n_range_clipped",
    "current_error",
    "n_weights",
    "weight_rmse",
    "v_th_mant",
    "max_abs_u_int",
    "max_abs_v_int",
    "v_floor",
)


def _kinds(spec: NetworkSpec) -> str:
    return "/".join(
        sorted({type(layer).__name__.replace("Layer", "").lower() for layer in spec.layers})
    )


def _input_kind(bits: int, binary: str) -> str:
    return f"graded {bits}-bit" if bits else binary


def quant_table(report: QuantReport) -> list[str]:
    """The per-layer quantization table ``tsslbp export`` prints."""
    rows = [
        [
            q.name,
            f"{q.scale:.4g}",
            q.limited_by + (f" ({q.weight_range:g} max)" if q.weight_range < 1 else ""),
            f"{q.weight_bits_used:.1f}",
            f"{q.n_clipped + q.n_range_clipped}/{q.n_weights}",
            f"{100 * q.weight_rmse:.2f}%",
            str(q.v_th_mant),
            f"{q.i_decay}/{q.v_decay}",
            f"{q.max_abs_u_int / STATE_LIMIT:.1%}",
            f"{q.v_floor:.2%}",
        ]
        for q in report.layers
    ]
    return format_table(rows, _QUANT_HEADER)


def export_lines(result: ExportResult) -> list[str]:
    """The quantization table and the summary lines of an export."""
    meta, spec = result.spec.metadata, result.spec
    agreement = ", ".join(
        f"{b} bits {100 * a:.1f}% ({result.input_bits_count_error[b]:.4f})"
        for b, a in result.input_bits_agreement.items()
    )
    return [
        *quant_table(result.report),
        "input width: golden vs float on the calibration batch, same prediction (mean |output "
        f"spike count difference|; the smallest is chosen): {agreement}",
        *(
            f"input width {b} bits not usable: {why}"
            for b, why in result.input_bits_skipped.items()
        ),
        f"wrote {result.path}: {len(spec.layers)} layers ({_kinds(spec)}), T={meta['n_steps']}, "
        f"{meta['steps_per_sample']} steps/sample, "
        f"{_input_kind(spec.input_message_bits, 'binary spike')} input, "
        f"calibrated on {result.report.calibration_samples} samples",
        *lava_dl_usage(result.path, spec),
    ]


def export_record(
    result: ExportResult,
    checkpoint: Path,
    data_dir: Path | None,
    json_path: Path | None = None,
    command: list[str] | None = None,
) -> Path:
    """The netx file's manifest: checkpoint in, quantization summary and input width as figures."""
    figures = {
        "input_bits": result.spec.input_message_bits,
        "weight_bits": result.report.config.weight_bits,
        "input_bits_agreement": result.input_bits_agreement,
        "input_bits_count_error": result.input_bits_count_error,
        "input_bits_skipped": result.input_bits_skipped,
        "calibration_samples": result.report.calibration_samples,
        "steps_per_sample": result.spec.metadata.get("steps_per_sample"),
        "layers": [{k: getattr(q, k) for k in _MANIFEST_FIELDS} for q in result.report.layers],
        "warnings": result.report.warnings(),
    }
    return record(
        result.path,
        inputs=[checkpoint, data_dir],
        outputs=[json_path],
        config=result.spec.metadata.get("config"),
        figures=figures,
        command=command,
    )


@dataclass(frozen=True)
class ExportSummary:
    """An export: what :func:`tsslbp.export.exporter.export_checkpoint` wrote, and its warnings."""

    result: ExportResult

    def to_dict(self) -> dict[str, Any]:
        return self.result.report.to_dict()

    def lines(self) -> list[str]:
        return export_lines(self.result)

    def warnings(self) -> list[str]:
        return self.result.report.warnings()


def export(
    checkpoint: Path,
    output: Path,
    *,
    data_dir: Path | None = None,
    calibration: int = 512,
    input_bits: int | None = None,
    weight_bits: int = 8,
    rounding: str = "compensated",
    weight_range: str = "max",
    json_path: Path | None = None,
    command: list[str] | None = None,
) -> ExportSummary:
    """Quantize a checkpoint to Loihi fixed point and write a netx file (+ manifest).

    Args:
        checkpoint: a tsslbp checkpoint.
        output: the netx file to write.
        data_dir: the data set's directory (overrides the config's).
        calibration: training samples that bound the state range.
        input_bits: graded input width (1-16); None: the width whose golden predictions agree best
            with the float model on the calibration batch.
        weight_bits: synaptic weight width (2-8).
        rounding: ``compensated`` (each weight's rounding error absorbed by the neuron's other
            weights on the calibration batch) or ``nearest``.
        weight_range: ``max`` or ``search``: where the weight grid's top goes in a layer whose
            scale the weights bound (:class:`~tsslbp.export.quantize.QuantConfig`).
        json_path: also write the quantization report there.
        command: the command line recorded in the manifest.
    """
    qcfg = QuantConfig(
        calibration_samples=calibration,
        weight_bits=weight_bits,
        rounding=rounding,
        weight_range=weight_range,
    )
    result = export_checkpoint(checkpoint, output, data_dir, qcfg, input_bits)
    if json_path is not None:
        write_text(json_path, json.dumps(result.report.to_dict(), indent=2))
    export_record(result, checkpoint, data_dir, json_path, command)
    return ExportSummary(result)


@dataclass(frozen=True)
class NirExportResult:
    model: Path
    output: Path
    node_kinds: tuple[str, ...]
    n_layers: int
    dt: float

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "model": str(self.model), "output": str(self.output)}

    def lines(self) -> list[str]:
        return [
            f"wrote {self.output}: {len(self.node_kinds)} NIR nodes ({' -> '.join(self.node_kinds)}) "
            f"from {self.n_layers} layers of {self.model}"
        ]


def nir_export(
    model: Path, output: Path, *, dt: float | None = None, command: list[str] | None = None
) -> NirExportResult:
    """Write a netx model as a NIR graph (+ manifest); ``dt``: seconds per step [default 1e-3]."""
    spec = read_netx(model)
    dt = DEFAULT_DT if dt is None else dt
    graph = spec_to_nir(spec, dt)
    write_nir(graph, output)
    kinds = tuple(type(node).__name__ for node in graph.nodes.values())
    figures = {"nodes": len(kinds), "dt": dt}
    write_manifest(output, inputs=[model], figures=figures, command=command)
    return NirExportResult(model, output, kinds, len(spec.layers), dt)


@dataclass(frozen=True)
class NirImportResult:
    graph: Path
    output: Path
    n_layers: int
    n_nodes: int
    exact: bool
    dt: float | None
    input_bits: int
    #: The reset the import assumes, and warnings when the graph may mean another
    #: (:func:`tsslbp.export.nir_reset.reset_notes`).
    reset: str = ""
    reset_warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "graph": str(self.graph), "output": str(self.output)}

    def warnings(self) -> list[str]:
        return list(self.reset_warnings)

    def lines(self) -> list[str]:
        how = (
            "exact (tsslbp metadata)"
            if self.exact
            else f"quantized from floats (dt {self.dt:g} s, "
            f"{_input_kind(self.input_bits, 'binary')} input)"
        )
        return [
            f"wrote {self.output}: {self.n_layers} layers from {self.n_nodes} NIR nodes of "
            f"{self.graph}, {how}",
            *([self.reset] if self.reset else []),
        ]


def nir_import(
    graph_path: Path,
    output: Path,
    *,
    dt: float | None = None,
    input_bits: int = 0,
    command: list[str] | None = None,
) -> NirImportResult:
    """Turn a NIR graph into a netx file (+ manifest): exact for tsslbp's own graphs, quantized
    from floats for others (``dt``: the producer's seconds per step; ``input_bits``: 0 = binary
    input spikes, else graded input sent with this many bits)."""
    graph = read_nir(graph_path)
    exact = METADATA_KEY in (graph.metadata or {})
    spec = nir_to_spec(graph, dt=dt, input_bits=input_bits)
    reset, warnings = reset_notes(graph, exact)
    write_netx(spec, output)
    figures = {
        "layers": len(spec.layers),
        "exact": exact,
        "layer_scales": spec.metadata.get("layer_scales"),
        "reset": "zero",
        "warnings": warnings,
    }
    write_manifest(output, inputs=[graph_path], figures=figures, command=command)
    return NirImportResult(
        graph_path,
        output,
        len(spec.layers),
        len(graph.nodes),
        exact,
        dt,
        input_bits,
        reset,
        tuple(warnings),
    )
