"""Data sets: the embedded 8x8 digits, and MNIST / Fashion-MNIST from IDX files.

Images are returned flattened as float32 in [0, 1] (no mean/std normalisation): the network is
trained on non-negative inputs so that a deployed network needs only unsigned graded input spikes.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DATASET_INPUT_SHAPE, DataConfig, Dataset, ExperimentConfig

__all__ = [
    "DataError",
    "Split",
    "DataSplits",
    "DIGITS_SPLIT_SEED",
    "DIGITS_TEST_FRACTION",
    "DEFAULT_DATA_DIRS",
    "read_idx",
    "load_digits",
    "load_idx_dataset",
    "load_dataset",
    "load_experiment_data",
]

log = logging.getLogger(__name__)

#: The embedded digits set is split once, with this fixed seed, whatever the training seed.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
#: Pixels of padding before the random crop of MNIST-format images (``augment: true``).
IDX_CROP_PADDING = 2

#: Where each IDX data set is looked for when no directory is given.
DEFAULT_DATA_DIRS = {
    Dataset.FASHION_MNIST: "/usr/share/datasets/fashion-mnist",
    Dataset.MNIST: "data/mnist",
    Dataset.CIFAR10: "data/cifar10",
    Dataset.NMNIST: "data/nmnist",
}

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file is missing, truncated or not in the expected format."""


@dataclass(frozen=True)
class Split:
    """One split of a data set.

    Attributes:
        images: (N, ...) float32 (or uint8 for large event sets): flattened (N, C) in [0, 1] for the
            IDX sets and digits, (N, 3, 32, 32) for CIFAR-10, (N, 2, 34, 34, T) for N-MNIST.
        labels: (N,) int64.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DataSplits:
    """Train and test splits; ``augment(x, epoch=, batch=)``, when set, transforms training batches."""

    train: Split
    test: Split
    name: str
    augment: Callable[..., torch.Tensor] | None = None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, by content) into an array of its stored shape.

    Raises:
        DataError: missing file, bad magic number, unknown type code, or a size that does not match
            the header. The message names the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
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


def _to_split(images: np.ndarray, labels: np.ndarray, scale: float) -> Split:
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / scale)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def load_digits() -> DataSplits:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package).

    Pixel values 0..16 are scaled to [0, 1]; the train/test split (80/20) is fixed by
    :data:`DIGITS_SPLIT_SEED`.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(bunch.target))
    n_test = int(round(DIGITS_TEST_FRACTION * len(order)))
    test, train = order[:n_test], order[n_test:]
    images, labels = bunch.images, bunch.target
    return DataSplits(
        train=_to_split(images[train], labels[train], 16.0),
        test=_to_split(images[test], labels[test], 16.0),
        name="digits",
    )


def _find(directory: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no {stem} or {stem}.gz (expected the four standard IDX files)")


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
        splits[split] = _to_split(images, labels, 255.0)
    return DataSplits(splits["train"], splits["test"], name)


def load_dataset(
    cfg: DataConfig, data_dir: str | Path | None = None, n_steps: int = 5, seed: int = 0
) -> DataSplits:
    """Load the configured data set; ``data_dir`` overrides the config's ``data_path``.

    Args:
        cfg: the config's data block.
        data_dir: directory overriding ``cfg.data_path``.
        n_steps: time steps (N-MNIST frames).
        seed: seed of the training augmentation (CIFAR-10, MNIST, Fashion-MNIST).
    """
    if cfg.dataset is Dataset.DIGITS:
        return load_digits()
    directory = data_dir or cfg.data_path or DEFAULT_DATA_DIRS[cfg.dataset]
    log.info("reading %s from %s", cfg.dataset.value, directory)
    if cfg.dataset is Dataset.CIFAR10:
        from .cifar10 import load_cifar10

        return load_cifar10(directory, augment=cfg.augment, seed=seed)
    if cfg.dataset is Dataset.NMNIST:
        from .nmnist import load_nmnist

        # uint8 frames: the dense float32 training split would need 16.6 GB at T = 30.
        cache = Path(os.environ.get("TSSLBP_CACHE", Path.home() / ".cache" / "tsslbp")) / "nmnist"
        return load_nmnist(directory, n_steps, cache_dir=cache, dtype=torch.uint8)
    splits = load_idx_dataset(directory, cfg.dataset.value)
    if cfg.augment:
        from .cifar10 import CropFlipAugment

        shape = DATASET_INPUT_SHAPE[cfg.dataset]
        crop = CropFlipAugment(seed, padding=IDX_CROP_PADDING, flip=False, image_shape=shape)
        splits = dataclasses.replace(splits, augment=crop)
    return splits


def load_experiment_data(cfg: ExperimentConfig, data_dir: str | Path | None = None) -> DataSplits:
    """:func:`load_dataset` with the experiment's time steps and seed."""
    return load_dataset(cfg.data, data_dir, cfg.n_steps, cfg.train.seed)
