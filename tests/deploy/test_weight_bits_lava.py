"""A network exported with 4-bit weights runs identically on the golden model and on Lava.

The coarser grid (multiples of 32 in [-256, 224]) goes through the netx file, lava-dl's packing
(which lowers ``num_weight_bits`` to at most 4) and lava's fixed-point Dense; every spike, u and v
of every layer must match the golden model exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from tsslbp.config import parse_config  # noqa: E402
from tsslbp.deploy.runner import run_lava  # noqa: E402
from tsslbp.export.netx import read_netx, write_netx  # noqa: E402
from tsslbp.export.quantize import QuantConfig, quantize_network  # noqa: E402
from tsslbp.hwmodels.golden import run_golden  # noqa: E402
from tsslbp.hwmodels.readout import encode_for_spec  # noqa: E402
from tsslbp.hwmodels.weights import pack_dense_weights  # noqa: E402
from tsslbp.train.network import TsslbpNetwork  # noqa: E402

pytestmark = pytest.mark.lava


def test_four_bit_weights_golden_equals_lava(rng, tmp_path):
    cfg = parse_config(
        {
            "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3},
            "Layers": {
                "hidden": {"type": "linear", "n_inputs": 64, "n_outputs": 16, "weight_scale": 4.0},
                "output": {"type": "linear", "n_inputs": 16, "n_outputs": 10, "weight_scale": 4.0},
            },
        }
    )
    torch.manual_seed(3)
    model = TsslbpNetwork(cfg)
    x = rng.uniform(0, 1, size=(6, 64)).astype(np.float32)
    spec, _ = quantize_network(
        model, cfg, torch.from_numpy(x), QuantConfig(input_bits=2, weight_bits=4)
    )
    write_netx(spec, tmp_path / "w4.net")
    spec = read_netx(tmp_path / "w4.net")
    for layer in spec.layers:
        assert np.all(layer.weight % 32 == 0), "4-bit grid: multiples of 32"
        assert pack_dense_weights(layer.weight).num_weight_bits <= 4, (
            "lava's Dense is told the narrow width"
        )

    inputs = encode_for_spec(x, spec)
    golden = run_golden(spec, inputs, record=True)
    lava = run_lava(spec, inputs, record=True)
    assert all(int(s.sum()) > 0 for s in golden.spikes), (
        f"every layer should spike: {[int(s.sum()) for s in golden.spikes]}"
    )
    for i in range(len(spec.layers)):
        for name in ("spikes", "u", "v"):
            expected, found = getattr(golden, name)[i], getattr(lava, name)[i]
            assert np.array_equal(expected, found), (
                f"layer {i} {name}: golden and Lava differ at {np.argwhere(expected != found)[:3].tolist()}"
            )
