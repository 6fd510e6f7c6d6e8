"""Design rules: each rule triggered by a crafted network, the lava-dl fixtures, the CLI."""

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from paths import LAVA_DL_FIXTURES, REPO, needs_lava_dl_fixtures

from tsslbp.cli import main
from tsslbp.export.lint import (
    DesignRuleError,
    Rule,
    Severity,
    check_design_rules,
    layer_names,
    lint_file,
    lint_spec,
)
from tsslbp.export.netx import write_netx
from tsslbp.hwmodels.resources import CoreLimits
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec

MALFORMED = REPO / "tests" / "data" / "netx_malformed"
NEURON = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=100)


def _spec(**changes) -> NetworkSpec:
    """A valid 4-3-2 network; ``changes`` replace fields of the first dense layer or of the spec."""
    first = DenseLayer(np.array([[1, -2, 3, 0], [4, 5, -6, 7], [-8, 9, 10, 11]], np.int64), NEURON)
    second = DenseLayer(np.array([[1, 2, -3], [3, -2, 1]], np.int64), NEURON)
    spec_fields = {k: changes.pop(k) for k in ("input_message_bits", "metadata") if k in changes}
    first = dataclasses.replace(first, **changes)
    return NetworkSpec(layers=(first, second), input_shape=(4,), **spec_fields)


def _only(findings, rule):
    hits = [f for f in findings if f.rule is rule]
    assert len(hits) == 1, (
        f"expected one {rule.value} finding, found {[f.line() for f in findings]}"
    )
    return hits[0]


def test_valid_network_passes():
    assert lint_spec(_spec()) == []
    assert check_design_rules(_spec()) == []


@pytest.mark.parametrize(
    "changes, rule, severity, text",
    [
        (
            {"weight": np.array([[300, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])},
            Rule.WEIGHT_BITS,
            Severity.ERROR,
            "9-bit signed",
        ),
        (
            {"weight": np.array([[-3, 255, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])},
            Rule.WEIGHT_EXACT,
            Severity.WARNING,
            "packing changes",
        ),
        ({"neuron": CubaNeuron(5000, 819, 100)}, Rule.DECAY_BITS, Severity.ERROR, "iDecay"),
        ({"neuron": CubaNeuron(1365, -1, 100)}, Rule.DECAY_BITS, Severity.ERROR, "vDecay"),
        ({"neuron": CubaNeuron(1365, 819, 1 << 17)}, Rule.THRESHOLD_BITS, Severity.ERROR, "17-bit"),
        ({"bias": np.array([0, 5000, 0])}, Rule.BIAS_BITS, Severity.ERROR, "13-bit"),
        (
            {"neuron": CubaNeuron(1365, 819, 100, graded_spike=True)},
            Rule.GRADED_SPIKE,
            Severity.WARNING,
            "0/1 spikes",
        ),
        (
            {"neuron": CubaNeuron(1365, 819, 100, ref_delay=3)},
            Rule.REF_DELAY,
            Severity.WARNING,
            "refractory",
        ),
        ({"input_message_bits": 30}, Rule.INPUT_BITS, Severity.ERROR, "24 bits"),
        (
            {"input_message_bits": 3, "metadata": {"quantization": {"input_bits": 4}}},
            Rule.INPUT_BITS,
            Severity.ERROR,
            "differs",
        ),
    ],
)
def test_each_rule_names_layer_limit_and_value(changes, rule, severity, text):
    finding = _only(lint_spec(_spec(**changes)), rule)
    assert finding.severity is severity and text in finding.line()
    if rule is not Rule.INPUT_BITS:
        assert finding.layer == 1 and finding.name == "dense0", (
            "file index 1: after the shape-only input layer"
        )
    assert finding.limit and finding.found


def test_weight_bits_message_shows_limit_and_found():
    finding = _only(
        lint_spec(_spec(weight=np.array([[300, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]))),
        Rule.WEIGHT_BITS,
    )
    assert finding.line() == (
        "error: layer 1 (dense0): [weight-bits] weights do not fit Loihi's synaptic weight field "
        "(limit 9-bit signed [-256, 255], found 0..300)"
    )


def test_resource_rules():
    fan_in = _only(lint_spec(_spec(), CoreLimits(in_axons=3)), Rule.FAN_IN)
    assert (
        fan_in.severity is Severity.ERROR
        and fan_in.found == "4"
        and "3 input axons" in fan_in.limit
    )
    memory = _only(lint_spec(_spec(), CoreLimits(synapse_bits=200)), Rule.SYNAPSE_MEMORY)
    assert memory.layer == 1 and memory.found == "256 bits", (
        "4 axons x one 64-bit row; the 3-input layer needs 192"
    )
    chips = _only(lint_spec(_spec(), CoreLimits(neurons=1, cores_per_chip=4)), Rule.CHIP_CORES)
    assert (
        chips.severity is Severity.WARNING
        and chips.found == "5 cores"
        and "2 Loihi 2 chips" in chips.message
    )


def test_check_design_rules_raises_with_every_finding():
    spec = _spec(neuron=CubaNeuron(5000, 819, 1 << 17))
    with pytest.raises(DesignRuleError) as err:
        check_design_rules(spec)
    assert {f.rule for f in err.value.findings} == {Rule.DECAY_BITS, Rule.THRESHOLD_BITS}
    assert "(+1 more)" in str(err.value)


def test_layer_names_from_tsslbp_metadata():
    meta = {
        "config": {
            "Layers": {
                "hidden": {"type": "linear"},
                "drop": {"type": "dropout"},
                "output": {"type": "linear"},
            }
        }
    }
    assert layer_names(_spec(metadata=meta)) == ["hidden", "output"]
    assert layer_names(_spec()) == ["dense0", "dense1"]


def test_file_rules_for_types_lava_dl_cannot_build():
    findings, spec = lint_file(MALFORMED / "unknown_layer_type.net")
    finding = _only(findings, Rule.LAYER_TYPE)
    assert (
        spec is None
        and finding.severity is Severity.ERROR
        and "NotImplementedError for 'pool'" in finding.message
    )
    findings, _ = lint_file(MALFORMED / "unknown_neuron_type.net")
    assert _only(findings, Rule.NEURON_TYPE).found == "SIGMA"
    findings, _ = lint_file(MALFORMED / "missing_weight.net")
    assert "missing key 'weight'" in _only(findings, Rule.NETX_READ).message


def test_lava_dl_only_type_is_a_warning(tmp_path: Path):
    path = tmp_path / "rec.net"
    write_netx(_spec(), path)
    with h5py.File(path, "r+") as f:
        del f["layer/2/type"]
        f["layer/2"].create_dataset("type", (1,), "S10", [b"dense_rec"])
    findings, spec = lint_file(path)
    assert spec is None
    assert {(f.rule, f.severity) for f in findings} == {
        (Rule.LAYER_TYPE, Severity.WARNING),
        (Rule.NETX_READ, Severity.WARNING),
    }


@needs_lava_dl_fixtures
@pytest.mark.parametrize("name", ["tiny.net", "pilotnet_lif/network.net"])
def test_lava_dl_fixtures_pass(name):
    findings, spec = lint_file(LAVA_DL_FIXTURES / name)
    assert spec is not None and findings == [], [f.line() for f in findings]


@needs_lava_dl_fixtures
def test_cli_lint(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(
        main, ["lint", str(LAVA_DL_FIXTURES / "tiny.net"), "--json", str(tmp_path / "lint.json")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("3 layers, 0 error(s), 0 warning(s)")
    assert json.loads((tmp_path / "lint.json").read_text())["findings"] == []
    assert (tmp_path / "lint.json.manifest.json").is_file()
    bad = tmp_path / "pool.net"
    shutil.copy(MALFORMED / "unknown_layer_type.net", bad)
    result = runner.invoke(main, ["lint", str(bad)])
    assert result.exit_code == 1
    assert "[layer-type]" in result.output and "1 design-rule error(s)" in result.stderr


@needs_lava_dl_fixtures
def test_cli_report_counts_only_and_with_input(tmp_path: Path):
    runner = CliRunner()
    model = str(LAVA_DL_FIXTURES / "tiny.net")
    result = runner.invoke(main, ["report", model])
    assert result.exit_code == 0, result.output
    assert (
        "1668 neurons, 86400 synapses, 3 cores (1 chip(s) of 128)" in result.output
        and "counts only" in result.output
    )
    # tiny.net's input layer is driven through bias_mant: the image repeated over 8 steps.
    bias = np.load(LAVA_DL_FIXTURES / "tinynet_input_bias.npy")
    np.save(tmp_path / "x.npy", np.repeat(bias[..., None], 8, axis=-1))
    result = runner.invoke(
        main,
        ["report", model, "--input", str(tmp_path / "x.npy"), "--json", str(tmp_path / "r.json")],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["steps_per_sample"] == 8 and report["samples"] == 1
    assert (
        report["totals"]["synops_per_sample"] > 0
        and report["totals"]["energy_pj_per_inference"]["total"] > 0
    )
    assert "per inference (8 steps)" in result.output
    assert (tmp_path / "r.json.manifest.json").is_file()


@pytest.mark.parametrize("steps, period", [(7, 8), (9, 16), (33, 64)])
def test_a_sample_period_that_is_no_power_of_two_is_a_hardware_warning(steps, period):
    finding = _only(lint_spec(_spec(metadata={"steps_per_sample": steps})), Rule.HW_PERIOD)
    assert finding.severity is Severity.WARNING and finding.layer is None
    assert finding.found == f"{steps} steps per sample"
    assert f"run each sample for {period} steps" in finding.message, finding.message
    assert check_design_rules(_spec(metadata={"steps_per_sample": steps})) == [finding]


@pytest.mark.parametrize("metadata", [{"steps_per_sample": 8}, {"steps_per_sample": 1}, {}])
def test_a_power_of_two_period_or_no_tsslbp_metadata_passes(metadata):
    assert lint_spec(_spec(metadata=metadata)) == []
