"""N-MNIST from the original binary event files, binned into spike frames, with an on-disk cache.

File format (garrickorchard.com/datasets/n-mnist, and ``Read_Ndataset.m`` shipped with the data):
one file per sample, ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``, a plain list of events of
40 bits (5 bytes) each::

    bits 39..32  byte 0             x address, pixels (0..33)
    bits 31..24  byte 1             y address, pixels (0..33)
    bit  23      byte 2, bit 7      polarity (0 = OFF, 1 = ON)
    bits 22..0   bytes 2 (bits 6..0), 3, 4   timestamp in microseconds, big-endian:
                 ts = (b2 & 0x7F) << 16 | b3 << 8 | b4

Binning. Frame ``t`` (0 <= t < n_steps) of a sample counts, per polarity and pixel, its events with

* fixed windows (``bin_us`` = w microseconds, the default): ``t = ts // w``. Events at
  ``ts >= n_steps * w`` are dropped, so a frame stack covers the first ``n_steps * w`` us of the
  ~300 ms recording;
* equal bins over the recording (``bin_us=None``): ``t = (ts - ts_first) * n_steps // span``
  with ``span = ts_last - ts_first + 1``, so every event falls in one of the frames.

:class:`EventValue` picks what a frame holds: ``SPIKE`` (1 where the count is >= 1, the default)
or ``COUNT`` (the count itself).

The defaults follow the TSSL-BP reference (stonezwr/TSSL-BP): ``preprocessing/NMNIST_Converter.m``
motion-compensates each sample with Orchard's ``stabilize.m`` (:func:`stabilize_events`), bins the
timestamps in windows of ``time_window`` us (the N-MNIST config, ``Networks/NMNIST_CNN.yaml``,
reads the ``2312_3000_stable`` conversion: 2 x 34 x 34 channels, 3000 us windows, stabilised, with
``n_steps: 30``) and writes one spike per window and channel, so coincident events collapse to 1.
Two deliberate differences from ``datasets/loadNMNIST_Spiking.py``, which reads that conversion:
it maps window ``ceil(ts / w)`` to frame ``ceil(ts / w) - 1`` and stops before window
``n_steps``, so its last frame holds only the events at ``ts = 0`` (index -1 wraps around); here
windows are half-open and all ``n_steps`` frames are filled. And it stores frames as
``[channel, x, y, t]``; here they are (polarity, y, x, t), rows = y, as every other image in the
project (NCHWT).

Memory: the dense training split is 60000 x 2 x 34 x 34 x n_steps values, 16.6 GB as float32 at
``n_steps = 30`` (4.2 GB as ``dtype=torch.uint8``). The cache stores only the non-zero cells, about
5 bytes each (some 0.3 GB for the reference settings, where a sample fills ~1000 cells).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..safeio import LIMITS, UnsafeFileError, atomic_output, check_regular_file, read_bytes
from .splits import DataError, DataSplits, Split

__all__ = [
    "NMNIST_SIZE",
    "NMNIST_POLARITIES",
    "EVENT_BYTES",
    "MAX_TIMESTAMP_US",
    "REFERENCE_BIN_US",
    "REFERENCE_N_STEPS",
    "SACCADE_US",
    "CACHE_FORMAT_VERSION",
    "EventValue",
    "NmnistEvents",
    "decode_events",
    "read_events",
    "stabilize_events",
    "bin_events",
    "load_nmnist",
]

log = logging.getLogger(__name__)

#: The ATIS crop of N-MNIST is 34 x 34 pixels; addresses run 0..33.
NMNIST_SIZE = 34
NMNIST_POLARITIES = 2
EVENT_BYTES = 5
#: Timestamps are 23-bit microsecond counts.
MAX_TIMESTAMP_US = (1 << 23) - 1

#: Window width and frame count of the TSSL-BP reference (Networks/NMNIST_CNN.yaml).
REFERENCE_BIN_US = 3000
REFERENCE_N_STEPS = 30

#: Duration of each of the three saccades of a recording (stabilize.m).
SACCADE_US = 105_000

#: Bumped whenever the cache layout or the binning changes, so old cache files are not reused.
CACHE_FORMAT_VERSION = 1

_FRAME_SHAPE = (NMNIST_POLARITIES, NMNIST_SIZE, NMNIST_SIZE)
_SPLIT_DIRS = (("train", "Train"), ("test", "Test"))
_DENSIFY_CHUNK = 4096  # samples scattered into the dense tensor at a time (bounds index memory)


class EventValue(Enum):
    """What a frame cell holds: ``SPIKE`` = 1 if any event fell in it (reference), ``COUNT`` = events."""

    SPIKE = "spike"
    COUNT = "count"


class NmnistEvents(NamedTuple):
    """The events of one sample, in file order.

    Attributes:
        x: (E,) int64 column address, 0..33.
        y: (E,) int64 row address, 0..33.
        polarity: (E,) int64, 0 = OFF, 1 = ON.
        ts: (E,) int64 timestamp, microseconds.
    """

    x: np.ndarray
    y: np.ndarray
    polarity: np.ndarray
    ts: np.ndarray


def decode_events(raw: bytes, source: str | Path = "<bytes>") -> NmnistEvents:
    """Decode packed 5-byte N-MNIST events.

    Args:
        raw: the file's bytes.
        source: name used in error messages.

    Raises:
        DataError: the length is not a positive multiple of 5, or an address is outside 0..33.

    Example:
        >>> decode_events(bytes([3, 7, 0x81, 0x02, 0x03]))
        NmnistEvents(x=array([3]), y=array([7]), polarity=array([1]), ts=array([66051]))
    """
    if len(raw) == 0:
        raise DataError(f"{source}: empty file (no events)")
    if len(raw) % EVENT_BYTES:
        raise DataError(
            f"{source}: {len(raw)} bytes is not a multiple of {EVENT_BYTES} (truncated event)"
        )
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, EVENT_BYTES).astype(np.int64)
    for axis, name in ((0, "x"), (1, "y")):
        bad = np.flatnonzero(b[:, axis] >= NMNIST_SIZE)
        if bad.size:
            raise DataError(
                f"{source}: event {bad[0]} has {name} = {b[bad[0], axis]}, outside 0..{NMNIST_SIZE - 1}"
            )
    ts = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    return NmnistEvents(x=b[:, 0], y=b[:, 1], polarity=b[:, 2] >> 7, ts=ts)


def read_events(path: str | Path) -> NmnistEvents:
    """Read one N-MNIST ``.bin`` file (see :func:`decode_events`; errors name the file)."""
    path = Path(path)
    try:
        raw = read_bytes(path)
    except UnsafeFileError as err:
        raise DataError(str(err)) from None
    return decode_events(raw, path)


def stabilize_events(events: NmnistEvents) -> NmnistEvents:
    """Undo the sensor's saccade motion, exactly as Orchard's ``stabilize.m`` + the reference converter.

    ``stabilize.m`` works on 1-based addresses ``X = x + 1`` in double precision, shifts them by a
    piecewise-linear function of ``ts`` over three saccades of 105 ms (d = 105e3 us)::

        ts <= d:       X - 3.5 ts/d,               Y - 7 ts/d
        d < ts <= 2d:  X - 3.5 - 3.5 (ts - d)/d,   Y - 7 + 7 (ts - d)/d
        ts > 2d:       X - 7 + 7 (ts - 2d)/d,      Y

    rounds half away from zero (MATLAB ``round``) and drops events below 1; the reference's
    ``NMNIST_Converter.m`` then drops those above 34. Since dropped values are the only negative
    ones, ``floor(v + 0.5)`` reproduces ``round`` on every kept event.

    Returns:
        The kept events, shifted, in 0-based addresses.
    """
    ts = events.ts.astype(np.float64)
    d = float(SACCADE_US)
    x1 = events.x + 1.0
    y1 = events.y + 1.0
    first, second, third = ts <= d, (ts > d) & (ts <= 2 * d), ts > 2 * d
    # Same operation order as stabilize.m, so the doubles (and their rounding) match MATLAB's.
    x_new = np.select(
        [first, second, third],
        [x1 - 3.5 * ts / d, x1 - 3.5 - 3.5 * (ts - d) / d, x1 - 7 + 7 * (ts - 2 * d) / d],
    )
    y_new = np.select([first, second, third], [y1 - 7 * ts / d, y1 - 7 + 7 * (ts - d) / d, y1])
    x_round = np.floor(x_new + 0.5).astype(np.int64)
    y_round = np.floor(y_new + 0.5).astype(np.int64)
    keep = (x_round >= 1) & (y_round >= 1) & (x_round <= NMNIST_SIZE) & (y_round <= NMNIST_SIZE)
    return NmnistEvents(
        x_round[keep] - 1, y_round[keep] - 1, events.polarity[keep], events.ts[keep]
    )


def _frame_index(
    events: NmnistEvents, n_steps: int, bin_us: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(frame of each kept event, mask of the kept events)."""
    if bin_us is not None:
        frame = events.ts // bin_us
        return frame, frame < n_steps
    if events.ts.size == 0:
        return events.ts, np.ones(0, dtype=bool)
    first = events.ts.min()
    span = events.ts.max() - first + 1
    return (events.ts - first) * n_steps // span, np.ones(events.ts.shape, dtype=bool)


def _bin_sparse(
    events: NmnistEvents, n_steps: int, bin_us: int | None, value: EventValue
) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero cells of a sample's (2, 34, 34, n_steps) frames: (flat index int32, value int64)."""
    frame, keep = _frame_index(events, n_steps, bin_us)
    cell = ((events.polarity * NMNIST_SIZE + events.y) * NMNIST_SIZE + events.x) * n_steps + frame
    index, counts = np.unique(cell[keep], return_counts=True)
    values = np.ones_like(counts) if value is EventValue.SPIKE else counts
    return index.astype(np.int32), values.astype(np.int64)


def _check_options(n_steps: int, bin_us: int | None) -> None:
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if bin_us is not None and (not isinstance(bin_us, int) or bin_us < 1):
        raise ValueError(f"bin_us must be an integer >= 1 (microseconds) or None, got {bin_us!r}")


def bin_events(
    events: NmnistEvents,
    n_steps: int,
    *,
    bin_us: int | None = REFERENCE_BIN_US,
    value: EventValue = EventValue.SPIKE,
) -> np.ndarray:
    """Frames of one sample (see the module docstring for the two time-binning rules).

    Args:
        events: the sample's events (stabilised or not).
        n_steps: number of frames T.
        bin_us: window width in microseconds, or None for T equal bins spanning the recording.
        value: 0/1 spikes or event counts.

    Returns:
        (2, 34, 34, n_steps) int64, indexed [polarity, y, x, t].

    Example:
        >>> ev = decode_events(bytes([1, 2, 0x80, 0, 5]) * 3 + bytes([1, 2, 0x80, 0x0B, 0xB8]))
        >>> frames = bin_events(ev, 2, value=EventValue.COUNT)  # ts = 5, 5, 5, 3000 us
        >>> frames[1, 2, 1].tolist(), int(frames.sum())
        ([3, 1], 4)
    """
    _check_options(n_steps, bin_us)
    index, values = _bin_sparse(events, n_steps, bin_us, value)
    frames = np.zeros(int(np.prod(_FRAME_SHAPE)) * n_steps, dtype=np.int64)
    frames[index] = values
    return frames.reshape(*_FRAME_SHAPE, n_steps)


@dataclass(frozen=True)
class _Sample:
    path: Path
    label: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _SparseSplit:
    """Frames of a split in CSR-like form: sample i owns ``index[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray  # (N + 1,) int64
    index: np.ndarray  # (nnz,) int32, flat into (2, 34, 34, T)
    values: np.ndarray  # (nnz,) smallest unsigned dtype that holds the largest value
    labels: np.ndarray  # (N,) int64


def _list_samples(split_dir: Path) -> list[_Sample]:
    """The ``.bin`` files under ``split_dir/<digit>/``, by class then name, with their stat."""
    if not split_dir.is_dir():
        raise DataError(
            f"{split_dir}: missing (N-MNIST has Train/<digit>/*.bin and Test/<digit>/*.bin)"
        )
    samples: list[_Sample] = []
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if len(entry.name) != 1 or not entry.name.isdigit():
            raise DataError(f"{entry.path}: class folder name is not a digit 0..9")
        files = sorted(
            (f for f in os.scandir(entry.path) if f.name.lower().endswith(".bin") and f.is_file()),
            key=lambda f: f.name,
        )
        if not files:
            raise DataError(f"{entry.path}: no .bin samples in this class folder")
        for f in files:
            st = f.stat()
            samples.append(_Sample(Path(f.path), int(entry.name), st.st_size, st.st_mtime_ns))
    if not samples:
        raise DataError(f"{split_dir}: no class folders 0..9 with .bin samples")
    return samples


def _fingerprint(listing: dict[str, list[_Sample]]) -> str:
    """Hash of every sample's split, class, name, size and mtime: edits and additions change it.

    Built from the directory listing only, so checking a cache costs no file reads.
    """
    h = hashlib.sha256()
    for split, samples in listing.items():
        for s in samples:
            h.update(f"{split}/{s.label}/{s.path.name}/{s.size}/{s.mtime_ns}\n".encode())
    return h.hexdigest()


def _build_split(
    samples: Sequence[_Sample], n_steps: int, bin_us: int | None, value: EventValue, stabilize: bool
) -> _SparseSplit:
    indices, values, counts = [], [], []
    for s in samples:
        events = read_events(s.path)
        if stabilize:
            events = stabilize_events(events)
        index, vals = _bin_sparse(events, n_steps, bin_us, value)
        indices.append(index)
        values.append(vals)
        counts.append(len(index))
    all_values = np.concatenate(values)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return _SparseSplit(
        offsets=offsets,
        index=np.concatenate(indices).astype(np.int32),
        values=all_values.astype(np.min_scalar_type(int(all_values.max(initial=1)))),
        labels=np.array([s.label for s in samples], dtype=np.int64),
    )


def _cache_path(cache_dir: Path, meta: dict) -> Path:
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir / f"nmnist-T{meta['n_steps']}-{key}.npz"


def _write_cache(path: Path, meta: dict, splits: dict[str, _SparseSplit]) -> None:
    """Write the cache atomically (:func:`tsslbp.safeio.atomic_output`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    for name, sp in splits.items():
        for field in ("offsets", "index", "values", "labels"):
            arrays[f"{name}_{field}"] = getattr(sp, field)
    with atomic_output(path, fsync=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _read_cache(path: Path, meta: dict, n_steps: int) -> dict[str, _SparseSplit] | None:
    """The cached splits, or None (with a warning) when the file is unreadable or inconsistent."""
    cells = int(np.prod(_FRAME_SHAPE)) * n_steps
    try:
        check_regular_file(path, LIMITS["data_bytes"].high)  # a FIFO or a huge file is no cache
        with np.load(path, allow_pickle=False) as npz:
            if json.loads(str(npz["meta"])) != meta:
                raise ValueError("it was written for other options or files")
            splits = {}
            for name, _ in _SPLIT_DIRS:
                sp = _SparseSplit(
                    *(npz[f"{name}_{f}"] for f in ("offsets", "index", "values", "labels"))
                )
                n = len(sp.labels)
                ok = (
                    sp.offsets.shape == (n + 1,)
                    and sp.offsets[0] == 0
                    and sp.offsets[-1] == len(sp.index) == len(sp.values)
                    and np.all(np.diff(sp.offsets) >= 0)
                    and (len(sp.index) == 0 or (sp.index.min() >= 0 and sp.index.max() < cells))
                    and np.all((sp.labels >= 0) & (sp.labels <= 9))
                )
                if not ok:
                    raise ValueError(f"inconsistent {name} arrays")
                splits[name] = sp
            return splits
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        log.warning("ignoring N-MNIST cache %s (%s); rebuilding it", path, err)
        return None


def _densify(sp: _SparseSplit, n_steps: int, dtype: torch.dtype) -> Split:
    n = len(sp.labels)
    if (
        not dtype.is_floating_point
        and len(sp.values)
        and int(sp.values.max()) > torch.iinfo(dtype).max
    ):
        raise ValueError(f"event counts up to {int(sp.values.max())} do not fit in {dtype}")
    images = torch.zeros((n, *_FRAME_SHAPE, n_steps), dtype=dtype)
    flat = images.view(n, -1)
    for start in range(0, n, _DENSIFY_CHUNK):
        stop = min(start + _DENSIFY_CHUNK, n)
        lo, hi = sp.offsets[start], sp.offsets[stop]
        rows = np.repeat(np.arange(start, stop), np.diff(sp.offsets[start : stop + 1]))
        flat[torch.from_numpy(rows), torch.from_numpy(sp.index[lo:hi].astype(np.int64))] = (
            torch.from_numpy(sp.values[lo:hi].astype(np.int64)).to(dtype)
        )
    return Split(images, torch.from_numpy(sp.labels.astype(np.int64)))


def load_nmnist(
    directory: str | Path,
    n_steps: int = REFERENCE_N_STEPS,
    *,
    bin_us: int | None = REFERENCE_BIN_US,
    value: EventValue = EventValue.SPIKE,
    stabilize: bool = True,
    cache_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
) -> DataSplits:
    """N-MNIST binned into frames (defaults: the TSSL-BP reference's preprocessing).

    Args:
        directory: folder holding ``Train/`` and ``Test/``, each with class folders ``0``..``9``
            of ``.bin`` files (other files are ignored, hidden entries skipped).
        n_steps: frames per sample T.
        bin_us: frame width in microseconds, or None for T equal bins spanning each recording.
        value: 0/1 spikes (reference) or event counts per frame.
        stabilize: compensate the saccade motion first (:func:`stabilize_events`), as the reference.
        cache_dir: where to keep binned frames; a later call with the same directory, options and
            unchanged files (names, sizes, mtimes) loads them without reading any ``.bin`` file.
            None: no cache.
        dtype: dtype of the returned images (``torch.uint8`` takes a quarter of float32's memory).

    Returns:
        Splits with images (N, 2, 34, 34, n_steps) of ``dtype``, indexed [sample, polarity, y, x, t],
        and labels (N,) int64 from the class folders; samples are ordered by class, then file name.

    Raises:
        DataError: missing ``Train``/``Test``, a class folder not named by a digit or without
            samples, a split without samples, or a malformed ``.bin`` file (size not a multiple of
            5, empty, address outside 0..33). The message names the file or folder.
        ValueError: a bad ``n_steps``/``bin_us``, or counts too large for an integer ``dtype``.
    """
    _check_options(n_steps, bin_us)
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    listing = {name: _list_samples(root / sub) for name, sub in _SPLIT_DIRS}
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "directory": str(root.resolve()),
        "n_steps": n_steps,
        "bin_us": bin_us,
        "value": value.value,
        "stabilize": stabilize,
        "fingerprint": _fingerprint(listing),
    }
    cache = _cache_path(Path(cache_dir), meta) if cache_dir is not None else None
    splits = _read_cache(cache, meta, n_steps) if cache is not None and cache.is_file() else None
    if splits is None:
        log.info("binning N-MNIST from %s into %d frames", root, n_steps)
        splits = {
            name: _build_split(samples, n_steps, bin_us, value, stabilize)
            for name, samples in listing.items()
        }
        if cache is not None:
            # The cache only saves time: failing to write it must not fail the load.
            try:
                _write_cache(cache, meta, splits)
                log.info("wrote N-MNIST cache %s", cache)
            except OSError as err:
                log.warning("could not write N-MNIST cache %s (%s)", cache, err.strerror or err)
    else:
        log.info("N-MNIST frames from cache %s", cache)
    return DataSplits(
        train=_densify(splits["train"], n_steps, dtype),
        test=_densify(splits["test"], n_steps, dtype),
        name="nmnist",
    )
