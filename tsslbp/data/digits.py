"""scikit-learn's embedded 8x8 handwritten digits: the data set that needs no download."""

from __future__ import annotations

import numpy as np

from .splits import DataSplits, split_from_arrays

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_TEST_FRACTION", "load_digits"]

#: The embedded digits set is split once, with this fixed seed, whatever the training seed.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


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
        train=split_from_arrays(images[train], labels[train], 16.0),
        test=split_from_arrays(images[test], labels[test], 16.0),
        name="digits",
    )
