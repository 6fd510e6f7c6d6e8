"""The configured data set: which loader, which directory."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch

from ..config import DATASET_INPUT_SHAPE, DataConfig, Dataset, ExperimentConfig
from .cifar10 import CropFlipAugment, load_cifar10
from .digits import load_digits
from .idx import DATA_DIR_HINT, IDX_FILES, load_idx_dataset
from .nmnist import load_nmnist
from .splits import DataError, DataSplits

__all__ = [
    "DATA_SOURCES",
    "DEFAULT_DATA_DIRS",
    "IDX_CROP_PADDING",
    "load_dataset",
    "load_experiment_data",
    "missing_data_message",
]

log = logging.getLogger(__name__)

#: Pixels of padding before the random crop of MNIST-format images (``augment: true``).
IDX_CROP_PADDING = 2

#: Where each IDX data set is looked for when no directory is given.
DEFAULT_DATA_DIRS = {
    Dataset.FASHION_MNIST: "/usr/share/datasets/fashion-mnist",
    Dataset.MNIST: "data/mnist",
    Dataset.CIFAR10: "data/cifar10",
    Dataset.NMNIST: "data/nmnist",
}


#: What each file-based data set needs and where it comes from (no download at run time).
DATA_SOURCES = {
    Dataset.FASHION_MNIST: f"the four IDX files {IDX_FILES}, from Debian's dataset-fashion-mnist "
    "package (`apt-get install dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist) "
    "or github.com/zalandoresearch/fashion-mnist",
    Dataset.MNIST: f"the four IDX files {IDX_FILES}, as published at yann.lecun.com/exdb/mnist",
    Dataset.CIFAR10: "the folder cifar-10-batches-py (data_batch_1..5 and test_batch, the python "
    "version from www.cs.toronto.edu/~kriz/cifar.html) or the folder holding it",
    Dataset.NMNIST: "the Train/ and Test/ folders of N-MNIST's .bin event files "
    "(garrickorchard.com/datasets/n-mnist)",
}


def missing_data_message(dataset: Dataset, directory: str | Path) -> str:
    """One line for a data set not found in ``directory``: what it needs, where that comes from,
    and how to point tsslbp at it."""
    return (
        f"{directory}: data directory not found; {dataset.value} needs {DATA_SOURCES[dataset]}; "
        f"{DATA_DIR_HINT}"
    )


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
    if not Path(directory).is_dir():
        raise DataError(missing_data_message(cfg.dataset, directory))
    if cfg.dataset is Dataset.CIFAR10:
        return load_cifar10(directory, augment=cfg.augment, seed=seed)
    if cfg.dataset is Dataset.NMNIST:
        # uint8 frames: the dense float32 training split would need 16.6 GB at T = 30.
        cache = Path(os.environ.get("TSSLBP_CACHE", Path.home() / ".cache" / "tsslbp")) / "nmnist"
        return load_nmnist(directory, n_steps, cache_dir=cache, dtype=torch.uint8)
    splits = load_idx_dataset(directory, cfg.dataset.value)
    if cfg.augment:
        shape = DATASET_INPUT_SHAPE[cfg.dataset]
        crop = CropFlipAugment(seed, padding=IDX_CROP_PADDING, flip=False, image_shape=shape)
        splits = dataclasses.replace(splits, augment=crop)
    return splits


def load_experiment_data(cfg: ExperimentConfig, data_dir: str | Path | None = None) -> DataSplits:
    """:func:`load_dataset` with the experiment's time steps and seed."""
    return load_dataset(cfg.data, data_dir, cfg.n_steps, cfg.train.seed)
