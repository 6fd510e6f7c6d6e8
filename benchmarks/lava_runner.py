"""Time tsslbp.deploy.run_lava on Lava's fixed-point CPU simulator.

A 64-200-10 dense network (the digits MLP's shape; random weights in the set the quantizer writes,
even integers in [-256, 254]; 8-bit graded input) runs ``--samples`` samples of T + 2 steps in one
Lava run. Printed per repeat: the time before the first step (graph build, compile and start of
the Lava processes), stepping speed (steps/s, samples/s) and read-out + stop time. The measurement
is :func:`tsslbp.bench.probes.lava_runner_phases`; this script only parses and prints.

    .venv/bin/python benchmarks/lava_runner.py [--samples 50] [--steps 5] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse

from tsslbp.bench.probes import lava_runner_lines, lava_runner_phases


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
    result = lava_runner_phases(args.samples, args.steps, args.repeats, args.record, args.seed)
    print("\n".join(lava_runner_lines(result)))


if __name__ == "__main__":
    main()
