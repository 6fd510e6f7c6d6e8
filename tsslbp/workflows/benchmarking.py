"""The ``bench`` job: :func:`tsslbp.bench.run_bench` timed, with the tables it prints."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bench import SUITES, markdown_report, run_bench
from .common import Log

__all__ = ["BenchResult", "bench"]


@dataclass(frozen=True)
class BenchResult:
    """Every figure of the suites that ran (``results``, as results.json holds them)."""

    out: Path
    results: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return self.results

    def lines(self) -> list[str]:
        return [
            "",
            markdown_report(self.results),
            f"wrote {self.out}/results.json, results.md and plots in {self.seconds:.0f} s",
        ]


def bench(
    out: Path = Path("runs/bench"),
    *,
    quick: bool = False,
    suites: Sequence[str] = (),
    log: Log = None,
) -> BenchResult:
    """Run the benchmark suites (``suites``: some of :data:`tsslbp.bench.SUITES`; empty: all)
    and write results.json, results.md, the plots and a manifest into ``out``."""
    t0 = time.perf_counter()
    results = run_bench(out, quick=quick, suites=suites or SUITES, log=log or (lambda line: None))
    return BenchResult(out, results, time.perf_counter() - t0)
