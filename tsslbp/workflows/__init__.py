"""The user jobs, one function each: what the CLI runs and what Python code calls.

Every job takes its inputs as arguments (paths and keyword options, the CLI's options by the same
names), writes its artifacts with their manifests, and returns a frozen dataclass result with
``to_dict()`` (what ``--json`` writes) and ``lines()`` (the text the CLI prints). Progress goes to
an optional ``log`` callable, never to stdout directly; errors the user can fix are
``ValueError``/``RuntimeError``/``OSError`` subclasses with a one-line message.

=================  ==============================================  =======================
job                function                                        module
=================  ==============================================  =======================
train, eval        :func:`train`, :func:`evaluate`                  ``training``
export, NIR        :func:`export`, :func:`nir_export`,             ``conversion``
                   :func:`nir_import`
info, lint         :func:`info`, :func:`lint`                      ``inspection``
report             :func:`report`                                  ``reporting``
simulate, verify,  :func:`simulate`, :func:`verify`,               ``running``
deploy             :func:`deploy`, :func:`bundle` (``--bundle``)
quant-health       :func:`quant_health`                            ``quantization``
demo               :func:`demo`                                    ``pipeline``
bench              :func:`bench`                                   ``benchmarking``
(models/)          :func:`ship_model`                              ``shipping``
=================  ==============================================  =======================

Layering: this package sits above ``export`` and everything below it and under ``cli.py``; it is
the only place that strings the stages together. It also holds the job-level code only the jobs
use: :mod:`~tsslbp.workflows.analysis` (the one float-vs-fixed comparison, used by report, verify's
rasters and quant-health) and the shared helpers in :mod:`~tsslbp.workflows.common`.
``tsslbp.manifest`` and ``tsslbp.plots`` stay at the package root: they import nothing from the
project (stdlib; numpy and matplotlib), so the workflows and ``tsslbp.bench`` (the benchmark
suites, one floor below: they time train, export and deploy code) share them, and bench never
reaches up into the workflows.

The names below are loaded on first use, so ``import tsslbp.workflows`` is cheap and ``info`` or
``lint`` never import torch.

Example:
    >>> from tsslbp import workflows
    >>> workflows.info.__module__
    'tsslbp.workflows.inspection'
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule that defines it.
_EXPORTS = {
    "train": "training",
    "evaluate": "training",
    "TrainResult": "training",
    "EvaluateResult": "training",
    "export": "conversion",
    "nir_export": "conversion",
    "nir_import": "conversion",
    "ExportSummary": "conversion",
    "NirExportResult": "conversion",
    "NirImportResult": "conversion",
    "info": "inspection",
    "lint": "inspection",
    "InfoResult": "inspection",
    "LintResult": "inspection",
    "report": "reporting",
    "ReportResult": "reporting",
    "simulate": "running",
    "verify": "running",
    "deploy": "running",
    "bundle": "running",
    "BundleResult": "running",
    "SimulateResult": "running",
    "VerifyResult": "running",
    "DeployResult": "running",
    "evaluate_model": "running",
    "ModelEvalResult": "running",
    "ship_model": "shipping",
    "ShipResult": "shipping",
    "quant_health": "quantization",
    "QuantHealthResult": "quantization",
    "demo": "pipeline",
    "DemoResult": "pipeline",
    "bench": "benchmarking",
    "BenchResult": "benchmarking",
    "WorkflowError": "common",
    "configs": "inspection",
    "ConfigsResult": "inspection",
    "encode": "inputs",
    "EncodeResult": "inputs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
