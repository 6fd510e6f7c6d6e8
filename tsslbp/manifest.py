"""Run manifests: a JSON record beside every artifact a command writes.

A manifest ties an artifact (checkpoint, netx file, report, plot, benchmark table) to what made it:
the command line, the resolved config and seed, the package versions, and the SHA-256 of every
input and output file, plus the headline figures. Any number in BENCHMARKS.md or a closing note can
then be traced to the exact command and inputs, and a changed file is detected by its hash.

The manifest of ``ARTIFACT`` is ``ARTIFACT.manifest.json`` (see :func:`manifest_path`); a command
that writes several files names one of them as its main artifact and lists the others as outputs.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "a.txt").write_text("hi")
    2
    >>> m = write_manifest(d / "a.txt", figures={"accuracy": 0.5}, seed=1)
    >>> m.name
    'a.txt.manifest.json'
    >>> rec = read_manifest(m)
    >>> rec["outputs"][0]["sha256"][:12], rec["figures"]["accuracy"], rec["seed"]
    ('8f434346648f', 0.5, 1)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .safeio import atomic_output

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_SUFFIX",
    "file_record",
    "manifest_path",
    "package_versions",
    "read_manifest",
    "sha256_of",
    "write_manifest",
]

#: Version of the manifest layout; bump when a field changes meaning.
MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"

# Distributions whose versions decide a result (missing ones are recorded as null).
_PACKAGES = (
    "tsslbp",
    "torch",
    "numpy",
    "h5py",
    "lava-nc",
    "lava-dl",
    "nir",
    "snntorch",
    "click",
    "PyYAML",
)


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of ``artifact`` lives: ``ARTIFACT.manifest.json`` beside it."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict[str, Any]:
    """``{path, bytes, sha256}`` of a file; a directory gets its path only, a missing file ``exists: false``."""
    path = Path(path)
    if path.is_file():
        return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    if path.is_dir():
        return {"path": str(path), "directory": True}
    return {"path": str(path), "exists": False}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide a result (``None`` where not installed)."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts pass; numpy scalars/arrays, paths and dataclasses are converted."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    return value


def write_manifest(
    artifact: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    outputs: Iterable[str | Path] = (),
    config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    figures: Mapping[str, Any] | None = None,
    command: list[str] | None = None,
) -> Path:
    """Write ``ARTIFACT.manifest.json`` and return its path.

    Args:
        artifact: the main file the command wrote (listed first among the outputs).
        inputs: files the command read (checkpoint, config, data files); hashed.
        outputs: other files the command wrote; hashed.
        config: the resolved config (plain dict).
        seed: the seed the command used.
        figures: headline results (accuracies, times, counts); JSON-compatible after conversion.
        command: the command line [default: ``sys.argv``].

    Returns:
        Path of the manifest. It is written atomically (temp file + rename).
    """
    artifact = Path(artifact)
    outs = [artifact, *(Path(p) for p in outputs if Path(p) != artifact)]
    record = {
        "manifest_format": MANIFEST_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command)
        if command is not None
        else [Path(sys.argv[0]).name, *sys.argv[1:]],
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "seed": seed,
        "config": _jsonable(config) if config is not None else None,
        "inputs": [file_record(p) for p in inputs],
        "outputs": [file_record(p) for p in outs],
        "figures": _jsonable(dict(figures)) if figures is not None else {},
    }
    path = manifest_path(artifact)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, fsync=True) as tmp, open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=False)
        f.write("\n")
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a manifest (the manifest file itself, or the artifact it describes)."""
    path = Path(path)
    if not path.name.endswith(MANIFEST_SUFFIX):
        path = manifest_path(path)
    with open(path) as f:
        return json.load(f)
