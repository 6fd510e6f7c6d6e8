"""Data sets: the embedded 8x8 digits, MNIST / Fashion-MNIST from IDX files, CIFAR-10 and N-MNIST.

Images are returned as float32 in [0, 1] (no mean/std normalisation, except CIFAR-10's optional
one): the network is trained on non-negative inputs so that a deployed network needs only unsigned
graded input spikes.

Modules, bottom to top (no cycle): :mod:`~tsslbp.data.splits` (``Split``, ``DataSplits``,
``DataError``, shared by every loader), one module per format (:mod:`~tsslbp.data.digits`,
:mod:`~tsslbp.data.idx`, :mod:`~tsslbp.data.cifar10`, :mod:`~tsslbp.data.nmnist`), and
:mod:`~tsslbp.data.loading`, which picks the loader a config names. This package sits beside
``tsslbp.train`` and imports only ``tsslbp.config`` from the project; ``train`` imports it.
"""

from .digits import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION, load_digits
from .idx import load_idx_dataset, read_idx
from .loading import DEFAULT_DATA_DIRS, load_dataset, load_experiment_data
from .splits import DataError, DataSplits, Split, split_from_arrays

__all__ = [
    "DEFAULT_DATA_DIRS",
    "DIGITS_SPLIT_SEED",
    "DIGITS_TEST_FRACTION",
    "DataError",
    "DataSplits",
    "Split",
    "load_dataset",
    "load_digits",
    "load_experiment_data",
    "load_idx_dataset",
    "read_idx",
    "split_from_arrays",
]
