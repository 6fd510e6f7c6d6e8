"""export_checkpoint's choice of input width: widths that cannot be quantized are skipped, with why."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tsslbp.cli import main
from tsslbp.config import parse_config
from tsslbp.export.exporter import AUTO_INPUT_BITS, export_checkpoint
from tsslbp.export.netx import read_netx
from tsslbp.export.quantize import QuantConfig, QuantizationError
from tsslbp.train.loop import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, save_checkpoint
from tsslbp.train.network import TsslbpNetwork


def _wide_state_checkpoint(path: Path) -> Path:
    """A digits MLP whose first layer's membrane climbs to 200 times its largest weight (every
    pixel excites every hidden neuron, threshold 200, 20 slow steps): the 24-bit state leaves 8- and
    7-bit input no weight bits in that layer."""
    cfg = parse_config(
        {
            "Network": {"dataset": "digits", "n_steps": 20, "tau_m": 20, "tau_s": 3},
            "Layers": {
                "hidden": {"type": "linear", "n_inputs": 64, "n_outputs": 40, "threshold": 200},
                "output": {"type": "linear", "n_inputs": 40, "n_outputs": 10, "threshold": 1},
            },
        }
    )
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        hidden = model.layers[0].weight
        hidden.fill_(1.0)
        hidden[:, :4] = -1.0  # mixed signs: any integer in [-256, 254] is representable
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "config": cfg.to_dict(),
        "epoch": 1,
        "model": model.state_dict(),
    }
    save_checkpoint(path, state)
    return path


# Nearest rounding: error-compensated rounding (the default) carries the rounding errors over to
# later weights, so some reach a grid point where nearest rounding leaves every weight at 0.
NEAREST = QuantConfig(rounding="nearest")


def test_auto_input_width_skips_the_widths_that_leave_no_weight_bits(tmp_path):
    ckpt = _wide_state_checkpoint(tmp_path / "wide.pt")
    result = export_checkpoint(ckpt, tmp_path / "wide.net", qcfg=NEAREST)
    assert set(result.input_bits_skipped) == {8, 7}, result.input_bits_skipped
    for why in result.input_bits_skipped.values():
        assert why.startswith("layer hidden: every weight rounds to 0")
        assert "limited by the state range" in why and "use fewer input bits" in why
    assert set(result.input_bits_agreement) == set(AUTO_INPUT_BITS) - {8, 7}
    assert result.spec.input_message_bits in result.input_bits_agreement
    written = read_netx(tmp_path / "wide.net")
    assert written.input_message_bits == result.spec.input_message_bits
    assert written.layers[0].weight.min() < 0 < written.layers[0].weight.max()
    assert set(written.metadata["input_bits_skipped"]) == {"8", "7"}


def test_an_explicit_width_that_cannot_be_quantized_is_an_error_with_the_reason(tmp_path):
    ckpt = _wide_state_checkpoint(tmp_path / "wide.pt")
    with pytest.raises(
        QuantizationError, match=r"layer hidden: every weight rounds to 0 .*use fewer input bits"
    ):
        export_checkpoint(ckpt, tmp_path / "w8.net", qcfg=NEAREST, input_bits=8)
    assert not (tmp_path / "w8.net").exists()


def test_no_usable_width_names_each_reason(tmp_path):
    ckpt = _wide_state_checkpoint(tmp_path / "wide.pt")
    with pytest.raises(QuantizationError, match="no input width quantizes this network") as info:
        export_checkpoint(
            ckpt, tmp_path / "none.net", qcfg=QuantConfig(headroom=1e-6, rounding="nearest")
        )
    message = str(info.value)
    assert all(f"{bits} bits: layer hidden" in message for bits in AUTO_INPUT_BITS)
    assert "\n" not in message
    assert not (tmp_path / "none.net").exists()


def test_the_cli_says_which_widths_it_skipped(tmp_path):
    ckpt = _wide_state_checkpoint(tmp_path / "wide.pt")
    nearest = ["--rounding", "nearest"]
    result = CliRunner().invoke(
        main, ["export", str(ckpt), "-o", str(tmp_path / "wide.net"), *nearest]
    )
    assert result.exit_code == 0, result.output
    assert "input width 8 bits not usable: layer hidden: every weight rounds to 0" in result.output
    assert "input width 7 bits not usable" in result.output
    result = CliRunner().invoke(
        main, ["export", str(ckpt), "-o", str(tmp_path / "w8.net"), "--input-bits", "8", *nearest]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: layer hidden: every weight rounds to 0")
    assert "Traceback" not in result.output
