"""Data-parallel scaling on CPU: training samples/s of 1 and N torchrun processes, one thread each.

Each measurement is a fresh ``torchrun --standalone --nproc-per-node N -m tsslbp.bench.ddp``
that trains the network (``train_epoch``, the loop ``tsslbp train`` runs, with its per-batch
all-reduces) on random inputs at a fixed global batch: a short warm-up epoch, then a timed one of
several seconds (shorter runs were dominated by start-up noise: 12 CNN steps gave 1.54x where 32
gave 1.9x on the same quiet machine). Runs with 1 and N processes alternate, and each figure is
the median over the rounds; the efficiency is ``samples/s(N) / (N * samples/s(1))``.

Beside them, N independent 1-process runs at the same time (no communication) give the
machine's ceiling: what N processes get when they only share the cores, caches and memory bus.
The gap between that ceiling and the data-parallel figure is the cost of the all-reduces.

Run as a module it is the worker: ``python -m tsslbp.bench.ddp CONFIG STEPS BATCH`` prints one
JSON line (rank 0) with the timed epoch's samples/s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["DDP_NETWORKS", "ddp_scaling", "measure", "main"]

DDP_NETWORKS = {
    "Fashion-MNIST MLP 784-400-400-10": "fmnist_mlp_400_400.yaml",
    "Fashion-MNIST CNN 32C5-P2-64C5-P2-1024-10": "fmnist_cnn.yaml",
}


def measure(config: str, processes: int, steps: int, batch: int) -> dict[str, Any]:
    """Samples/s of ``processes`` torchrun workers training ``steps`` global batches of ``batch``.

    Raises:
        RuntimeError: the run failed (its last line of stderr).
    """
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "tsslbp.bench.ddp",
        config,
        str(steps),
        str(batch),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{processes}-process run of {config} failed: {tail}")
    return json.loads(lines[-1])


def ddp_scaling(
    quick: bool,
    processes: int = 2,
    batch: int = 64,
    log: Callable[[str], None] = print,
    networks: dict[str, str] = DDP_NETWORKS,
) -> list[dict[str, Any]]:
    """Samples/s with 1 and ``processes`` processes (one thread each) per network, and efficiency."""
    rows = []
    for net, config in networks.items():
        is_cnn = "CNN" in net
        steps = (4 if is_cnn else 40) if quick else (40 if is_cnn else 400)
        rounds = 1 if quick else 3
        log(
            f"  {net}: {rounds} round(s) of 1 process, {processes} processes and {processes} "
            f"independent processes, {steps} steps each"
        )
        rates: dict[int, list[float]] = {1: [], processes: []}
        alone: list[float] = []
        try:
            for _ in range(rounds):
                for n in rates:
                    rates[n].append(measure(config, n, steps, batch)["samples_per_s"])
                alone.append(_independent(config, processes, steps, batch))
        except RuntimeError as err:
            rows.append({"network": net, "unavailable": str(err)})
            continue
        one, many = statistics.median(rates[1]), statistics.median(rates[processes])
        ceiling = statistics.median(alone)
        rows.append(
            {
                "network": net,
                "batch": batch,
                "T": 5,
                "steps": steps,
                "rounds": rounds,
                "processes": processes,
                "samples_per_s_1": one,
                "samples_per_s_n": many,
                "speedup": many / one,
                "efficiency": many / (processes * one),
                "samples_per_s_independent": ceiling,
                "ceiling_speedup": ceiling / one,
            }
        )
    return rows


def _independent(config: str, processes: int, steps: int, batch: int) -> float:
    """Summed samples/s of ``processes`` 1-process runs of ``steps`` batches started together."""
    with ThreadPoolExecutor(processes) as pool:
        runs = [pool.submit(measure, config, 1, steps, batch) for _ in range(processes)]
        return sum(run.result()["samples_per_s"] for run in runs)


def main(argv: list[str]) -> None:
    """The worker: train ``STEPS`` global batches of ``BATCH`` random samples, print samples/s."""
    from ..data import Split
    from ..train.distributed import session
    from ..train.loop import train_epoch
    from ..train.network import TsslbpNetwork
    from .suites import bench_config

    config, steps, batch = argv[0], int(argv[1]), int(argv[2])
    torch.set_num_threads(1)
    with session(torch.device("cpu")) as replicas:
        cfg = bench_config(config).replace(batch_size=batch)
        gen = torch.Generator().manual_seed(0)
        n = batch * steps
        split = Split(
            torch.rand(n, cfg.input_size, generator=gen),
            torch.randint(0, cfg.data.n_class, (n,), generator=gen),
        )
        warm = Split(split.images[: 2 * batch], split.labels[: 2 * batch])
        torch.manual_seed(0)
        model = TsslbpNetwork(cfg)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        net = replicas.wrap(model)
        train_epoch(net, warm, cfg, optimizer, 1, progress=False, replicas=replicas)
        replicas.barrier()
        t0 = time.perf_counter()
        done, _ = train_epoch(net, split, cfg, optimizer, 2, progress=False, replicas=replicas)
        seconds = time.perf_counter() - t0
        if replicas.is_main:
            print(json.dumps({"samples_per_s": done.seen / seconds, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
