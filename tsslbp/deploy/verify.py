"""The bit-accuracy report: golden model and Lava on the same inputs, every layer, every step.

This is the one place where the two integer executions are compared (``tsslbp verify``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..hwmodels.golden import run_golden
from ..hwmodels.health import LayerHealth, state_health
from ..hwmodels.readout import predict_counts
from ..hwmodels.spec import NetworkSpec

__all__ = ["Mismatch", "LayerMatch", "VerifyReport", "compare_runs", "verify_spec"]


@dataclass(frozen=True)
class Mismatch:
    """The first differing spike: where, and both sides' state there."""

    layer: int
    sample: int
    neuron: tuple[int, ...]
    step: int
    golden: dict[str, int]
    lava: dict[str, int]

    def line(self) -> str:
        def fmt(d: dict[str, int]) -> str:
            return ", ".join(f"{k}={v}" for k, v in d.items())

        return (
            f"first mismatch: layer {self.layer}, sample {self.sample}, neuron {self.neuron}, step {self.step}: "
            f"golden ({fmt(self.golden)}) vs lava ({fmt(self.lava)})"
        )


@dataclass(frozen=True)
class LayerMatch:
    layer: int
    spike_match: float
    u_match: float
    v_match: float
    golden_spikes: int
    lava_spikes: int


@dataclass(frozen=True)
class VerifyReport:
    n_samples: int
    steps_per_sample: int
    layers: tuple[LayerMatch, ...]
    first_mismatch: Mismatch | None
    accuracy: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    health: tuple[LayerHealth, ...] = ()

    def warnings(self) -> list[str]:
        """Saturation seen in the golden run, one line per affected layer."""
        out = []
        for h in self.health:
            if h.v_saturated:
                out.append(
                    f"layer {h.layer}: v saturated at 2**23 - 1 in {h.v_saturated:.3%} of the values"
                )
            if h.u_near_wrap:
                out.append(
                    f"layer {h.layer}: |u| within 1% of the 24-bit wrap in {h.u_near_wrap:.3%} of the values"
                )
        return out

    @property
    def exact(self) -> bool:
        return self.first_mismatch is None and all(
            m.spike_match == 1.0 and m.u_match == 1.0 and m.v_match == 1.0 for m in self.layers
        )

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self) | {"exact": self.exact}


def compare_runs(golden: Any, lava: Any) -> tuple[tuple[LayerMatch, ...], Mismatch | None]:
    """Compare two recorded runs (per-layer ``spikes``, ``u``, ``v`` arrays (B, *shape, S))."""
    matches, first = [], None
    for i, (gs, ls) in enumerate(zip(golden.spikes, lava.spikes)):
        equal = gs == ls

        def same(name: str) -> np.ndarray:
            # Flatten layers have no neurons: no u, v on either side.
            a, b = getattr(golden, name)[i], getattr(lava, name)[i]
            if a is None and b is None:
                return np.ones_like(equal)
            if a is None or b is None:
                return np.zeros_like(equal)
            return a == b

        u_eq, v_eq = same("u"), same("v")
        matches.append(
            LayerMatch(
                i,
                float(equal.mean()),
                float(u_eq.mean()),
                float(v_eq.mean()),
                int(gs.sum()),
                int(ls.sum()),
            )
        )
        if first is None:
            bad = ~(equal & u_eq & v_eq)
            if bad.any():
                # Earliest step first, then sample, then neuron.
                idx = np.argwhere(np.moveaxis(bad, -1, 0))[0]
                step, sample, neuron = int(idx[0]), int(idx[1]), tuple(int(j) for j in idx[2:])
                at = (sample, *neuron, step)

                def state(run: Any) -> dict[str, int]:
                    return {
                        k: int(getattr(run, k)[i][at])
                        for k in ("spikes", "u", "v")
                        if getattr(run, k)[i] is not None
                    }

                first = Mismatch(i, sample, neuron, step, state(golden), state(lava))
    return tuple(matches), first


def verify_spec(
    spec: NetworkSpec,
    inputs: np.ndarray,
    labels: np.ndarray | None = None,
    progress: bool = False,
    on_runs: Callable[[Any, Any], None] | None = None,
    period: int | None = None,
) -> VerifyReport:
    """Run golden and Lava on ``inputs`` (B, *input shape in Lava order, S) and compare everything.

    With ``labels`` and a spec exported by tsslbp (readout metadata), also scores both runs.
    ``on_runs(golden, lava)``, when given, receives both recorded runs (e.g. to plot spike rasters
    of the very runs that were compared). With ``period`` P, both run each sample for P steps
    (inputs zero-padded) with the Loihi 2 reset schedule (netx ``reset_interval=P``,
    ``reset_offset=1``; :mod:`tsslbp.hwmodels.schedule`).

    Raises:
        ValueError: If ``period`` is shorter than the inputs.
    """
    import time

    from ..hwmodels.schedule import HW_RESET_OFFSET
    from .runner import run_lava

    if period is not None:
        if period < inputs.shape[-1]:
            raise ValueError(f"--period {period} is shorter than the {inputs.shape[-1]} steps")
        padded = np.zeros(inputs.shape[:-1] + (period,), dtype=np.int64)
        padded[..., : inputs.shape[-1]] = inputs
        inputs = padded
    schedule = {"reset_interval": period, "reset_offset": HW_RESET_OFFSET}
    t0 = time.perf_counter()
    golden = run_golden(spec, inputs, record=True, **schedule)
    t1 = time.perf_counter()
    lava = run_lava(spec, inputs, record=True, progress=progress, **schedule)
    t2 = time.perf_counter()
    layers, first = compare_runs(golden, lava)
    if on_runs is not None:
        on_runs(golden, lava)
    accuracy = {}
    if labels is not None and "readout_offset" in spec.metadata:
        for name, run in (("golden", golden), ("lava", lava)):
            out = run.spikes[-1].reshape(len(labels), -1, inputs.shape[-1])
            accuracy[name] = float((predict_counts(out, spec.metadata) == labels).mean())
    return VerifyReport(
        n_samples=int(inputs.shape[0]),
        steps_per_sample=int(inputs.shape[-1]),
        layers=layers,
        first_mismatch=first,
        accuracy=accuracy,
        seconds={"golden": t1 - t0, "lava": t2 - t1},
        health=tuple(state_health(golden.u, golden.v)),
    )
