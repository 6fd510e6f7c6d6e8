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
from .idx import load_idx_dataset
from .nmnist import load_nmnist
from .splits import DataSplits

__all__ = ["DEFAULT_DATA_DIRS", "IDX_CROP_PADDING", "load_dataset", "load_experiment_data"]

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
