"""Building and feeding inputs from the CLI: ``tsslbp encode``, ``simulate --sample`` and
``--reset-interval``, ``report --input`` on a tsslbp MLP."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from paths import LAVA_DL_FIXTURES, needs_lava_dl_fixtures

from tsslbp.cli import main
from tsslbp.data import load_digits
from tsslbp.export.netx import read_netx
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A 3-epoch digits MLP exported to netx (read only by the tests)."""
    out = tmp_path_factory.mktemp("run")
    runner = CliRunner()
    args = ["train", "digits_mlp", "--epochs", "3", "--out", str(out), "--no-progress"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, ["export", str(out / "last.pt"), "-o", str(out / "model.net")])
    assert result.exit_code == 0, result.output
    return out / "model.net"


@needs_lava_dl_fixtures
def test_simulate_reset_interval_reproduces_tinynet_ground_truth(tmp_path):
    """lava-dl's tiny.net test from the CLI: input = the bias image on every step, 17 + 3 steps,
    u/v reset every 17 steps; output steps 2..16 equal lava-dl's recorded ground truth."""
    bias = np.load(LAVA_DL_FIXTURES / "tinynet_input_bias.npy")
    np.save(tmp_path / "x.npy", np.repeat(bias[..., None], 20, axis=-1))
    gt = np.load(LAVA_DL_FIXTURES / "tinynet_output.npy")[0].transpose(2, 1, 0, 3)[..., 1:]
    gt = gt.reshape(-1, gt.shape[-1])
    assert gt.sum() > 0
    errors = {}
    for reset in ([], ["--reset-interval", "17"]):
        result = CliRunner().invoke(
            main,
            ["simulate", str(LAVA_DL_FIXTURES / "tiny.net"), "--input", str(tmp_path / "x.npy")]
            + ["--output", str(tmp_path / "y.npy"), *reset],
        )
        assert result.exit_code == 0, result.output
        y = np.load(tmp_path / "y.npy")
        errors[bool(reset)] = int(np.abs(y[:, 2:17] - gt).sum())
    assert "u/v reset every 17 steps" in result.output
    assert errors[True] == 0, errors
    assert errors[False] > 0, (
        "without the resets the run should differ (the reset is what is tested)"
    )


def test_encode_sample_feeds_simulate_like_sample_option(model, tmp_path):
    spec = read_netx(model)
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(model), "--sample", "3", "-o", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    x = np.load(tmp_path / "x.npy")
    expected = encode_for_spec(load_digits().test.images[3:4].numpy(), spec)[0]
    assert np.array_equal(x, expected) and x.shape == (64, 7)
    label = int(load_digits().test.labels[3])
    assert f"digits test sample 3 (label {label}), shape (64, 7)" in result.output
    outputs = []
    for how in (["--input", str(tmp_path / "x.npy")], ["--sample", "3"]):
        y = tmp_path / f"y{len(outputs)}.npy"
        result = runner.invoke(main, ["simulate", str(model), *how, "--output", str(y)])
        assert result.exit_code == 0, result.output
        outputs.append(np.load(y))
    assert np.array_equal(outputs[0], outputs[1])
    golden = run_golden(spec, x[None], record=False).output[0]
    assert np.array_equal(outputs[1], golden.reshape(outputs[1].shape))
    predicted = int(np.argmax(golden[:, 2:7].sum(-1)))
    assert f"predicted class {predicted}" in result.output
    for bad in ([], ["--input", str(tmp_path / "x.npy"), "--sample", "1"]):
        result = runner.invoke(main, ["simulate", str(model), *bad, "--output", str(y)])
        assert result.exit_code == 2 and "exactly one of --input" in result.output
    result = runner.invoke(main, ["encode", str(model), "--sample", "359", "-o", str(y)])
    assert result.exit_code == 1 and "0..358" in result.stderr


def test_encode_image_array_and_its_mistakes(model, tmp_path):
    spec = read_netx(model)
    runner = CliRunner()
    image = np.random.default_rng(0).random((8, 8))
    np.save(tmp_path / "img.npy", image)
    result = runner.invoke(
        main,
        ["encode", str(model), "--image", str(tmp_path / "img.npy"), "-o", str(tmp_path / "x")],
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "x.npy"), encode_for_spec(image[None], spec)[0])
    for array, words in (
        (np.arange(64).reshape(8, 8), "values must lie in [0, 1], found 0..63 (divide 8-bit"),
        (np.zeros((7, 7)), "49 values (shape (7, 7)), the network takes 64\n"),
    ):
        np.save(tmp_path / "bad.npy", array)
        result = runner.invoke(
            main, ["encode", str(model), "--image", str(tmp_path / "bad.npy"), "-o", "x.npy"]
        )
        assert result.exit_code == 1 and words in result.stderr, result.stderr


def test_simulate_hints_at_encoding_when_weak_input_gives_no_spikes(model, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 2, (64, 7)))
    result = CliRunner().invoke(
        main,
        ["simulate", str(model), "--input", str(tmp_path / "x.npy")]
        + ["--output", str(tmp_path / "y.npy")],
    )
    assert result.exit_code == 0, result.output
    if np.load(tmp_path / "y.npy").any():
        pytest.skip("this random input happened to make output spikes")
    bits = read_netx(model).input_message_bits
    assert f"graded {bits}-bit input (payloads up to {(1 << bits) - 1}" in result.stderr
    assert "tsslbp encode" in result.stderr


def test_report_input_is_checked_against_the_network_input(model, tmp_path):
    """Issue 16 point 5: an MLP's (64, S) input was refused against the first layer's 200."""
    runner = CliRunner()
    x = encode_for_spec(load_digits().test.images[:4].numpy(), read_netx(model))
    for name, array, samples in (("one.npy", x[0], 1), ("batch.npy", x, 4)):
        np.save(tmp_path / name, array)
        result = runner.invoke(
            main,
            ["report", str(model), "--input", str(tmp_path / name)]
            + ["--json", str(tmp_path / "r.json")],
        )
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "r.json").read_text())["samples"] == samples
    np.save(tmp_path / "wide.npy", np.zeros((200, 7), dtype=np.int64))
    result = runner.invoke(main, ["report", str(model), "--input", str(tmp_path / "wide.npy")])
    assert result.exit_code == 1
    assert "expected shape (64, S)" in result.stderr and "found (200, 7)" in result.stderr
