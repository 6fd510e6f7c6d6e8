"""``tsslbp bench``: training and deployment speed, scaling and accuracy, measured side by side.

:func:`run_bench` runs the suites of :mod:`tsslbp.bench.suites`, then writes into ``out``:
``results.json`` (every figure, the machine, the versions), ``results.md`` (the tables, also
printed), ``scaling_T.png``, ``scaling_width.png``, ``throughput.png`` and a run manifest.
``quick`` shortens every suite (fewer repeats, samples, epochs and seeds) to fit in a few minutes
on 2 CPU cores; the full run is what BENCHMARKS.md records.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["SUITES", "run_bench", "markdown_report"]

SUITES = ("throughput", "scaling", "deploy", "accuracy", "ddp", "gpu")


def _machine() -> dict[str, Any]:
    from .._malloc import retain_freed_memory
    from ..train import kernels

    return {
        "tsslbp_kernels": f"numba {kernels.numba.__version__}"
        if kernels.enabled()
        else "off (torch ops)",
        "glibc_retain_freed_memory": retain_freed_memory(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_bench(
    out: str | Path,
    quick: bool = False,
    suites: Sequence[str] = SUITES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the chosen suites and write the results folder; returns the results dict."""
    from ..manifest import write_manifest
    from . import ddp, gpu, plots
    from . import suites as s

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise ValueError(
            f"unknown benchmark suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}"
        )
    results: dict[str, Any] = {"quick": quick, "machine": _machine(), "seconds": {}}
    runners = {
        "throughput": lambda: s.train_throughput(quick, log=log),
        "scaling": lambda: s.scaling(quick, log=log),
        "deploy": lambda: s.deploy_speed(quick, log=log),
        "accuracy": lambda: s.accuracy_vs_bptt(quick, log=log),
        "ddp": lambda: ddp.ddp_scaling(quick, log=log),
        "gpu": lambda: gpu.gpu_throughput(quick, log=log),
    }
    for name in SUITES:
        if name not in suites:
            continue
        log(f"[{name}]")
        t0 = time.perf_counter()
        results[name] = runners[name]()
        results["seconds"][name] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown_report(results)
    (out / "results.md").write_text(report)
    pngs = plots.write_plots(results, out)
    write_manifest(
        out / "results.json",
        outputs=[out / "results.md", *pngs],
        figures={"seconds": results["seconds"], "quick": quick},
    )
    return results


def _f(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown section: ``## title``, the table and a blank line."""
    return [
        f"## {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("|" + "".join(f" {cell} |" if cell else " |" for cell in row) for row in rows),
        "",
    ]


def _unavailable(r: dict[str, Any], lead: list[str], width: int) -> list[str]:
    """A row that says why a measurement is missing: ``lead`` cells, the reason, blanks."""
    return [*lead, r["unavailable"], *[""] * (width - len(lead) - 1)]


def markdown_report(results: dict[str, Any]) -> str:
    """The results as markdown tables (what ``tsslbp bench`` prints and writes to results.md)."""
    m = results["machine"]
    lines = [
        f"# tsslbp bench{' --quick' if results.get('quick') else ''}",
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}"
        f"{', glibc keeps freed memory (tsslbp/_malloc.py)' if m.get('glibc_retain_freed_memory') else ''}"
        f"{', tsslbp kernels: ' + m['tsslbp_kernels'] if 'tsslbp_kernels' in m else ''}.",
        "Times are medians of interleaved repeats in one process; ratios come from the same run.",
        "",
    ]
    if "throughput" in results:
        header = "network implementation ms/step samples/s".split() + [
            "time vs tsslbp",
            "peak RSS MiB",
            "step RSS MiB",
        ]
        rows = [
            _unavailable(r, [r["network"], r["implementation"]], len(header))
            if "unavailable" in r
            else [
                r["network"],
                r["implementation"],
                _f(r["ms_per_step"], 2),
                _f(r["samples_per_s"], 0),
                f"{_f(r.get('time_vs_tsslbp'), 2)}x",
                _f(r.get("peak_rss_mb")),
                _f(r.get("step_rss_mb")),
            ]
            for r in results["throughput"]
        ]
        lines += _table("Training step (forward + backward + Adam), batch 64, T = 5", header, rows)
    if "scaling" in results:
        for key, label in (("T", "time steps T (hidden 400)"), ("width", "hidden width (T = 5)")):
            axis = "T" if key == "T" else "hidden"
            points = results["scaling"][key]
            impls = list(dict.fromkeys(r["implementation"] for r in points))
            header = [axis, *impls] + (["tsslbp ms per time step"] if key == "T" else [])
            rows = []
            for x in dict.fromkeys(r[axis] for r in points):
                cells = {r["implementation"]: r["ms_per_step"] for r in points if r[axis] == x}
                extra = [_f(cells.get("tsslbp", float("nan")) / x, 3)] if key == "T" else []
                rows.append([str(x), *(_f(cells.get(i), 2) for i in impls), *extra])
            lines += _table(f"Step time (ms) vs {label}, Fashion-MNIST MLP, batch 64", header, rows)
    if "deploy" in results:
        header = [
            "network",
            "steps/sample",
            "Lava samples/s (N)",
            "Lava before step 1",
            "golden samples/s, same N",
            "ratio",
            "golden samples/s, whole test set",
            "ratio",
            "outputs identical",
        ]
        rows = [
            _unavailable(r, [r["network"]], len(header))
            if "unavailable" in r
            else [
                r["network"],
                str(r["steps_per_sample"]),
                f"{_f(r['lava_samples_per_s'])} ({r['lava_samples']})",
                f"{_f(r['lava_before_first_step_s'], 2)} s",
                _f(r["golden_samples_per_s_same_samples"], 0),
                f"{_f(r['ratio_same_samples'], 0)}x",
                f"{_f(r['golden_samples_per_s_batched'], 0)} ({r['golden_samples']})",
                f"{_f(r['ratio_batched'], 0)}x",
                "yes" if r["outputs_identical"] else "NO",
            ]
            for r in results["deploy"]
        ]
        lines += _table(
            "Deployment: golden model vs Lava's fixed-point CPU simulator", header, rows
        )
    if "accuracy" in results:
        header = ["seed", "epochs", "TSSL-BP (tsslbp)", "snnTorch BPTT"]
        rows = [
            _unavailable(r, ["-", "-"], len(header))
            if "unavailable" in r
            else [
                str(r["seed"]),
                str(r["epochs"]),
                f"{100 * r['tsslbp']:.2f}%",
                f"{100 * r['snntorch']:.2f}%"
                if "snntorch" in r
                else r.get("snntorch_unavailable", "-"),
            ]
            for r in results["accuracy"]
        ]
        lines += _table(
            "Fashion-MNIST MLP 784-400-400-10, T = 5: test accuracy after equal epochs",
            header,
            rows,
        )
    if "ddp" in results:
        header = [
            "network",
            "global batch",
            "samples/s, 1 process",
            "processes",
            "samples/s",
            "speed-up",
            "efficiency",
            "independent processes (no communication)",
        ]
        rows = [
            _unavailable(r, [r["network"]], len(header))
            if "unavailable" in r
            else [
                r["network"],
                str(r["batch"]),
                _f(r["samples_per_s_1"], 0),
                str(r["processes"]),
                _f(r["samples_per_s_n"], 0),
                f"{_f(r['speedup'], 2)}x",
                f"{_f(100 * r['efficiency'], 0)}%",
                f"{_f(r['samples_per_s_independent'], 0)} ({_f(r['ceiling_speedup'], 2)}x)"
                if "samples_per_s_independent" in r
                else "-",
            ]
            for r in results["ddp"]
        ]
        lines += _table(
            "Data-parallel training on CPU (torchrun, gloo), one thread per process, T = 5",
            header,
            rows,
        )
    if "gpu" in results:
        header = "network implementation device ms/step samples/s".split() + ["time vs tsslbp"]
        rows = [
            _unavailable(r, [r.get("network", "-"), r.get("implementation", "-")], len(header))
            if "unavailable" in r
            else [
                r["network"],
                r["implementation"],
                r["device"],
                _f(r["ms_per_step"], 3),
                _f(r["samples_per_s"], 0),
                f"{_f(r.get('time_vs_tsslbp'), 2)}x",
            ]
            for r in results["gpu"]
        ]
        lines += _table(
            "Training step on a GPU (forward + backward + Adam), batch 64, T = 5", header, rows
        )
    lines.append("Suite times: " + ", ".join(f"{k} {v} s" for k, v in results["seconds"].items()))
    return "\n".join(lines) + "\n"
