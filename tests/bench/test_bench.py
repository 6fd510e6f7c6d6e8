"""tsslbp bench: the suites run on small networks and their figures reach the table, plots and manifest."""

import json

import pytest
from click.testing import CliRunner

from tsslbp.bench import markdown_report, run_bench
from tsslbp.bench.peers import PEERS
from tsslbp.bench.plots import write_plots
from tsslbp.bench.suites import (
    bench_config,
    make_steppers,
    scaling,
    time_interleaved,
    train_throughput,
)
from tsslbp.cli import main
from tsslbp.manifest import read_manifest


def test_bench_config_drops_dropout_and_resizes_hidden_layers():
    cfg = bench_config("fmnist_mlp_400_400.yaml", 10, hidden=100)
    assert cfg.n_steps == 10
    assert cfg.architecture == "784-100-100-10", cfg.architecture


def test_every_implementation_takes_a_step_that_changes_its_weights():
    cfg = bench_config("digits_mlp.yaml")
    steppers = make_steppers(cfg, 8)
    assert set(steppers) == {
        "tsslbp",
        "tsslbp (torch ops)",
        "step-by-step",
        "numpy loop (tests)",
        "snntorch",
        "spikingjelly",
        "norse",
    }
    for name, step in steppers.items():
        if isinstance(step, str):
            assert name in PEERS and "not installed" in step, f"{name}: {step}"
            continue
        step()  # runs without error: forward, backward and the Adam update
    times = time_interleaved(
        {k: v for k, v in steppers.items() if callable(v)}, repeats=2, warmup=0
    )
    assert all(t > 0 for t in times.values())


def test_suites_on_small_networks_fill_the_report_and_plots(tmp_path):
    rows = train_throughput(
        True, batch=8, networks={"digits MLP": "digits_mlp.yaml"}, log=lambda _: None
    )
    ours = next(r for r in rows if r["implementation"] == "tsslbp")
    assert ours["time_vs_tsslbp"] == 1.0 and ours["samples_per_s"] > 0
    assert ours["peak_rss_mb"] >= ours["rss_before_mb"] > 0, ours
    scale = scaling(
        True, batch=8, log=lambda _: None, config="digits_mlp.yaml", steps=(4, 6), widths=(16, 32)
    )
    assert {r["T"] for r in scale["T"]} == {4, 6} and {r["hidden"] for r in scale["width"]} == {
        16,
        32,
    }
    results = {
        "quick": True,
        "machine": {
            "platform": "p",
            "cpu_count": 2,
            "torch": "t",
            "torch_threads": 2,
            "python": "3",
        },
        "seconds": {"throughput": 1.0},
        "throughput": rows,
        "scaling": scale,
    }
    text = markdown_report(results)
    assert f"| digits MLP | tsslbp | {ours['ms_per_step']:,.2f} |" in text
    assert "## Step time (ms) vs time steps T" in text and "| 6 |" in text
    pngs = write_plots(results, tmp_path)
    assert [p.name for p in pngs] == ["scaling_T.png", "scaling_width.png", "throughput.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)


def test_run_bench_rejects_unknown_suites_and_cli_offers_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark suite"):
        run_bench(tmp_path, suites=["speed"])
    result = CliRunner().invoke(main, ["bench", "--suite", "speed", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "speed" in result.output


@pytest.mark.slow
def test_run_bench_writes_results_markdown_plots_and_manifest(tmp_path, monkeypatch):
    from tsslbp.bench import suites

    monkeypatch.setattr(suites, "NETWORKS", {"digits MLP": "digits_mlp.yaml"})
    real = suites.train_throughput
    monkeypatch.setattr(
        suites,
        "train_throughput",
        lambda quick, log: real(
            quick, batch=8, log=log, networks={"digits MLP": "digits_mlp.yaml"}
        ),
    )
    results = run_bench(tmp_path, quick=True, suites=["throughput"], log=lambda _: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["throughput"] == json.loads(json.dumps(results["throughput"]))
    assert (tmp_path / "results.md").read_text() == markdown_report(saved)
    manifest = read_manifest(tmp_path / "results.json")
    assert {o["path"].split("/")[-1] for o in manifest["outputs"]} >= {
        "results.json",
        "results.md",
        "throughput.png",
    }


def test_torch_ops_implementation_never_calls_the_fused_kernels(monkeypatch):
    from tsslbp.train import kernels

    if not kernels.enabled():
        pytest.skip("fused kernels unavailable")
    calls = []
    real_forward = kernels.lif_psp_forward
    monkeypatch.setattr(kernels, "lif_psp_forward", lambda *a: calls.append(1) or real_forward(*a))
    steppers = make_steppers(bench_config("digits_mlp.yaml"), 8, ("tsslbp", "tsslbp (torch ops)"))
    steppers["tsslbp (torch ops)"]()
    assert calls == []
    steppers["tsslbp"]()
    assert calls, "the tsslbp stepper should use the fused kernels"
    import os

    assert "TSSLBP_KERNELS" not in os.environ or os.environ["TSSLBP_KERNELS"] != "torch"


def test_ddp_suite_measures_one_and_two_processes_and_reports_them():
    from tsslbp.bench.ddp import ddp_scaling

    rows = ddp_scaling(
        True, batch=16, log=lambda _: None, networks={"digits MLP": "digits_mlp.yaml"}
    )
    assert len(rows) == 1 and "unavailable" not in rows[0], rows
    row = rows[0]
    assert row["processes"] == 2 and row["samples_per_s_1"] > 0 and row["samples_per_s_n"] > 0
    assert row["efficiency"] == pytest.approx(row["samples_per_s_n"] / (2 * row["samples_per_s_1"]))
    assert row["samples_per_s_independent"] > 0
    assert row["ceiling_speedup"] == pytest.approx(
        row["samples_per_s_independent"] / row["samples_per_s_1"]
    )
    results = {
        "machine": {
            "platform": "p",
            "cpu_count": 2,
            "torch": "t",
            "torch_threads": 1,
            "python": "3",
        },
        "seconds": {"ddp": 1.0},
        "ddp": rows,
    }
    text = markdown_report(results)
    assert f"| digits MLP | 16 | {row['samples_per_s_1']:,.0f} | 2 |" in text, text
    assert f"| {row['samples_per_s_independent']:,.0f} ({row['ceiling_speedup']:.2f}x) |" in text


def test_gpu_suite_times_every_implementation_on_the_given_device():
    from tsslbp.bench.gpu import gpu_throughput

    rows = gpu_throughput(
        True, batch=8, log=lambda _: None, networks={"digits MLP": "digits_mlp.yaml"}, device="cpu"
    )
    timed = {r["implementation"]: r for r in rows if "ms_per_step" in r}
    assert {"tsslbp", "tsslbp (torch ops)"} <= set(timed), rows
    assert timed["tsslbp"]["time_vs_tsslbp"] == 1.0 and timed["tsslbp"]["samples_per_s"] > 0
    assert all(r["implementation"] in PEERS for r in rows if "unavailable" in r), rows
    results = {
        "machine": {
            "platform": "p",
            "cpu_count": 2,
            "torch": "t",
            "torch_threads": 1,
            "python": "3",
        },
        "seconds": {"gpu": 1.0},
        "gpu": rows,
    }
    assert (
        f"| digits MLP | tsslbp | cpu | {timed['tsslbp']['ms_per_step']:,.3f} |"
        in markdown_report(results)
    )


def test_gpu_suite_without_a_device_says_so(monkeypatch):
    from tsslbp.bench import gpu

    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    assert gpu.gpu_throughput(True) == [{"unavailable": "no CUDA device"}]
