"""Golden model vs Lava's fixed-point simulator on the same exported network and test samples.

Runs the first ``--samples`` test samples of the model's data set through both backends (outputs
must be identical), interleaved ``--repeats`` times, and prints samples/s, the ratio, and the time
Lava spends before its first step. The measurement is :func:`tsslbp.bench.probes.golden_vs_lava`;
this script only parses and prints.

    .venv/bin/python benchmarks/deploy_speed.py MODEL.net [--samples 200] [--repeats 3] [--data-dir D]
"""

from __future__ import annotations

import argparse

from tsslbp.bench.probes import golden_vs_lava, golden_vs_lava_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    result = golden_vs_lava(args.model, args.samples, args.repeats, args.data_dir)
    print("\n".join(golden_vs_lava_lines(result)))


if __name__ == "__main__":
    main()
