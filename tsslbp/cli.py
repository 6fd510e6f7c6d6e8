"""Command-line interface: ``tsslbp train``, ``tsslbp eval``.

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

from . import __version__

__all__ = ["main"]

log = logging.getLogger("tsslbp")


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own error types into one-line click errors (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .config import ConfigError
        from .train.data import DataError
        from .train.loop import CheckpointError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, DataError, CheckpointError, RuntimeError, ValueError, OSError) as err:
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
    progress: bool,
) -> None:
    """Train the network described by CONFIG (a YAML file) with TSSL-BP."""
    from .config import load_config
    from .train.data import load_dataset
    from .train.loop import fit, resolve_device

    cfg = load_config(config)
    overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    if overrides:
        cfg = cfg.replace(**overrides)
    out = out or Path("runs") / config.stem
    torch_device = resolve_device(device)
    data = load_dataset(cfg.data, data_dir)
    sizes = "-".join(str(layer.n_outputs) for layer in cfg.layers if layer.n_outputs)
    click.echo(
        f"training {config.name}: {data.name} ({len(data.train)} train / {len(data.test)} test), "
        f"{cfg.input_size}-{sizes}, T={cfg.n_steps}, loss={cfg.train.loss.value}, "
        f"{cfg.train.epochs} epochs, seed {cfg.train.seed}, {torch_device}"
    )
    history = fit(
        cfg,
        data,
        out,
        device=torch_device,
        resume=resume,
        progress=progress,
        on_epoch=lambda m: click.echo(m.line(cfg.train.epochs)),
    )
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
    from .train.data import load_dataset
    from .train.loop import evaluate, model_from_checkpoint, resolve_device

    torch_device = resolve_device(device)
    model, cfg, state = model_from_checkpoint(checkpoint, torch_device)
    data = load_dataset(cfg.data, data_dir)
    result = evaluate(model, data.test, cfg)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(checkpoint), "epoch": state["epoch"], "dataset": data.name, **vars(result)}))
        return
    click.echo(
        f"test accuracy {100 * result.accuracy:.2f}% on {result.n_samples} {data.name} samples "
        f"(epoch {state['epoch']} of {checkpoint}; loss {result.loss:.4f}/sample, "
        f"{result.mean_output_spikes:.2f} output spikes/sample)"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
