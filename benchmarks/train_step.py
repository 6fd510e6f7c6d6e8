"""Time one TSSL-BP training step (forward + backward) of tsslbp against the plain per-step loop.

The plain loop is tsslbp/bench/numpy_loop.py (numpy, one explicit loop over time per layer, the
equations written as specified), run in float32 on the same batch. Both are timed in this one
process, interleaved, and the ratio is printed. The measurement is
:func:`tsslbp.bench.probes.train_step_vs_numpy_loop`; this script only parses and prints.

    .venv/bin/python benchmarks/train_step.py [--config fmnist_mlp_400_400] [--batch 50] [--repeats 30]
"""

from __future__ import annotations

import argparse

from tsslbp.bench.probes import train_step_lines, train_step_vs_numpy_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="fmnist_mlp_400_400", help="a config's name or path")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = train_step_vs_numpy_loop(args.config, args.batch, args.repeats, args.seed)
    print("\n".join(train_step_lines(result)))


if __name__ == "__main__":
    main()
