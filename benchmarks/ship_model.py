"""Ship a trained checkpoint as a ready-to-deploy model (how models/ is made): export to netx, score
the float and golden models on the whole test split and Lava spike for spike on N samples, and
write the netx file's manifest with every figure. The work is
:func:`tsslbp.workflows.ship_model`; this script only parses and prints.

    .venv/bin/python benchmarks/ship_model.py CKPT models/NAME.net --trained-with "tsslbp train ..."
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tsslbp.workflows import ship_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--lava-samples", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--trained-with",
        default=None,
        help="The command that trained it [default: the one its run's manifest recorded].",
    )
    parser.add_argument(
        "--reuse-export", action="store_true", help="Keep OUT if it is already CHECKPOINT's export."
    )
    args = parser.parse_args()
    result = ship_model(
        args.checkpoint,
        args.out,
        data_dir=args.data_dir,
        lava_samples=args.lava_samples,
        made_with=args.trained_with,
        command=[sys.executable, *sys.argv],
        reuse_export=args.reuse_export,
    )
    print("\n".join(result.lines()))
    sys.exit(0 if result.figures["lava_bit_exact"] else 1)


if __name__ == "__main__":
    main()
