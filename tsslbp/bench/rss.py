"""Peak resident memory of one implementation's training step, in a fresh process.

    python -m tsslbp.bench.rss CONFIG IMPLEMENTATION T BATCH

Builds the network and batch, records the RSS, runs three training steps and prints one JSON line:
``rss_before_mb`` (process with torch, model and batch), ``peak_rss_mb`` (the kernel's high-water
mark VmHWM) and their difference ``step_rss_mb``, the memory the steps themselves needed at their
peak. The high-water mark is reset first (``/proc/self/clear_refs``): a process started from a
large parent otherwise inherits the parent's peak (``ru_maxrss`` survives fork + exec on Linux).
"""

from __future__ import annotations

import json
import sys

__all__ = ["memory_mb", "main"]


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def main(argv: list[str] | None = None) -> None:
    from .._malloc import retain_freed_memory
    from .suites import bench_config, make_steppers

    retain_freed_memory()  # as the tsslbp command line does

    config, impl, n_steps, batch = (argv or sys.argv[1:])[:4]
    cfg = bench_config(config, int(n_steps))
    step = make_steppers(cfg, int(batch), (impl,))[impl]
    if not callable(step):
        sys.exit(step)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS to the current RSS
    before = memory_mb("VmRSS")
    for _ in range(3):
        step()
    peak = memory_mb("VmHWM")
    print(
        json.dumps(
            {
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(peak, 1),
                "step_rss_mb": round(peak - before, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
