"""Golden model vs Lava's fixed-point simulator on the same exported network and test samples.

Runs the first ``--samples`` test samples of the model's data set through both backends (outputs
must be identical), interleaved ``--repeats`` times, and prints samples/s, the ratio, and the time
Lava spends before its first step.

    .venv/bin/python benchmarks/deploy_speed.py MODEL.net [--samples 200] [--repeats 3] [--data-dir D]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tsslbp.config import parse_config
from tsslbp.data import load_experiment_data
from tsslbp.deploy.runner import run_lava
from tsslbp.export.netx import read_netx
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    spec = read_netx(args.model)
    cfg = parse_config(spec.metadata["config"], "netx metadata")
    data = load_experiment_data(cfg, args.data_dir)
    inputs = encode_for_spec(data.test.images[: args.samples].numpy(), spec)
    n = inputs.shape[0]
    golden_s, lava_s, lava_start = [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        golden = run_golden(spec, inputs, record=False)
        golden_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lava = run_lava(spec, inputs, record=False)
        lava_s.append(time.perf_counter() - t0)
        lava_start.append(lava.timing.build_s + lava.timing.startup_s)
        assert np.array_equal(golden.output, lava.output), "golden and Lava outputs differ"
    g, l = statistics.median(golden_s), statistics.median(lava_s)
    sizes = "-".join(str(int(np.prod(layer.shape))) for layer in spec.layers)
    print(
        f"{args.model}: {sizes}, {n} samples x {inputs.shape[-1]} steps, median of {args.repeats} (outputs identical)"
    )
    print(f"  golden  {n / g:10.1f} samples/s  ({g:.3f} s)")
    print(
        f"  lava    {n / l:10.1f} samples/s  ({l:.2f} s, of which {statistics.median(lava_start):.2f} s before the first step)"
    )
    print(f"  ratio   {l / g:10.1f}x")


if __name__ == "__main__":
    main()
