"""The run directory of ``tsslbp train``: a new run must not silently replace an earlier one, and
``--resume`` must have something to resume.

:func:`prepare_run_dir` is called before training: it refuses a directory that already holds a
run unless the caller resumes it or asked to replace it (then the old run's files are removed first,
so no stale best.pt survives a replacement that stops early).
"""

from __future__ import annotations

from pathlib import Path

from .loop import CheckpointError, load_checkpoint

__all__ = ["RunExistsError", "RUN_FILES", "prepare_run_dir"]

#: What ``tsslbp train`` writes into a run directory (and ``--force`` removes first).
RUN_FILES = (
    "best.pt",
    "last.pt",
    "metrics.json",
    "curves.png",
    "last.pt.manifest.json",
    "best.pt.manifest.json",
)


class RunExistsError(ValueError):
    """The output directory already holds a run, or ``--resume`` found none."""


def _describe(checkpoint: Path) -> str:
    """``best.pt: 85.52% test accuracy at epoch 3`` (or just the name when it cannot be read)."""
    try:
        best = load_checkpoint(checkpoint).get("best") or {}
    except CheckpointError:
        return checkpoint.name
    if "test_acc" in best and "epoch" in best:
        return f"{checkpoint.name}: {100 * best['test_acc']:.2f}% test accuracy at epoch {best['epoch']}"
    return checkpoint.name


def prepare_run_dir(out: Path, resume: bool = False, force: bool = False) -> None:
    """Check (and with ``force`` clear) ``out`` before training into it.

    Raises:
        RunExistsError: ``out`` holds best.pt or last.pt and neither ``resume`` nor ``force`` is
            set; or ``resume`` is set and there is no ``out/last.pt``.
    """
    out = Path(out)
    last, best = out / "last.pt", out / "best.pt"
    if resume and force:
        raise RunExistsError("--resume continues a run and --force replaces it: give one of them")
    if resume:
        if not last.is_file():
            raise RunExistsError(
                f"--resume: {last} not found, so there is nothing to resume "
                "(drop --resume to start a new run there)"
            )
        return
    existing = [p for p in (best, last) if p.is_file()]
    if not existing:
        return
    if not force:
        raise RunExistsError(
            f"{out} already holds a run ({_describe(existing[0])}); --resume continues it, "
            "--force replaces it, or give another --out"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
