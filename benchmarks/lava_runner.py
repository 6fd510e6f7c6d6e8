"""Time tsslbp.deploy.run_lava on Lava's fixed-point CPU simulator.

A 64-200-10 dense network (the digits MLP's shape; random weights in the set the quantizer writes,
even integers in [-256, 254]; 8-bit graded input) runs ``--samples`` samples of T + 2 steps in one
Lava run. Printed per repeat: the time before the first step (graph build, compile and start of
the Lava processes), stepping speed (steps/s, samples/s) and read-out + stop time.

    .venv/bin/python benchmarks/lava_runner.py [--samples 50] [--steps 5] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from tsslbp.deploy.runner import run_lava
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec


def _spec(rng: np.random.Generator, sizes: tuple[int, ...]) -> NetworkSpec:
    # tau_s = 3, tau_m = 5 as the quantizer maps them (iDecay 1365, vDecay 819).
    neuron = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=60)
    layers = tuple(
        DenseLayer(weight=2 * rng.integers(-40, 41, (n_out, n_in)), neuron=neuron)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    return NetworkSpec(layers=layers, input_shape=(sizes[0],), input_message_bits=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5, help="T: input steps per sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--record", action="store_true", help="also record spikes, u, v of every layer"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    sizes = (64, 200, 10)
    spec = _spec(rng, sizes)
    # Inputs are sent for T steps; each synaptic layer adds one step of delay.
    steps = args.steps + len(spec.layers)
    x = rng.integers(0, 256, (args.samples, sizes[0], args.steps))
    print(
        f"{'-'.join(map(str, sizes))}, {args.samples} samples x ({args.steps} + {len(spec.layers)}) steps, record={args.record}"
    )
    rates = []
    for repeat in range(args.repeats):
        result = run_lava(spec, x, record=args.record, steps_per_sample=steps)
        t = result.timing
        rates.append(t.steps_per_s)
        print(
            f"  run {repeat + 1}: before step 1 {t.build_s + t.startup_s:.2f} s "
            f"(build {t.build_s:.3f} s, compile + start {t.startup_s:.2f} s); "
            f"{t.n_steps} steps in {t.run_s:.2f} s = {t.steps_per_s:.0f} steps/s, "
            f"{t.samples_per_s:.0f} samples/s; read-out + stop {t.readout_s:.2f} s; "
            f"total {t.total_s:.2f} s; {int(result.output.sum())} output spikes"
        )
    print(
        f"median {statistics.median(rates):.0f} steps/s = {statistics.median(rates) / steps:.0f} samples/s"
    )


if __name__ == "__main__":
    main()
