"""The jobs that describe a netx file without running it: ``info`` (layers and counts) and
``lint`` (design rules). Neither imports torch, so both start fast.

``info`` counts synapses with :func:`tsslbp.hwmodels.resources.layer_synapses`, the count
``tsslbp report`` uses (:mod:`tsslbp.workflows.reporting`), so both give the same figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..export.lava_dl import lava_dl_usage
from ..export.lint import Finding, Severity, lint_file
from ..export.netx import read_netx
from ..hwmodels.resources import layer_synapses
from ..hwmodels.spec import FlattenLayer
from ..manifest import write_manifest
from ..safeio import write_text
from .common import format_table

__all__ = ["ConfigsResult", "configs", "InfoResult", "LintResult", "info", "lint"]


def _input_kind(bits: int) -> str:
    return f"graded {bits}-bit" if bits else "binary"


@dataclass(frozen=True)
class InfoResult:
    """A netx file's layers (one dict each: kind, shape, neurons, synapses, weights, neuron
    parameters) and its tsslbp metadata."""

    model: Path
    layers: tuple[dict[str, Any], ...]
    input_shape: tuple[int, ...]
    input_message_bits: int
    metadata: dict[str, Any]
    #: How to load, feed and read the file with lava-dl's own loader (:mod:`tsslbp.export.lava_dl`).
    lava_dl: tuple[str, ...] = ()

    @property
    def neurons(self) -> int:
        return sum(layer["neurons"] for layer in self.layers)

    @property
    def synapses(self) -> int:
        return sum(layer["synapses"] for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "layers": list(self.layers),
            "neurons": self.neurons,
            "synapses": self.synapses,
            "input_shape": list(self.input_shape),
            "input_message_bits": self.input_message_bits,
        }

    def lines(self) -> list[str]:
        rows = [
            [
                str(i),
                e["type"],
                "x".join(map(str, e["shape"])),
                str(e["neurons"]),
                str(e["synapses"]),
                "-" if e["weights"] is None else f"{e['weights'][0]}..{e['weights'][1]}",
                "-" if e["i_decay"] is None else f"{e['i_decay']}/{e['v_decay']}",
                "-" if e["v_th_mant"] is None else str(e["v_th_mant"]),
            ]
            for i, e in enumerate(self.layers)
        ]
        header = ["#", "type", "shape (CHW)", "neurons", "synapses", "weights", "iDecay/vDecay"]
        lines = format_table(rows, [*header, "vThMant"])
        lines.append(
            f"{self.model}: {len(self.layers)} layers, {self.neurons} neurons, {self.synapses} "
            f"synapses, input {'x'.join(map(str, self.input_shape))} "
            f"({_input_kind(self.input_message_bits)})"
        )
        meta = self.metadata
        if meta:
            lines.append(
                f"tsslbp metadata: T={meta.get('n_steps')}, {meta.get('steps_per_sample')} "
                f"steps/sample, readout {meta.get('readout')} from step "
                f"{meta.get('readout_offset')}, source {meta.get('source_checkpoint')} "
                f"(sha256 {str(meta.get('source_sha256', ''))[:12]}), {meta.get('producer')}"
            )
        return [*lines, *self.lava_dl]


def info(model: Path) -> InfoResult:
    """Describe a netx file: layers, shapes, neuron parameters, bit widths, neuron and synapse
    counts (synapses as :func:`tsslbp.hwmodels.resources.layer_synapses` counts them)."""
    spec = read_netx(model)
    layers = []
    for layer in spec.layers:
        neuron = getattr(layer, "neuron", None)
        weight = getattr(layer, "weight", None)
        layers.append(
            {
                "type": type(layer).__name__.replace("Layer", "").lower(),
                "shape": list(layer.shape),
                "neurons": 0 if isinstance(layer, FlattenLayer) else int(np.prod(layer.shape)),
                "synapses": layer_synapses(layer),
                "weights": [int(np.min(weight)), int(np.max(weight))]
                if isinstance(weight, np.ndarray)
                else None,
                "i_decay": neuron.i_decay if neuron else None,
                "v_decay": neuron.v_decay if neuron else None,
                "v_th_mant": neuron.v_th_mant if neuron else None,
            }
        )
    return InfoResult(
        model,
        tuple(layers),
        tuple(spec.input_shape),
        spec.input_message_bits,
        spec.metadata,
        tuple(lava_dl_usage(model, spec)),
    )


@dataclass(frozen=True)
class LintResult:
    """Design-rule findings of a netx file; ``n_layers`` is None when tsslbp cannot read it."""

    model: Path
    findings: tuple[Finding, ...]
    n_layers: int | None

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "findings": [f.to_dict() for f in self.findings]}

    def lines(self) -> list[str]:
        layers = "not readable by tsslbp" if self.n_layers is None else f"{self.n_layers} layers"
        return [
            *(f.line() for f in self.findings),
            f"{self.model}: {layers}, {self.errors} error(s), {self.warnings} warning(s)",
        ]


def lint(
    model: Path, *, json_path: Path | None = None, command: list[str] | None = None
) -> LintResult:
    """Check a netx file against Loihi 2's limits and what lava-dl's netx loader reads; with
    ``json_path``, also write the findings there (+ manifest)."""
    findings, spec = lint_file(model)
    result = LintResult(model, tuple(findings), None if spec is None else len(spec.layers))
    if json_path is not None:
        write_text(json_path, json.dumps(result.to_dict(), indent=2))
        figures = {"errors": result.errors, "warnings": result.warnings}
        write_manifest(json_path, inputs=[model], figures=figures, command=command)
    return result


@dataclass(frozen=True)
class ConfigsResult:
    """The shipped training configs: name, data set, network, steps, epochs, and where they are."""

    rows: tuple[tuple[str, ...], ...]
    directory: Path

    def to_dict(self) -> dict[str, Any]:
        keys = ("name", "dataset", "network", "steps", "epochs")
        return {
            "directory": str(self.directory),
            "configs": [dict(zip(keys, r)) for r in self.rows],
        }

    def lines(self) -> list[str]:
        table = format_table(self.rows, ["name", "dataset", "network", "steps", "epochs"])
        return [*table, f"in {self.directory}; copy one and pass its path to change it"]


def configs() -> ConfigsResult:
    """The configs shipped in the package (``tsslbp train NAME`` takes one by name)."""
    from ..config import load_config
    from ..configs import CONFIG_DIR, shipped_configs

    rows = []
    for name, path in shipped_configs().items():
        cfg = load_config(path)
        rows.append(
            (
                name,
                cfg.data.dataset.value,
                cfg.architecture,
                f"T={cfg.n_steps}",
                f"{cfg.train.epochs} epochs",
            )
        )
    return ConfigsResult(tuple(rows), CONFIG_DIR)
