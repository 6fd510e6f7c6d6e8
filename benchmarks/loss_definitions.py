"""Final-epoch test accuracy of each loss definition (tsslbp's and the authors' code's) on the
embedded digits, three seeds each: the table in docs/training.md. The measurement is
:func:`tsslbp.bench.loss_definitions.compare_loss_definitions`; this script only parses and prints.

    .venv/bin/python benchmarks/loss_definitions.py [--config digits_mlp] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse

from tsslbp.bench.loss_definitions import compare_loss_definitions, definition_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="digits_mlp")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("\n".join(definition_lines(compare_loss_definitions(args.config, seeds), seeds)))


if __name__ == "__main__":
    main()
