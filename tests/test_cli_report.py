"""``tsslbp report`` / ``lint`` on a trained and exported digits MLP: float vs fixed activity."""

import json

import pytest
from click.testing import CliRunner
from test_config import CONFIGS

from tsslbp.cli import main
from tsslbp.export.netx import read_netx
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.readout import encode_for_spec
from tsslbp.workflows.analysis import (
    fixed_layer_spikes,
    float_layer_spikes,
    float_vs_fixed,
    spikes_per_sample,
)
from tsslbp.workflows.common import load_source_checkpoint, spec_test_data


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A 2-epoch digits MLP and its netx export (files only read by the tests)."""
    out = tmp_path_factory.mktemp("run")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "train",
            str(CONFIGS / "digits_mlp.yaml"),
            "--epochs",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["export", str(out / "last.pt"), "-o", str(out / "model.net")])
    assert result.exit_code == 0, result.output
    return out / "model.net"


def test_report_prints_synops_spikes_cores_energy(exported, tmp_path):
    result = CliRunner().invoke(
        main, ["report", str(exported), "--samples", "20", "--json", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["#", "layer", "neurons"]
    assert lines[1].split()[1:3] == ["hidden", "200"] and lines[2].split()[1:3] == ["output", "10"]
    assert (
        "210 neurons, 14800 synapses, 2 cores (1 chip(s) of 128); 20 digits test samples"
        in result.output
    )
    report = json.loads((tmp_path / "r.json").read_text())
    totals = report["totals"]
    assert (
        totals["cores"] == 2 and totals["synops_per_sample"] > 0 and totals["spikes_per_sample"] > 0
    )
    assert f"{totals['synops_per_sample']:.0f} synops" in result.output
    assert f"energy {totals['energy_pj_per_inference']['total'] / 1e3:.2f} nJ" in result.output
    assert [e["name"] for e in report["float_vs_fixed"]] == ["hidden", "output"]
    assert "hidden: float" in result.output
    # Issue 16 point 8: the two spike figures differ by their windows, and the output says so.
    assert "over the float model's 5 steps" in result.output
    assert "counts all 7 steps of a sample, so it can be larger" in result.output
    per_layer = {e["name"]: e["spikes_per_sample"] for e in report["layers"] if e["neurons"]}
    for entry in report["float_vs_fixed"]:
        assert entry["fixed_spikes_per_sample"] <= per_layer[entry["name"]] + 1e-9
    for entry in (e for e in report["layers"] if e["neurons"]):
        assert (
            0.0 <= entry["v_saturated"] <= 1
            and 0.0 <= entry["v_floor"] <= 1
            and 0.0 <= entry["u_near_wrap"] <= 1
        )


def test_float_vs_fixed_is_plain_data_on_the_same_window(exported):
    spec = read_netx(exported)
    source = load_source_checkpoint(spec)
    assert source is not None, "the checkpoint beside the export is unchanged"
    data = spec_test_data(spec, None)
    images = data.test.images[:30]
    run = run_golden(spec, encode_for_spec(images.numpy(), spec), record=True)
    flt = spikes_per_sample(float_layer_spikes(source.model, images))
    fixed = spikes_per_sample(fixed_layer_spikes(run, spec))
    rows = float_vs_fixed(spec, run, float_layer_spikes(source.model, images))
    assert [r["float_spikes_per_sample"] for r in rows] == flt and [
        r["fixed_spikes_per_sample"] for r in rows
    ] == fixed
    json.dumps(rows)  # plain data
    # The hidden layer's spikes in its window: steps 1..T of the (T + 2)-step run.
    assert fixed[0] == run.spikes[0][..., 1:6].sum() / 30
    # The quantized network fires close to the float one (within 10% on the hidden layer here).
    assert abs(rows[0]["fixed_over_float"] - 1) < 0.1, rows


def test_lint_passes_on_an_export(exported):
    result = CliRunner().invoke(main, ["lint", str(exported)])
    # T = 5 plus 2 synaptic layers: 7 steps per sample, not the power of 2 Loihi 2's reset needs.
    assert result.exit_code == 0 and "2 layers, 0 error(s), 1 warning(s)" in result.output, (
        result.output
    )
    assert "[hw-period]" in result.output and "run each sample for 8 steps" in result.output
