"""The Loihi 2 bundle: what it holds, and its standalone script run where tsslbp cannot be imported.

The script's runs use a fresh interpreter started with ``-S`` (no site initialisation: the editable
install's path hook that makes tsslbp importable is never loaded) and a PYTHONPATH holding only the
site-packages directory with numpy and lava; each test first checks that ``import tsslbp`` fails
there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_config import CONFIGS

from tsslbp.cli import main
from tsslbp.config import load_config
from tsslbp.export.bundle import BUNDLE_FILES, BundleError, write_bundle
from tsslbp.export.netx import read_netx, write_netx
from tsslbp.export.quantize import QuantConfig, quantize_network
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec
from tsslbp.train.network import TsslbpNetwork

SITE_PACKAGES = Path(importlib.util.find_spec("numpy").origin).parents[1]


def _cnn_spec_and_inputs(n: int):
    """The pooled digits CNN, untrained with weights x3 (activity up to the output), 6-bit input."""
    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    calib = torch.rand(24, 64)
    spec, _ = quantize_network(model, cfg, calib, QuantConfig(input_bits=6))
    return spec, encode_for_spec(calib[:n].numpy(), spec)


def _standalone(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env |= {"PYTHONPATH": str(SITE_PACKAGES), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-S", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def no_tsslbp(tmp_path_factory) -> Path:
    """A working directory outside the checkout, in which the standalone interpreter has no tsslbp."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    probe = _standalone("-c", "import numpy; import tsslbp", cwd=cwd)
    assert probe.returncode != 0 and "No module named 'tsslbp'" in probe.stderr, probe.stderr
    return cwd


# ------------------------------------------------------------------------------- contents


def test_bundle_holds_the_padded_inputs_and_the_chip_schedule_golden_run(tmp_path):
    spec, x = _cnn_spec_and_inputs(3)
    labels = np.array([3, 1, 4])
    report = write_bundle(spec, x, labels, tmp_path / "b", period=16, name="cnn.net")
    folder = tmp_path / "b"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*BUNDLE_FILES, "MANIFEST.sha256"])
    for line in (folder / "MANIFEST.sha256").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name

    inputs = np.load(folder / "inputs.npy")
    assert inputs.shape == (3, 8, 8, 1, 16) and x.shape[-1] == 8
    assert np.array_equal(inputs[..., :8], x) and not inputs[..., 8:].any()
    # The expected output is one golden run over the 3 x 16 steps, reset as netx's LIFReset does.
    sequence = np.moveaxis(inputs, 0, -2).reshape(1, 8, 8, 1, 48)
    chip = run_golden(spec, sequence, record=True, reset_interval=16, reset_offset=1)
    expected = np.load(folder / "expected_output.npy")
    assert expected.shape == (3, 10, 16)
    assert np.array_equal(np.moveaxis(expected, 0, -2).reshape(10, 48), chip.output[0])
    first = np.load(folder / "expected_first_sample.npz")
    assert sorted(first) == sorted(f"layer{i}_{k}" for i in (0, 1, 3) for k in ("spikes", "u", "v"))
    assert np.array_equal(first["layer1_v"], chip.v[1][0, ..., :16])
    assert first["layer0_spikes"].any() and expected.sum() == report.output_spikes > 0
    # Every layer starts each sample from zero: the readout equals the per-sample golden run.
    alone = run_golden(spec, x, record=False).output
    assert report.isolated and np.array_equal(expected[..., 3:8], alone[..., 3:8])
    assert report.golden_accuracy == report.per_sample_accuracy
    meta = json.loads((folder / "bundle.json").read_text())
    assert (meta["period"], meta["reset_offset"], meta["steps_per_sample"]) == (16, 1, 8)
    assert [layer["lif_reset_offset"] for layer in meta["layers"] if "du" in layer] == [2, 3, 4]
    netx_meta = read_netx(folder / "network.net").metadata
    assert (
        netx_meta["steps_per_sample"] == 16 and netx_meta["hardware_schedule"]["padded_from"] == 8
    )


@pytest.mark.parametrize("ones", [False, True])
def test_bundle_says_whether_the_last_input_is_the_normalization_constant(tmp_path, ones):
    """A file trained on normalized input wants a constant last input: a chip user feeding their
    own data learns it from bundle.json and README.txt, and inputs.npy carries it."""
    neuron = CubaNeuron(i_decay=4096, v_decay=0, v_th_mant=10)
    metadata = {"n_steps": 2, "readout_offset": 1, "steps_per_sample": 3}
    spec = NetworkSpec(
        layers=(DenseLayer(np.full((2, 3), 4, np.int64), neuron),),
        input_shape=(3,),
        input_message_bits=4,
        metadata={**metadata, "input_ones": True} if ones else metadata,
    )
    data = np.full((2, 2 if ones else 3), 0.5)
    x = encode_for_spec(data, spec)
    write_bundle(spec, x, np.array([0, 1]), tmp_path / "b")
    assert json.loads((tmp_path / "b" / "bundle.json").read_text())["input_ones"] is ones
    readme = (tmp_path / "b" / "README.txt").read_text()
    assert ("the last input (channel) is a constant" in readme) is ones
    if ones:
        assert "15 on the input steps" in readme
        last = np.load(tmp_path / "b" / "inputs.npy")[:, -1]
        assert last[:, :2].tolist() == [[15, 15]] * 2 and not last[:, 2:].any()


def test_default_period_is_the_next_power_of_two_and_bad_requests_are_refused(tmp_path):
    spec, x = _cnn_spec_and_inputs(1)
    nine = np.concatenate([x, np.zeros_like(x[..., :1])], axis=-1)
    assert write_bundle(spec, nine, np.array([0]), tmp_path / "a").period == 16
    with pytest.raises(BundleError, match="the readout needs 8"):
        write_bundle(spec, x[..., :7], np.array([0]), tmp_path / "d")
    with pytest.raises(BundleError, match="shorter than the 8 steps"):
        write_bundle(spec, x, np.array([0]), tmp_path / "b", period=6)
    with pytest.raises(BundleError, match="not an empty folder"):
        write_bundle(spec, x, np.array([0]), tmp_path / "a")
    with pytest.raises(BundleError, match="N labels"):
        write_bundle(spec, x, np.array([0, 1]), tmp_path / "c")


def test_a_bias_that_acts_before_the_reset_makes_samples_depend_on_the_schedule(tmp_path):
    """With a bias, a layer integrates before its input arrives when run alone from zero state, but
    is reset when its input arrives on the chip: the bundle reports the two runs as different."""
    neuron = CubaNeuron(i_decay=4096, v_decay=0, v_th_mant=10)
    spec = NetworkSpec(
        layers=(
            DenseLayer(np.full((3, 2), 40, np.int64), neuron),
            DenseLayer(np.eye(2, 3, dtype=np.int64) * 4, neuron, bias=np.array([5, 5])),
        ),
        input_shape=(2,),
        metadata={"n_steps": 2, "readout_offset": 2, "steps_per_sample": 4},
    )
    x = np.zeros((2, 2, 4), np.int64)
    x[:, :, :2] = 1
    report = write_bundle(spec, x, np.array([0, 1]), tmp_path / "b")
    assert not report.isolated
    # Output neuron 0, steps 2..3: alone, v has summed 2 steps of bias when the input arrives and it
    # spikes at once; on the chip it is reset then and spikes one step later.
    assert run_golden(spec, x, record=False).output[0, 0, 2:4].tolist() == [1, 0]
    assert np.load(tmp_path / "b" / "expected_output.npy")[0, 0, 2:4].tolist() == [0, 1]


def test_script_refuses_a_changed_data_file_before_running(tmp_path, no_tsslbp):
    spec, x = _cnn_spec_and_inputs(1)
    folder = tmp_path / "b"
    write_bundle(spec, x, np.array([0]), folder)
    labels = np.load(folder / "labels.npy")
    np.save(folder / "labels.npy", labels + 1)
    done = _standalone(str(folder / "run_bundle.py"), "--sim", cwd=no_tsslbp)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "labels.npy differs from its SHA-256" in done.stderr


def _load_script(folder: Path):
    spec = importlib.util.spec_from_file_location("run_bundle", folder / "run_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_diagnoses_a_delayed_output_and_a_voltage_read_at_spikes(tmp_path):
    spec, x = _cnn_spec_and_inputs(3)
    write_bundle(spec, x, np.array([0, 1, 2]), tmp_path / "b")
    script = _load_script(tmp_path / "b")
    bundle = script.Bundle(tmp_path / "b", None)
    first = {k: v.copy() for k, v in bundle.first.items()}
    exact = {"output": bundle.expected.astype(np.int64), "first": first}
    assert script.compare(bundle, exact)[0]

    # The whole output one step late (as chip-to-host I/O could make it).
    seq = np.moveaxis(bundle.expected, 0, -2).reshape(10, -1)
    late = np.zeros_like(seq)
    late[:, 1:] = seq[:, :-1]
    delayed = np.moveaxis(late.reshape(10, 3, -1), -2, 0).astype(np.int64)
    ok, lines, summary = script.compare(bundle, {"output": delayed, "first": first})
    assert not ok and summary["output_spikes_differing"] > 0
    assert any("delayed by 1 step(s)" in line for line in lines), lines

    # Resets one step further apart than the period (as lava-dl's PilotNet recordings show).
    longer = bundle.reset_p_plus_1.astype(np.int64)
    assert not np.array_equal(longer, bundle.expected), "the diagnosis file should differ here"
    ok, lines, _ = script.compare(bundle, {"output": longer, "first": first})
    assert not ok and any("resets every 9 steps instead of 8" in line for line in lines), lines

    # v read as 128 on 3 spike steps of layer 1, nothing else changed: a mismatch on the
    # simulator, Loihi 2's convention (counted, not a failure) on the chip.
    spiked = np.argwhere(first["layer1_spikes"])[:3]
    for at in spiked:
        first["layer1_v"][tuple(at)] = 128
    ok, lines, summary = script.compare(bundle, exact)
    assert not ok and summary["first_sample_match"]["layer1_v"] < 1.0
    assert any("v differs only where the neuron spiked (found [128])" in line for line in lines)
    ok, lines, summary = script.compare(bundle, exact, hardware=True)
    assert ok and summary["first_sample_match"]["layer1_v"] == 1.0, lines
    assert any("3 v values read as 128 on spike steps" in line for line in lines), lines
    first["layer1_v"][tuple(spiked[0])] = 127
    assert not script.compare(bundle, exact, hardware=True)[0]


# ------------------------------------------------------------------------- standalone runs


@pytest.fixture(scope="module")
def mlp_bundle(tmp_path_factory) -> tuple[Path, Path, str]:
    """The demo network (digits MLP, 2 epochs), exported and bundled through the CLI."""
    pytest.importorskip("lava")
    out = tmp_path_factory.mktemp("mlp")
    runner = CliRunner()
    for args in (
        ["train", str(CONFIGS / "digits_mlp.yaml"), "--epochs", "2", "--out", str(out)],
        ["export", str(out / "last.pt"), "-o", str(out / "model.net")],
        [
            "deploy",
            str(out / "model.net"),
            "--target",
            "loihi2",
            "--bundle",
            str(out / "bundle"),
            "--samples",
            "12",
        ],
    ):
        result = runner.invoke(main, [*args, *(["--no-progress"] if args[0] == "train" else [])])
        assert result.exit_code == 0, result.output
    return out / "model.net", out / "bundle", result.output


@pytest.mark.lava
@pytest.mark.slow
def test_demo_network_bundle_is_bit_exact_on_the_simulator_without_tsslbp(mlp_bundle, no_tsslbp):
    _, folder, deploy_output = mlp_bundle
    found = re.search(
        r"12 digits samples x 8 steps \(7 zero-padded to 8\), golden accuracy ([\d.]+)%",
        deploy_output,
    )
    assert found, deploy_output
    done = _standalone(str(folder / "run_bundle.py"), "--sim", cwd=no_tsslbp)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "0 differ (100.000% match)" in out, out
    assert out.count("spikes 100.000%, u 100.000%, v 100.000%") == 2, out
    assert f"accuracy: {found.group(1)}% on 12 samples (golden model {found.group(1)}%)" in out
    assert "same prediction as the golden model on 12/12" in out
    assert "BIT-EXACT" in out


@pytest.mark.lava
@pytest.mark.slow
def test_script_reports_a_changed_expected_spike_and_exits_1(mlp_bundle, no_tsslbp, tmp_path):
    _, folder, _ = mlp_bundle
    copy = tmp_path / "b"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    expected = np.load(copy / "expected_output.npy")
    expected[1, 4, 5] ^= 1  # one output neuron at one step of sample 1
    np.save(copy / "expected_output.npy", expected)
    digest = hashlib.sha256((copy / "expected_output.npy").read_bytes()).hexdigest()
    manifest = (copy / "MANIFEST.sha256").read_text().splitlines()
    manifest = [f"{digest}  expected_output.npy" if "expected_output" in m else m for m in manifest]
    (copy / "MANIFEST.sha256").write_text("\n".join(manifest) + "\n")
    done = _standalone(str(copy / "run_bundle.py"), "--sim", "--samples", "2", cwd=no_tsslbp)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "1 differ" in done.stdout
        and "first difference: sample 1, neuron (4,), step 5" in done.stdout
    )
    assert "MISMATCH" in done.stdout


@pytest.mark.lava
def test_script_without_lava_loihi_asks_for_sim(tmp_path, no_tsslbp):
    pytest.importorskip("lava")
    spec, x = _cnn_spec_and_inputs(1)
    write_bundle(spec, x, np.array([0]), tmp_path / "b")
    done = _standalone(str(tmp_path / "b" / "run_bundle.py"), cwd=no_tsslbp)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs Intel's lava-loihi" in done.stderr and "use --sim" in done.stderr


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("graph", ["lava", "netx"])
def test_pooled_cnn_bundle_is_bit_exact_with_either_graph(tmp_path, no_tsslbp, graph):
    pytest.importorskip("lava")
    spec, x = _cnn_spec_and_inputs(3)
    report = write_bundle(spec, x, np.array([0, 1, 2]), tmp_path / "b", name="cnn.net")
    assert report.period == 8 and report.output_spikes > 0
    done = _standalone(
        str(tmp_path / "b" / "run_bundle.py"),
        "--sim",
        "--graph",
        graph,
        "--json",
        str(tmp_path / "r.json"),
        cwd=no_tsslbp,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "240 compared over 3 samples x 8 steps, 0 differ" in done.stdout, done.stdout
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["exact"] and summary["graph"] == graph
    assert summary["accuracy"] == summary["golden_accuracy"] == report.golden_accuracy
    assert len(summary["first_sample_match"]) == 9
    assert set(summary["first_sample_match"].values()) == {1.0}


@pytest.mark.lava
@pytest.mark.slow
def test_verify_with_the_chip_period_is_bit_exact(mlp_bundle):
    model, _, _ = mlp_bundle
    result = CliRunner().invoke(
        main, ["verify", str(model), "--samples", "4", "--period", "8", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "4 digits samples x 8 steps" in result.output
    assert "bit-exact: golden model and Lava agree" in result.output
    short = CliRunner().invoke(main, ["verify", str(model), "--samples", "1", "--period", "4"])
    assert short.exit_code == 1 and "--period 4 is shorter than the 7 steps" in short.output
    deployed = CliRunner().invoke(
        main, ["deploy", str(model), "--samples", "4", "--period", "8", "--no-progress"]
    )
    assert deployed.exit_code == 0 and "sim: 4 digits samples, accuracy" in deployed.output


def test_cli_bundle_needs_target_loihi2(tmp_path):
    spec, _ = _cnn_spec_and_inputs(1)
    write_netx(spec, tmp_path / "cnn.net")
    result = CliRunner().invoke(
        main, ["deploy", str(tmp_path / "cnn.net"), "--bundle", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "use it with --target loihi2" in result.output, result.output
    assert not (tmp_path / "b").exists()


@pytest.mark.lava
def test_a_run_that_fails_exits_2_with_its_traceback(tmp_path, no_tsslbp):
    pytest.importorskip("lava")
    spec, x = _cnn_spec_and_inputs(1)
    folder = tmp_path / "b"
    write_bundle(spec, x, np.array([0]), folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["layers"][0]["shape"] = [4, 4, 12]  # neurons that do not fit the conv's output
    (folder / "bundle.json").write_text(json.dumps(meta))
    digest = hashlib.sha256((folder / "bundle.json").read_bytes()).hexdigest()
    manifest = (folder / "MANIFEST.sha256").read_text().splitlines()
    manifest = [f"{digest}  bundle.json" if m.endswith("bundle.json") else m for m in manifest]
    (folder / "MANIFEST.sha256").write_text("\n".join(manifest) + "\n")
    done = _standalone(str(folder / "run_bundle.py"), "--sim", cwd=no_tsslbp)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" in done.stderr and "run failed (traceback above)" in done.stderr
    assert "MISMATCH" not in done.stdout
