"""Command-line interface: ``tsslbp train | eval | export | info | simulate | verify | deploy | quant-health | demo | nir-export | nir-import | lint | report``.

A thin click layer: each command loads its inputs, calls one library function and prints a short
summary. Errors the user can fix (bad config, missing data, foreign checkpoint) end with one line
on stderr and exit code 1; ``-v`` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import __version__

__all__ = ["main"]

log = logging.getLogger("tsslbp")


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own error types into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError, OSError, KeyError) as err:
            # ConfigError, DataError, CheckpointError, NetxError are ValueErrors; Lava failures and
            # missing backends are RuntimeErrors.
            if click.get_current_context().find_root().params.get("verbose"):
                raise
            raise click.ClickException(str(err)) from err

    return wrapper


_device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Torch device; auto picks CUDA when available.",
)
_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the data set's files (overrides the config's data_path).",
)


def _command_line() -> list[str]:
    """The running command as words: ``tsslbp [-v] SUBCOMMAND`` and every parameter's resolved
    value (defaults included), so a manifest shows exactly what ran."""
    ctx = click.get_current_context()
    words = [
        "tsslbp",
        *(["-v"] if ctx.find_root().params.get("verbose") else []),
        str(ctx.info_name),
    ]
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


def _manifest(
    artifact: Path,
    inputs: Sequence[Path | str | None] = (),
    outputs: Sequence[Path | str | None] = (),
    config: dict[str, Any] | None = None,
    figures: dict[str, Any] | None = None,
) -> Path:
    """``ARTIFACT.manifest.json`` for this command (tsslbp.manifest); ``None`` inputs/outputs are
    skipped and the seed is the config's."""
    from .manifest import write_manifest

    seed = (config or {}).get("Network", {}).get("seed")
    return write_manifest(
        artifact,
        inputs=[p for p in inputs if p is not None],
        outputs=[p for p in outputs if p is not None],
        config=config,
        seed=seed,
        figures=figures,
        command=_command_line(),
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tsslbp")
@click.option("-v", "--verbose", is_flag=True, help="Log details and show tracebacks on errors.")
def main(verbose: bool) -> None:
    """Train TSSL-BP spiking neural networks and take them to Loihi fixed point.

    \b
    Typical use:
      tsslbp train configs/digits_mlp.yaml --out runs/digits
      tsslbp eval runs/digits/best.pt
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from ._malloc import retain_freed_memory

    retain_freed_memory()  # reuse freed tensor memory: no page faults per step (tsslbp/_malloc.py)


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_data_dir_option
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override Network.epochs.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override Network.seed.")
@_device_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory for best.pt, last.pt, metrics.json, curves.png and last.pt.manifest.json [default: runs/<config name>].",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt when it exists.")
@click.option(
    "--checkpoint-every",
    "checkpoint_seconds",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Also save a resumable mid-epoch last.pt every this many seconds (0: after every batch), "
    "so a run killed without warning (SIGKILL, power loss) loses at most that much work.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar per epoch."
)
@_user_errors
def train(
    config: Path,
    data_dir: Path | None,
    epochs: int | None,
    seed: int | None,
    device: str,
    out: Path | None,
    resume: bool,
    checkpoint_seconds: float,
    progress: bool,
) -> None:
    """Train the network described by CONFIG (a YAML file) with TSSL-BP."""
    from .config import load_config
    from .train.data import load_experiment_data
    from .train.loop import TrainingInterrupted, fit, resolve_device

    cfg = load_config(config)
    overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    if overrides:
        cfg = cfg.replace(**overrides)
    out = out or Path("runs") / config.stem
    torch_device = resolve_device(device)
    data = load_experiment_data(cfg, data_dir)
    click.echo(
        f"training {config.name}: {data.name} ({len(data.train)} train / {len(data.test)} test), "
        f"{cfg.architecture}, T={cfg.n_steps}, loss={cfg.train.loss.value}, "
        f"{cfg.train.epochs} epochs, seed {cfg.train.seed}, {torch_device}"
    )
    try:
        history = fit(
            cfg,
            data,
            out,
            device=torch_device,
            resume=resume,
            progress=progress,
            on_epoch=lambda m: click.echo(m.line(cfg.train.epochs)),
            checkpoint_seconds=checkpoint_seconds,
        )
    except TrainingInterrupted as stop:
        click.echo(str(stop), err=True)
        _train_record(out, cfg, config, data_dir, _saved_history(out / "last.pt"), interrupted=True)
        sys.exit(130)  # the conventional status of a run ended by SIGINT
    if not history:
        click.echo(f"nothing to do: {out / 'last.pt'} already holds all {cfg.train.epochs} epochs")
        return
    best = max(history, key=lambda m: m.test_acc)
    total = sum(m.seconds for m in history)
    (out / "metrics.json").write_text(
        json.dumps({"config": cfg.to_dict(), "epochs": [vars(m) for m in history]}, indent=2)
    )
    _train_record(out, cfg, config, data_dir, history)
    click.echo(
        f"done: final test accuracy {100 * history[-1].test_acc:.2f}%, best {100 * best.test_acc:.2f}% "
        f"(epoch {best.epoch}); {total:.1f} s training; checkpoints in {out}/"
    )


def _saved_history(checkpoint: Path) -> list[Any]:
    """The per-epoch metrics stored in a checkpoint (empty when none were completed)."""
    from .train.loop import EpochMetrics, load_checkpoint

    return (
        [EpochMetrics(**m) for m in load_checkpoint(checkpoint)["metrics"]]
        if checkpoint.is_file()
        else []
    )


def _train_record(
    out: Path,
    cfg: Any,
    config: Path | None,
    data_dir: Path | None,
    history: list[Any],
    interrupted: bool = False,
) -> None:
    """curves.png (when an epoch is complete) and the run's manifest, named after last.pt."""
    from . import plots

    curves = (
        plots.training_curves(
            history, out / "curves.png", title=f"{cfg.architecture}, seed {cfg.train.seed}"
        )
        if history
        else None
    )
    best = max(history, key=lambda m: m.test_acc) if history else None
    figures = {
        "epochs_done": len(history),
        "interrupted": interrupted,
        "final_test_acc": history[-1].test_acc if history else None,
        "final_train_acc": history[-1].train_acc if history else None,
        "final_loss": history[-1].loss if history else None,
        "best_test_acc": best.test_acc if best else None,
        "best_epoch": best.epoch if best else None,
        "train_seconds": sum(m.seconds for m in history),
    }
    metrics = out / "metrics.json"
    _manifest(
        out / "last.pt",
        inputs=[config, data_dir],
        outputs=[
            out / "best.pt" if (out / "best.pt").is_file() else None,
            metrics if metrics.is_file() and not interrupted else None,
            curves,
        ],
        config=cfg.to_dict(),
        figures=figures,
    )


@main.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_data_dir_option
@_device_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the confusion matrix (confusion.png + manifest) into this directory.",
)
@_user_errors
def evaluate_cmd(
    checkpoint: Path, data_dir: Path | None, device: str, as_json: bool, plots_dir: Path | None
) -> None:
    """Evaluate a trained CHECKPOINT on its data set's test split."""
    from .train.data import load_experiment_data
    from .train.loop import evaluate, model_from_checkpoint, resolve_device

    torch_device = resolve_device(device)
    model, cfg, state = model_from_checkpoint(checkpoint, torch_device)
    data = load_experiment_data(cfg, data_dir)
    result = evaluate(model, data.test, cfg)
    if plots_dir is not None:
        from . import plots
        from .analysis import confusion_counts, float_predictions

        counts = confusion_counts(
            data.test.labels.numpy(), float_predictions(model, data.test.images), cfg.data.n_class
        )
        png = plots.confusion_matrix(
            counts,
            plots_dir / "confusion.png",
            title=f"{checkpoint.name} (float), {data.name} test",
        )
        _manifest(
            png,
            inputs=[checkpoint, data_dir],
            config=cfg.to_dict(),
            figures={
                "accuracy": result.accuracy,
                "n_samples": result.n_samples,
                "epoch": state["epoch"],
                "confusion": counts,
            },
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "checkpoint": str(checkpoint),
                    "epoch": state["epoch"],
                    "dataset": data.name,
                    **vars(result),
                }
            )
        )
        return
    click.echo(
        f"test accuracy {100 * result.accuracy:.2f}% on {result.n_samples} {data.name} samples "
        f"(epoch {state['epoch']} of {checkpoint}; loss {result.loss:.4f}/sample, "
        f"{result.mean_output_spikes:.2f} output spikes/sample)"
    )


def _echo_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))


def _quant_rows(report: Any) -> list[list[str]]:
    from .hwmodels.health import STATE_LIMIT

    rows = []
    for q in report.layers:
        rows.append(
            [
                q.name,
                f"{q.scale:.4g}",
                q.limited_by,
                f"{q.weight_bits_used:.1f}",
                f"{q.n_clipped}/{q.n_weights}",
                f"{100 * q.weight_rmse:.2f}%",
                str(q.v_th_mant),
                f"{q.i_decay}/{q.v_decay}",
                f"{q.max_abs_u_int / STATE_LIMIT:.1%}",
                f"{q.v_floor:.2%}",
            ]
        )
    return rows


_QUANT_HEADER = [
    "layer",
    "scale",
    "limited by",
    "w bits",
    "clipped",
    "w rmse",
    "vThMant",
    "iDecay/vDecay",
    "max|u|/2^23",
    "v at floor",
]


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="netx file to write.",
)
@_data_dir_option
@click.option(
    "--calibration",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Training samples that bound the state range.",
)
@click.option(
    "--input-bits",
    default="auto",
    show_default=True,
    help="Graded input width in bits (1-16), or auto: the width whose golden predictions agree best with the float model on the calibration batch.",
)
@click.option(
    "--weight-bits",
    type=click.IntRange(2, 8),
    default=8,
    show_default=True,
    help="Synaptic weight width: multiples of 2**(9 - bits) in [-256, 256 - 2**(9 - bits)], as Loihi's num_weight_bits.",
)
@click.option(
    "--rounding",
    type=click.Choice(["compensated", "nearest"]),
    default="compensated",
    show_default=True,
    help="Weight rounding: compensated (each rounding error absorbed by the neuron's other weights "
    "on the calibration batch; docs/fixed-point.md) or nearest.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the quantization report here.",
)
@click.option(
    "--strict", is_flag=True, help="Fail (exit 1) on clipped weights or saturated/wrapping state."
)
@_user_errors
def export(
    checkpoint: Path,
    output: Path,
    data_dir: Path | None,
    calibration: int,
    input_bits: str,
    weight_bits: int,
    rounding: str,
    json_path: Path | None,
    strict: bool,
) -> None:
    """Quantize CHECKPOINT to Loihi fixed point and write a netx HDF5 file."""
    from .export.exporter import export_checkpoint
    from .export.quantize import QuantConfig

    if input_bits == "auto":
        bits = None
    elif input_bits.isdigit() and 1 <= int(input_bits) <= 16:
        bits = int(input_bits)
    else:
        raise click.BadParameter(
            f"expected auto or an integer 1..16, found {input_bits!r}", param_hint="--input-bits"
        )
    result = export_checkpoint(
        checkpoint,
        output,
        data_dir,
        QuantConfig(calibration_samples=calibration, weight_bits=weight_bits, rounding=rounding),
        bits,
    )
    _echo_table(_quant_rows(result.report), _QUANT_HEADER)
    _echo_export_summary(result, output)
    if json_path is not None:
        json_path.write_text(json.dumps(result.report.to_dict(), indent=2))
    _export_manifest(result, checkpoint, data_dir, json_path)
    _warn_or_fail(result.report.warnings(), strict)


def _export_manifest(
    result: Any, checkpoint: Path, data_dir: Path | None, json_path: Path | None = None
) -> Path:
    """The netx file's manifest: checkpoint in, quantization summary and input width as figures."""
    meta = result.spec.metadata
    figures = {
        "input_bits": result.spec.input_message_bits,
        "weight_bits": result.report.config.weight_bits,
        "input_bits_agreement": result.input_bits_agreement,
        "input_bits_skipped": result.input_bits_skipped,
        "calibration_samples": result.report.calibration_samples,
        "steps_per_sample": meta.get("steps_per_sample"),
        "layers": [
            {
                k: getattr(q, k)
                for k in (
                    "name",
                    "scale",
                    "limited_by",
                    "weight_bits_used",
                    "n_clipped",
                    "n_weights",
                    "weight_rmse",
                    "v_th_mant",
                    "max_abs_u_int",
                    "max_abs_v_int",
                    "v_floor",
                )
            }
            for q in result.report.layers
        ],
        "warnings": result.report.warnings(),
    }
    return _manifest(
        result.path,
        inputs=[checkpoint, data_dir],
        outputs=[json_path],
        config=meta.get("config"),
        figures=figures,
    )


def _warn_or_fail(warnings: list[str], strict: bool) -> None:
    """Print each warning on stderr; with ``--strict`` any warning is an error (exit 1)."""
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if strict and warnings:
        raise click.ClickException(f"--strict: {len(warnings)} quantization warning(s)")


def _echo_export_summary(result: Any, output: Path) -> None:
    meta = result.spec.metadata
    kinds = "/".join(
        sorted({type(layer).__name__.replace("Layer", "").lower() for layer in result.spec.layers})
    )
    agreement = ", ".join(
        f"{b} bits {100 * a:.1f}%" for b, a in result.input_bits_agreement.items()
    )
    click.echo(f"input width: golden vs float predictions on the calibration batch: {agreement}")
    for bits, why in result.input_bits_skipped.items():
        click.echo(f"input width {bits} bits not usable: {why}")
    click.echo(
        f"wrote {output}: {len(result.spec.layers)} layers ({kinds}), T={meta['n_steps']}, "
        f"{meta['steps_per_sample']} steps/sample, "
        f"{'graded ' + str(result.spec.input_message_bits) + '-bit' if result.spec.input_message_bits else 'binary spike'} input, "
        f"calibrated on {result.report.calibration_samples} samples"
    )


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_user_errors
def info(model: Path) -> None:
    """Describe a netx MODEL: layers, shapes, neuron parameters, bit widths, counts."""
    from .export.netx import read_netx
    from .hwmodels.spec import ConvLayer, DenseLayer, FlattenLayer

    spec = read_netx(model)
    rows, n_neurons, n_syn = [], 0, 0
    for i, layer in enumerate(spec.layers):
        kind = type(layer).__name__.replace("Layer", "").lower()
        neurons = int(np.prod(layer.shape)) if not isinstance(layer, FlattenLayer) else 0
        if isinstance(layer, DenseLayer):
            synapses = int(layer.weight.size)
        elif isinstance(layer, ConvLayer):
            synapses = int(np.prod(layer.shape)) * int(np.prod(layer.weight.shape[1:]))
        else:
            synapses = 0
        n_neurons += neurons
        n_syn += synapses
        neuron = getattr(layer, "neuron", None)
        weight = getattr(layer, "weight", None)
        w = (
            f"{int(np.min(weight))}..{int(np.max(weight))}"
            if isinstance(weight, np.ndarray)
            else "-"
        )
        rows.append(
            [
                str(i),
                kind,
                "x".join(map(str, layer.shape)),
                str(neurons),
                str(synapses),
                w,
                f"{neuron.i_decay}/{neuron.v_decay}" if neuron else "-",
                str(neuron.v_th_mant) if neuron else "-",
            ]
        )
    _echo_table(
        rows,
        ["#", "type", "shape (CHW)", "neurons", "synapses", "weights", "iDecay/vDecay", "vThMant"],
    )
    click.echo(
        f"{model}: {len(spec.layers)} layers, {n_neurons} neurons, {n_syn} synapses, input "
        f"{'x'.join(map(str, spec.input_shape))} ({'graded ' + str(spec.input_message_bits) + '-bit' if spec.input_message_bits else 'binary'})"
    )
    meta = spec.metadata
    if meta:
        click.echo(
            f"tsslbp metadata: T={meta.get('n_steps')}, {meta.get('steps_per_sample')} steps/sample, readout "
            f"{meta.get('readout')} from step {meta.get('readout_offset')}, source {meta.get('source_checkpoint')} "
            f"(sha256 {str(meta.get('source_sha256', ''))[:12]}), {meta.get('producer')}"
        )


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="X.npy: (*input shape in Lava order, S) spikes.",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Y.npy: (n_out, S) output spikes.",
)
@click.option(
    "--backend", type=click.Choice(["golden", "lava"]), default="golden", show_default=True
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Run N steps (X padded with zeros or cut).",
)
@_user_errors
def simulate(
    model: Path, input_path: Path, output_path: Path, backend: str, steps: int | None
) -> None:
    """Run one sample through MODEL; column t of X enters the network at step t."""
    from .export.netx import read_netx
    from .hwmodels.spec import lava_shape

    spec = read_netx(model)
    x = np.load(input_path, allow_pickle=False)
    expected = lava_shape(spec.input_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[:-1]) != expected:
        raise click.ClickException(
            f"{input_path}: expected shape ({', '.join(map(str, expected))}, S), found {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.integer) and not np.array_equal(x, np.round(x)):
        raise click.ClickException(
            f"{input_path}: spikes must be integers (binary or graded), found {x.dtype} values"
        )
    x = x.astype(np.int64)
    if steps is not None:
        padded = np.zeros(x.shape[:-1] + (steps,), dtype=np.int64)
        n = min(steps, x.shape[-1])
        padded[..., :n] = x[..., :n]
        x = padded
    if backend == "golden":
        from .hwmodels.golden import run_golden

        result = run_golden(spec, x[None], record=False)
    else:
        from .deploy.runner import run_lava

        result = run_lava(spec, x[None], record=False)
    y = result.spikes[-1][0].reshape(-1, x.shape[-1])
    np.save(output_path, y)
    click.echo(
        f"{backend}: {x.shape[-1]} steps, {int(y.sum())} output spikes from {y.shape[0]} neurons -> {output_path}"
    )
    # np.save appends .npy to a name without it.
    written = (
        output_path
        if output_path.suffix == ".npy"
        else output_path.with_name(output_path.name + ".npy")
    )
    figures = {
        "backend": backend,
        "steps": int(x.shape[-1]),
        "output_spikes": int(y.sum()),
        "output_neurons": int(y.shape[0]),
    }
    _manifest(
        written, inputs=[model, input_path], config=spec.metadata.get("config"), figures=figures
    )


def _test_data(spec: Any, data_dir: Path | None) -> Any:
    """The test data of a spec exported by tsslbp (its embedded config names the data set)."""
    from .config import parse_config
    from .train.data import load_experiment_data

    if "config" not in spec.metadata:
        raise click.ClickException(
            "this netx file has no tsslbp metadata (data set, readout): use `tsslbp simulate`"
        )
    return load_experiment_data(parse_config(spec.metadata["config"], "netx metadata"), data_dir)


def _test_inputs(spec: Any, data: Any, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` test samples encoded as the spec's input spikes, and their labels."""
    from .hwmodels.readout import encode_for_spec

    n = min(samples, len(data.test))
    return encode_for_spec(data.test.images[:n].numpy(), spec), data.test.labels[:n].numpy()


def _float_accuracy(source: tuple[Any, Any, Path] | None, data: Any, n: int) -> float | None:
    """Float accuracy of the source checkpoint (``report.load_source_checkpoint``) on the first n test samples."""
    from .train.data import Split
    from .train.loop import evaluate

    if source is None:
        return None
    model, cfg, _ = source
    return evaluate(model, Split(data.test.images[:n], data.test.labels[:n]), cfg).accuracy


def _write_raster(
    spec: Any,
    images: Any,
    runs: dict[str, Any],
    source: tuple[Any, Any, Path] | None,
    path: Path,
    title: str,
) -> Path:
    """Spike rasters of the first sample: float model (golden model when the checkpoint is not at
    hand) against the verified Lava run (``runs``: what verify_spec's ``on_runs`` received)."""
    from . import plots
    from .analysis import fixed_layer_spikes, float_layer_spikes

    lava = fixed_layer_spikes(runs["lava"], spec)
    if source is not None:
        left, label = float_layer_spikes(source[0], images[:1]), "float"
    else:
        left, label = fixed_layer_spikes(runs["golden"], spec), "golden"
    report = spec.metadata.get("quantization_report", {}).get("layers", [])
    names = [layer["name"] for layer in report] if len(report) == len(lava) else None
    return plots.spike_rasters(
        [a[0] for a in left], [a[0] for a in lava], path, names, "Lava", title, float_label=label
    )


def _verify(
    model: Path, samples: int, data_dir: Path | None, progress: bool, plots_dir: Path | None = None
) -> Any:
    from .deploy.verify import verify_spec
    from .export.netx import read_netx
    from .report import load_source_checkpoint

    spec = read_netx(model)
    data = _test_data(spec, data_dir)
    inputs, labels = _test_inputs(spec, data, samples)
    runs: dict[str, Any] = {}
    report = verify_spec(
        spec,
        inputs,
        labels,
        progress=progress,
        on_runs=lambda g, lv: runs.update(golden=g, lava=lv),
    )
    source = load_source_checkpoint(spec)
    raster = None
    if plots_dir is not None:
        title = f"{model.name}: {data.name} test sample 0 (label {int(labels[0])})"
        raster = _write_raster(
            spec, data.test.images, runs, source, plots_dir / "raster.png", title
        )
    return report, _float_accuracy(source, data, len(labels)), data.name, spec, source, raster


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Test samples to run.",
)
@_data_dir_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report as JSON.",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--strict", is_flag=True, help="Also fail (exit 1) when the state saturates or nears its wrap."
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write spike rasters of test sample 0, float vs Lava (raster.png + manifest), into this directory.",
)
@_user_errors
def verify(
    model: Path,
    samples: int,
    data_dir: Path | None,
    json_path: Path | None,
    progress: bool,
    strict: bool,
    plots_dir: Path | None,
) -> None:
    """Run MODEL on the golden model and on Lava and compare every layer at every step.

    Exits with code 1 on any mismatch.
    """
    report, flt, name, spec, source, raster = _verify(model, samples, data_dir, progress, plots_dir)
    rows = [
        [
            str(m.layer),
            f"{100 * m.spike_match:.3f}%",
            f"{100 * m.u_match:.3f}%",
            f"{100 * m.v_match:.3f}%",
            str(m.golden_spikes),
            str(m.lava_spikes),
        ]
        for m in report.layers
    ]
    _echo_table(
        rows, ["layer", "spikes match", "u match", "v match", "golden spikes", "lava spikes"]
    )
    acc = dict(report.accuracy)
    if flt is not None:
        acc = {"float": flt, **acc}
    click.echo(
        f"{report.n_samples} {name} samples x {report.steps_per_sample} steps: accuracy "
        + ", ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items())
        + f"; golden {report.seconds['golden']:.2f} s, lava {report.seconds['lava']:.1f} s"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict() | {"accuracy": acc}, indent=2))
    figures = {
        "exact": report.exact,
        "n_samples": report.n_samples,
        "accuracy": acc,
        "spike_match": [m.spike_match for m in report.layers],
    }
    inputs = [model, source[2] if source else None, data_dir]
    for artifact in (json_path, raster):
        if artifact is not None:
            _manifest(artifact, inputs=inputs, config=spec.metadata.get("config"), figures=figures)
    if report.first_mismatch is not None:
        click.echo(report.first_mismatch.line())
    if not report.exact:
        raise click.ClickException("golden model and Lava disagree")
    click.echo("bit-exact: golden model and Lava agree on every spike, u and v")
    _warn_or_fail(report.warnings(), strict)


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--target",
    type=click.Choice(["sim", "loihi2"]),
    default="sim",
    show_default=True,
    help="sim: Lava's CPU fixed-point simulator; loihi2: Loihi 2 hardware (needs lava-loihi).",
)
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True)
@_data_dir_option
@click.option("--progress/--no-progress", default=True, show_default=True)
@_user_errors
def deploy(model: Path, target: str, samples: int, data_dir: Path | None, progress: bool) -> None:
    """Run MODEL's test samples on Lava (simulator or Loihi 2) and report accuracy."""
    import time

    from .deploy.runner import deploy_target_check, run_lava
    from .export.netx import read_netx
    from .hwmodels.readout import predict_counts

    deploy_target_check(target)
    spec = read_netx(model)
    data = _test_data(spec, data_dir)
    inputs, labels = _test_inputs(spec, data, samples)
    name = data.name
    t0 = time.perf_counter()
    result = run_lava(spec, inputs, record=False, progress=progress)
    seconds = time.perf_counter() - t0
    acc = float((predict_counts(result.spikes[-1], spec.metadata) == labels).mean())
    click.echo(
        f"{target}: {len(labels)} {name} samples, accuracy {100 * acc:.2f}%, {seconds:.1f} s ({len(labels) / seconds:.1f} samples/s)"
    )


def _weight_bits_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``8,6,4`` -> (8, 6, 4); each width 2..8."""
    from .export.quantize import WEIGHT_BITS_MAX, WEIGHT_BITS_MIN

    try:
        bits = tuple(int(b) for b in value.replace(" ", ",").split(",") if b)
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers such as 8,6,4, found {value!r}"
        ) from None
    if not bits or any(not WEIGHT_BITS_MIN <= b <= WEIGHT_BITS_MAX for b in bits):
        raise click.BadParameter(
            f"expected widths in {WEIGHT_BITS_MIN}..{WEIGHT_BITS_MAX}, found {value!r}"
        )
    return bits


@main.command("quant-health")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bits",
    "weight_bits",
    default="8,6,4",
    show_default=True,
    callback=_weight_bits_list,
    help="Weight widths to export and score, comma-separated, widest first.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Test samples scored (the first N).",
)
@_data_dir_option
@click.option(
    "--calibration",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Training samples that bound the state range.",
)
@click.option(
    "--input-bits",
    type=click.IntRange(1, 16),
    default=None,
    help="Graded input width for every export [default: the auto choice of the widest weights].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for model_w<bits>.net, quant_health.json/.png and the manifest.",
)
@_user_errors
def quant_health_cmd(
    checkpoint: Path,
    weight_bits: tuple[int, ...],
    samples: int,
    data_dir: Path | None,
    calibration: int,
    input_bits: int | None,
    out: Path,
) -> None:
    """Accuracy vs weight width and per-layer spike rate, float vs fixed point, for CHECKPOINT."""
    from .quant_health import quant_health, write_quant_health

    result = quant_health(checkpoint, out, weight_bits, samples, data_dir, calibration, input_bits)
    json_path, png = write_quant_health(result, out)
    rows = [
        [
            "float",
            "-",
            f"{100 * result.float_accuracy:.2f}%",
            "-",
            *(f"{r:.4f}" for r in result.float_rates),
        ]
    ]
    for w in result.widths:
        if w.error is not None:
            rows.append(
                [
                    f"{w.weight_bits} bits",
                    "-",
                    "export failed",
                    "-",
                    *("-" for _ in result.layer_names),
                ]
            )
            click.echo(f"warning: {w.weight_bits} bits: {w.error}", err=True)
            continue
        rmse = "/".join(f"{100 * e:.1f}" for e in w.weight_rmse)
        rows.append(
            [
                f"{w.weight_bits} bits",
                rmse,
                f"{100 * w.accuracy:.2f}%",
                f"{100 * w.agreement:.1f}%",
                *(f"{r:.4f}" for r in w.layer_rates),
            ]
        )
    _echo_table(
        rows,
        [
            "model",
            "w rmse %",
            "accuracy",
            "same as float",
            *(f"rate {n}" for n in result.layer_names),
        ],
    )
    click.echo(
        f"{result.n_samples} {result.dataset} test samples, {result.input_bits}-bit input; wrote {json_path}, {png}"
    )
    _manifest(
        json_path,
        inputs=[checkpoint, data_dir],
        outputs=[png, *(w.netx for w in result.widths if w.netx)],
        config=result.config,
        figures=result.figures(),
    )
    for w in result.widths:
        if w.netx:
            figures = {
                "weight_bits": w.weight_bits,
                "input_bits": result.input_bits,
                "accuracy": w.accuracy,
                "n_samples": result.n_samples,
                "weight_rmse": w.weight_rmse,
                "clipped": w.clipped,
            }
            _manifest(
                Path(w.netx), inputs=[checkpoint, data_dir], config=result.config, figures=figures
            )


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Training config [default: the shipped configs/digits_mlp.yaml].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    help="Test samples verified on Lava [default: the whole test split].",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Override the config's epochs."
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_user_errors
def demo(
    config_path: Path | None, out: Path, samples: int | None, epochs: int | None, progress: bool
) -> None:
    """The whole job on the embedded digits: train, export to netx, verify on Lava, summarize."""
    import time

    from .config import load_config
    from .deploy.verify import verify_spec
    from .export.exporter import export_checkpoint
    from .hwmodels.golden import run_golden
    from .hwmodels.readout import encode_for_spec, predict_counts
    from .train.data import load_experiment_data
    from .train.loop import evaluate, fit, model_from_checkpoint

    config_path = config_path or Path(__file__).resolve().parents[1] / "configs" / "digits_mlp.yaml"
    cfg = load_config(config_path)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    data = load_experiment_data(cfg)
    click.echo(
        f"[1/4] train {config_path.name} ({len(data.train)} train / {len(data.test)} test, {cfg.train.epochs} epochs)"
    )
    t0 = time.perf_counter()
    history = fit(
        cfg,
        data,
        out,
        progress=progress,
        on_epoch=lambda m: (
            click.echo("  " + m.line(cfg.train.epochs))
            if m.epoch % 5 == 0 or m.epoch == cfg.train.epochs
            else None
        ),
    )
    t_train = time.perf_counter() - t0
    checkpoint = out / "last.pt"  # the final model: no selection on the test split
    _train_record(out, cfg, config_path, None, history)

    click.echo(f"[2/4] export {checkpoint} -> {out / 'model.net'}")
    t0 = time.perf_counter()
    result = export_checkpoint(checkpoint, out / "model.net")
    t_export = time.perf_counter() - t0
    _export_manifest(result, checkpoint, None)
    _echo_table(_quant_rows(result.report), _QUANT_HEADER)
    _echo_export_summary(result, out / "model.net")

    click.echo(f"[3/4] float and golden fixed-point model on all {len(data.test)} test samples")
    model, cfg, _ = model_from_checkpoint(checkpoint)
    t0 = time.perf_counter()
    float_acc = evaluate(model, data.test, cfg).accuracy
    t_float = time.perf_counter() - t0
    spec, meta = result.spec, result.spec.metadata
    x_all = encode_for_spec(data.test.images.numpy(), spec)
    t0 = time.perf_counter()
    golden = run_golden(spec, x_all, record=False)
    t_golden = time.perf_counter() - t0
    golden_pred = predict_counts(golden.spikes[-1], meta)
    golden_acc = float((golden_pred == data.test.labels.numpy()).mean())

    n = min(samples or len(data.test), len(data.test))
    click.echo(
        f"[4/4] verify on Lava's fixed-point simulator: {n} test samples, every layer and step"
    )
    runs: dict[str, Any] = {}
    report = verify_spec(
        spec,
        x_all[:n],
        data.test.labels[:n].numpy(),
        progress=progress,
        on_runs=lambda g, lv: runs.update(golden=g, lava=lv),
    )
    match = min(m.spike_match for m in report.layers)
    rows = [
        [
            "float (PyTorch)",
            f"{100 * float_acc:.2f}%",
            str(len(data.test)),
            f"{t_float:.2f} s",
            "-",
        ],
        [
            "fixed point (golden)",
            f"{100 * golden_acc:.2f}%",
            str(len(data.test)),
            f"{t_golden:.2f} s",
            "-",
        ],
        [
            "golden, Lava subset",
            f"{100 * report.accuracy['golden']:.2f}%",
            str(n),
            f"{report.seconds['golden']:.2f} s",
            "-",
        ],
        [
            "Lava fixed_pt",
            f"{100 * report.accuracy['lava']:.2f}%",
            str(n),
            f"{report.seconds['lava']:.1f} s",
            f"{100 * match:.2f}%",
        ],
    ]
    click.echo("")
    _echo_table(rows, ["model", "accuracy", "samples", "time", "spike match"])
    _demo_plots(
        out, spec, data, runs, golden_pred, model, checkpoint, report, float_acc, golden_acc
    )
    click.echo(
        f"train {t_train:.1f} s, export {t_export:.1f} s; artifacts in {out}/ (last.pt, model.net, curves.png, confusion.png, raster.png, *.manifest.json)"
    )
    if report.first_mismatch is not None:
        click.echo(report.first_mismatch.line())
    if not report.exact:
        raise click.ClickException("golden model and Lava disagree")
    click.echo(
        f"test accuracy: float {100 * float_acc:.2f}%, fixed point {100 * golden_acc:.2f}%, Lava {100 * report.accuracy['lava']:.2f}% ({n} samples, bit-exact)"
    )


def _demo_plots(
    out: Path,
    spec: Any,
    data: Any,
    runs: dict[str, Any],
    golden_pred: np.ndarray,
    model: Any,
    checkpoint: Path,
    report: Any,
    float_acc: float,
    golden_acc: float,
) -> None:
    """The demo's confusion matrix (golden model, whole test split) and rasters (float vs Lava,
    test sample 0), each with its manifest."""
    from . import plots
    from .analysis import confusion_counts

    config = spec.metadata.get("config")
    counts = confusion_counts(data.test.labels.numpy(), golden_pred, int(spec.metadata["n_class"]))
    png = plots.confusion_matrix(
        counts, out / "confusion.png", title=f"fixed point (golden), {data.name} test"
    )
    _manifest(
        png,
        inputs=[out / "model.net"],
        config=config,
        figures={"golden_accuracy": golden_acc, "n_samples": len(golden_pred), "confusion": counts},
    )
    title = f"{data.name} test sample 0 (label {int(data.test.labels[0])})"
    png = _write_raster(
        spec, data.test.images, runs, (model, None, checkpoint), out / "raster.png", title
    )
    figures = {
        "float_accuracy": float_acc,
        "golden_accuracy": golden_acc,
        "lava_accuracy": report.accuracy.get("lava"),
        "lava_exact": report.exact,
    }
    _manifest(png, inputs=[out / "model.net", checkpoint], config=config, figures=figures)


@main.command("nir-export")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The NIR file to write.",
)
@click.option(
    "--dt",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Seconds per step in the time constants [default: 1e-3].",
)
@_user_errors
def nir_export(model: Path, output: Path, dt: float | None) -> None:
    """Write the netx MODEL as a NIR graph (CubaLIF, Linear, Conv2d, Flatten) with its integers as metadata."""
    from .export.netx import read_netx
    from .export.nir_io import DEFAULT_DT, spec_to_nir, write_nir
    from .manifest import write_manifest

    spec = read_netx(model)
    graph = spec_to_nir(spec, DEFAULT_DT if dt is None else dt)
    write_nir(graph, output)
    kinds = [type(node).__name__ for node in graph.nodes.values()]
    write_manifest(
        output,
        inputs=[model],
        figures={"nodes": len(kinds), "dt": DEFAULT_DT if dt is None else dt},
    )
    click.echo(
        f"wrote {output}: {len(kinds)} NIR nodes ({' -> '.join(kinds)}) from {len(spec.layers)} layers of {model}"
    )


@main.command("nir-import")
@click.argument(
    "graph_path", metavar="GRAPH", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The netx file to write.",
)
@click.option(
    "--dt",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="The producer's seconds per step (needed without tsslbp metadata; snnTorch: 1e-4).",
)
@click.option(
    "--input-bits",
    type=click.IntRange(0, 24),
    default=0,
    show_default=True,
    help="Without tsslbp metadata: 0 = binary input spikes, else graded input x in [0, 1] sent with this many bits.",
)
@_user_errors
def nir_import(graph_path: Path, output: Path, dt: float | None, input_bits: int) -> None:
    """Turn a NIR GRAPH into a netx file (exact for tsslbp's own graphs, quantized for others)."""
    from .export.netx import write_netx
    from .export.nir_io import METADATA_KEY, nir_to_spec, read_nir
    from .manifest import write_manifest

    graph = read_nir(graph_path)
    exact = METADATA_KEY in (graph.metadata or {})
    spec = nir_to_spec(graph, dt=dt, input_bits=input_bits)
    write_netx(spec, output)
    write_manifest(
        output,
        inputs=[graph_path],
        figures={
            "layers": len(spec.layers),
            "exact": exact,
            "layer_scales": spec.metadata.get("layer_scales"),
        },
    )
    how = (
        "exact (tsslbp metadata)"
        if exact
        else f"quantized from floats (dt {dt:g} s, {'graded ' + str(input_bits) + '-bit' if input_bits else 'binary'} input)"
    )
    click.echo(
        f"wrote {output}: {len(spec.layers)} layers from {len(graph.nodes)} NIR nodes of {graph_path}, {how}"
    )


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the findings as JSON (+ manifest).",
)
@_user_errors
def lint(model: Path, json_path: Path | None) -> None:
    """Check MODEL against Loihi 2's limits and what lava-dl's netx loader reads.

    Prints one line per finding; exits with code 1 when any is an error.
    """
    from .export.lint import Severity, lint_file
    from .manifest import write_manifest

    findings, spec = lint_file(model)
    for f in findings:
        click.echo(f.line())
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    layers = f"{len(spec.layers)} layers" if spec is not None else "not readable by tsslbp"
    click.echo(f"{model}: {layers}, {errors} error(s), {warnings} warning(s)")
    if json_path is not None:
        json_path.write_text(
            json.dumps({"model": str(model), "findings": [f.to_dict() for f in findings]}, indent=2)
        )
        write_manifest(json_path, inputs=[model], figures={"errors": errors, "warnings": warnings})
    if errors:
        raise click.ClickException(f"{errors} design-rule error(s)")


def _report_inputs(
    spec: Any, samples: int, data_dir: Path | None, input_path: Path | None
) -> tuple[np.ndarray | None, Any, str]:
    """(encoded inputs or None, float-model images or None, a description) for ``tsslbp report``."""
    from .hwmodels.spec import lava_shape

    if input_path is not None:
        x = np.load(input_path, allow_pickle=False)
        expected = lava_shape(tuple(getattr(spec.layers[0], "shape", spec.input_shape)))
        if x.ndim == len(expected) + 1:
            x = x[None]
        if x.ndim != len(expected) + 2 or tuple(x.shape[1:-1]) != expected:
            raise click.ClickException(
                f"{input_path}: expected shape ([B,] {', '.join(map(str, expected))}, S), found {x.shape}"
            )
        return (
            x[:samples].astype(np.int64),
            None,
            f"{min(len(x), samples)} samples from {input_path}",
        )
    if "config" not in spec.metadata:
        return None, None, "no tsslbp metadata and no --input: counts only"
    data = _test_data(spec, data_dir)
    inputs, _ = _test_inputs(spec, data, samples)
    return inputs, data.test.images[: len(inputs)], f"{len(inputs)} {data.name} test samples"


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Test samples run on the golden model.",
)
@_data_dir_option
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="X.npy: ([B,] *input shape in Lava order, S) input spikes, for files without tsslbp metadata.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON (+ manifest).",
)
@_user_errors
def report(
    model: Path,
    samples: int,
    data_dir: Path | None,
    input_path: Path | None,
    json_path: Path | None,
) -> None:
    """Per layer on Loihi 2: neurons, synapses, cores, spikes, synops; energy and latency per inference."""
    from .export.netx import read_netx
    from .hwmodels.resources import CORES_PER_CHIP
    from .manifest import write_manifest
    from .report import hardware_report, load_source_model

    spec = read_netx(model)
    inputs, images, source = _report_inputs(spec, samples, data_dir, input_path)
    float_model = load_source_model(spec) if images is not None else None
    result = hardware_report(spec, inputs, images, float_model)
    data = result.to_dict()
    rows = []
    for entry in data["layers"]:
        if not entry["neurons"]:
            continue
        rows.append(
            [
                str(entry["layer"]),
                entry["name"],
                str(entry["neurons"]),
                str(entry["synapses"]),
                str(entry["cores"]),
                entry["limited_by"],
                f"{entry['spikes_per_sample']:.1f}" if "spikes_per_sample" in entry else "-",
                f"{entry['synops_per_sample']:.0f}" if "synops_per_sample" in entry else "-",
                f"{100 * entry['silent_fraction']:.1f}%" if "silent_fraction" in entry else "-",
                f"{100 * entry['v_saturated']:.2f}%/{100 * entry['u_near_wrap']:.2f}%"
                if "v_saturated" in entry
                else "-",
            ]
        )
    _echo_table(
        rows,
        [
            "#",
            "layer",
            "neurons",
            "synapses",
            "cores",
            "core limited by",
            "spikes/sample",
            "synops/sample",
            "silent",
            "v sat/u wrap",
        ],
    )
    totals = data["totals"]
    click.echo(
        f"{model}: {totals['neurons']} neurons, {totals['synapses']} synapses, {totals['cores']} cores "
        f"({totals['chips']} chip(s) of {CORES_PER_CHIP}); {source}"
    )
    if totals["latency_ns_per_inference"] is not None:
        energy = totals["energy_pj_per_inference"]
        parts = ", ".join(f"{k} {v / 1e3:.2f}" for k, v in energy.items() if k != "total")
        click.echo(
            f"per inference ({data['steps_per_sample']} steps): {totals['spikes_per_sample']:.1f} spikes, "
            f"{totals['synops_per_sample']:.0f} synops; energy {energy['total'] / 1e3:.2f} nJ ({parts} nJ), "
            f"latency {totals['latency_ns_per_inference'] / 1e3:.2f} us (Loihi 1 per-op figures, docs/energy.md)"
        )
    for entry in data["float_vs_fixed"]:
        ratio = "-" if entry["fixed_over_float"] is None else f"{entry['fixed_over_float']:.3f}"
        click.echo(
            f"  {entry['name']}: float {entry['float_spikes_per_sample']:.1f} vs fixed {entry['fixed_spikes_per_sample']:.1f} spikes/sample (x{ratio})"
        )
    if json_path is not None:
        json_path.write_text(json.dumps({"model": str(model), **data}, indent=2))
        figures = {
            "cores": totals["cores"],
            "synops_per_sample": totals["synops_per_sample"],
            "spikes_per_sample": totals["spikes_per_sample"],
            "energy_pj_per_inference": totals["energy_pj_per_inference"].get("total"),
            "latency_ns_per_inference": totals["latency_ns_per_inference"],
        }
        write_manifest(
            json_path,
            inputs=[model, *([input_path] if input_path else [])],
            config=spec.metadata.get("config"),
            figures=figures,
        )


@main.command()
@click.option(
    "--quick",
    is_flag=True,
    help="Short version: fewer repeats, samples, epochs and seeds (minutes on 2 CPU cores).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/bench"),
    show_default=True,
    help="Results folder: results.json, results.md, PNG plots, manifest.",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(["throughput", "scaling", "deploy", "accuracy"]),
    help="Run only these suites (repeatable) [default: all].",
)
@_user_errors
def bench(quick: bool, out: Path, suites: tuple[str, ...]) -> None:
    """Benchmarks: training step vs the step-by-step baseline and snnTorch, scaling in T and width,
    golden model vs Lava, accuracy vs BPTT. Prints the tables and writes them to OUT."""
    import time

    from .bench import SUITES, markdown_report, run_bench

    t0 = time.perf_counter()
    results = run_bench(out, quick=quick, suites=suites or SUITES, log=click.echo)
    click.echo("")
    click.echo(markdown_report(results))
    click.echo(
        f"wrote {out}/results.json, results.md and plots in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
