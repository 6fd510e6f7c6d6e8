"""The shipped models (models/*.net): each is the file its manifest describes, reads as a valid
netx network, and scores what its manifest says on the samples Lava was checked on."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tsslbp.config import parse_config
from tsslbp.export.netx import read_netx
from tsslbp.manifest import read_manifest, sha256_of

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MODELS = sorted(MODELS_DIR.glob("*.net"))


def test_models_are_shipped() -> None:
    assert MODELS, f"no netx files in {MODELS_DIR}"


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_manifest_describes_this_file(model: Path) -> None:
    manifest = read_manifest(model.with_name(model.name + ".manifest.json"))
    (output,) = manifest["outputs"]
    assert output["bytes"] == model.stat().st_size and output["sha256"] == sha256_of(model), (
        f"{model.name} is not the file its manifest's figures were measured on"
    )
    figures = manifest["figures"]
    assert figures["lava_bit_exact"] is True and figures["lava_samples"] >= 200, figures
    assert figures["test_samples"] == 10_000, figures
    spec = read_netx(model)
    assert spec.metadata["source_sha256"] == manifest["inputs"][0]["sha256"]
    assert spec.input_message_bits == figures["input_bits"]


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_golden_accuracy_is_the_manifests(model: Path) -> None:
    """The golden model on the first samples (those Lava ran) gives the manifest's figure exactly."""
    spec = read_netx(model)
    data_path = parse_config(spec.metadata["config"], "netx metadata").data.data_path
    if not data_path or not Path(data_path).is_dir():
        pytest.skip(f"the model's data set is not on this machine (looked in {data_path})")
    figures = read_manifest(model.with_name(model.name + ".manifest.json"))["figures"]
    # In a child process: the CNN's golden run takes over 1 GiB, and a process forked later from
    # this one starts with its peak RSS (tests/test_untrusted_files.py bounds its children's).
    code = (
        "import json, sys; from pathlib import Path; from tsslbp.workflows import evaluate_model; "
        "r = evaluate_model(Path(sys.argv[1]), samples=int(sys.argv[2])); "
        "print(json.dumps([r.n_samples, r.accuracy]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(model), str(figures["lava_samples"])],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    n_samples, accuracy = json.loads(done.stdout.strip().splitlines()[-1])
    assert n_samples == figures["lava_samples"]
    assert accuracy == figures["lava_golden_accuracy"], (accuracy, figures)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_table_says_when_the_file_wants_the_constant_input(model: Path) -> None:
    """A file trained on normalized input takes one more input channel (constant 1.0); its README
    row says so, read from the manifest's config, and the file's metadata agrees."""
    from tsslbp.workflows.shipping import models_table

    (row,) = [line for line in models_table(MODELS_DIR) if f"/{model.name}`" in line]
    assert ("normalization folded in" in row) == bool(read_netx(model).metadata.get("input_ones"))
