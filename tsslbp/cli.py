"""Command-line interface: ``tsslbp configs | train | eval | export | info | encode | simulate |
verify | deploy | quant-health | demo | nir-export | nir-import | lint | report | bench``.

A thin click layer over :mod:`tsslbp.workflows`: each command parses its options, calls one
workflow function and prints the result's ``lines()``. Errors the user can fix (bad config, missing
data, foreign checkpoint) end with one line on stderr and exit code 1; ``-v`` shows the traceback.
Nothing heavy (numpy, torch, lava) is imported until a command runs, so ``tsslbp --help`` is fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__, workflows
from .cli_options import (
    _COUNT,
    _EPOCHS,
    _HELP,
    _IN_FILE,
    _INPUT_BITS,
    _OUT_DIR,
    _OUT_FILE,
    _ROUNDING,
    _SEED,
    _STEPS,
    _SUITES,
    _WEIGHT_RANGE,
    _calibration_option,
    _command_line,
    _config_file,
    _data_dir_option,
    _device_option,
    _dt_option,
    _echo,
    _fail_unless_exact,
    _json_option,
    _option,
    _output_option,
    _period_option,
    _plots_option,
    _progress_option,
    _samples_option,
    _user_errors,
    _verbose,
    _warn_or_fail,
)

__all__ = ["main"]

log = logging.getLogger("tsslbp")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="tsslbp")
@_option("-v", "--verbose", is_flag=True, help="Log details and show tracebacks on errors.")
def main(verbose: bool) -> None:
    """Train TSSL-BP spiking neural networks and take them to Loihi fixed point.

    \b
    Typical use:
      tsslbp configs                       # the shipped configs
      tsslbp train digits_mlp --out runs/digits
      tsslbp eval runs/digits/best.pt
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from ._malloc import retain_freed_memory

    retain_freed_memory()  # reuse freed tensor memory: no page faults per step (tsslbp/_malloc.py)


@main.command("configs")
@_user_errors
def configs_cmd() -> None:
    """List the shipped training configs: `tsslbp train NAME` uses one, `--config NAME` for demo."""
    _echo(workflows.configs())


@main.command()
@click.argument("config", callback=_config_file)
@_data_dir_option
@_option("--epochs", type=_EPOCHS, default=None, help="Override Network.epochs.")
@_option("--seed", type=_SEED, default=None, help="Override Network.seed.")
@_device_option
@_option("--out", type=_OUT_DIR, default=None, help=_HELP["train --out"])
@_option("--resume", is_flag=True, help="Continue the run in OUT from its last.pt.")
@_option("--force", is_flag=True, help=_HELP["train --force"])
@_option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from this checkpoint's weights (its average where it kept one) instead of a "
    "random initialization: fine-tuning, with CONFIG's schedule and a new optimizer.",
)
@_option(
    "--checkpoint-every",
    "checkpoint_seconds",
    type=click.FloatRange(min=0),
    default=300,
    help=_HELP["--checkpoint-every"],
)
@_progress_option
@_user_errors
def train(config: Path, **options: Any) -> None:
    """Train the network described by CONFIG with TSSL-BP.

    CONFIG is a YAML file or the name of a shipped config (`tsslbp configs` lists them).
    """
    from .train.distributed import DistributedError
    from .train.loop import TrainingInterrupted

    try:
        result = workflows.train(config, **options, log=click.echo, command=_command_line())
    except TrainingInterrupted as stop:
        if stop.rank == 0:  # every rank of a data-parallel run stops; rank 0 reports
            click.echo(str(stop), err=True)
        sys.exit(130)  # the conventional status of a run ended by SIGINT
    except DistributedError as err:
        # A peer is gone and the process group's threads cannot be joined: the interpreter's
        # teardown could abort ("terminate called ..."). Report in one line and leave at once.
        if _verbose():
            traceback.print_exc()
        click.echo(f"Error: {err}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    _echo(result)


@main.command("eval")
@click.argument("checkpoint", type=_IN_FILE)
@_data_dir_option
@_device_option
@_option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_plots_option(help="Write the confusion matrix (confusion.png + manifest) into this directory.")
@_user_errors
def evaluate_cmd(checkpoint: Path, as_json: bool, **options: Any) -> None:
    """Score a CHECKPOINT (float model) or a netx file (golden fixed-point model) on the test split."""
    result = workflows.evaluate(checkpoint, **options, command=_command_line())
    if as_json:
        click.echo(json.dumps(result.to_dict()))  # names the confusion.png it wrote, if any
    else:
        _echo(result)


@main.command()
@click.argument("checkpoint", type=_IN_FILE)
@_output_option(help="netx file to write.")
@_data_dir_option
@_calibration_option
@_option("--input-bits", default="auto", help=_HELP["export --input-bits"])
@_option("--weight-bits", type=click.IntRange(2, 8), default=8, help=_HELP["--weight-bits"])
@_option("--rounding", type=_ROUNDING, default="compensated", help=_HELP["--rounding"])
@_option("--weight-range", type=_WEIGHT_RANGE, default="max", help=_HELP["--weight-range"])
@_json_option(help="Also write the quantization report here.")
@_option("--strict", is_flag=True, help=_HELP["export --strict"])
@_user_errors
def export(checkpoint: Path, output: Path, input_bits: str, strict: bool, **options: Any) -> None:
    """Quantize CHECKPOINT to Loihi fixed point and write a netx HDF5 file."""
    if input_bits != "auto" and not (input_bits.isdigit() and 1 <= int(input_bits) <= 16):
        raise click.BadParameter(
            f"expected auto or an integer 1..16, found {input_bits!r}", param_hint="--input-bits"
        )
    bits = None if input_bits == "auto" else int(input_bits)
    result = workflows.export(
        checkpoint, output, input_bits=bits, **options, command=_command_line()
    )
    _echo(result)
    _warn_or_fail(result.warnings(), strict)


@main.command()
@click.argument("model", type=_IN_FILE)
@_user_errors
def info(model: Path) -> None:
    """Describe a netx MODEL: layers, shapes, neuron parameters, bit widths, counts."""
    _echo(workflows.info(model))


@main.command()
@click.argument("model", type=_IN_FILE)
@_option("--input", "input_path", type=_IN_FILE, default=None, help=_HELP["simulate --input"])
@_option("--sample", type=click.IntRange(min=0), default=None, help=_HELP["simulate --sample"])
@_data_dir_option
@_option("--output", "output_path", type=_OUT_FILE, required=True, help=_HELP["simulate --output"])
@_option("--backend", type=click.Choice(["golden", "lava"]), default="golden")
@_option("--steps", type=_STEPS, default=None, help=_HELP["--steps"])
@_option("--reset-interval", type=_COUNT, default=None, help=_HELP["--reset-interval"])
@_option("--reset-offset", type=click.IntRange(min=0), default=0, help=_HELP["--reset-offset"])
@_user_errors
def simulate(
    model: Path, input_path: Path | None, output_path: Path, sample: int | None, **options: Any
) -> None:
    """Run one sample through MODEL; column t of X enters the network at step t."""
    if (input_path is None) == (sample is None):
        raise click.UsageError("give exactly one of --input X.npy and --sample I")
    result = workflows.simulate(
        model, input_path, output_path, sample=sample, **options, command=_command_line()
    )
    _echo(result)
    for line in result.notes:
        click.echo(line, err=True)


@main.command()
@click.argument("model", type=_IN_FILE)
@_option(
    "--sample",
    type=click.IntRange(min=0),
    default=None,
    help="Test sample I of the file's data set.",
)
@_option("--image", "image_path", type=_IN_FILE, default=None, help=_HELP["encode --image"])
@_data_dir_option
@_output_option(help=_HELP["encode --output"])
@_user_errors
def encode(
    model: Path, output: Path, sample: int | None, image_path: Path | None, **options: Any
) -> None:
    """Write one input for MODEL (a tsslbp netx file) in its encoding and layout."""
    if (image_path is None) == (sample is None):
        raise click.UsageError("give exactly one of --sample I and --image FILE")
    _echo(workflows.encode(model, output, sample=sample, image_path=image_path, **options))


@main.command()
@click.argument("model", type=_IN_FILE)
@_samples_option(default=100, help="Test samples to run.")
@_data_dir_option
@_json_option(help="Write the report as JSON.")
@_progress_option
@_option("--strict", is_flag=True, help=_HELP["verify --strict"])
@_plots_option(help=_HELP["verify --plots"])
@_period_option
@_user_errors
def verify(model: Path, strict: bool, **options: Any) -> None:
    """Run MODEL on the golden model and on Lava and compare every layer at every step.

    Exits with code 1 on any mismatch.
    """
    result = workflows.verify(model, **options, command=_command_line())
    _echo(result)
    _fail_unless_exact(result)
    _warn_or_fail(result.warnings(), strict)


@main.command()
@click.argument("model", type=_IN_FILE)
@_option("--target", type=click.Choice(["sim", "loihi2"]), default="sim", help=_HELP["--target"])
@_option("--samples", type=_COUNT, default=100)
@_data_dir_option
@_progress_option
@_option("--bundle", "bundle_dir", type=_OUT_DIR, default=None, help=_HELP["deploy --bundle"])
@_period_option
@_user_errors
def deploy(
    model: Path, target: str, progress: bool, bundle_dir: Path | None, **options: Any
) -> None:
    """Run MODEL's test samples on Lava (simulator or Loihi 2) and report accuracy."""
    if bundle_dir is None:
        _echo(workflows.deploy(model, target=target, progress=progress, **options))
    elif target != "loihi2":
        raise click.UsageError("--bundle writes a Loihi 2 bundle: use it with --target loihi2")
    else:
        _echo(workflows.bundle(model, bundle_dir, **options, command=_command_line()))


def _weight_bits_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``8,6,4`` -> (8, 6, 4); each width 2..8."""
    from .export.quantize import WEIGHT_BITS_MAX as high
    from .export.quantize import WEIGHT_BITS_MIN as low

    try:
        bits = tuple(int(b) for b in value.replace(" ", ",").split(",") if b)
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers such as 8,6,4, found {value!r}"
        ) from None
    if not bits or any(not low <= b <= high for b in bits):
        raise click.BadParameter(f"expected widths in {low}..{high}, found {value!r}")
    return bits


@main.command("quant-health")
@click.argument("checkpoint", type=_IN_FILE)
@_option("--bits", "weight_bits", default="8,6,4", callback=_weight_bits_list, help=_HELP["--bits"])
@_samples_option(default=1000, help="Test samples scored (the first N).")
@_data_dir_option
@_calibration_option
@_option("--input-bits", type=_INPUT_BITS, default=None, help=_HELP["quant-health --input-bits"])
@_option("--out", type=_OUT_DIR, required=True, help=_HELP["quant-health --out"])
@_user_errors
def quant_health_cmd(checkpoint: Path, out: Path, **options: Any) -> None:
    """Accuracy vs weight width and per-layer spike rate, float vs fixed point, for CHECKPOINT."""
    result = workflows.quant_health(checkpoint, out, **options, command=_command_line())
    for line in result.warnings():
        click.echo(f"warning: {line}", err=True)
    _echo(result)


@main.command()
@_option("--config", "config_path", callback=_config_file, default=None, help=_HELP["--config"])
@_option("--out", type=_OUT_DIR, default=Path("runs/demo"))
@_option("--samples", type=_COUNT, default=None, help=_HELP["demo --samples"])
@_option("--epochs", type=_EPOCHS, default=None, help="Override the config's epochs.")
@_progress_option
@_user_errors
def demo(config_path: Path | None, **options: Any) -> None:
    """The whole job on the embedded digits: train, export to netx, verify on Lava, summarize."""
    result = workflows.demo(config_path, **options, log=click.echo, command=_command_line())
    _echo(result)
    _fail_unless_exact(result)


@main.command("nir-export")
@click.argument("model", type=_IN_FILE)
@_output_option(help="The NIR file to write.")
@_dt_option(help="Seconds per step in the time constants [default: 1e-3].")
@_user_errors
def nir_export(model: Path, output: Path, dt: float | None) -> None:
    """Write the netx MODEL as a NIR graph (CubaLIF, Linear, Conv2d, Flatten) with its integers as metadata."""
    _echo(workflows.nir_export(model, output, dt=dt, command=_command_line()))


@main.command("nir-import")
@click.argument("graph_path", metavar="GRAPH", type=_IN_FILE)
@_output_option(help="The netx file to write.")
@_dt_option(help=_HELP["nir-import --dt"])
@_option(
    "--input-bits", type=click.IntRange(0, 24), default=0, help=_HELP["nir-import --input-bits"]
)
@_user_errors
def nir_import(graph_path: Path, output: Path, **options: Any) -> None:
    """Turn a NIR GRAPH into a netx file (exact for tsslbp's own graphs, quantized for others)."""
    result = workflows.nir_import(graph_path, output, **options, command=_command_line())
    _echo(result)
    for line in result.warnings():
        click.echo(f"warning: {line}", err=True)


@main.command()
@click.argument("model", type=_IN_FILE)
@_json_option(help="Also write the findings as JSON (+ manifest).")
@_user_errors
def lint(model: Path, json_path: Path | None) -> None:
    """Check MODEL against Loihi 2's limits and what lava-dl's netx loader reads.

    Prints one line per finding; exits with code 1 when any is an error.
    """
    result = workflows.lint(model, json_path=json_path, command=_command_line())
    _echo(result)
    if result.errors:
        raise click.ClickException(f"{result.errors} design-rule error(s)")


@main.command()
@click.argument("model", type=_IN_FILE)
@_samples_option(default=100, help="Test samples run on the golden model.")
@_data_dir_option
@_option("--input", "input_path", type=_IN_FILE, default=None, help=_HELP["report --input"])
@_json_option(help="Also write the report as JSON (+ manifest).")
@_user_errors
def report(model: Path, **options: Any) -> None:
    """Per layer on Loihi 2: neurons, synapses, cores, spikes, synops; energy and latency per inference."""
    _echo(workflows.report(model, **options, command=_command_line()))


@main.command()
@_option("--quick", is_flag=True, help=_HELP["--quick"])
@_option("--out", type=_OUT_DIR, default=Path("runs/bench"), help=_HELP["bench --out"])
@_option("--suite", "suites", multiple=True, type=_SUITES, help=_HELP["--suite"])
@_user_errors
def bench(quick: bool, out: Path, suites: tuple[str, ...]) -> None:
    """Benchmarks: training step vs the step-by-step baseline and snnTorch, scaling in T and width,
    golden model vs Lava, accuracy vs BPTT. Prints the tables and writes them to OUT."""
    _echo(workflows.bench(out, quick=quick, suites=suites, log=click.echo))


if __name__ == "__main__":  # pragma: no cover
    main()
