"""Single measurements outside the ``tsslbp bench`` suites, run by the thin scripts in benchmarks/.

* :func:`train_step_vs_numpy_loop`: one forward + backward of a network against the tests' plain
  per-step numpy loop (:mod:`.numpy_loop`) on the same batch, interleaved
  (``benchmarks/train_step.py``).
* :func:`golden_vs_lava`: the golden model and Lava's fixed-point simulator on one exported file's
  test samples, outputs checked identical (``benchmarks/deploy_speed.py``).
* :func:`lava_runner_phases`: where a Lava run's time goes (build, compile + start, steps,
  read-out) on a random 64-200-10 network (``benchmarks/lava_runner.py``).

Each returns plain data; the ``*_lines`` functions format it as the scripts print it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import load_config, parse_config
from ..hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec
from .suites import load_numpy_loop

__all__ = [
    "golden_vs_lava",
    "golden_vs_lava_lines",
    "lava_runner_phases",
    "lava_runner_lines",
    "train_step_vs_numpy_loop",
    "train_step_lines",
]


def train_step_vs_numpy_loop(
    config: str | Path, batch: int = 50, repeats: int = 30, seed: int = 0
) -> dict[str, Any]:
    """Median ms per forward + backward of tsslbp and of the plain numpy loop, interleaved."""
    from ..configs import find_config
    from ..train.functional import psp
    from ..train.losses import desired_spike_pattern, kernel_loss
    from ..train.network import TsslbpNetwork

    ref = load_numpy_loop()
    cfg = load_config(find_config(config))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TsslbpNetwork(cfg)
    x = rng.uniform(0, 1, size=(batch, cfg.input_size)).astype(np.float32)
    labels = rng.integers(0, cfg.data.n_class, size=batch)
    x_t, labels_t = torch.from_numpy(x), torch.from_numpy(labels)
    weights = [layer.weight.detach().numpy() for layer in model.layers if hasattr(layer, "weight")]
    thresholds = [layer.neuron.v_th for layer in model.layers if hasattr(layer, "neuron")]
    desired = (
        np.eye(cfg.data.n_class, dtype=np.float32)[labels][..., None]
        * desired_spike_pattern(cfg.n_steps).numpy()
    )
    target_psp = psp(torch.from_numpy(desired), cfg.neuron.tau_s).numpy()

    def ours() -> None:
        model.zero_grad(set_to_none=True)
        kernel_loss(model(x_t).spikes, labels_t, cfg.neuron.tau_s).backward()

    def plain() -> None:
        ref.network_grads(
            x, weights, target_psp, cfg.n_steps, cfg.neuron.tau_m, cfg.neuron.tau_s, thresholds
        )

    for fn in (ours, plain):  # warm-up
        fn()
    times: dict[str, list[float]] = {"tsslbp": [], "plain loop": []}
    for _ in range(repeats):
        for name, fn in (("tsslbp", ours), ("plain loop", plain)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {
        "sizes": [cfg.input_size, *(w.shape[0] for w in weights)],
        "n_steps": cfg.n_steps,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "ms_per_step": {k: statistics.median(v) * 1e3 for k, v in times.items()},
    }


def train_step_lines(result: dict[str, Any]) -> list[str]:
    med, batch = result["ms_per_step"], result["batch"]
    lines = [
        f"training step (forward + backward), {'-'.join(map(str, result['sizes']))}, "
        f"T={result['n_steps']}, batch {batch}, {result['threads']} threads, "
        f"median of {result['repeats']}:"
    ]
    lines += [
        f"  {name:<11} {ms:8.2f} ms/step   {batch / ms * 1e3:9.0f} samples/s"
        for name, ms in med.items()
    ]
    lines.append(f"  speed-up    {med['plain loop'] / med['tsslbp']:8.2f}x")
    return lines


def golden_vs_lava(
    model: str | Path, samples: int = 200, repeats: int = 3, data_dir: str | Path | None = None
) -> dict[str, Any]:
    """Median seconds of the golden model and of Lava on the first ``samples`` test samples.

    Raises:
        AssertionError: the two outputs differ.
    """
    from ..data import load_experiment_data
    from ..deploy.runner import run_lava
    from ..export.netx import read_netx
    from ..hwmodels.golden import run_golden
    from ..hwmodels.readout import encode_for_spec

    spec = read_netx(model)
    cfg = parse_config(spec.metadata["config"], "netx metadata")
    data = load_experiment_data(cfg, data_dir)
    inputs = encode_for_spec(data.test.images[:samples].numpy(), spec)
    golden_s, lava_s, lava_start = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        golden = run_golden(spec, inputs, record=False)
        golden_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lava = run_lava(spec, inputs, record=False)
        lava_s.append(time.perf_counter() - t0)
        lava_start.append(lava.timing.build_s + lava.timing.startup_s)
        assert np.array_equal(golden.output, lava.output), "golden and Lava outputs differ"
    return {
        "model": str(model),
        "sizes": [int(np.prod(layer.shape)) for layer in spec.layers],
        "samples": int(inputs.shape[0]),
        "steps": int(inputs.shape[-1]),
        "repeats": repeats,
        "golden_s": statistics.median(golden_s),
        "lava_s": statistics.median(lava_s),
        "lava_before_first_step_s": statistics.median(lava_start),
    }


def golden_vs_lava_lines(r: dict[str, Any]) -> list[str]:
    n, g, lv = r["samples"], r["golden_s"], r["lava_s"]
    return [
        f"{r['model']}: {'-'.join(map(str, r['sizes']))}, {n} samples x {r['steps']} steps, "
        f"median of {r['repeats']} (outputs identical)",
        f"  golden  {n / g:10.1f} samples/s  ({g:.3f} s)",
        f"  lava    {n / lv:10.1f} samples/s  ({lv:.2f} s, of which "
        f"{r['lava_before_first_step_s']:.2f} s before the first step)",
        f"  ratio   {lv / g:10.1f}x",
    ]


def _random_dense_spec(rng: np.random.Generator, sizes: tuple[int, ...]) -> NetworkSpec:
    """Dense layers with random weights in the set the quantizer writes (even, [-80, 80])."""
    # tau_s = 3, tau_m = 5 as the quantizer maps them (iDecay 1365, vDecay 819).
    neuron = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=60)
    layers = tuple(
        DenseLayer(weight=2 * rng.integers(-40, 41, (n_out, n_in)), neuron=neuron)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    return NetworkSpec(layers=layers, input_shape=(sizes[0],), input_message_bits=8)


def lava_runner_phases(
    samples: int = 50, steps: int = 5, repeats: int = 3, record: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Lava runs of a random 64-200-10 network (8-bit graded input): each run's phase timings."""
    from ..deploy.runner import run_lava

    rng = np.random.default_rng(seed)
    sizes = (64, 200, 10)
    spec = _random_dense_spec(rng, sizes)
    # Inputs are sent for T steps; each synaptic layer adds one step of delay.
    steps_per_sample = steps + len(spec.layers)
    x = rng.integers(0, 256, (samples, sizes[0], steps))
    runs = []
    for _ in range(repeats):
        result = run_lava(spec, x, record=record, steps_per_sample=steps_per_sample)
        runs.append({"timing": result.timing, "output_spikes": int(result.output.sum())})
    return {
        "sizes": sizes,
        "samples": samples,
        "steps": steps,
        "delay": len(spec.layers),
        "record": record,
        "runs": runs,
    }


def lava_runner_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{'-'.join(map(str, r['sizes']))}, {r['samples']} samples x ({r['steps']} + {r['delay']}) "
        f"steps, record={r['record']}"
    ]
    for i, run in enumerate(r["runs"]):
        t = run["timing"]
        lines.append(
            f"  run {i + 1}: before step 1 {t.build_s + t.startup_s:.2f} s "
            f"(build {t.build_s:.3f} s, compile + start {t.startup_s:.2f} s); "
            f"{t.n_steps} steps in {t.run_s:.2f} s = {t.steps_per_s:.0f} steps/s, "
            f"{t.samples_per_s:.0f} samples/s; read-out + stop {t.readout_s:.2f} s; "
            f"total {t.total_s:.2f} s; {run['output_spikes']} output spikes"
        )
    rate = statistics.median(run["timing"].steps_per_s for run in r["runs"])
    lines.append(f"median {rate:.0f} steps/s = {rate / (r['steps'] + r['delay']):.0f} samples/s")
    return lines
