"""PNG plots of ``tsslbp bench`` results (matplotlib's Agg canvas: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _lines(rows: list[dict[str, Any]], x_key: str, path: Path, xlabel: str, title: str) -> Path:
    fig, ax = _figure()
    for impl in dict.fromkeys(r["implementation"] for r in rows):
        pts = sorted((r[x_key], r["ms_per_step"]) for r in rows if r["implementation"] == impl)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ms per training step (batch 64)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Write the plots the results allow; returns their paths."""
    paths = []
    if "scaling" in results:
        paths.append(
            _lines(
                results["scaling"]["T"],
                "T",
                out / "scaling_T.png",
                "time steps T",
                "Step time vs T (Fashion-MNIST MLP)",
            )
        )
        paths.append(
            _lines(
                results["scaling"]["width"],
                "hidden",
                out / "scaling_width.png",
                "hidden width",
                "Step time vs width (T = 5)",
            )
        )
    if "throughput" in results:
        rows = [r for r in results["throughput"] if "samples_per_s" in r]
        fig, ax = _figure()
        nets = list(dict.fromkeys(r["network"] for r in rows))
        impls = list(dict.fromkeys(r["implementation"] for r in rows))
        width = 0.8 / max(len(impls), 1)
        for j, impl in enumerate(impls):
            values = [
                next(
                    (
                        r["samples_per_s"]
                        for r in rows
                        if r["network"] == n and r["implementation"] == impl
                    ),
                    0.0,
                )
                for n in nets
            ]
            ax.bar([i + j * width for i in range(len(nets))], values, width, label=impl)
        ax.set_xticks([i + width * (len(impls) - 1) / 2 for i in range(len(nets))])
        ax.set_xticklabels([n.split(" ")[1] for n in nets])
        ax.set_yscale("log")
        ax.set_ylabel("training samples/s (batch 64, T = 5)")
        ax.set_title("Training throughput")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput.png")
        paths.append(out / "throughput.png")
    return paths
