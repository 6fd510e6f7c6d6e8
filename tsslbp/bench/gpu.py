"""Training-step speed on a GPU: tsslbp's Triton kernels vs its torch-ops path vs the peers.

The same step as the CPU throughput suite (forward, backward, Adam; batch 64, T = 5, random
inputs), on one CUDA device, timed interleaved with a device synchronisation after each step
(median of the repeats). Peers run when installed: snnTorch (:mod:`.peers`) and the others that
:mod:`.peers` knows. Without a CUDA device the suite reports that and measures nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .peers import peer_steppers
from .suites import NETWORKS, _adam_stepper, _kernels_off, bench_config, time_interleaved

__all__ = ["gpu_steppers", "gpu_throughput"]


def gpu_steppers(
    cfg: Any, batch: int, device: torch.device, seed: int = 0
) -> dict[str, Callable[[], None] | str]:
    """One training step per implementation on ``device``, each ending in a synchronisation."""
    from ..train.loop import loss_function
    from ..train.network import TsslbpNetwork

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, cfg.input_size, generator=gen).to(device)
    y = torch.randint(0, cfg.data.n_class, (batch,), generator=gen).to(device)
    torch.manual_seed(seed)
    loss_fn = loss_function(cfg)
    steps: dict[str, Callable[[], None] | str] = {}
    fused = TsslbpNetwork(cfg).to(device)
    steps["tsslbp"] = _adam_stepper(fused, cfg.train.lr, lambda: loss_fn(fused(x).spikes, y))
    plain = TsslbpNetwork(cfg).to(device)
    plain.load_state_dict(fused.state_dict())
    steps["tsslbp (torch ops)"] = _adam_stepper(
        plain, cfg.train.lr, lambda: loss_fn(plain(x).spikes, y), context=_kernels_off
    )
    steps.update(peer_steppers(cfg, x, y))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def synced(step: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            step()
            sync()

        return run

    return {k: synced(v) if callable(v) else v for k, v in steps.items()}


def gpu_throughput(
    quick: bool,
    batch: int = 64,
    n_steps: int = 5,
    log: Callable[[str], None] = print,
    networks: dict[str, str] = NETWORKS,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Samples/s of one training step per network and implementation on a CUDA device.

    Args:
        device: the device to time (default: ``cuda`` when available; tests pass ``cpu``).
    """
    if device is None and not torch.cuda.is_available():
        return [{"unavailable": "no CUDA device"}]
    dev = torch.device(device or "cuda")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
    rows = []
    for net, config in networks.items():
        cfg = bench_config(config, n_steps)
        steppers = gpu_steppers(cfg, batch, dev)
        ready = {k: v for k, v in steppers.items() if callable(v)}
        repeats = 10 if quick else 50
        log(f"  {net} on {name}: timing {', '.join(ready)} ({repeats} interleaved steps each)")
        seconds = time_interleaved(ready, repeats, warmup=3)
        base = seconds.get("tsslbp")
        for impl, value in steppers.items():
            row: dict[str, Any] = {"network": net, "implementation": impl, "device": name}
            if impl in seconds:
                row.update(
                    ms_per_step=1e3 * seconds[impl],
                    samples_per_s=batch / seconds[impl],
                    time_vs_tsslbp=seconds[impl] / base if base else None,
                )
            else:
                row["unavailable"] = value
            rows.append(row)
    return rows
