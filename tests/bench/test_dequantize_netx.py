"""benchmarks/dequantize_netx.py: a netx file back to a float checkpoint whose weights are the file's."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from tsslbp.config import load_config
from tsslbp.data import load_digits
from tsslbp.export.exporter import export_checkpoint
from tsslbp.export.fold import FoldedFlatten, fold_network
from tsslbp.export.netx import read_netx
from tsslbp.train.loop import fit, initial_weights, model_from_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dequantize_netx.py"

# Normalized input, two pooled convs and a pooled dense layer: every folding the script undoes.
CONFIG = {
    "Network": {
        "dataset": "digits",
        "n_steps": 5,
        "epochs": 1,
        "batch_size": 32,
        "input_mean": 0.3,
        "input_std": 0.4,
    },
    "Layers": {
        "c1": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
        "p1": {"type": "pooling", "kernel_size": 2},
        "c2": {"type": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": 1},
        "p2": {"type": "pooling", "kernel_size": 2},
        "o": {"type": "linear", "n_inputs": 24, "n_outputs": 10},
    },
}


def test_dequantized_checkpoint_folds_back_to_the_file_s_integers(tmp_path):
    config = tmp_path / "cnn.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    cfg = load_config(config)
    fit(cfg, load_digits(), tmp_path / "run", progress=False)
    net = tmp_path / "cnn.net"
    export_checkpoint(tmp_path / "run" / "last.pt", net, input_bits=6)
    out = tmp_path / "dequantized.pt"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(net), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    diffs = [float(m) for m in re.findall(r"max \|refolded - file\| (\S+) integer", done.stdout)]
    assert len(diffs) == 3 and max(diffs) < 1e-3, done.stdout

    # Checked here too, independently of the script's own report.
    spec = read_netx(net)
    scales, input_scale = spec.metadata["layer_scales"], spec.metadata["input_scale"]
    model, _, _ = model_from_checkpoint(out)
    folded = [f for f in fold_network(model) if not isinstance(f, FoldedFlatten)]
    file_layers = [layer for layer in spec.layers if hasattr(layer, "weight")]
    for i, (item, layer, scale) in enumerate(zip(folded, file_layers, scales, strict=True)):
        gain = scale / (cfg.neuron.tau_s * 64 * (input_scale if i == 0 else 1))
        realized = item.weight * gain
        if i == 0:  # the constant-ones input channel is recomputed from the float weights
            realized, expected = realized[:, :-1], layer.weight[:, :-1]
        else:
            expected = layer.weight
        np.testing.assert_allclose(realized, expected, atol=1e-3)
    # Close to the trained float weights (8-bit rounding), and usable as a fine-tuning start.
    trained, _, _ = model_from_checkpoint(tmp_path / "run" / "last.pt")
    for a, b in zip(model.parameters(), trained.parameters(), strict=True):
        assert float(torch.linalg.norm(a - b).detach() / torch.linalg.norm(b).detach()) < 0.05
    assert set(initial_weights(out, cfg)) == set(trained.state_dict())
