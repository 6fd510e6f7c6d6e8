"""Every command that writes an artifact writes ARTIFACT.manifest.json beside it (hashes, config,
seed, command), and the plot options write their PNGs."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_config import CONFIGS
from test_plots import check_png

from tsslbp.cli import main
from tsslbp.manifest import read_manifest, sha256_of


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result


def check_manifest(artifact, command, inputs=(), outputs=()):
    """The manifest of ``artifact``: it comes first among the outputs, every hash matches its file,
    the listed inputs/outputs are there, and the command is the one that ran."""
    rec = read_manifest(artifact)
    assert rec["outputs"][0]["path"] == str(artifact)
    for entry in rec["inputs"] + rec["outputs"]:
        if "sha256" in entry:
            assert entry["sha256"] == sha256_of(entry["path"]), (
                f"{entry['path']}: hash differs from the file"
            )
    listed_in = {e["path"] for e in rec["inputs"]}
    listed_out = {e["path"] for e in rec["outputs"]}
    assert {str(p) for p in inputs} <= listed_in, f"inputs {sorted(listed_in)}, expected {inputs}"
    assert {str(p) for p in outputs} <= listed_out, (
        f"outputs {sorted(listed_out)}, expected {outputs}"
    )
    assert rec["command"][: len(command)] == list(command), rec["command"]
    assert rec["packages"]["numpy"] == np.__version__
    return rec


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-epoch digits MLP (seed 4) and its netx export (files only read by the tests)."""
    out = tmp_path_factory.mktemp("run")
    invoke(
        "train",
        CONFIGS / "digits_mlp.yaml",
        "--epochs",
        3,
        "--seed",
        4,
        "--out",
        out,
        "--no-progress",
    )
    invoke(
        "export",
        out / "last.pt",
        "-o",
        out / "model.net",
        "--json",
        out / "q.json",
        "--input-bits",
        4,
    )
    return out


def test_train_writes_curves_and_its_manifest(run):
    rec = check_manifest(
        run / "last.pt",
        ["tsslbp", "train", str(CONFIGS / "digits_mlp.yaml")],
        inputs=[CONFIGS / "digits_mlp.yaml"],
        outputs=[run / "best.pt", run / "metrics.json", run / "curves.png"],
    )
    assert "--seed" in rec["command"] and rec["command"][rec["command"].index("--seed") + 1] == "4"
    assert (
        rec["seed"] == 4
        and rec["config"]["Network"]["seed"] == 4
        and rec["config"]["Network"]["epochs"] == 3
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert rec["config"] == metrics["config"]
    assert rec["figures"]["final_test_acc"] == metrics["epochs"][-1]["test_acc"]
    assert rec["figures"]["epochs_done"] == 3 and rec["figures"]["interrupted"] is False
    check_png(run / "curves.png")


def test_export_manifest_and_weight_bits(run, tmp_path):
    rec = check_manifest(
        run / "model.net", ["tsslbp", "export"], inputs=[run / "last.pt"], outputs=[run / "q.json"]
    )
    assert rec["figures"]["input_bits"] == 4 and rec["figures"]["weight_bits"] == 8
    assert [layer["name"] for layer in rec["figures"]["layers"]] == ["hidden", "output"]
    assert rec["seed"] == 4

    from tsslbp.export.netx import read_netx

    invoke(
        "export", run / "last.pt", "-o", tmp_path / "w4.net", "--input-bits", 2, "--weight-bits", 4
    )
    rec = check_manifest(tmp_path / "w4.net", ["tsslbp", "export"], inputs=[run / "last.pt"])
    assert rec["figures"]["weight_bits"] == 4 and "--weight-bits" in rec["command"]
    spec = read_netx(tmp_path / "w4.net")
    assert all(np.all(layer.weight % 32 == 0) for layer in spec.layers)
    assert spec.metadata["weight_bits"] == 4
    result = CliRunner().invoke(
        main, ["export", str(run / "last.pt"), "-o", str(tmp_path / "x.net"), "--weight-bits", "9"]
    )
    assert result.exit_code == 2 and "--weight-bits" in result.stderr


def test_eval_plots_a_confusion_matrix(run, tmp_path):
    result = invoke("eval", run / "last.pt", "--json", "--plots", tmp_path / "plots")
    report = json.loads(result.output)  # the JSON alone, naming the file it wrote
    accuracy = report["accuracy"]
    png = tmp_path / "plots" / "confusion.png"
    assert report["confusion_png"] == str(png)
    text = invoke("eval", run / "last.pt", "--plots", tmp_path / "plots2").output
    assert f"wrote {tmp_path / 'plots2' / 'confusion.png'} and confusion.png.manifest.json" in text
    rec = check_manifest(
        tmp_path / "plots" / "confusion.png", ["tsslbp", "eval"], inputs=[run / "last.pt"]
    )
    counts = np.array(rec["figures"]["confusion"])
    assert counts.shape == (10, 10) and counts.sum() == 359
    assert np.trace(counts) / counts.sum() == pytest.approx(accuracy), (
        "the matrix scores what eval reports"
    )
    check_png(tmp_path / "plots" / "confusion.png", min_bytes=5_000)


def test_simulate_manifest(run, tmp_path):
    x = np.zeros((64, 7), dtype=np.int64)
    x[:, :5] = 15
    np.save(tmp_path / "x.npy", x)
    invoke(
        "simulate", run / "model.net", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"
    )
    rec = check_manifest(
        tmp_path / "y.npy", ["tsslbp", "simulate"], inputs=[run / "model.net", tmp_path / "x.npy"]
    )
    assert (
        rec["figures"]["output_spikes"] == int(np.load(tmp_path / "y.npy").sum())
        and rec["figures"]["backend"] == "golden"
    )
    assert rec["seed"] == 4


@pytest.mark.lava
def test_verify_json_and_raster_manifests(run, tmp_path):
    pytest.importorskip("lava")
    result = invoke(
        "verify",
        run / "model.net",
        "--samples",
        5,
        "--no-progress",
        "--json",
        tmp_path / "v.json",
        "--plots",
        tmp_path,
    )
    report = json.loads((tmp_path / "v.json").read_text())
    for name in ("v.json", "raster.png"):
        assert f"wrote {tmp_path / name} and {name}.manifest.json" in result.output
    for artifact in (tmp_path / "v.json", tmp_path / "raster.png"):
        rec = check_manifest(
            artifact, ["tsslbp", "verify"], inputs=[run / "model.net", run / "last.pt"]
        )
        assert rec["figures"]["exact"] is True and rec["figures"]["accuracy"] == report["accuracy"]
    check_png(tmp_path / "raster.png")


def test_quant_health(run, tmp_path):
    from tsslbp.data import load_digits
    from tsslbp.export.netx import read_netx
    from tsslbp.hwmodels.golden import run_golden
    from tsslbp.hwmodels.readout import encode_for_spec, predict_counts

    out = tmp_path / "qh"
    result = invoke("quant-health", run / "last.pt", "--bits", "8,4", "--samples", 60, "--out", out)
    assert "60 digits test samples" in result.output
    health = json.loads((out / "quant_health.json").read_text())
    assert [w["weight_bits"] for w in health["widths"]] == [8, 4]
    test = load_digits().test
    for width in health["widths"]:
        spec = read_netx(width["netx"])
        assert spec.metadata["weight_bits"] == width["weight_bits"]
        assert spec.input_message_bits == health["input_bits"], "all widths share the input width"
        pred = predict_counts(
            run_golden(spec, encode_for_spec(test.images[:60].numpy(), spec), record=False).output,
            spec.metadata,
        )
        assert width["accuracy"] == pytest.approx(float((pred == test.labels[:60].numpy()).mean()))
        assert len(width["layer_rates"]) == 2 and all(0 < r < 1 for r in width["layer_rates"])
        rec = check_manifest(width["netx"], ["tsslbp", "quant-health"], inputs=[run / "last.pt"])
        assert (
            rec["figures"]["weight_bits"] == width["weight_bits"]
            and rec["figures"]["accuracy"] == width["accuracy"]
        )
    assert health["widths"][1]["weight_rmse"][0] > health["widths"][0]["weight_rmse"][0]
    rec = check_manifest(
        out / "quant_health.json",
        ["tsslbp", "quant-health"],
        inputs=[run / "last.pt"],
        outputs=[out / "quant_health.png", out / "model_w8.net", out / "model_w4.net"],
    )
    assert (
        rec["figures"]["golden_accuracy_w8"] == health["widths"][0]["accuracy"] and rec["seed"] == 4
    )
    assert rec["command"][rec["command"].index("--bits") + 1] == "8,4", (
        "the command as it can be typed again"
    )
    check_png(out / "quant_health.png")
    bad = CliRunner().invoke(
        main, ["quant-health", str(run / "last.pt"), "--bits", "8,1", "--out", str(out)]
    )
    assert bad.exit_code == 2 and "widths in 2..8" in bad.stderr


@pytest.mark.lava
def test_demo_writes_plots_and_a_manifest_per_artifact(tmp_path):
    pytest.importorskip("lava")
    out = tmp_path / "demo"
    invoke("demo", "--out", out, "--epochs", 2, "--samples", 10, "--no-progress")
    check_manifest(
        out / "last.pt", ["tsslbp", "demo"], outputs=[out / "best.pt", out / "curves.png"]
    )
    check_manifest(out / "model.net", ["tsslbp", "demo"], inputs=[out / "last.pt"])
    rec = check_manifest(out / "confusion.png", ["tsslbp", "demo"], inputs=[out / "model.net"])
    assert np.array(rec["figures"]["confusion"]).sum() == 359
    rec = check_manifest(
        out / "raster.png", ["tsslbp", "demo"], inputs=[out / "model.net", out / "last.pt"]
    )
    assert rec["figures"]["lava_exact"] is True
    for name in ("curves.png", "confusion.png", "raster.png"):
        check_png(out / name, min_bytes=5_000)
