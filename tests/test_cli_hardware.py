"""export / info / simulate / verify / deploy through the CLI on a small trained digits model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from paths import LAVA_DL_FIXTURES as SHARED
from paths import needs_lava_dl_fixtures
from test_config import CONFIGS

from tsslbp.cli import main
from tsslbp.export.netx import read_netx


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-epoch digits MLP and its netx export (files only read by the tests)."""
    out = tmp_path_factory.mktemp("run")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "train",
            str(CONFIGS / "digits_mlp.yaml"),
            "--epochs",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        [
            "export",
            str(out / "last.pt"),
            "-o",
            str(out / "model.net"),
            "--json",
            str(out / "q.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_export_prints_the_quantization_report(trained):
    out, output = trained
    lines = output.splitlines()
    assert lines[0].split()[:3] == ["layer", "scale", "limited"]
    assert lines[1].startswith("hidden") and lines[2].startswith("output")
    assert "input width: golden vs float on the calibration batch, same prediction" in output
    assert "the smallest is chosen): 8 bits " in output
    assert f"wrote {out / 'model.net'}: 2 layers (dense), T=5, 7 steps/sample" in output
    report = json.loads((out / "q.json").read_text())
    assert [layer["name"] for layer in report["layers"]] == ["hidden", "output"]
    # Issue 16 point 8: 8-bit weights showed "w bits 9.0"; the column counts bits of the 8-bit grid.
    used = [q["weight_bits_used"] for q in report["layers"]]
    assert all(1.0 <= u <= 8.0 for u in used), used
    for line, u in zip(lines[1:3], used):
        assert f" {u:.1f} " in line, line
    assert all(0 < layer["max_abs_v_int"] < 1 << 23 for layer in report["layers"])
    bits = read_netx(out / "model.net").input_message_bits
    assert bits > 0
    call = f"netx.hdf5.Network(net_config='{out / 'model.net'}', input_message_bits={bits})"
    assert f"lava-dl: net = {call}" in output


def test_info(trained):
    out, _ = trained
    result = CliRunner().invoke(main, ["info", str(out / "model.net")])
    assert result.exit_code == 0, result.output
    assert "2 layers, 210 neurons, 14800 synapses, input 64 (graded" in result.output
    assert "readout spike_count_argmax from step 2" in result.output
    bits = read_netx(out / "model.net").input_message_bits
    assert f"net_config='{out / 'model.net'}', input_message_bits={bits})" in result.output
    assert "the class is the neuron with most spikes in steps 2..6 of each 7-step sample" in (
        result.output
    )


def test_golden_agrees_with_float_within_quantization_error(trained):
    import torch

    from tsslbp.data import load_digits
    from tsslbp.export.netx import read_netx
    from tsslbp.hwmodels.golden import run_golden
    from tsslbp.hwmodels.readout import encode_for_spec, predict_counts
    from tsslbp.train.loop import model_from_checkpoint
    from tsslbp.train.losses import predict

    out, _ = trained
    spec = read_netx(out / "model.net")
    model, _, _ = model_from_checkpoint(out / "last.pt")
    test = load_digits().test
    with torch.no_grad():
        float_pred = predict(model(test.images).spikes).numpy()
    golden_pred = predict_counts(
        run_golden(spec, encode_for_spec(test.images.numpy(), spec), record=False).output,
        spec.metadata,
    )
    agree = float((golden_pred == float_pred).mean())
    assert agree >= 0.95, (
        f"golden and float predictions agree on {agree:.3f} of the test set, expected >= 0.95"
    )


def _simulate_on_both_backends(model, x, tmp_path):
    """Y of `tsslbp simulate` for input x on the golden model and on Lava."""
    np.save(tmp_path / "x.npy", x)
    ys = {}
    for backend in ("golden", "lava"):
        out = tmp_path / f"{backend}.npy"
        result = CliRunner().invoke(
            main,
            [
                "simulate",
                str(model),
                "--input",
                str(tmp_path / "x.npy"),
                "--output",
                str(out),
                "--backend",
                backend,
            ],
        )
        assert result.exit_code == 0, result.output
        ys[backend] = np.load(out)
    return ys


def test_simulate_golden_and_lava_give_the_same_output(trained, tmp_path):
    pytest.importorskip("lava")
    out, _ = trained
    rng = np.random.default_rng(0)
    x = rng.integers(0, 32, size=(64, 9))  # graded 5-bit-ish payloads for 9 steps
    ys = _simulate_on_both_backends(out / "model.net", x, tmp_path)
    assert ys["golden"].shape == (10, 9)
    assert ys["golden"].sum() > 0, "sanity: the output spikes"
    assert np.array_equal(ys["golden"], ys["lava"])


def test_simulate_rejects_a_wrong_input_shape(trained, tmp_path):
    out, _ = trained
    np.save(tmp_path / "x.npy", np.zeros((63, 5), dtype=np.int64))
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            str(out / "model.net"),
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / "y.npy"),
        ],
    )
    assert result.exit_code == 1
    assert "expected shape (64, S), found (63, 5)" in result.output


@needs_lava_dl_fixtures
def test_simulate_lava_dl_tiny_net_on_both_backends(tmp_path):
    pytest.importorskip("lava")
    bias = np.load(SHARED / "tinynet_input_bias.npy")  # (16, 16, 3): lava order
    x = np.repeat(bias[..., None], 6, axis=-1).astype(np.int64)
    ys = _simulate_on_both_backends(SHARED / "tiny.net", x, tmp_path)
    assert ys["golden"].shape == (36, 6) and ys["golden"].sum() > 0
    assert np.array_equal(ys["golden"], ys["lava"])


def test_verify_is_bit_exact_and_reports_accuracies(trained, tmp_path):
    pytest.importorskip("lava")
    out, _ = trained
    result = CliRunner().invoke(
        main,
        [
            "verify",
            str(out / "model.net"),
            "--samples",
            "40",
            "--no-progress",
            "--json",
            str(tmp_path / "v.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "40 digits samples x 7 steps: accuracy float" in result.output
    assert "bit-exact: golden model and Lava agree on every spike, u and v" in result.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["exact"] and report["accuracy"]["golden"] == report["accuracy"]["lava"]


def test_deploy_sim_and_the_loihi2_message(trained):
    pytest.importorskip("lava")
    out, _ = trained
    result = CliRunner().invoke(
        main, ["deploy", str(out / "model.net"), "--samples", "20", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("sim: 20 digits samples, accuracy ")
    result = CliRunner().invoke(main, ["deploy", str(out / "model.net"), "--target", "loihi2"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "lava-loihi" in result.output


def test_export_strict_passes_when_healthy_and_fails_on_warnings(trained, monkeypatch):
    from tsslbp.export.quantize import QuantReport

    out, _ = trained
    args = [
        "export",
        str(out / "last.pt"),
        "-o",
        str(out / "strict.net"),
        "--input-bits",
        "5",
        "--strict",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(
        QuantReport,
        "warnings",
        lambda self: ["layer hidden: v saturated at 2**23 - 1 in 1.000% of the calibration values"],
    )
    result = CliRunner().invoke(main, args)  # click 8.2+: result.stderr holds stderr alone
    assert result.exit_code == 1
    assert "warning: layer hidden: v saturated" in result.stderr
    assert "Error: --strict: 1 quantization warning(s)" in result.stderr
