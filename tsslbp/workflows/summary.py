"""The summary table of ``tsslbp demo``, in the CLI's table format (:func:`table_lines`).

The README shows the demo's table as a fresh run prints it: ``make readme-figures``
(benchmarks/readme_figures.py) pastes it in from a real run, and a test re-renders the README's
table with :func:`table_lines` to check it is in exactly the format :func:`demo_rows` produces.
"""

from __future__ import annotations

from collections.abc import Sequence

from .common import format_table

__all__ = ["table_lines", "DEMO_HEADER", "DEMO_ROW_LABELS", "demo_rows"]

#: Columns of the demo's summary table.
DEMO_HEADER = ["model", "accuracy", "samples", "time", "spike match"]
#: Its rows, in order.
DEMO_ROW_LABELS = (
    "float (PyTorch)",
    "fixed point (golden)",
    "golden, Lava subset",
    "Lava fixed_pt",
)


def table_lines(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """The header and rows, each column right-aligned to its widest cell, two spaces apart.

    >>> table_lines([["a", "1.5"]], ["name", "x"])
    ['name    x', '   a  1.5']
    """
    return format_table(rows, header)


def demo_rows(
    float_acc: float,
    float_seconds: float,
    golden_acc: float,
    golden_seconds: float,
    n_test: int,
    lava_subset: dict[str, float],
    lava_seconds: dict[str, float],
    n_lava: int,
    spike_match: float,
) -> list[list[str]]:
    """The demo's rows (:data:`DEMO_ROW_LABELS`): float and golden on the whole test split, golden
    and Lava on the verified subset (``lava_subset``/``lava_seconds`` keyed ``golden``, ``lava``)."""
    return [
        [DEMO_ROW_LABELS[0], f"{100 * float_acc:.2f}%", str(n_test), f"{float_seconds:.2f} s", "-"],
        [
            DEMO_ROW_LABELS[1],
            f"{100 * golden_acc:.2f}%",
            str(n_test),
            f"{golden_seconds:.2f} s",
            "-",
        ],
        [
            DEMO_ROW_LABELS[2],
            f"{100 * lava_subset['golden']:.2f}%",
            str(n_lava),
            f"{lava_seconds['golden']:.2f} s",
            "-",
        ],
        [
            DEMO_ROW_LABELS[3],
            f"{100 * lava_subset['lava']:.2f}%",
            str(n_lava),
            f"{lava_seconds['lava']:.1f} s",
            f"{100 * spike_match:.2f}%",
        ],
    ]
