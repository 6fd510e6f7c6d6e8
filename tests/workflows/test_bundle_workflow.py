"""workflows.bundle: the Python face of ``tsslbp deploy --target loihi2 --bundle DIR`` (no lava)."""

from pathlib import Path

import numpy as np
import torch
from test_config import CONFIGS

from tsslbp import workflows
from tsslbp.config import load_config
from tsslbp.export.netx import write_netx
from tsslbp.export.quantize import QuantConfig, quantize_network
from tsslbp.manifest import read_manifest
from tsslbp.train.network import TsslbpNetwork


def test_bundle_of_test_samples_with_its_manifest(tmp_path: Path):
    cfg = load_config(CONFIGS / "digits_mlp.yaml")
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    spec, _ = quantize_network(model, cfg, torch.rand(16, 64), QuantConfig(input_bits=8))
    write_netx(spec, tmp_path / "mlp.net")
    result = workflows.bundle(tmp_path / "mlp.net", tmp_path / "b", samples=3)
    assert result.report.n_samples == 3 and result.report.period == 8
    assert result.lines() == [result.report.summary("digits")]
    assert "3 digits samples x 8 steps (7 zero-padded to 8)" in result.lines()[0]
    assert len(np.load(tmp_path / "b" / "labels.npy")) == 3
    figures = read_manifest(tmp_path / "b" / "bundle.json.manifest.json")["figures"]
    assert figures["period"] == 8 and figures["n_samples"] == 3
