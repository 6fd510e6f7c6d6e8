"""CIFAR-10 from the "python version" pickles, read without running code from the files.

The published archive (``cifar-10-python.tar.gz``) unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5`` (10000 training images each), ``test_batch`` and the optional
``batches.meta``. Each batch is a Python 2 pickle of a dict whose keys load as ``bytes``:
``b'data'`` is a (10000, 3072) uint8 array, each row one image as 1024 red, then 1024 green, then
1024 blue values, each plane in row-major order (so a row reshapes to (3, 32, 32), CHW);
``b'labels'`` is a list of 10000 ints in 0..9. Source: https://www.cs.toronto.edu/~kriz/cifar.html
("Dataset layout", which loads the files with ``pickle.load(fo, encoding='bytes')``).

Unpickling can call any importable function a file names, so the batches go through
:class:`_NumpyOnlyUnpickler`, which resolves only the three globals a pickled numpy array needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and rejects every other.

Images keep their (3, 32, 32) shape and come as float32 in [0, 1]: the project trains on
non-negative inputs so that a deployed network takes unsigned graded input spikes, hence
normalisation is opt-in (:class:`Cifar10Normalization`). Training augmentation (random crop of the
image padded by 4 pixels, random horizontal flip) is applied per batch by :func:`augment_batch`.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..safeio import UnsafeFileError, read_bytes
from .splits import DataError, DataSplits, Split

__all__ = [
    "CIFAR10_DIRNAME",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "TSSLBP_CIFAR10_STD",
    "CROP_PADDING",
    "Cifar10Normalization",
    "CropFlipAugment",
    "Cifar10Splits",
    "read_cifar_pickle",
    "read_cifar_batch",
    "augment_batch",
    "load_cifar10",
]

log = logging.getLogger(__name__)

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
_META_FILE = "batches.meta"

#: Class names in label order, as listed in ``batches.meta`` (used when that file is absent).
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_N_CLASSES = 10
_IMAGE_SHAPE = (3, 32, 32)
_ROW_LENGTH = 3 * 32 * 32

#: Per-channel (R, G, B) mean and standard deviation of the 50000 training images' pixels, scaled
#: to [0, 1]: ``x.mean(axis=(0, 2, 3))`` and ``x.std(axis=(0, 2, 3))`` over the (N, 3, 32, 32)
#: training set. Values as computed in MadryLab/robustness issue #70 and
#: chenyaofo/image-classification-codebase issue #5 (0.49139968, 0.48215841, 0.44653091;
#: 0.24703223, 0.24348513, 0.26158784).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

#: The std the TSSL-BP reference uses (stonezwr/TSSL-BP:datasets/loadCIFAR10.py, copied from
#: kuangliu/pytorch-cifar): the mean of the per-image standard deviations, not the pixel std
#: (chenyaofo/image-classification-codebase issue #5). Offered only to reproduce the reference.
TSSLBP_CIFAR10_STD = (0.2023, 0.1994, 0.2010)

#: Zero padding, in pixels on each side, before the random 32x32 crop (as the reference's
#: ``RandomCrop(32, padding=4)``).
CROP_PADDING = 4

# (module, name) pairs a pickled numpy array refers to: ndarray.__reduce__ gives
# (_reconstruct, (ndarray, (0,), b'b'), state) and the state holds a dtype, itself reduced to
# (dtype, ('u1', False, True), state). numpy >= 2 writes numpy._core instead of numpy.core.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class Cifar10Normalization(Enum):
    """How images are scaled after the division by 255.

    ``NONE`` keeps [0, 1] (the default: unsigned input spikes on Loihi). ``DATASET`` subtracts
    :data:`CIFAR10_MEAN` and divides by :data:`CIFAR10_STD`. ``TSSLBP`` uses
    :data:`TSSLBP_CIFAR10_STD` instead, as the reference implementation does.
    """

    NONE = "none"
    DATASET = "dataset"
    TSSLBP = "tsslbp"

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) per channel, or None for ``NONE``."""
        if self is Cifar10Normalization.NONE:
            return None
        std = CIFAR10_STD if self is Cifar10Normalization.DATASET else TSSLBP_CIFAR10_STD
        return CIFAR10_MEAN, std


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals of :data:`_ALLOWED_GLOBALS`; any other global raises."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _ForbiddenGlobal(f"refers to {module}.{name}, which a CIFAR batch never needs")
        return super().find_class(module, name)


def read_cifar_pickle(path: str | Path) -> Any:
    """Unpickle one CIFAR file, allowing nothing but numpy arrays, dtypes and plain Python data.

    Python 2 strings (the dict keys, the label names) load as ``bytes``, as with the loader on the
    CIFAR page.

    Raises:
        DataError: the file is missing, truncated or corrupt, or names any other global (such as
            ``os.system``). Nothing the file names outside the allowed set is imported or called.
    """
    path = Path(path)
    try:
        raw = read_bytes(path)
    except UnsafeFileError as err:
        raise DataError(str(err)) from None
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _ForbiddenGlobal as err:
        raise DataError(f"{path}: unsafe pickle, {err}") from err
    # A damaged pickle fails in many ways (opcode errors, EOF, bad arguments to the numpy
    # reconstructors, bad memo keys), so every error becomes a one-line DataError.
    except Exception as err:  # noqa: BLE001
        raise DataError(
            f"{path}: corrupt or truncated pickle ({type(err).__name__}: {err})"
        ) from err


def _entry(path: Path, batch: dict, key: str) -> Any:
    # The real files load with bytes keys; a batch re-pickled under Python 3 has str keys.
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    found = ", ".join(sorted(repr(k) for k in batch)) or "none"
    raise DataError(f"{path}: no {key.encode('ascii')!r} entry (keys found: {found})")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file and check it.

    Args:
        path: a ``data_batch_i`` or ``test_batch`` file.

    Returns:
        (images, labels): images (N, 3, 32, 32) uint8 in CHW order, labels (N,) int64 in 0..9.

    Raises:
        DataError: unreadable or unsafe pickle (:func:`read_cifar_pickle`), not a dict, missing
            ``b'data'``/``b'labels'``, data not a uint8 (N, 3072) array, a label count different
            from N, or a label outside 0..9. The message names the file.
    """
    path = Path(path)
    batch = read_cifar_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    data, labels = _entry(path, batch, "data"), _entry(path, batch, "labels")
    if not isinstance(data, np.ndarray):
        raise DataError(f"{path}: b'data' is a {type(data).__name__}, expected a numpy array")
    if data.dtype != np.uint8:
        raise DataError(f"{path}: b'data' has dtype {data.dtype}, expected uint8")
    if data.ndim != 2 or data.shape[1] != _ROW_LENGTH:
        raise DataError(f"{path}: b'data' has shape {data.shape}, expected (N, {_ROW_LENGTH})")
    try:
        label_array = np.asarray(labels)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: b'labels' is not a list of ints ({err})") from err
    if label_array.ndim != 1 or (label_array.size and label_array.dtype.kind not in "iu"):
        raise DataError(
            f"{path}: b'labels' is not a flat list of ints (found {type(labels).__name__})"
        )
    if len(label_array) != len(data):
        raise DataError(f"{path}: {len(label_array)} labels for {len(data)} images")
    bad = np.flatnonzero((label_array < 0) | (label_array >= _N_CLASSES))
    if bad.size:
        raise DataError(
            f"{path}: label {label_array[bad[0]]} at index {bad[0]} is outside 0..{_N_CLASSES - 1}"
        )
    return data.reshape(len(data), *_IMAGE_SHAPE), label_array.astype(np.int64)


def _read_class_names(path: Path) -> tuple[str, ...]:
    meta = read_cifar_pickle(path)
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(meta).__name__}")
    names = _entry(path, meta, "label_names")
    if (
        not isinstance(names, list)
        or len(names) != _N_CLASSES
        or not all(isinstance(n, bytes | str) for n in names)
    ):
        raise DataError(f"{path}: b'label_names' should list {_N_CLASSES} names")
    return tuple(n.decode("ascii", "replace") if isinstance(n, bytes) else n for n in names)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    padding: int = CROP_PADDING,
    fill: float | Sequence[float] = 0.0,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop of the padded image and (``flip``) random horizontal flip, drawn per sample.

    Each image is padded by ``padding`` pixels of ``fill`` on every side, cropped back to its size
    at an offset drawn uniformly in ``0..2*padding`` along each axis, then mirrored left-right with
    probability 1/2 (the reference's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``).
    The draws come from ``generator`` on its own device and are then moved to ``x``'s, so a CPU
    generator gives the same crops whether ``x`` is on CPU or GPU.

    Args:
        x: (N, C, H, W) images, any float dtype and device.
        generator: source of the random offsets and flips.
        padding: pixels added on each side before cropping.
        fill: value of the padding, a scalar or one per channel. When images are normalised,
            pass ``-mean / std`` to pad with black as the reference (which pads before normalising).
        flip: also mirror; without it the flips are still drawn (the crops stay the same).

    Returns:
        (N, C, H, W) tensor of ``x``'s dtype and device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> augment_batch(torch.rand(5, 3, 32, 32), g).shape
        torch.Size([5, 3, 32, 32])
    """
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, found shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    offsets = torch.randint(
        0, 2 * padding + 1, (n, 2), generator=generator, device=generator.device
    ).to(x.device)
    flips = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(x.device)
    padded = x.new_empty(n, c, h + 2 * padding, w + 2 * padding)
    padded[:] = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    padded[:, :, padding : padding + h, padding : padding + w] = x
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (N, W)
    if flip:
        cols = torch.where(flips[:, None], cols.flip(1), cols)
    sample = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice put the indexed dims first: (N, H, W, C).
    return padded[sample, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class CropFlipAugment:
    """Training augmentation whose randomness is a pure function of (seed, epoch, batch).

    Every batch gets a fresh CPU generator seeded from ``(seed, epoch, batch)`` through
    ``numpy.random.SeedSequence``, so an epoch resumed mid-way sees the same crops as an
    uninterrupted one and there is no generator state to checkpoint.

    Attributes:
        seed: the run's seed.
        padding: see :func:`augment_batch`.
        fill: per-channel padding value (zeros, or ``-mean / std`` for normalised images).
        flip: also mirror left-right (not for digits or garments, whose class a mirror can change).
        image_shape: (C, H, W) of flattened input rows, which are cropped as images and flattened
            back; None when batches already come as (N, C, H, W).
    """

    seed: int
    padding: int = CROP_PADDING
    fill: tuple[float, ...] = (0.0,)
    flip: bool = True
    image_shape: tuple[int, int, int] | None = None

    def generator(self, epoch: int, batch: int) -> torch.Generator:
        """The CPU generator for one batch."""
        state = np.random.SeedSequence([self.seed, epoch, batch]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    def __call__(self, x: torch.Tensor, *, epoch: int, batch: int) -> torch.Tensor:
        """Augment (N, C, H, W) training images ``x`` of batch ``batch`` in epoch ``epoch``."""
        images = x if self.image_shape is None else x.reshape(len(x), *self.image_shape)
        out = augment_batch(
            images,
            self.generator(epoch, batch),
            padding=self.padding,
            fill=self.fill,
            flip=self.flip,
        )
        return out if self.image_shape is None else out.reshape(x.shape)


@dataclass(frozen=True)
class Cifar10Splits(DataSplits):
    """CIFAR-10 splits: images (N, 3, 32, 32) float32, labels (N,) int64.

    Attributes:
        class_names: the 10 class names in label order.
        augment: the training augmentation to apply per batch (``augment(x, epoch=, batch=)``),
            or None when augmentation is off. Test images are never augmented.
    """

    class_names: tuple[str, ...] = CIFAR10_CLASSES
    augment: CropFlipAugment | None = None


def _resolve_dir(directory: Path) -> Path:
    if (directory / CIFAR10_DIRNAME).is_dir():
        return directory / CIFAR10_DIRNAME
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory not found")
    return directory


def _to_float(
    images: np.ndarray, mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None
) -> torch.Tensor:
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    if mean_std is not None:
        mean, std = (torch.tensor(v, dtype=torch.float32).reshape(1, -1, 1, 1) for v in mean_std)
        x.sub_(mean).div_(std)
    return x


def load_cifar10(
    directory: str | Path,
    *,
    normalization: Cifar10Normalization = Cifar10Normalization.NONE,
    augment: bool = False,
    seed: int = 0,
) -> Cifar10Splits:
    """CIFAR-10 from the python-version batches in ``directory``.

    Args:
        directory: ``cifar-10-batches-py`` itself or the folder holding it.
        normalization: scaling after the division by 255 (default: none, values in [0, 1]).
        augment: attach a :class:`CropFlipAugment` for the training loop to apply per batch.
        seed: seed of that augmentation.

    Returns:
        Train (50000 images, batches 1..5 in order) and test (10000) splits; images (N, 3, 32, 32)
        float32, labels (N,) int64. Class names come from ``batches.meta`` when present.

    Raises:
        DataError: the directory or a batch file is missing, or a file is malformed
            (:func:`read_cifar_batch`). The message names the file.
    """
    root = _resolve_dir(Path(directory))
    for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE):
        if not (root / name).is_file():
            raise DataError(
                f"{root / name}: missing (the CIFAR-10 python version holds data_batch_1..5 and test_batch)"
            )
    log.info("reading CIFAR-10 from %s", root)
    train = [read_cifar_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = read_cifar_batch(root / CIFAR10_TEST_FILE)
    class_names = (
        _read_class_names(root / _META_FILE) if (root / _META_FILE).is_file() else CIFAR10_CLASSES
    )
    mean_std = normalization.mean_std()
    fill = (0.0,) if mean_std is None else tuple(-m / s for m, s in zip(*mean_std))
    return Cifar10Splits(
        train=Split(
            _to_float(np.concatenate([b[0] for b in train]), mean_std),
            torch.from_numpy(np.concatenate([b[1] for b in train])),
        ),
        test=Split(_to_float(test_images, mean_std), torch.from_numpy(test_labels)),
        name="cifar10",
        class_names=class_names,
        augment=CropFlipAugment(seed, fill=fill) if augment else None,
    )
