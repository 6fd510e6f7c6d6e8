"""Command-line interface: ``tsslbp configs | train | eval | export | info | encode | simulate |
verify | deploy | quant-health | demo | nir-export | nir-import | lint | report | bench``.

A thin click layer over :mod:`tsslbp.workflows`: each command parses its options, calls one
workflow function and prints the result's ``lines()``. Errors the user can fix (bad config, missing
data, foreign checkpoint) end with one line on stderr and exit code 1; ``-v`` shows the traceback.
Nothing heavy (numpy, torch, lava) is imported until a command runs, so ``tsslbp --help`` is fast.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__, workflows
from .safeio import LIMITS

__all__ = ["main"]

log = logging.getLogger("tsslbp")

_IN_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT_FILE = click.Path(dir_okay=False, path_type=Path)
_OUT_DIR = click.Path(file_okay=False, path_type=Path)
# Counts within the documented limits of tsslbp.safeio.LIMITS (beyond them: a bad option, exit 2).
_COUNT = click.IntRange(min=1, max=LIMITS["samples"].high)
_EPOCHS = click.IntRange(min=1, max=LIMITS["epochs"].high)
_STEPS = click.IntRange(min=1, max=LIMITS["steps"].high)
# tsslbp.export.quantize.ROUNDINGS, written out: importing it would load torch for --help.
_ROUNDING = click.Choice(["compensated", "nearest"])
_INPUT_BITS = click.IntRange(1, 16)
_SUITES = click.Choice(["throughput", "scaling", "deploy", "accuracy", "ddp", "gpu"])


# Help texts of the options, kept here so that each decorator fits on one line.
_HELP = {
    "--device": "Torch device; auto picks CUDA when available.",
    "--data-dir": "Directory of the data set's files (overrides the config's data_path).",
    "--calibration": "Training samples that bound the state range.",
    "train --out": "Run directory for best.pt, last.pt, metrics.json, curves.png and last.pt.manifest.json [default: runs/<config name>].",
    "--checkpoint-every": "Also save a resumable mid-epoch last.pt every this many seconds (0: after every batch), so a run killed without warning (SIGKILL, power loss) loses at most that much work.",
    "export --input-bits": "Graded input width in bits (1-16), or auto: the width whose golden predictions agree best with the float model on the calibration batch.",
    "--rounding": "Weight rounding: compensated (each rounding error absorbed by the neuron's other weights on the calibration batch; docs/fixed-point.md) or nearest.",
    "--weight-bits": "Synaptic weight width: multiples of 2**(9 - bits) in [-256, 256 - 2**(9 - bits)], as Loihi's num_weight_bits.",
    "export --strict": "Fail (exit 1) on clipped weights or saturated/wrapping state.",
    "--steps": "Run N steps (X padded with zeros or cut).",
    "verify --strict": "Also fail (exit 1) when the state saturates or nears its wrap.",
    "verify --plots": "Write spike rasters of test sample 0, float vs Lava (raster.png + manifest), into this directory.",
    "nir-import --dt": "The producer's seconds per step (needed without tsslbp metadata; snnTorch: 1e-4).",
    "simulate --input": "X.npy: (*input shape in Lava order, S) integers: graded payloads 0..2**bits-1 (0/1 for binary input); `tsslbp encode` writes one.",
    "simulate --sample": "Run this test sample of the file's data set instead of --input (tsslbp files).",
    "--reset-interval": "Zero u and v every N steps, layer i offset by i steps: lava-dl's netx.hdf5.Network(reset_interval=N) [default: no reset].",
    "--reset-offset": "lava-dl's reset_offset (with --reset-interval).",
    "encode --image": "An image (.png) or array (.npy) of values in [0, 1], the network's input size (CxHxW).",
    "encode --output": "X.npy to write: (*input shape in Lava order, steps), for `tsslbp simulate --input` or lava-dl.",
    "train --force": "Replace the run already in OUT (its best.pt, last.pt, metrics) with a new one.",
    "--progress": "Progress bars on stderr [default: only when stderr is a terminal; otherwise one line per stage].",
    "simulate --output": "Y.npy: (n_out, S) output spikes.",
    "--target": "sim: Lava's CPU fixed-point simulator; loihi2: Loihi 2 hardware (needs lava-loihi).",
    "--period": "Run each sample for P steps (zero-padded) with the chip's reset schedule (reset_interval=P, reset_offset=1), as Loihi 2 runs it; P is a power of 2 there.",
    "deploy --bundle": "With --target loihi2: write a self-checking bundle for a Loihi 2 machine into this (new or empty) folder instead of running (docs/hardware.md).",
    "--bits": "Weight widths to export and score, comma-separated, widest first.",
    "quant-health --input-bits": "Graded input width for every export [default: the auto choice of the widest weights].",
    "quant-health --out": "Directory for model_w<bits>.net, quant_health.json/.png and the manifest.",
    "--config": "Training config, a YAML file or a shipped config's name [default: digits_mlp].",
    "demo --samples": "Test samples verified on Lava [default: the whole test split].",
    "nir-import --input-bits": "Without tsslbp metadata: 0 = binary input spikes, else graded input x in [0, 1] sent with this many bits.",
    "report --input": "X.npy: ([B,] *input shape in Lava order, S) input spikes (`tsslbp encode` writes one), for files without tsslbp metadata.",
    "--quick": "Short version: fewer repeats, samples, epochs and seeds (minutes on 2 CPU cores).",
    "bench --out": "Results folder: results.json, results.md, PNG plots, manifest.",
    "--suite": "Run only these suites (repeatable) [default: all].",
}


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own error types into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError, OSError, KeyError) as err:
            # ConfigError, DataError, CheckpointError, NetxError, WorkflowError are ValueErrors;
            # Lava failures and missing backends are RuntimeErrors.
            if click.get_current_context().find_root().params.get("verbose"):
                raise
            raise click.ClickException(str(err)) from err

    return wrapper


def _command_line() -> list[str]:
    """The running command as words: ``tsslbp [-v] SUBCOMMAND`` and every parameter's resolved
    value (defaults included), so a manifest shows exactly what ran."""
    ctx = click.get_current_context()
    words = ["tsslbp", *(["-v"] if ctx.find_root().params.get("verbose") else [])]
    words.append(str(ctx.info_name))
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            if param.secondary_opts:
                words.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                words.append(param.opts[0])
        elif value is not None and isinstance(param, click.Option):
            name = max(param.opts, key=len)
            for v in value if param.multiple else (value,):
                # A list parsed from one comma-separated word (--bits 8,6,4) goes back to that word.
                words += [name, ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
    return words


def _config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A config given as a path or as a shipped config's name (``tsslbp configs`` lists them)."""
    from .configs import ConfigNotFoundError, find_config

    if value is None:
        return None
    try:
        return find_config(value)
    except ConfigNotFoundError as err:
        raise click.BadParameter(str(err)) from None


def _progress_default(ctx: click.Context, param: click.Parameter, value: bool | None) -> bool:
    """Progress bars redraw a line with carriage returns: only on a terminal unless asked for."""
    return sys.stderr.isatty() if value is None else value


def _echo(result: Any) -> None:
    lines = result.lines()
    if lines:  # none from the silent ranks of a data-parallel run
        click.echo("\n".join(lines))


def _warn_or_fail(warnings: list[str], strict: bool) -> None:
    """Print each warning on stderr; with ``--strict`` any warning is an error (exit 1)."""
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if strict and warnings:
        raise click.ClickException(f"--strict: {len(warnings)} quantization warning(s)")


def _fail_unless_exact(result: Any) -> None:
    if not result.exact:
        raise click.ClickException("golden model and Lava disagree")


# Options shared by several commands, declared once (help given where they are used).
_option = click.option
_device_option = _option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", help=_HELP["--device"]
)
_data_dir_option = _option("--data-dir", type=_OUT_DIR, default=None, help=_HELP["--data-dir"])
_progress_option = _option(
    "--progress/--no-progress",
    default=None,
    callback=_progress_default,
    show_default=False,
    help=_HELP["--progress"],
)
_period_option = _option("--period", type=_COUNT, default=None, help=_HELP["--period"])
_calibration_option = _option(
    "--calibration", type=_COUNT, default=512, help=_HELP["--calibration"]
)
_json_option = functools.partial(_option, "--json", "json_path", type=_OUT_FILE, default=None)
_output_option = functools.partial(_option, "-o", "--output", type=_OUT_FILE, required=True)
_samples_option = functools.partial(_option, "--samples", type=_COUNT)
_plots_option = functools.partial(_option, "--plots", "plots_dir", type=_OUT_DIR, default=None)
_dt_option = functools.partial(
    _option, "--dt", type=click.FloatRange(min=0.0, min_open=True), default=None
)


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
@_option(
    "--seed",
    type=click.IntRange(min=0, max=LIMITS["seed"].high),
    default=None,
    help="Override Network.seed.",
)
@_device_option
@_option("--out", type=_OUT_DIR, default=None, help=_HELP["train --out"])
@_option("--resume", is_flag=True, help="Continue the run in OUT from its last.pt.")
@_option("--force", is_flag=True, help=_HELP["train --force"])
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
    from .train.loop import TrainingInterrupted

    try:
        result = workflows.train(config, **options, log=click.echo, command=_command_line())
    except TrainingInterrupted as stop:
        if stop.rank == 0:  # every rank of a data-parallel run stops; rank 0 reports
            click.echo(str(stop), err=True)
        sys.exit(130)  # the conventional status of a run ended by SIGINT
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
