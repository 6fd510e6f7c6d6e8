"""Command-line interface: ``tsslbp train | eval | export | info | simulate | verify | deploy | demo | nir-export | nir-import``.

A thin click layer: each command loads its inputs, calls one library function and prints a short
summary. Errors the user can fix (bad config, missing data, foreign checkpoint) end with one line
on stderr and exit code 1; ``-v`` shows the traceback.
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
    help="Run directory for best.pt, last.pt and metrics.json [default: runs/<config name>].",
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
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar per epoch.")
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
        sys.exit(130)  # the conventional status of a run ended by SIGINT
    if not history:
        click.echo(f"nothing to do: {out / 'last.pt'} already holds all {cfg.train.epochs} epochs")
        return
    best = max(history, key=lambda m: m.test_acc)
    total = sum(m.seconds for m in history)
    (out / "metrics.json").write_text(json.dumps({"config": cfg.to_dict(), "epochs": [vars(m) for m in history]}, indent=2))
    click.echo(
        f"done: final test accuracy {100 * history[-1].test_acc:.2f}%, best {100 * best.test_acc:.2f}% "
        f"(epoch {best.epoch}); {total:.1f} s training; checkpoints in {out}/"
    )


@main.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_data_dir_option
@_device_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_user_errors
def evaluate_cmd(checkpoint: Path, data_dir: Path | None, device: str, as_json: bool) -> None:
    """Evaluate a trained CHECKPOINT on its data set's test split."""
    from .train.data import load_experiment_data
    from .train.loop import evaluate, model_from_checkpoint, resolve_device

    torch_device = resolve_device(device)
    model, cfg, state = model_from_checkpoint(checkpoint, torch_device)
    data = load_experiment_data(cfg, data_dir)
    result = evaluate(model, data.test, cfg)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(checkpoint), "epoch": state["epoch"], "dataset": data.name, **vars(result)}))
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
                f"{q.max_abs_v_int / STATE_LIMIT:.1%}",
            ]
        )
    return rows


_QUANT_HEADER = ["layer", "scale", "limited by", "w bits", "clipped", "w rmse", "vThMant", "iDecay/vDecay", "max|u|/2^23", "max|v|/2^23"]


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="netx file to write.")
@_data_dir_option
@click.option("--calibration", type=click.IntRange(min=1), default=512, show_default=True, help="Training samples that bound the state range.")
@click.option("--input-bits", default="auto", show_default=True, help="Graded input width in bits (1-16), or auto: the width whose golden predictions agree best with the float model on the calibration batch.")
@click.option("--weight-bits", type=click.IntRange(2, 8), default=8, show_default=True, help="Synaptic weight width: multiples of 2**(9 - bits) in [-256, 256 - 2**(9 - bits)], as Loihi's num_weight_bits.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the quantization report here.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on clipped weights or saturated/wrapping state.")
@_user_errors
def export(checkpoint: Path, output: Path, data_dir: Path | None, calibration: int, input_bits: str, weight_bits: int, json_path: Path | None, strict: bool) -> None:
    """Quantize CHECKPOINT to Loihi fixed point and write a netx HDF5 file."""
    from .export.exporter import export_checkpoint
    from .export.quantize import QuantConfig

    if input_bits == "auto":
        bits = None
    elif input_bits.isdigit() and 1 <= int(input_bits) <= 16:
        bits = int(input_bits)
    else:
        raise click.BadParameter(f"expected auto or an integer 1..16, found {input_bits!r}", param_hint="--input-bits")
    result = export_checkpoint(checkpoint, output, data_dir, QuantConfig(calibration_samples=calibration, weight_bits=weight_bits), bits)
    _echo_table(_quant_rows(result.report), _QUANT_HEADER)
    _echo_export_summary(result, output)
    if json_path is not None:
        json_path.write_text(json.dumps(result.report.to_dict(), indent=2))
    _warn_or_fail(result.report.warnings(), strict)


def _warn_or_fail(warnings: list[str], strict: bool) -> None:
    """Print each warning on stderr; with ``--strict`` any warning is an error (exit 1)."""
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if strict and warnings:
        raise click.ClickException(f"--strict: {len(warnings)} quantization warning(s)")


def _echo_export_summary(result: Any, output: Path) -> None:
    meta = result.spec.metadata
    kinds = "/".join(sorted({type(layer).__name__.replace("Layer", "").lower() for layer in result.spec.layers}))
    agreement = ", ".join(f"{b} bits {100 * a:.1f}%" for b, a in result.input_bits_agreement.items())
    click.echo(f"input width: golden vs float predictions on the calibration batch: {agreement}")
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
    from .hwmodels.spec import ConvLayer, DenseLayer, FlattenLayer, InputLayer

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
        w = f"{int(np.min(weight))}..{int(np.max(weight))}" if isinstance(weight, np.ndarray) else "-"
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
    _echo_table(rows, ["#", "type", "shape (CHW)", "neurons", "synapses", "weights", "iDecay/vDecay", "vThMant"])
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
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="X.npy: (*input shape in Lava order, S) spikes.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Y.npy: (n_out, S) output spikes.")
@click.option("--backend", type=click.Choice(["golden", "lava"]), default="golden", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Run N steps (X padded with zeros or cut).")
@_user_errors
def simulate(model: Path, input_path: Path, output_path: Path, backend: str, steps: int | None) -> None:
    """Run one sample through MODEL; column t of X enters the network at step t."""
    from .export.netx import read_netx
    from .hwmodels.spec import lava_shape

    spec = read_netx(model)
    x = np.load(input_path, allow_pickle=False)
    expected = lava_shape(spec.input_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[:-1]) != expected:
        raise click.ClickException(f"{input_path}: expected shape ({', '.join(map(str, expected))}, S), found {x.shape}")
    if not np.issubdtype(x.dtype, np.integer) and not np.array_equal(x, np.round(x)):
        raise click.ClickException(f"{input_path}: spikes must be integers (binary or graded), found {x.dtype} values")
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
    click.echo(f"{backend}: {x.shape[-1]} steps, {int(y.sum())} output spikes from {y.shape[0]} neurons -> {output_path}")


def _test_data(spec: Any, data_dir: Path | None) -> Any:
    """The test data of a spec exported by tsslbp (its embedded config names the data set)."""
    from .config import parse_config
    from .train.data import load_experiment_data

    if "config" not in spec.metadata:
        raise click.ClickException("this netx file has no tsslbp metadata (data set, readout): use `tsslbp simulate`")
    return load_experiment_data(parse_config(spec.metadata["config"], "netx metadata"), data_dir)


def _test_inputs(spec: Any, data: Any, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` test samples encoded as the spec's input spikes, and their labels."""
    from .hwmodels.readout import encode_for_spec

    n = min(samples, len(data.test))
    return encode_for_spec(data.test.images[:n].numpy(), spec), data.test.labels[:n].numpy()


def _float_accuracy(spec: Any, data: Any, n: int) -> float | None:
    """Float accuracy of the source checkpoint on the same samples, when it is still the file the
    spec was exported from (same SHA-256); None otherwise."""
    from .export.quantize import file_sha256
    from .train.data import Split
    from .train.loop import CheckpointError, evaluate, model_from_checkpoint

    path = spec.metadata.get("source_checkpoint")
    if not path or not Path(path).is_file() or file_sha256(path) != spec.metadata.get("source_sha256"):
        return None
    try:
        model, cfg, _ = model_from_checkpoint(path)
    except CheckpointError:
        return None
    return evaluate(model, Split(data.test.images[:n], data.test.labels[:n]), cfg).accuracy


def _verify(model: Path, samples: int, data_dir: Path | None, progress: bool) -> Any:
    from .deploy.verify import verify_spec
    from .export.netx import read_netx

    spec = read_netx(model)
    data = _test_data(spec, data_dir)
    inputs, labels = _test_inputs(spec, data, samples)
    report = verify_spec(spec, inputs, labels, progress=progress)
    return report, _float_accuracy(spec, data, len(labels)), data.name


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True, help="Test samples to run.")
@_data_dir_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--strict", is_flag=True, help="Also fail (exit 1) when the state saturates or nears its wrap.")
@_user_errors
def verify(model: Path, samples: int, data_dir: Path | None, json_path: Path | None, progress: bool, strict: bool) -> None:
    """Run MODEL on the golden model and on Lava and compare every layer at every step.

    Exits with code 1 on any mismatch.
    """
    report, flt, name = _verify(model, samples, data_dir, progress)
    rows = [
        [str(m.layer), f"{100 * m.spike_match:.3f}%", f"{100 * m.u_match:.3f}%", f"{100 * m.v_match:.3f}%", str(m.golden_spikes), str(m.lava_spikes)]
        for m in report.layers
    ]
    _echo_table(rows, ["layer", "spikes match", "u match", "v match", "golden spikes", "lava spikes"])
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
    if report.first_mismatch is not None:
        click.echo(report.first_mismatch.line())
    if not report.exact:
        raise click.ClickException("golden model and Lava disagree")
    click.echo("bit-exact: golden model and Lava agree on every spike, u and v")
    _warn_or_fail(report.warnings(), strict)


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["sim", "loihi2"]), default="sim", show_default=True, help="sim: Lava's CPU fixed-point simulator; loihi2: Loihi 2 hardware (needs lava-loihi).")
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
    click.echo(f"{target}: {len(labels)} {name} samples, accuracy {100 * acc:.2f}%, {seconds:.1f} s ({len(labels) / seconds:.1f} samples/s)")


@main.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Training config [default: the shipped configs/digits_mlp.yaml].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=None, help="Test samples verified on Lava [default: the whole test split].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the config's epochs.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@_user_errors
def demo(config_path: Path | None, out: Path, samples: int | None, epochs: int | None, progress: bool) -> None:
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
    click.echo(f"[1/4] train {config_path.name} ({len(data.train)} train / {len(data.test)} test, {cfg.train.epochs} epochs)")
    t0 = time.perf_counter()
    fit(cfg, data, out, progress=progress, on_epoch=lambda m: click.echo("  " + m.line(cfg.train.epochs)) if m.epoch % 5 == 0 or m.epoch == cfg.train.epochs else None)
    t_train = time.perf_counter() - t0
    checkpoint = out / "last.pt"  # the final model: no selection on the test split

    click.echo(f"[2/4] export {checkpoint} -> {out / 'model.net'}")
    t0 = time.perf_counter()
    result = export_checkpoint(checkpoint, out / "model.net")
    t_export = time.perf_counter() - t0
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
    golden_acc = float((predict_counts(golden.spikes[-1], meta) == data.test.labels.numpy()).mean())

    n = min(samples or len(data.test), len(data.test))
    click.echo(f"[4/4] verify on Lava's fixed-point simulator: {n} test samples, every layer and step")
    report = verify_spec(spec, x_all[:n], data.test.labels[:n].numpy(), progress=progress)
    match = min(m.spike_match for m in report.layers)
    rows = [
        ["float (PyTorch)", f"{100 * float_acc:.2f}%", str(len(data.test)), f"{t_float:.2f} s", "-"],
        ["fixed point (golden)", f"{100 * golden_acc:.2f}%", str(len(data.test)), f"{t_golden:.2f} s", "-"],
        ["golden, Lava subset", f"{100 * report.accuracy['golden']:.2f}%", str(n), f"{report.seconds['golden']:.2f} s", "-"],
        ["Lava fixed_pt", f"{100 * report.accuracy['lava']:.2f}%", str(n), f"{report.seconds['lava']:.1f} s", f"{100 * match:.2f}%"],
    ]
    click.echo("")
    _echo_table(rows, ["model", "accuracy", "samples", "time", "spike match"])
    click.echo(f"train {t_train:.1f} s, export {t_export:.1f} s; artifacts in {out}/ (last.pt, model.net)")
    if report.first_mismatch is not None:
        click.echo(report.first_mismatch.line())
    if not report.exact:
        raise click.ClickException("golden model and Lava disagree")
    click.echo(f"test accuracy: float {100 * float_acc:.2f}%, fixed point {100 * golden_acc:.2f}%, Lava {100 * report.accuracy['lava']:.2f}% ({n} samples, bit-exact)")


@main.command("nir-export")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The NIR file to write.")
@click.option("--dt", type=click.FloatRange(min=0.0, min_open=True), default=None, help="Seconds per step in the time constants [default: 1e-3].")
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
    write_manifest(output, inputs=[model], figures={"nodes": len(kinds), "dt": DEFAULT_DT if dt is None else dt})
    click.echo(f"wrote {output}: {len(kinds)} NIR nodes ({' -> '.join(kinds)}) from {len(spec.layers)} layers of {model}")


@main.command("nir-import")
@click.argument("graph_path", metavar="GRAPH", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The netx file to write.")
@click.option("--dt", type=click.FloatRange(min=0.0, min_open=True), default=None, help="The producer's seconds per step (needed without tsslbp metadata; snnTorch: 1e-4).")
@click.option("--input-bits", type=click.IntRange(0, 24), default=0, show_default=True, help="Without tsslbp metadata: 0 = binary input spikes, else graded input x in [0, 1] sent with this many bits.")
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
    write_manifest(output, inputs=[graph_path], figures={"layers": len(spec.layers), "exact": exact, "layer_scales": spec.metadata.get("layer_scales")})
    how = "exact (tsslbp metadata)" if exact else f"quantized from floats (dt {dt:g} s, {'graded ' + str(input_bits) + '-bit' if input_bits else 'binary'} input)"
    click.echo(f"wrote {output}: {len(spec.layers)} layers from {len(graph.nodes)} NIR nodes of {graph_path}, {how}")


if __name__ == "__main__":  # pragma: no cover
    main()
