"""The option vocabulary of the command line: parameter types within tsslbp's documented limits,
help texts, options shared by several commands (each declared once), the error wrapper and the
recorded command line. :mod:`tsslbp.cli` declares the commands with them.

Imports click and the standard library only (``tsslbp.safeio`` for the limits), so ``tsslbp
--help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .safeio import LIMITS

__all__: list[str] = []  # private to tsslbp.cli

_IN_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT_FILE = click.Path(dir_okay=False, path_type=Path)
_OUT_DIR = click.Path(file_okay=False, path_type=Path)
# Counts within the documented limits of tsslbp.safeio.LIMITS (beyond them: a bad option, exit 2).
_COUNT = click.IntRange(min=1, max=LIMITS["samples"].high)
_EPOCHS = click.IntRange(min=1, max=LIMITS["epochs"].high)
_STEPS = click.IntRange(min=1, max=LIMITS["steps"].high)
_SEED = click.IntRange(min=0, max=LIMITS["seed"].high)
# tsslbp.export.quantize.ROUNDINGS, written out: importing it would load torch for --help.
_ROUNDING = click.Choice(["compensated", "nearest"])
_WEIGHT_RANGE = click.Choice(["search", "max"])
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
    "--weight-range": "Top of the weight grid in a layer whose scale the weights bound: max (the largest weight) or search (the fraction of the largest weight, 1 down to 0.4, whose current on the calibration batch is closest to the float layer's; larger weights clip; it did not raise the Fashion-MNIST CNN's test accuracy: docs/fixed-point.md).",
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


def _verbose() -> bool:
    """Whether the running command was given ``tsslbp -v``."""
    return bool(click.get_current_context().find_root().params.get("verbose"))


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own error types into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError, OSError, KeyError) as err:
            # ConfigError, DataError, CheckpointError, NetxError, WorkflowError are ValueErrors;
            # Lava failures and missing backends are RuntimeErrors.
            if _verbose():
                raise
            raise click.ClickException(str(err)) from err

    return wrapper


def _command_line() -> list[str]:
    """The running command as words: ``tsslbp [-v] SUBCOMMAND`` and every parameter's resolved
    value (defaults included), so a manifest shows exactly what ran."""
    ctx = click.get_current_context()
    words = ["tsslbp", *(["-v"] if _verbose() else [])]
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
