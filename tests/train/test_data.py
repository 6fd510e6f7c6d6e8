"""IDX reader on small files written here in the real format; the embedded digits split."""

import gzip
import struct

import numpy as np
import pytest

from tsslbp.config import DataConfig, Dataset
from tsslbp.data import DataError, load_dataset, load_digits, load_idx_dataset, read_idx


def write_idx(path, array, code=0x08, compress=False):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def make_mnist_dir(directory, rng, n_train=12, n_test=5, compress=True):
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, rng, compress):
    images = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    path = write_idx(tmp_path / "x-idx3-ubyte", images, compress=compress)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_other_dtypes(tmp_path, rng):
    values = rng.normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f", values, code=0x0D)), values)


def test_load_idx_dataset_scales_and_flattens(tmp_path, rng):
    arrays = make_mnist_dir(tmp_path / "mnist", rng)
    data = load_idx_dataset(tmp_path / "mnist", "mnist")
    assert data.train.images.shape == (12, 784) and data.test.images.shape == (5, 784)
    np.testing.assert_allclose(
        data.train.images.numpy(), arrays["train"][0].reshape(12, -1) / 255.0, rtol=1e-6
    )
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays["t10k"][1])


def test_load_dataset_uses_data_dir_over_config(tmp_path, rng):
    make_mnist_dir(tmp_path / "fm", rng, compress=False)
    data = load_dataset(
        DataConfig(dataset=Dataset.FASHION_MNIST, data_path="/nonexistent"), tmp_path / "fm"
    )
    assert len(data.train) == 12


def test_bad_magic_number(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match=r"bad: not an IDX file \(bad magic number 01020801\)"):
        read_idx(path)


def test_truncated_data(tmp_path, rng):
    path = write_idx(tmp_path / "t", rng.integers(0, 256, size=(4, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(
        DataError, match=r"t: IDX data holds 13 bytes, the header \(4, 4\) needs 16"
    ):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "u"
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x00")
    with pytest.raises(DataError, match="unknown IDX type code 0x07"):
        read_idx(path)


def test_label_count_mismatch_names_the_file(tmp_path, rng):
    make_mnist_dir(tmp_path / "m", rng)
    write_idx(
        tmp_path / "m" / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8), compress=True
    )
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: 4 labels for 5 images"):
        load_idx_dataset(tmp_path / "m")


def test_missing_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"):
        load_idx_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="data directory not found"):
        load_idx_dataset(tmp_path / "absent")


def test_digits_split_is_fixed_disjoint_and_in_range():
    a, b = load_digits(), load_digits()
    assert len(a.train) + len(a.test) == 1797 and len(a.test) == 359
    assert (a.train.images == b.train.images).all() and (a.test.labels == b.test.labels).all()
    train_rows = {tuple(r) for r in a.train.images.numpy().round(4)}
    overlap = sum(tuple(r) in train_rows for r in a.test.images.numpy().round(4))
    assert overlap < 5, f"train and test should be (almost) disjoint images, found {overlap} shared"
    assert float(a.train.images.min()) == 0.0 and float(a.train.images.max()) == 1.0
