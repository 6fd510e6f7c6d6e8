"""The benchmark suites behind ``tsslbp bench``: each returns plain dicts (JSON-ready).

* :func:`train_throughput`: one training step (forward, backward, Adam) of the Fashion-MNIST MLP
  and CNN at batch 64, T=5: tsslbp (fused kernels) vs tsslbp on plain torch ops vs the
  step-by-step baseline (:mod:`.reference`) vs the tests' numpy loop vs snnTorch BPTT
  (:mod:`.peers`), timed interleaved in this process (median), plus each one's peak RSS from a
  fresh subprocess (:mod:`.rss`).
* :func:`scaling`: the same step as T grows (5, 10, 20, 50) and as the hidden width grows.
* :func:`deploy_speed`: golden model vs Lava's fixed-point CPU simulator on exported networks.
* :func:`accuracy_vs_bptt`: Fashion-MNIST MLP test accuracy after equal epochs, several seeds.

Ratios are only ever formed from figures measured side by side in one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from ..config import ExperimentConfig, LayerKind, load_config, parse_config
from ..configs import CONFIG_DIR
from ..train.loop import loss_function
from ..train.network import TsslbpNetwork
from .peers import (
    PEERS,
    SNNTORCH_MISSING,
    SnnTorchNet,
    peer_steppers,
    snntorch_available,
    snntorch_loss,
)
from .reference import step_by_step_grads

__all__ = [
    "CONFIGS",
    "bench_config",
    "load_numpy_loop",
    "make_steppers",
    "time_interleaved",
    "train_throughput",
    "scaling",
    "deploy_speed",
    "accuracy_vs_bptt",
]

#: The shipped configs the suites build their networks from (package data).
CONFIGS = CONFIG_DIR
IMPLEMENTATIONS = (
    "tsslbp",
    "tsslbp (torch ops)",
    "step-by-step",
    "numpy loop (tests)",
    "snntorch",
    "spikingjelly",
    "norse",
)


def bench_config(name: str, n_steps: int = 5, hidden: int | None = None) -> ExperimentConfig:
    """A shipped config without dropout, at ``n_steps``; ``hidden`` resizes an MLP's hidden layers."""
    raw = load_config(CONFIGS / name).to_dict()
    raw["Network"]["n_steps"] = n_steps
    layers = {k: v for k, v in raw["Layers"].items() if v["type"] != LayerKind.DROPOUT.value}
    if hidden is not None:
        names = list(layers)
        for i, key in enumerate(names):
            if i > 0:
                layers[key]["n_inputs"] = hidden
            if i < len(names) - 1:
                layers[key]["n_outputs"] = hidden
    raw["Layers"] = layers
    return parse_config(raw, f"{name} (benchmark variant)")


def make_steppers(
    cfg: ExperimentConfig,
    batch: int,
    implementations: tuple[str, ...] = IMPLEMENTATIONS,
    seed: int = 0,
) -> dict[str, Callable[[], None] | str]:
    """One training step (forward, backward, Adam update) per implementation, on the same batch.

    Returns ``{name: step function}``, or ``{name: reason}`` where an implementation is unavailable.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, cfg.input_size, generator=gen)
    y = torch.randint(0, cfg.data.n_class, (batch,), generator=gen)
    steppers: dict[str, Callable[[], None] | str] = {}
    torch.manual_seed(seed)
    model = TsslbpNetwork(cfg)
    if "tsslbp" in implementations:
        loss_fn = loss_function(cfg)
        steppers["tsslbp"] = _adam_stepper(model, cfg.train.lr, lambda: loss_fn(model(x).spikes, y))
    if "tsslbp (torch ops)" in implementations:
        # The same network and equations without the fused kernels (TSSLBP_KERNELS=torch during
        # its steps): the torch implementation that GPUs and other dtypes use.
        torch_model = TsslbpNetwork(cfg)
        torch_model.load_state_dict(model.state_dict())
        torch_loss_fn = loss_function(cfg)
        steppers["tsslbp (torch ops)"] = _adam_stepper(
            torch_model,
            cfg.train.lr,
            lambda: torch_loss_fn(torch_model(x).spikes, y),
            context=_kernels_off,
        )
    if "step-by-step" in implementations:
        ref_model = TsslbpNetwork(cfg)
        ref_model.load_state_dict(model.state_dict())
        ref_opt = torch.optim.Adam(ref_model.parameters(), lr=cfg.train.lr)
        weights = [p for p in ref_model.parameters()]

        def step_reference() -> None:
            with torch.no_grad():
                _, grads = step_by_step_grads(ref_model, x, y)
            for w, g in zip(weights, grads):
                w.grad = g
            ref_opt.step()

        steppers["step-by-step"] = step_reference
    if "numpy loop (tests)" in implementations:
        steppers["numpy loop (tests)"] = _numpy_loop_stepper(cfg, model, x, y)
    if any(name in implementations for name in PEERS):
        peers = peer_steppers(cfg, x, y, [name for name in PEERS if name in implementations])
        steppers.update(peers)
    return steppers


def _adam_stepper(
    module: torch.nn.Module,
    lr: float,
    loss_of: Callable[[], torch.Tensor],
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Callable[[], None]:
    """A step function: ``loss_of()`` and its backward pass inside ``context()``, then an Adam update."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)

    def step() -> None:
        with context():
            loss = loss_of()
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()

    return step


def _kernels_off() -> contextlib.AbstractContextManager:
    """A context with ``TSSLBP_KERNELS=torch`` set (the environment restored after)."""
    return mock.patch.dict(os.environ, {"TSSLBP_KERNELS": "torch"})


def load_numpy_loop() -> Any:
    """The tests' plain numpy loop (:mod:`tsslbp.bench.numpy_loop`, installed with the package)."""
    from . import numpy_loop

    return numpy_loop


def _numpy_loop_stepper(
    cfg: ExperimentConfig, model: TsslbpNetwork, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], None] | str:
    """A training step whose gradients come from the tests' plain numpy loop (MLPs only)."""
    if any(layer.type is not LayerKind.LINEAR for layer in cfg.layers):
        return "the tests' numpy loop covers linear layers only"
    from ..train.losses import desired_psp
    from . import numpy_loop as ref

    loop_model = TsslbpNetwork(cfg)
    loop_model.load_state_dict(model.state_dict())
    params = list(loop_model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.train.lr)
    x_np = x.numpy()
    target = desired_psp(y, cfg.data.n_class, cfg.n_steps, cfg.neuron.tau_s).numpy()
    thresholds = [layer.neuron.v_th for layer in loop_model.layers]

    def step_numpy_loop() -> None:
        weights = [w.detach().numpy() for w in params]
        _, grads = ref.network_grads(
            x_np, weights, target, cfg.n_steps, cfg.neuron.tau_m, cfg.neuron.tau_s, thresholds
        )
        for w, g in zip(params, grads):
            w.grad = torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32))
        opt.step()

    return step_numpy_loop


def time_interleaved(
    fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds per call of each function, called in turn ``repeats`` times (after warm-up)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def _rss(config: str, impl: str, n_steps: int, batch: int) -> dict[str, float] | str:
    """Peak RSS of a fresh process doing 3 steps of one implementation (see :mod:`.rss`)."""
    cmd = [sys.executable, "-m", "tsslbp.bench.rss", config, impl, str(n_steps), str(batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


NETWORKS = {
    "Fashion-MNIST MLP 784-400-400-10": "fmnist_mlp_400_400.yaml",
    "Fashion-MNIST CNN 32C5-P2-64C5-P2-1024-10": "fmnist_cnn.yaml",
}


def train_throughput(
    quick: bool,
    batch: int = 64,
    n_steps: int = 5,
    log: Callable[[str], None] = print,
    networks: dict[str, str] = NETWORKS,
) -> list[dict[str, Any]]:
    """Samples/s, ms/step and peak RSS of one training step, per network and implementation."""
    rows = []
    for net, config in networks.items():
        cfg = bench_config(config, n_steps)
        steppers = make_steppers(cfg, batch)
        ready = {k: v for k, v in steppers.items() if callable(v)}
        is_cnn = "CNN" in net
        repeats = (3 if is_cnn else 10) if quick else (10 if is_cnn else 30)
        log(f"  {net}: timing {', '.join(ready)} ({repeats} interleaved steps each)")
        seconds = time_interleaved(ready, repeats, warmup=1 if is_cnn else 2)
        for impl, value in steppers.items():
            row: dict[str, Any] = {
                "network": net,
                "implementation": impl,
                "T": n_steps,
                "batch": batch,
            }
            if impl in seconds:
                row.update(
                    ms_per_step=1e3 * seconds[impl],
                    samples_per_s=batch / seconds[impl],
                    repeats=repeats,
                )
                rss = _rss(config, impl, n_steps, batch)
                row.update(rss if isinstance(rss, dict) else {"rss_error": rss})
            else:
                row["unavailable"] = value
            rows.append(row)
        base = seconds.get("tsslbp")
        for row in rows[-len(steppers) :]:
            if base and "ms_per_step" in row:
                row["time_vs_tsslbp"] = row["ms_per_step"] / (1e3 * base)
    return rows


def scaling(
    quick: bool,
    batch: int = 64,
    log: Callable[[str], None] = print,
    config: str = "fmnist_mlp_400_400.yaml",
    steps: tuple[int, ...] = (5, 10, 20, 50),
    widths: tuple[int, ...] = (100, 400, 1600),
) -> dict[str, list[dict[str, Any]]]:
    """Step time of an MLP (default: the Fashion-MNIST one) as T grows and as the hidden width grows."""
    out: dict[str, list[dict[str, Any]]] = {"T": [], "width": []}
    repeats = 5 if quick else 15
    for n_steps in steps:
        cfg = bench_config(config, n_steps)
        steppers = {k: v for k, v in make_steppers(cfg, batch).items() if callable(v)}
        log(f"  T = {n_steps}: {', '.join(steppers)}")
        for impl, s in time_interleaved(steppers, repeats, warmup=1).items():
            out["T"].append({"implementation": impl, "T": n_steps, "ms_per_step": 1e3 * s})
    for hidden in widths:
        cfg = bench_config(config, 5, hidden=hidden)
        steppers = {k: v for k, v in make_steppers(cfg, batch).items() if callable(v)}
        log(f"  hidden width {hidden}: {', '.join(steppers)}")
        for impl, s in time_interleaved(steppers, repeats, warmup=1).items():
            out["width"].append({"implementation": impl, "hidden": hidden, "ms_per_step": 1e3 * s})
    return out


DEPLOY_NETWORKS = {
    # name: (config, epochs in quick mode, epochs in full mode)
    "digits MLP 64-200-10": ("digits_mlp.yaml", 30, 30),
    "digits CNN 12C3-P2-32C3-P2-10": ("digits_cnn.yaml", 30, 30),
    "Fashion-MNIST MLP 784-400-400-10": ("fmnist_mlp_400_400.yaml", 1, 5),
}


def deploy_speed(
    quick: bool, lava_samples: int | None = None, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Golden model vs Lava on trained, exported networks: samples/s on the same samples."""
    from ..data import load_experiment_data
    from ..deploy.runner import run_lava
    from ..export.exporter import export_checkpoint
    from ..hwmodels.golden import run_golden
    from ..hwmodels.readout import encode_for_spec
    from ..train.loop import fit

    n_lava = lava_samples or (100 if quick else 300)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net, (config, quick_epochs, full_epochs) in DEPLOY_NETWORKS.items():
            cfg = load_config(CONFIGS / config).replace(
                epochs=quick_epochs if quick else full_epochs
            )
            try:
                data = load_experiment_data(cfg)
            except (OSError, ValueError) as err:
                rows.append({"network": net, "unavailable": str(err)})
                continue
            run = Path(tmp) / config
            log(f"  {net}: train {cfg.train.epochs} epoch(s), export")
            fit(cfg, data, run, progress=False)
            result = export_checkpoint(run / "last.pt", run / "model.net")
            spec = result.spec
            x_all = encode_for_spec(data.test.images.numpy(), spec)
            x = x_all[:n_lava]
            log(f"  {net}: Lava on {len(x)} samples, golden on the same and on all {len(x_all)}")
            t0 = time.perf_counter()
            lava = run_lava(spec, x, record=False)
            lava_wall = time.perf_counter() - t0  # everything: build, start, steps, read-out, stop
            golden_same = []
            for _ in range(3):
                t0 = time.perf_counter()
                golden = run_golden(spec, x, record=False)
                golden_same.append(time.perf_counter() - t0)
            golden_all = []
            for _ in range(3):
                t0 = time.perf_counter()
                run_golden(spec, x_all, record=False)
                golden_all.append(time.perf_counter() - t0)
            golden_all_s = statistics.median(golden_all)
            identical = bool(np.array_equal(golden.output, lava.output))
            g_same = statistics.median(golden_same)
            rows.append(
                {
                    "network": net,
                    "steps_per_sample": int(x.shape[-1]),
                    "lava_samples": len(x),
                    "lava_samples_per_s": len(x) / lava_wall,
                    "lava_before_first_step_s": lava.timing.build_s + lava.timing.startup_s,
                    "golden_samples_per_s_same_samples": len(x) / g_same,
                    "golden_samples": len(x_all),
                    "golden_samples_per_s_batched": len(x_all) / golden_all_s,
                    "ratio_same_samples": (len(x) / g_same) / (len(x) / lava_wall),
                    "ratio_batched": (len(x_all) / golden_all_s) / (len(x) / lava_wall),
                    "outputs_identical": identical,
                }
            )
    return rows


def accuracy_vs_bptt(quick: bool, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Fashion-MNIST MLP test accuracy after equal epochs: TSSL-BP (tsslbp train) vs snnTorch BPTT."""
    from ..data import load_experiment_data
    from ..train.loop import fit

    epochs, seeds = (1, (0,)) if quick else (5, (0, 1, 2))
    base = load_config(CONFIGS / "fmnist_mlp_400_400.yaml").replace(epochs=epochs)
    try:
        data = load_experiment_data(base)
    except (OSError, ValueError) as err:
        return [{"unavailable": str(err)}]
    rows = []
    for seed in seeds:
        cfg = base.replace(seed=seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            ours = fit(cfg, data, out, progress=False)[-1].test_acc
        row: dict[str, Any] = {
            "seed": seed,
            "epochs": epochs,
            "tsslbp": ours,
            "tsslbp_s": time.perf_counter() - t0,
        }
        if snntorch_available():
            t0 = time.perf_counter()
            row["snntorch"] = _train_bptt(cfg, data, seed, epochs)
            row["snntorch_s"] = time.perf_counter() - t0
        else:
            row["snntorch_unavailable"] = SNNTORCH_MISSING
        log(
            f"  seed {seed}: TSSL-BP {100 * ours:.2f}%"
            + (f", snnTorch BPTT {100 * row['snntorch']:.2f}%" if "snntorch" in row else "")
        )
        rows.append(row)
    return rows


def _train_bptt(cfg: ExperimentConfig, data: Any, seed: int, epochs: int) -> float:
    """snnTorch BPTT on the same network, data order (per seed and epoch), batch size and Adam lr."""
    torch.manual_seed(seed)
    model = SnnTorchNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    loss_fn = snntorch_loss()
    x_all, y_all = data.train.images, data.train.labels
    for epoch in range(1, epochs + 1):
        order = torch.randperm(
            len(y_all), generator=torch.Generator().manual_seed(seed * 100003 + epoch)
        )
        for start in range(0, len(order), cfg.train.batch_size):
            idx = order[start : start + cfg.train.batch_size]
            loss = loss_fn(model(x_all[idx], cfg.n_steps), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        correct = 0
        for start in range(0, len(data.test), 1000):
            counts = model(data.test.images[start : start + 1000], cfg.n_steps).sum(0)
            correct += int((counts.argmax(-1) == data.test.labels[start : start + 1000]).sum())
    return correct / len(data.test)
