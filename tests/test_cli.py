"""The command line through click's CliRunner, and once through a real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from test_config import CONFIGS

from tsslbp import __version__
from tsslbp.cli import main

DIGITS = str(CONFIGS / "digits_mlp.yaml")


@pytest.fixture
def runner():
    return CliRunner()


def test_version_and_help(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--epochs", "--device", "--out", "--resume"):
        assert option in result.output, f"expected {option} in train --help"


def test_train_then_eval(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        main,
        ["train", DIGITS, "--epochs", "2", "--out", str(out), "--no-progress", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "training digits_mlp.yaml: digits (1438 train / 359 test), 64-200-10, T=5"
    )
    assert [line.split()[1] for line in lines[1:3]] == ["1/2", "2/2"]
    assert "test acc" in lines[1] and lines[-1].startswith("done: final test accuracy")
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2

    result = runner.invoke(main, ["eval", str(out / "last.pt"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["accuracy"] == metrics["epochs"][-1]["test_acc"] and report["n_samples"] == 359


def test_resume_continues_after_the_last_epoch(runner, tmp_path):
    out = str(tmp_path / "run")
    assert (
        runner.invoke(
            main, ["train", DIGITS, "--epochs", "1", "--out", out, "--no-progress"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        main, ["train", DIGITS, "--epochs", "2", "--out", out, "--no-progress", "--resume"]
    )
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output and "epoch 1/2" not in result.output
    # The user is told where the run continues from.
    assert f"resuming {out}/last.pt after epoch 1\n" in result.output


def test_bad_config_is_one_line_and_exit_1(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    raw = yaml.safe_load(open(DIGITS))
    raw["Network"]["loss"] = "mse"
    bad.write_text(yaml.safe_dump(raw))
    result = runner.invoke(main, ["train", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {bad}: Network.loss: expected one of kernel, count, softmax, found 'mse'"
    )


def test_missing_data_dir_is_a_clear_error(runner, tmp_path):
    cfg = CONFIGS / "fmnist_mlp_400_400.yaml"
    result = runner.invoke(
        main,
        ["train", str(cfg), "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'none'}: data directory not found; fashion_mnist")
    # What is needed, where it comes from, and how to point tsslbp at it.
    for words in ("t10k-labels-idx1-ubyte", "dataset-fashion-mnist", "--data-dir"):
        assert words in line, line
    for names, words in (("mnist_cnn", "yann.lecun.com"), ("cifar10_cnn1", "cifar-10-batches-py")):
        result = runner.invoke(main, ["train", names, "--data-dir", str(tmp_path / "none")])
        assert result.exit_code == 1 and words in result.output and "--data-dir" in result.output


def test_bad_option_values_exit_2(runner):
    assert runner.invoke(main, ["train", DIGITS, "--epochs", "0"]).exit_code == 2
    assert runner.invoke(main, ["train", DIGITS, "--device", "tpu"]).exit_code == 2
    assert runner.invoke(main, ["eval", "/no/such/checkpoint.pt"]).exit_code == 2


def test_real_subprocess_train_and_eval(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "tsslbp",
        "train",
        DIGITS,
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "tsslbp", "eval", str(out / "best.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("test accuracy ") and "359 digits samples" in done.stdout


def test_sigint_saves_and_resume_finishes_identically(tmp_path):
    import re
    import signal

    import torch

    base = [sys.executable, "-m", "tsslbp", "train", DIGITS, "--epochs", "40", "--no-progress"]
    proc = subprocess.Popen(
        base + ["--out", str(tmp_path / "a")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # the 'training ...' line
        assert first.startswith("training"), first
        assert proc.stdout.readline().startswith("epoch 1/40")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "continue with --resume" in err
    done = subprocess.run(
        base + ["--out", str(tmp_path / "a"), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 40/40" in done.stdout and "epoch 1/40" not in done.stdout
    assert re.search(
        r"^resuming .*last\.pt after epoch 1 \+ \d+ batches of epoch 2$", done.stdout, re.M
    )
    ref = subprocess.run(
        base + ["--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr
    wa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa), (
        "an interrupted and resumed run must end with the same weights"
    )


def test_sigkill_at_any_point_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    """Kill -9 (no handler runs) three times at different points, resume each time, compare weights."""
    import signal
    import time

    import torch

    base = [
        sys.executable,
        "-m",
        "tsslbp",
        "train",
        DIGITS,
        "--epochs",
        "12",
        "--no-progress",
        "--checkpoint-every",
        "0",
    ]
    run = tmp_path / "killed"
    states = []
    # Delays after the first epoch line: early, mid-run and late kills land at different batches
    # (and may land in the middle of a checkpoint write, which the atomic rename must survive).
    for delay in (0.0, 0.35, 0.9):
        resume = ["--resume"] if (run / "last.pt").is_file() else []  # the first run is new
        proc = subprocess.Popen(
            base + ["--out", str(run), *resume],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            while line and not line.startswith("epoch"):
                line = proc.stdout.readline()
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode in (-signal.SIGKILL, 0), f"unexpected exit {proc.returncode}"
        saved = torch.load(
            run / "last.pt", weights_only=True
        )  # never truncated: written atomically
        states.append(
            (proc.returncode, saved["epoch"], (saved.get("partial") or {}).get("batches_done"))
        )
    assert any(code == -signal.SIGKILL and batches for code, _, batches in states), (
        f"no kill landed mid-epoch: {states}"
    )
    done = subprocess.run(
        base + ["--out", str(run), "--resume"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 12/12" in done.stdout or "already holds all 12 epochs" in done.stdout
    ref = subprocess.run(
        base + ["--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr
    wa = torch.load(run / "last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "ref" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa), (
        "a run killed with SIGKILL and resumed must end with the same weights"
    )


def test_help_imports_no_numpy_torch_or_lava():
    # A fresh interpreter: this one has long imported them. `--help` of the group and of a
    # command, through click itself, must leave the heavy packages unloaded.
    code = (
        "import sys\n"
        "from tsslbp.cli import main\n"
        "for args in (['--help'], ['report', '--help'], ['train', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "heavy = {'numpy', 'torch', 'lava', 'matplotlib', 'h5py'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_export_rounding_choices_are_the_quantizers():
    from tsslbp import cli
    from tsslbp.export.quantize import ROUNDINGS, QuantConfig

    assert sorted(cli._ROUNDING.choices) == sorted(ROUNDINGS)
    export_params = {p.name: p for p in cli.export.params}
    assert export_params["rounding"].default == QuantConfig().rounding, "the library's default"


def test_eval_of_a_netx_file_scores_the_golden_model_on_the_whole_test_split(runner, tmp_path):
    out = tmp_path / "run"
    train = ["train", DIGITS, "--epochs", "2", "--out", str(out), "--no-progress"]
    assert runner.invoke(main, train).exit_code == 0
    net = tmp_path / "model.net"
    assert runner.invoke(main, ["export", str(out / "last.pt"), "-o", str(net)]).exit_code == 0
    result = runner.invoke(main, ["eval", str(net), "--json", "--plots", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["backend"] == "golden" and report["n_samples"] == 359
    # The same figure computed here: every test sample through the golden model, spike counts.
    from tsslbp.data import load_digits
    from tsslbp.export.netx import read_netx
    from tsslbp.hwmodels.golden import run_golden
    from tsslbp.hwmodels.readout import encode_for_spec, predict_counts

    spec, test = read_netx(net), load_digits().test
    run = run_golden(spec, encode_for_spec(test.images.numpy(), spec), record=False)
    expected = float((predict_counts(run.spikes[-1], spec.metadata) == test.labels.numpy()).mean())
    assert report["accuracy"] == expected and expected > 0.5, (report["accuracy"], expected)
    assert (tmp_path / "p" / "confusion.png").is_file()
    text = runner.invoke(main, ["eval", str(net)])
    assert text.exit_code == 0 and "golden fixed-point model" in text.output


def test_train_into_an_existing_run_is_refused_unless_resumed_or_forced(runner, tmp_path):
    """Issue 16 point 6: a second run silently replaced best.pt; --resume without last.pt started afresh."""
    import torch

    out = tmp_path / "run"
    args = ["train", DIGITS, "--out", str(out), "--no-progress"]
    result = runner.invoke(main, [*args, "--resume", "--epochs", "1"])
    assert result.exit_code == 1 and "--resume: " in result.stderr
    assert "last.pt not found, so there is nothing to resume" in result.stderr
    assert not (out / "last.pt").exists()
    assert runner.invoke(main, [*args, "--epochs", "2"]).exit_code == 0
    before = (out / "best.pt").read_bytes()
    best = torch.load(out / "best.pt", weights_only=True)["best"]
    result = runner.invoke(main, [*args, "--epochs", "1"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert (
        f"{out} already holds a run (best.pt: {100 * best['test_acc']:.2f}% test accuracy" in line
    )
    assert "--resume continues it, --force replaces it" in line
    assert (out / "best.pt").read_bytes() == before, "a refused run must leave best.pt alone"
    result = runner.invoke(main, [*args, "--epochs", "1", "--force"])
    assert result.exit_code == 0, result.output
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == 1
    assert runner.invoke(main, [*args, "--epochs", "1", "--force", "--resume"]).exit_code == 1


def test_a_netx_file_given_for_a_checkpoint_says_what_it_is(runner, tmp_path):
    from tsslbp.export.netx import write_netx
    from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec

    spec = NetworkSpec(
        layers=(DenseLayer(weight=np.full((2, 3), 2), neuron=CubaNeuron(1365, 819, 60)),),
        input_shape=(3,),
        input_message_bits=8,
    )
    write_netx(spec, tmp_path / "model.net")
    result = runner.invoke(main, ["export", str(tmp_path / "model.net"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "an HDF5 file (a netx or NIR model), not a training checkpoint" in result.stderr
    assert "`tsslbp eval`, `verify`" in result.stderr


def test_progress_bars_only_on_a_terminal_unless_forced(runner, tmp_path):
    """Issue 16 point 8: bars wrote carriage-return redraws into logs; off when stderr is not a tty."""
    args = ["train", DIGITS, "--epochs", "1"]
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr and "\r" not in result.stdout
    assert "epoch 1/1" in result.stdout  # one line per stage instead
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "b"), "--progress"])
    assert result.exit_code == 0, result.output
    assert "\r" in result.stderr, "--progress forces the bar"


def test_ctrl_c_in_the_first_epoch_still_writes_curves(tmp_path):
    """Issue 16 point 8: an interrupt before any epoch completed left no curves.png."""
    import signal
    import time

    raw = yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text())
    raw["Network"]["batch_size"] = 1  # a long first epoch (1438 batches), so SIGINT lands in it
    cfg = tmp_path / "slow.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsslbp", "train", str(cfg), "--epochs", "2", "--out", str(out)]
        + ["--checkpoint-every", "0"],  # last.pt after every batch: proof the loop is running
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("training")
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # inside epoch 1: a batch is done, the handler installed
        stdout, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "epoch 1/2" not in stdout, "the interrupt should land in epoch 1"
    assert "interrupted in epoch 1" in err
    assert (out / "curves.png").stat().st_size > 0
    manifest = json.loads((out / "last.pt.manifest.json").read_text())
    assert manifest["figures"]["epochs_done"] == 0 and manifest["figures"]["interrupted"]
    assert any(o["path"].endswith("curves.png") for o in manifest["outputs"])
