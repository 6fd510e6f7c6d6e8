"""N-MNIST reader on event files written here in the published 5-byte format, binning, cache."""

import logging
import os

import numpy as np
import pytest
import torch

from tsslbp.data import DataError, nmnist
from tsslbp.data.nmnist import (
    EventValue,
    NmnistEvents,
    bin_events,
    decode_events,
    load_nmnist,
    read_events,
    stabilize_events,
)


def pack_events(events):
    """Events (x, y, polarity, ts_us) -> bytes, one 40-bit big-endian record each (Read_Ndataset.m)."""
    out = bytearray()
    for x, y, p, ts in events:
        word = (x << 32) | (y << 24) | (p << 23) | ts
        out += word.to_bytes(5, "big")
    return bytes(out)


def random_events(rng, n, t_max=300_000):
    ts = np.sort(rng.integers(0, t_max, size=n))
    return [
        (int(x), int(y), int(p), int(t))
        for x, y, p, t in zip(
            rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n), ts
        )
    ]


def make_nmnist_dir(root, rng, layout=None):
    """Train/<digit>/*.bin and Test/<digit>/*.bin; layout: {split: {digit: n_files}}."""
    layout = layout or {"Train": {0: 2, 3: 1, 7: 2}, "Test": {1: 1, 7: 1}}
    files = {}
    for split, classes in layout.items():
        for digit, n in classes.items():
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(n):
                path = folder / f"{i:05d}.bin"
                path.write_bytes(pack_events(random_events(rng, int(rng.integers(5, 40)))))
                files.setdefault(split, []).append((path, digit))
    return files


@pytest.fixture
def nmnist_dir(tmp_path, rng):
    root = tmp_path / "N-MNIST"
    return root, make_nmnist_dir(root, rng)


# --- event decoding ------------------------------------------------------------------------------


def test_decode_bit_layout():
    raw = (
        bytes([0x21, 0x00, 0xFF, 0xFF, 0xFF])
        + bytes([0x05, 0x1F, 0x7F, 0x00, 0x01])
        + bytes([0, 0, 0x80, 0, 0])
    )
    ev = decode_events(raw)
    assert ev.x.tolist() == [33, 5, 0], f"found {ev.x.tolist()}"
    assert ev.y.tolist() == [0, 31, 0], f"found {ev.y.tolist()}"
    assert ev.polarity.tolist() == [1, 0, 1], f"found {ev.polarity.tolist()}"
    assert ev.ts.tolist() == [(1 << 23) - 1, (0x7F << 16) | 1, 0], f"found {ev.ts.tolist()}"


def test_decode_round_trip(rng):
    events = random_events(rng, 500, t_max=1 << 23)
    ev = decode_events(pack_events(events))
    decoded = list(zip(ev.x.tolist(), ev.y.tolist(), ev.polarity.tolist(), ev.ts.tolist()))
    assert decoded == events


# --- binning -------------------------------------------------------------------------------------


def _events(*rows):
    x, y, p, ts = (np.array(c, dtype=np.int64) for c in zip(*rows))
    return NmnistEvents(x, y, p, ts)


def test_fixed_window_binning_counts_and_spikes():
    # Pixel (x=2, y=5) ON: ts 0, 3, 9 -> frame 0 (x3); 10 -> frame 1; 29 -> frame 2; 30 -> dropped (T=3).
    # Pixel (x=2, y=5) OFF: ts 12 -> frame 1. Pixel (x=7, y=1) ON: ts 20, 21 -> frame 2 (x2).
    ev = _events(
        (2, 5, 1, 0), (2, 5, 1, 3), (2, 5, 1, 9), (2, 5, 1, 10), (2, 5, 1, 29), (2, 5, 1, 30),
        (2, 5, 0, 12), (7, 1, 1, 20), (7, 1, 1, 21),
    )  # fmt: skip
    expected = np.zeros((2, 34, 34, 3), np.int64)
    expected[1, 5, 2] = [3, 1, 1]
    expected[0, 5, 2] = [0, 1, 0]
    expected[1, 1, 7] = [0, 0, 2]
    counts = bin_events(ev, 3, bin_us=10, value=EventValue.COUNT)
    spikes = bin_events(ev, 3, bin_us=10, value=EventValue.SPIKE)
    assert counts.shape == (2, 34, 34, 3) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(spikes, np.minimum(expected, 1))
    assert int(counts.sum()) == 8, "the event at ts = 30 lies past T * bin_us and is dropped"


def test_equal_bins_span_the_recording():
    # First event at 100 us, last at 399 us: span 300, T = 3 -> [100, 200), [200, 300), [300, 400).
    ev = _events((0, 0, 0, 100), (0, 0, 0, 199), (0, 0, 0, 200), (0, 0, 0, 399), (33, 33, 1, 250))
    counts = bin_events(ev, 3, bin_us=None, value=EventValue.COUNT)
    assert counts[0, 0, 0].tolist() == [2, 1, 1], f"found {counts[0, 0, 0].tolist()}"
    assert counts[1, 33, 33].tolist() == [0, 1, 0], f"found {counts[1, 33, 33].tolist()}"
    assert int(counts.sum()) == 5, "with equal bins every event is kept"


def test_stabilize_matches_stabilize_m_by_hand():
    ev = _events(
        (10, 10, 1, 0),  # no shift
        (10, 10, 1, 105_000),  # end of saccade 1: X = 11 - 3.5 = 7.5 -> 8, Y = 11 - 7 = 4
        (10, 10, 0, 210_000),  # end of saccade 2: X = 11 - 3.5 - 3.5 = 4, Y = 11 - 7 + 7 = 11
        (10, 10, 1, 315_000),  # end of saccade 3: X = 11 - 7 + 7 = 11, Y unchanged
        (
            2,
            5,
            1,
            15_000,
        ),  # X = 3 - 0.5 = 2.5 rounds half away from zero to 3 (np.round would give 2)
        (0, 20, 1, 105_000),  # X = 1 - 3.5 < 1: dropped
        (20, 3, 1, 105_000),  # Y = 4 - 7 < 1: dropped
    )
    out = stabilize_events(ev)
    rows = list(zip(out.x.tolist(), out.y.tolist(), out.polarity.tolist(), out.ts.tolist()))
    assert rows == [
        (10, 10, 1, 0),
        (7, 3, 1, 105_000),
        (3, 10, 0, 210_000),
        (10, 10, 1, 315_000),
        (2, 4, 1, 15_000),
    ], f"found {rows}"


def test_stabilize_drops_events_pushed_past_the_edge():
    # Past 315 ms saccade 3's shift turns positive: at 330 ms X = 34 - 7 + 7 * 120000/105000 = 35 > 34.
    # At 300 ms X = 34 - 7 + 7 * 90000/105000 = 33, kept as x = 32.
    ev = _events((33, 0, 1, 300_000), (33, 0, 1, 330_000))
    out = stabilize_events(ev)
    assert out.x.tolist() == [32] and out.ts.tolist() == [300_000], (
        f"found x={out.x.tolist()} ts={out.ts.tolist()}"
    )


# --- loading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stabilize", [True, False])
def test_load_shapes_values_and_label_order(nmnist_dir, stabilize):
    root, files = nmnist_dir
    n_steps = 5
    data = load_nmnist(root, n_steps, bin_us=20_000, stabilize=stabilize)
    assert data.name == "nmnist"
    for split, key in ((data.train, "Train"), (data.test, "Test")):
        expected_paths = files[key]
        assert split.images.shape == (len(expected_paths), 2, 34, 34, n_steps), (
            f"found {tuple(split.images.shape)}"
        )
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.labels.tolist() == [d for _, d in expected_paths], (
            f"found {split.labels.tolist()}"
        )
        for i, (path, _) in enumerate(expected_paths):
            ev = read_events(path)
            ev = stabilize_events(ev) if stabilize else ev
            expected = bin_events(ev, n_steps, bin_us=20_000, value=EventValue.SPIKE)
            np.testing.assert_array_equal(
                split.images[i].numpy(), expected.astype(np.float32), err_msg=str(path)
            )
    assert float(data.train.images.sum()) > 0, "sanity: the frames hold spikes"


def test_count_mode_and_integer_dtype(nmnist_dir):
    root, files = nmnist_dir
    data = load_nmnist(
        root, 1, bin_us=None, value=EventValue.COUNT, stabilize=False, dtype=torch.uint8
    )
    assert data.train.images.dtype == torch.uint8
    path = files["Train"][0][0]
    n_events = path.stat().st_size // 5
    assert int(data.train.images[0].sum()) == n_events, (
        "one frame over the whole recording counts every event"
    )


def test_default_is_the_reference_binning(nmnist_dir):
    root, files = nmnist_dir
    data = load_nmnist(root, 4)
    path = files["Test"][0][0]
    expected = bin_events(
        stabilize_events(read_events(path)), 4, bin_us=3000, value=EventValue.SPIKE
    )
    np.testing.assert_array_equal(data.test.images[0].numpy(), expected)


# --- cache ---------------------------------------------------------------------------------------


@pytest.fixture
def count_reads(monkeypatch):
    calls = []

    def counting(path):
        calls.append(path)
        return read_events(path)

    monkeypatch.setattr(nmnist, "read_events", counting)
    return calls


def test_second_load_comes_from_cache_without_reading_samples(nmnist_dir, tmp_path, count_reads):
    root, files = nmnist_dir
    cache = tmp_path / "cache"
    n_files = sum(len(v) for v in files.values())
    first = load_nmnist(root, 6, cache_dir=cache)
    assert len(count_reads) == n_files, (
        f"first load: expected {n_files} reads, found {len(count_reads)}"
    )
    second = load_nmnist(root, 6, cache_dir=cache)
    assert len(count_reads) == n_files, f"second load re-read {len(count_reads) - n_files} files"
    for a, b in ((first.train, second.train), (first.test, second.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 1 and names[0].endswith(".npz"), (
        f"expected one .npz and no temporary files, found {names}"
    )


def test_cache_is_keyed_by_options_and_file_changes(nmnist_dir, tmp_path, count_reads):
    root, files = nmnist_dir
    cache = tmp_path / "cache"
    n_files = sum(len(v) for v in files.values())
    load_nmnist(root, 6, cache_dir=cache)
    load_nmnist(root, 7, cache_dir=cache)
    load_nmnist(root, 6, value=EventValue.COUNT, cache_dir=cache)
    assert len(count_reads) == 3 * n_files, "other n_steps or value mode must not reuse the cache"
    path = files["Train"][0][0]
    path.write_bytes(path.read_bytes() + bytes([1, 1, 0, 0, 1]))
    load_nmnist(root, 6, cache_dir=cache)
    assert len(count_reads) == 4 * n_files, "a changed sample file must invalidate the cache"
    assert len(list(cache.glob("*.npz"))) == 4


def test_corrupt_cache_is_rebuilt(nmnist_dir, tmp_path, caplog, count_reads):
    root, files = nmnist_dir
    cache = tmp_path / "cache"
    reference = load_nmnist(root, 3, cache_dir=cache)
    (cache_file,) = cache.glob("*.npz")
    cache_file.write_bytes(b"PK\x03\x04 not really a zip")
    with caplog.at_level(logging.WARNING, logger="tsslbp.data.nmnist"):
        again = load_nmnist(root, 3, cache_dir=cache)
    assert "rebuilding" in caplog.text, f"expected a warning, found {caplog.text!r}"
    assert torch.equal(reference.train.images, again.train.images)
    assert load_nmnist(root, 3, cache_dir=cache).train.images.shape == reference.train.images.shape
    n_files = sum(len(v) for v in files.values())
    assert len(count_reads) == 2 * n_files, "the rewritten cache should serve the third load"


def test_unwritable_cache_does_not_fail_the_load(nmnist_dir, tmp_path, caplog):
    root, files = nmnist_dir
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="tsslbp.data.nmnist"):
        data = load_nmnist(root, 3, cache_dir=not_a_dir)
    assert len(data.train) == len(files["Train"])
    assert "could not write N-MNIST cache" in caplog.text, f"found {caplog.text!r}"


# --- malformed input: one DataError each, naming the file or folder ------------------------------


def _expect_error(root, fragment, where, **kwargs):
    with pytest.raises(DataError) as info:
        load_nmnist(root, 3, **kwargs)
    message = str(info.value)
    assert str(where) in message, f"expected {where} in {message!r}"
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    assert "\n" not in message


def test_size_not_multiple_of_five(nmnist_dir):
    root, files = nmnist_dir
    path = files["Train"][1][0]
    path.write_bytes(path.read_bytes()[:-2])
    _expect_error(root, "is not a multiple of 5", path)


def test_empty_sample_file(nmnist_dir):
    root, files = nmnist_dir
    path = files["Test"][0][0]
    path.write_bytes(b"")
    _expect_error(root, "empty file", path)


@pytest.mark.parametrize(
    "field, event, fragment", [("x", (34, 0, 1, 5), "x = 34"), ("y", (0, 40, 0, 5), "y = 40")]
)
def test_coordinates_out_of_range(nmnist_dir, field, event, fragment):
    root, files = nmnist_dir
    path = files["Train"][2][0]
    path.write_bytes(pack_events([(1, 1, 0, 1), event]))
    _expect_error(root, f"event 1 has {fragment}, outside 0..33", path)


def test_non_digit_class_folder(nmnist_dir):
    root, _ = nmnist_dir
    (root / "Train" / "seven").mkdir()
    _expect_error(root, "class folder name is not a digit", root / "Train" / "seven")


def test_empty_class_folder(nmnist_dir):
    root, _ = nmnist_dir
    (root / "Test" / "4").mkdir()
    _expect_error(root, "no .bin samples", root / "Test" / "4")


def test_empty_split_directory(tmp_path):
    root = tmp_path / "N-MNIST"
    (root / "Train").mkdir(parents=True)
    (root / "Test").mkdir()
    _expect_error(root, "no class folders", root / "Train")


def test_missing_split_and_missing_directory(nmnist_dir, tmp_path):
    root, _ = nmnist_dir
    for path in (root / "Test").rglob("*.bin"):
        path.unlink()
    for folder in sorted((root / "Test").iterdir()):
        folder.rmdir()
    os.rmdir(root / "Test")
    _expect_error(root, "missing", root / "Test")
    _expect_error(tmp_path / "nowhere", "data directory not found", tmp_path / "nowhere")


def test_hidden_entries_and_other_files_are_ignored(nmnist_dir):
    root, files = nmnist_dir
    (root / "Train" / ".DS_Store").write_bytes(b"junk")
    (root / "Train" / "0" / "README.txt").write_text("not a sample")
    data = load_nmnist(root, 2)
    assert len(data.train) == len(files["Train"])


@pytest.mark.parametrize("kwargs", [{"n_steps": 0}, {"n_steps": 3, "bin_us": 0}])
def test_bad_options(nmnist_dir, kwargs):
    root, _ = nmnist_dir
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        load_nmnist(root, **kwargs)


def test_counts_too_large_for_integer_dtype(tmp_path):
    root = tmp_path / "N-MNIST"
    for split in ("Train", "Test"):
        (root / split / "0").mkdir(parents=True)
        (root / split / "0" / "a.bin").write_bytes(pack_events([(0, 0, 0, 5)] * 300))
    with pytest.raises(ValueError, match="event counts up to 300 do not fit in torch.uint8"):
        load_nmnist(root, 1, value=EventValue.COUNT, stabilize=False, dtype=torch.uint8)
