"""Ship a trained network as a ready-to-deploy model: the netx file (no optimizer state) and its
manifest, which says what it is, how it was made and what it scores on float, golden and Lava.

Used to make ``models/`` (README, "Trained models"); a Python user can ship their own the same
way. The manifest is :func:`tsslbp.manifest.write_manifest`'s (command, packages, inputs and
outputs with their SHA-256, resolved config, seed) with the figures below and the export's
quantization figures under ``quantization``.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import record

log = logging.getLogger(__name__)

__all__ = [
    "ShipResult",
    "dataset_sha256",
    "git_commit",
    "models_table",
    "ship_model",
    "training_run",
]


@dataclass(frozen=True)
class ShipResult:
    """A shipped model: its netx file, manifest and figures."""

    model: Path
    manifest: Path
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "manifest": str(self.manifest), **self.figures}

    def lines(self) -> list[str]:
        f = self.figures
        return [
            f"{self.model}: float {100 * f['float_accuracy']:.2f}%, golden "
            f"{100 * f['golden_accuracy']:.2f}% ({f['test_samples']} {f['dataset']} test samples); "
            f"Lava on {f['lava_samples']}: {100 * f['lava_accuracy']:.2f}%, "
            f"{'bit-exact' if f['lava_bit_exact'] else 'NOT bit-exact'}; manifest {self.manifest}"
        ]


def dataset_sha256(data: Any) -> str:
    """SHA-256 of a loaded data set's train and test arrays (images then labels, as loaded)."""
    digest = hashlib.sha256()
    for split in (data.train, data.test):
        for tensor in (split.images, split.labels):
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def git_commit(where: Path) -> str | None:
    """The commit of the git work tree holding ``where`` (None outside one)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def ship_model(
    checkpoint: Path,
    out: Path,
    *,
    data_dir: Path | None = None,
    lava_samples: int = 200,
    made_with: str | None = None,
    command: list[str] | None = None,
    reuse_export: bool = False,
) -> ShipResult:
    """Export ``checkpoint`` to ``out`` (netx, default quantization) and score it: float model and
    golden model on the whole test split, golden vs Lava spike for spike on ``lava_samples``.

    The training run's own manifest (``last.pt.manifest.json`` beside the checkpoint, written by
    ``tsslbp train``), when it lists this very checkpoint (same SHA-256), is copied into the new
    manifest as ``training_run`` (its command, directory, packages, per-run figures and world
    size; the config is the one at the top), so where the weights came from is recorded by the
    tools rather than typed by hand.

    Args:
        made_with: the command line that trained the checkpoint, recorded in the manifest
            [default: the training run's recorded command, when its manifest is found].
        reuse_export: keep ``out`` if it is already this checkpoint's export (its metadata names
            the checkpoint's SHA-256 and its export manifest is beside it) instead of exporting again.

    Returns:
        the model, its manifest (``OUT.manifest.json``, replacing the export's) and the figures.
    """
    from ..data import load_experiment_data
    from ..manifest import read_manifest
    from ..train.loop import evaluate as evaluate_split
    from ..train.loop import model_from_checkpoint
    from .conversion import export
    from .running import evaluate_model, verify

    model, cfg, state = model_from_checkpoint(checkpoint)
    data = load_experiment_data(cfg, data_dir)
    float_acc = evaluate_split(model, data.test, cfg.replace(predict_on="spikes")).accuracy
    if not (reuse_export and _exported_from(out, checkpoint)):
        export(checkpoint, out, data_dir=data_dir)
    written = read_manifest(out)["figures"]
    quantization = written.get("quantization", written)  # an earlier ship's manifest nests them
    # One after the other: Lava forks its processes, and a fork while another thread of this
    # process is inside numpy deadlocked the child (seen on the CNN).
    golden = evaluate_model(out, data_dir=data_dir)
    checked = verify(out, samples=lava_samples, data_dir=data_dir, progress=False)
    history = state.get("metrics") or []
    run = training_run(checkpoint)
    if made_with is None and run is not None:
        made_with = _command_line(run)
    figures = {
        "dataset": data.name,
        "dataset_sha256": dataset_sha256(data),
        "architecture": cfg.architecture,
        "n_steps": cfg.n_steps,
        "seed": cfg.train.seed,
        "epochs": int(state["epoch"]),
        "train_seconds": round(sum(m["seconds"] for m in history), 1),
        "trained_with": made_with,
        "commit": git_commit(Path(__file__).parent),
        "test_samples": golden.n_samples,
        "float_accuracy": float_acc,
        "float_readout": "spike count (predict_on: spikes)",
        "golden_accuracy": golden.accuracy,
        "input_bits": golden.input_bits,
        "lava_samples": checked.report.n_samples,
        "lava_accuracy": checked.accuracy.get("lava"),
        "lava_golden_accuracy": checked.accuracy.get("golden"),
        "lava_bit_exact": bool(checked.exact),
        "quantization": quantization,
        "training_run": run,
    }
    manifest = record(out, [checkpoint], config=cfg.to_dict(), figures=figures, command=command)
    return ShipResult(out, manifest, figures)


def training_run(checkpoint: Path) -> dict[str, Any] | None:
    """The manifest of the training run that wrote ``checkpoint`` (without its config), or None.

    Looked for as ``CHECKPOINT.manifest.json``, then the run folder's ``last.pt.manifest.json``
    (which also lists best.pt); used only when one of its outputs has the checkpoint's SHA-256, so
    a manifest left from an earlier run in the same folder is not taken for this one's.
    """
    from ..manifest import manifest_path, read_manifest, sha256_of

    digest = sha256_of(checkpoint)
    for candidate in dict.fromkeys(
        [manifest_path(checkpoint), manifest_path(checkpoint.with_name("last.pt"))]
    ):
        if not candidate.is_file():
            continue
        try:
            found = read_manifest(candidate)
            outputs = found["outputs"]
            if any(o.get("sha256") == digest for o in outputs):
                return {k: v for k, v in found.items() if k != "config"}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("%s: not a readable training manifest (%s); not recorded", candidate, err)
    return None


def _command_line(run: dict[str, Any]) -> str:
    """The recorded training command, with the number of processes when it was distributed."""
    line = " ".join(str(a) for a in run.get("command") or [])
    dist = (run.get("figures") or {}).get("distributed") or {}
    if dist.get("world_size", 1) > 1:
        line += f" ({dist['world_size']} processes, {dist.get('backend')}; under torchrun)"
    return line


def _exported_from(out: Path, checkpoint: Path) -> bool:
    from ..export.netx import read_netx
    from ..manifest import manifest_path, read_manifest, sha256_of

    if not out.is_file() or not manifest_path(out).is_file():
        return False
    # The manifest beside it must be this file's (a file copied over another keeps the old one's).
    outputs = read_manifest(out).get("outputs") or [{}]
    if outputs[0].get("sha256") != sha256_of(out):
        return False
    return read_netx(out).metadata.get("source_sha256") == sha256_of(checkpoint)


def models_table(models_dir: Path) -> list[str]:
    """README's table of shipped models: one markdown row per ``models_dir/*.net``, every figure
    read from its manifest (so the README cannot drift from what was measured)."""
    from ..manifest import read_manifest

    lines = [
        "| model | network | float | golden | Lava | trained with |",
        "|---|---|---|---|---|---|",
    ]
    for model in sorted(models_dir.glob("*.net")):
        manifest = read_manifest(model)
        f = manifest["figures"]
        q = f["quantization"]
        network = (
            f"{f['architecture']}, T={f['n_steps']}, {q['input_bits']}-bit graded input, "
            f"{q['weight_bits']}-bit weights"
        )
        if "input_mean" in (manifest.get("config") or {}).get("Network", {}):
            network += ", input normalization folded in (plus one constant input)"
        exact = "bit-exact with golden" if f["lava_bit_exact"] else "NOT bit-exact with golden"
        lava = f"{100 * f['lava_accuracy']:.2f}% on {f['lava_samples']}, {exact}"
        trained = (
            f"seed {f['seed']}, {f['epochs']} epochs, {f['train_seconds'] / 3600:.1f} h: "
            f"`{f['trained_with']}`"
        )
        lines.append(
            f"| `{models_dir.name}/{model.name}` | {network} | {100 * f['float_accuracy']:.2f}% | "
            f"{100 * f['golden_accuracy']:.2f}% | {lava} | {trained} |"
        )
    return lines
