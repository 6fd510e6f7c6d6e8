"""CIFAR-10 reader on small batches written here as the real files are: Python 2 pickles of dicts."""

import builtins
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest
import torch

from tsslbp.data import DataError
from tsslbp.data.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    TSSLBP_CIFAR10_STD,
    Cifar10Normalization,
    CropFlipAugment,
    augment_batch,
    load_cifar10,
    read_cifar_batch,
    read_cifar_pickle,
)

N_PER_BATCH, N_TEST = 4, 3


class Py2Pickler(pickle._Pickler):
    """Writes ``str`` and ``bytes`` as Python 2 strings (SHORT_BINSTRING/BINSTRING), as cPickle did
    for the published files; ``pickle.load(..., encoding='bytes')`` turns them into ``bytes``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string


def write_py2_pickle(path, obj):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)
    return path


def batch_dict(data, labels, label="training batch"):
    return {
        "batch_label": label,
        "labels": [int(v) for v in labels],
        "data": data,
        "filenames": [f"img_{i}.png" for i in range(len(labels))],
    }


def make_cifar_dir(parent, rng, meta=True):
    root = parent / "cifar-10-batches-py"
    root.mkdir(parents=True)
    arrays = {}
    for name, n in [
        *((f"data_batch_{i}", N_PER_BATCH) for i in range(1, 6)),
        ("test_batch", N_TEST),
    ]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        write_py2_pickle(root / name, batch_dict(data, labels))
        arrays[name] = (data, labels)
    if meta:
        names = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]
        write_py2_pickle(
            root / "batches.meta",
            {"num_cases_per_batch": 10000, "label_names": names, "num_vis": 3072},
        )
    return root, arrays


@pytest.fixture
def cifar_dir(tmp_path, rng):
    return make_cifar_dir(tmp_path, rng)


def test_py2_helper_writes_a_protocol_2_pickle_with_numpy_globals_only(tmp_path, rng):
    path = write_py2_pickle(tmp_path / "b", batch_dict(np.zeros((1, 3072), np.uint8), [0]))
    raw = path.read_bytes()
    assert raw[:2] == b"\x80\x02", f"expected protocol 2, found header {raw[:2]!r}"
    assert b"_codecs" not in raw, (
        "a Python 2 pickle stores strings directly, not through _codecs.encode"
    )
    for name in (
        b"cnumpy.core.multiarray\n_reconstruct\n",
        b"cnumpy\nndarray\n",
        b"cnumpy\ndtype\n",
    ):
        assert name in raw, f"expected the global {name!r} in the pickle"


@pytest.mark.parametrize("from_parent", [True, False])
def test_load_shapes_values_and_label_order(cifar_dir, from_parent):
    root, arrays = cifar_dir
    data = load_cifar10(root.parent if from_parent else root)
    assert data.name == "cifar10"
    assert data.train.images.shape == (5 * N_PER_BATCH, 3, 32, 32), (
        f"found {tuple(data.train.images.shape)}"
    )
    assert data.test.images.shape == (N_TEST, 3, 32, 32), f"found {tuple(data.test.images.shape)}"
    assert data.train.images.dtype == torch.float32 and data.train.labels.dtype == torch.int64
    expected_train = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected_labels = np.concatenate([arrays[f"data_batch_{i}"][1] for i in range(1, 6)])
    np.testing.assert_allclose(
        data.train.images.numpy(), expected_train.reshape(-1, 3, 32, 32) / 255.0, rtol=1e-6
    )
    np.testing.assert_array_equal(data.train.labels.numpy(), expected_labels)
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays["test_batch"][1])
    assert data.class_names == tuple(f"c{i}" for i in range(10)), f"found {data.class_names}"
    assert data.augment is None, "augmentation is off by default"
    assert 0.0 <= float(data.train.images.min()) and float(data.train.images.max()) <= 1.0


def test_rows_are_red_green_blue_planes_in_row_major_order(tmp_path):
    row = np.zeros(3072, np.uint8)
    row[0] = 255  # red, (0, 0)
    row[1024 + 33] = 51  # green, row 1 column 1
    row[2048 + 31] = 102  # blue, row 0 column 31
    path = write_py2_pickle(tmp_path / "b", batch_dict(row[None], [7]))
    images, labels = read_cifar_batch(path)
    nonzero = {tuple(int(v) for v in idx): int(images[idx]) for idx in zip(*np.nonzero(images))}
    assert nonzero == {(0, 0, 0, 0): 255, (0, 1, 1, 1): 51, (0, 2, 0, 31): 102}, f"found {nonzero}"
    assert labels.tolist() == [7]


def test_python3_pickles_with_bytes_keys_also_load(tmp_path, rng):
    data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=4))
    images, labels = read_cifar_batch(path)
    np.testing.assert_array_equal(images.reshape(2, -1), data)
    assert labels.tolist() == [1, 2]


def test_class_names_default_without_meta(tmp_path, rng):
    root, _ = make_cifar_dir(tmp_path, rng, meta=False)
    assert load_cifar10(root).class_names == CIFAR10_CLASSES


@pytest.mark.parametrize(
    "mode, std",
    [
        (Cifar10Normalization.DATASET, CIFAR10_STD),
        (Cifar10Normalization.TSSLBP, TSSLBP_CIFAR10_STD),
    ],
)
def test_normalization_is_explicit(cifar_dir, mode, std):
    root, arrays = cifar_dir
    x = load_cifar10(root, normalization=mode).test.images.numpy()
    raw = arrays["test_batch"][0].reshape(-1, 3, 32, 32) / 255.0
    expected = (raw - np.reshape(CIFAR10_MEAN, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-6)


def _crop_candidates(img, padding, fill):
    c, h, w = img.shape
    padded = np.empty((c, h + 2 * padding, w + 2 * padding), np.float32)
    padded[:] = np.reshape(fill, (-1, 1, 1))
    padded[:, padding : padding + h, padding : padding + w] = img
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            yield (dy, dx, False), crop
            yield (dy, dx, True), crop[:, :, ::-1]


def _match(out, img, padding, fill):
    return [key for key, crop in _crop_candidates(img, padding, fill) if np.array_equal(out, crop)]


def test_augment_batch_crops_the_padded_image_and_flips(rng):
    x = torch.from_numpy(rng.random((16, 3, 8, 8), dtype=np.float32))
    out = augment_batch(x, torch.Generator().manual_seed(1), padding=2, fill=(-1.0, -2.0, -3.0))
    assert out.shape == x.shape and out.dtype == x.dtype, f"found {tuple(out.shape)} {out.dtype}"
    keys = []
    for i in range(len(x)):
        found = _match(out[i].numpy(), x[i].numpy(), 2, (-1.0, -2.0, -3.0))
        assert len(found) == 1, (
            f"sample {i}: expected exactly one matching crop/flip, found {found}"
        )
        keys.append(found[0])
    assert {k[2] for k in keys} == {False, True}, (
        f"16 samples should include flips and non-flips, found {keys}"
    )
    assert len({k[:2] for k in keys}) > 1, f"offsets should vary, found {keys}"


def test_augment_batch_is_deterministic_per_generator_seed(rng):
    x = torch.from_numpy(rng.random((8, 3, 32, 32), dtype=np.float32))
    a = augment_batch(x, torch.Generator().manual_seed(5))
    b = augment_batch(x, torch.Generator().manual_seed(5))
    c = augment_batch(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b), "same seed must give the same batch"
    assert not torch.equal(a, c), "another seed should give another batch"
    assert a.shape == (8, 3, 32, 32), f"found {tuple(a.shape)}"


def test_crop_flip_augment_depends_only_on_seed_epoch_batch(cifar_dir):
    root, _ = cifar_dir
    data = load_cifar10(root, augment=True, seed=3)
    aug = data.augment
    assert aug == CropFlipAugment(3), f"found {aug}"
    x = data.train.images[:8]
    first = aug(x, epoch=2, batch=1)
    assert torch.equal(first, aug(x, epoch=2, batch=1)), "same (seed, epoch, batch) must repeat"
    assert not torch.equal(first, aug(x, epoch=2, batch=2)), "another batch should differ"
    assert not torch.equal(first, CropFlipAugment(4)(x, epoch=2, batch=1)), (
        "another seed should differ"
    )


def test_normalized_augment_pads_with_black(cifar_dir):
    root, _ = cifar_dir
    aug = load_cifar10(root, normalization=Cifar10Normalization.DATASET, augment=True).augment
    expected = tuple(-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD))
    np.testing.assert_allclose(aug.fill, expected)


# --- malformed files: one DataError each, one line, naming the file ------------------------------


def _rewrite(root, name, obj):
    write_py2_pickle(root / name, obj)


def _corrupt(root, kind):
    """Damage data_batch_2 in one way; returns the expected message fragment."""
    path = root / "data_batch_2"
    good = np.zeros((N_PER_BATCH, 3072), np.uint8)
    if kind == "missing":
        path.unlink()
        return "missing"
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        return "corrupt or truncated pickle"
    if kind == "garbage":
        path.write_bytes(b"this is not a pickle at all")
        return "corrupt or truncated pickle"
    if kind == "not_a_dict":
        _rewrite(root, "data_batch_2", [good, [0] * N_PER_BATCH])
        return "expected a pickled dict, found list"
    if kind == "wrong_keys":
        _rewrite(root, "data_batch_2", {"images": good, "labels": [0] * N_PER_BATCH})
        return "no b'data' entry (keys found: b'images', b'labels')"
    if kind == "no_labels":
        _rewrite(root, "data_batch_2", {"data": good})
        return "no b'labels' entry"
    if kind == "shape":
        _rewrite(
            root,
            "data_batch_2",
            batch_dict(np.zeros((N_PER_BATCH, 3071), np.uint8), [0] * N_PER_BATCH),
        )
        return "shape (4, 3071), expected (N, 3072)"
    if kind == "three_d":
        _rewrite(
            root,
            "data_batch_2",
            batch_dict(np.zeros((N_PER_BATCH, 3, 1024), np.uint8), [0] * N_PER_BATCH),
        )
        return "shape (4, 3, 1024), expected (N, 3072)"
    if kind == "dtype":
        _rewrite(root, "data_batch_2", batch_dict(good.astype(np.float32), [0] * N_PER_BATCH))
        return "dtype float32, expected uint8"
    if kind == "label_count":
        _rewrite(root, "data_batch_2", batch_dict(good, [0] * (N_PER_BATCH - 1)))
        return "3 labels for 4 images"
    if kind == "label_range":
        _rewrite(root, "data_batch_2", batch_dict(good, [0, 3, 10, 1]))
        return "label 10 at index 2 is outside 0..9"
    if kind == "negative_label":
        _rewrite(root, "data_batch_2", batch_dict(good, [0, -1, 2, 1]))
        return "label -1 at index 1 is outside 0..9"
    if kind == "label_type":
        _rewrite(root, "data_batch_2", {"data": good, "labels": ["a", "b", "c", "d"]})
        return "not a flat list of ints"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing", "truncated", "garbage", "not_a_dict", "wrong_keys", "no_labels", "shape", "three_d", "dtype",
        "label_count", "label_range", "negative_label", "label_type",
    ],
)  # fmt: skip
def test_malformed_batch_raises_data_error_naming_the_file(cifar_dir, kind):
    root, _ = cifar_dir
    fragment = _corrupt(root, kind)
    with pytest.raises(DataError) as info:
        load_cifar10(root)
    message = str(info.value)
    assert str(root / "data_batch_2") in message, (
        f"expected the file in the message, found {message!r}"
    )
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    assert "\n" not in message, f"expected one line, found {message!r}"


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="data directory not found"):
        load_cifar10(tmp_path / "nowhere")


def test_bad_meta_raises(cifar_dir):
    root, _ = cifar_dir
    write_py2_pickle(root / "batches.meta", {"label_names": ["a", "b"]})
    with pytest.raises(DataError, match="batches.meta: b'label_names' should list 10 names"):
        load_cifar10(root)


# --- malicious pickles: refused before anything runs ---------------------------------------------


class _Reduces:
    """Pickles as a call of ``func(*args)``; nothing runs while pickling."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    return {
        "os.system": _Reduces(os.system, (f"touch {marker}",)),
        "subprocess.call": _Reduces(subprocess.call, (["touch", str(marker)],)),
        "builtins.exec": _Reduces(builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
        "nested in labels": {
            b"data": np.zeros((1, 3072), np.uint8),
            b"labels": [_Reduces(os.system, (f"touch {marker}",))],
        },
        # A numpy function is no more allowed than any other: only the array reconstructors are.
        "numpy.save": _Reduces(np.save, (str(marker), np.zeros(1))),
    }


@pytest.mark.parametrize(
    "payload", ["os.system", "subprocess.call", "builtins.exec", "nested in labels", "numpy.save"]
)
def test_malicious_pickle_is_refused_without_running(cifar_dir, payload):
    root, _ = cifar_dir
    marker = root / "pwned.npy"  # the name np.save writes to, so every payload would create it
    obj = _payloads(marker)[payload]
    (root / "data_batch_1").write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError) as info:
        load_cifar10(root)
    message = str(info.value)
    assert not marker.exists(), "the pickle's payload ran"
    assert str(root / "data_batch_1") in message and "unsafe pickle" in message, (
        f"found {message!r}"
    )


def test_read_cifar_pickle_refuses_globals_outside_numpy_arrays(tmp_path):
    marker = tmp_path / "pwned"
    for protocol in (2, 4, 5):
        path = tmp_path / f"evil{protocol}"
        path.write_bytes(pickle.dumps(_Reduces(os.system, (f"touch {marker}",)), protocol=protocol))
        with pytest.raises(DataError, match=r"unsafe pickle, refers to (posix|nt)\.system"):
            read_cifar_pickle(path)
    assert not marker.exists(), "the pickle's payload ran"
