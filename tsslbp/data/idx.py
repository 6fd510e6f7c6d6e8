"""MNIST / Fashion-MNIST from IDX files (raw or gzip-compressed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..safeio import UnsafeFileError, gunzip_bounded, read_bytes
from .splits import DataError, DataSplits, split_from_arrays

__all__ = ["IDX_FILES", "DATA_DIR_HINT", "load_idx_dataset", "read_idx"]

#: The four files of an MNIST-format data set.
IDX_FILES = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (each may be .gz)"
)
#: How a user points tsslbp at a data set.
DATA_DIR_HINT = "give its folder with --data-dir DIR (or data_path: in the config)"

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, by content) into an array of its stored shape.

    Raises:
        DataError: missing file, bad magic number, unknown type code, or a size that does not match
            the header. The message names the file.
    """
    path = Path(path)
    try:
        raw = read_bytes(path)
    except UnsafeFileError as err:
        raise DataError(str(err)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gunzip_bounded(raw, path)
        except UnsafeFileError as err:
            raise DataError(str(err)) from None
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: corrupt gzip data ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX data holds {len(raw) - header} bytes, the header {shape} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (directory / name).is_file():
            return directory / name
    raise DataError(
        f"{directory}: no {stem} or {stem}.gz (expected the four standard IDX files: {IDX_FILES}); "
        f"{DATA_DIR_HINT}"
    )


def load_idx_dataset(directory: str | Path, name: str = "idx") -> DataSplits:
    """MNIST-format data set from the four standard IDX files in ``directory``.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte``, each optionally ``.gz``. Pixels 0..255 are scaled to [0, 1].

    Raises:
        DataError: a file is missing or malformed, or image and label counts differ.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory not found")
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img_path = _find(directory, f"{prefix}-images-idx3-ubyte")
        lbl_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3:
            raise DataError(
                f"{img_path}: expected 3-D image data (N, rows, cols), found shape {images.shape}"
            )
        if labels.ndim != 1:
            raise DataError(f"{lbl_path}: expected 1-D labels, found shape {labels.shape}")
        if len(images) != len(labels):
            raise DataError(
                f"{lbl_path}: {len(labels)} labels for {len(images)} images in {img_path.name}"
            )
        splits[split] = split_from_arrays(images, labels, 255.0)
    return DataSplits(splits["train"], splits["test"], name)
