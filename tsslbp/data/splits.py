"""What every loader returns: a data set's splits, and the one error type for bad data files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DataError", "DataSplits", "Split", "split_from_arrays"]


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


def split_from_arrays(images: np.ndarray, labels: np.ndarray, scale: float) -> Split:
    """A :class:`Split` of flattened float32 images ``images / scale`` and int64 labels."""
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / scale)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))
