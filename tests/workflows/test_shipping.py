"""ship_model: a trained checkpoint becomes a netx file with a manifest carrying its figures."""

import json

import pytest
from test_config import CONFIGS

from tsslbp.config import load_config
from tsslbp.data import load_digits
from tsslbp.train.loop import fit


@pytest.mark.lava
@pytest.mark.slow
def test_shipped_model_manifest_holds_float_golden_and_lava_figures(tmp_path):
    pytest.importorskip("lava")
    from tsslbp.workflows import evaluate_model, ship_model
    from tsslbp.workflows.shipping import dataset_sha256

    cfg = load_config(CONFIGS / "digits_mlp.yaml").replace(epochs=2)
    data = load_digits()
    fit(cfg, data, tmp_path / "run", progress=False)
    out = tmp_path / "models" / "digits.net"
    out.parent.mkdir()
    result = ship_model(tmp_path / "run" / "last.pt", out, lava_samples=6, made_with="test")
    figures = json.loads((tmp_path / "models" / "digits.net.manifest.json").read_text())["figures"]
    assert figures == json.loads(json.dumps(result.figures))
    assert figures["golden_accuracy"] == evaluate_model(out).accuracy
    assert figures["test_samples"] == 359 and figures["epochs"] == 2 and figures["seed"] == 0
    assert figures["lava_samples"] == 6 and figures["lava_bit_exact"] is True
    assert figures["dataset_sha256"] == dataset_sha256(data)
    assert figures["trained_with"] == "test" and figures["quantization"]["input_bits"] >= 2
    assert 0.5 < figures["float_accuracy"] <= 1.0
    # Shipped again from the same checkpoint with reuse_export: the netx file is kept as it is and
    # the figures come out the same (the quantization figures read back from the first manifest).
    before = out.read_bytes()
    again = ship_model(
        tmp_path / "run" / "last.pt", out, lava_samples=6, made_with="test", reuse_export=True
    )
    assert out.read_bytes() == before
    assert json.loads(json.dumps(again.figures))["quantization"] == figures["quantization"]
    assert again.figures["golden_accuracy"] == figures["golden_accuracy"]


def test_training_run_is_the_manifest_that_lists_this_checkpoint(tmp_path, caplog):
    from tsslbp.manifest import write_manifest
    from tsslbp.workflows.shipping import _command_line, training_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"last weights")
    (run / "best.pt").write_bytes(b"best weights")
    command = ["tsslbp", "train", "fmnist_cnn", "--out", "run"]
    write_manifest(
        run / "last.pt",
        outputs=[run / "best.pt"],
        config={"Network": {"seed": 3}},
        seed=3,
        figures={"final_test_acc": 0.9, "distributed": {"world_size": 2, "backend": "gloo"}},
        command=command,
    )
    for checkpoint in (run / "last.pt", run / "best.pt"):
        found = training_run(checkpoint)
        assert found is not None and found["command"] == command and "config" not in found
        assert found["figures"]["final_test_acc"] == 0.9
    assert (
        _command_line(found)
        == "tsslbp train fmnist_cnn --out run (2 processes, gloo; under torchrun)"
    )
    # A checkpoint the manifest does not list (rewritten since, or copied elsewhere) gets none.
    (run / "best.pt").write_bytes(b"weights of a later run")
    assert training_run(run / "best.pt") is None
    alone = tmp_path / "copy.pt"
    alone.write_bytes(b"last weights")
    assert training_run(alone) is None
    # An unreadable manifest is reported and skipped, not fatal.
    (run / "last.pt.manifest.json").write_text("{not json")
    assert training_run(run / "last.pt") is None
    assert "not a readable training manifest" in caplog.text


def test_reuse_export_needs_the_manifest_of_this_very_file(tmp_path):
    """A netx file copied over an earlier one keeps the earlier manifest beside it: its export
    figures (input width...) would be the earlier file's, so the export is not reused."""
    import shutil

    from tsslbp.workflows import export
    from tsslbp.workflows.shipping import _exported_from

    cfg = load_config(CONFIGS / "digits_mlp.yaml").replace(epochs=1)
    for seed in (0, 1):
        fit(cfg.replace(seed=seed), load_digits(), tmp_path / f"run{seed}", progress=False)
        export(tmp_path / f"run{seed}" / "last.pt", tmp_path / f"m{seed}.net")
    first, second = tmp_path / "m0.net", tmp_path / "m1.net"
    assert _exported_from(second, tmp_path / "run1" / "last.pt")
    assert not _exported_from(second, tmp_path / "run0" / "last.pt")
    shutil.copy(second, first)  # m0.net.manifest.json still describes the old m0.net
    assert not _exported_from(first, tmp_path / "run1" / "last.pt")
    shutil.copy(second.with_name("m1.net.manifest.json"), first.with_name("m0.net.manifest.json"))
    assert _exported_from(first, tmp_path / "run1" / "last.pt")
