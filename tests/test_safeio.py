"""Unit tests of :mod:`tsslbp.safeio` (the CLI-level tests are in ``test_untrusted_files.py``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest

from tsslbp import safeio


def test_every_limit_is_documented_and_ordered() -> None:
    for name, limit in safeio.LIMITS.items():
        assert limit.low <= limit.high and limit.why, f"{name}: {limit}"


@pytest.mark.parametrize(
    "value, message",
    [
        (0, r"n_steps must be in \[1, 100000\] \(time steps per sample .*\), found 0"),
        (10**9, r"found 1000000000$"),
        (2.0, r"n_steps must be an integer, found 2\.0"),
        (True, r"n_steps must be an integer, found True"),
        ("5", r"n_steps must be an integer, found '5'"),
    ],
)
def test_check_limit_refuses(value: object, message: str) -> None:
    with pytest.raises(safeio.LimitError, match=message):
        safeio.check_limit("n_steps", value)


def test_check_limit_accepts_numpy_integers() -> None:
    assert safeio.check_limit("seed", np.uint64(2**64 - 1)) == 2**64 - 1


def test_atomic_output_replaces_a_file_and_a_symlink_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    safeio.write_text(target, "new")
    assert target.read_text() == "new"
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    safeio.write_text(link, "via link")
    assert not link.is_symlink() and link.read_text() == "via link", "the link itself is replaced"
    assert target.read_text() == "new"


def test_atomic_output_refuses_a_symlink_to_a_device(tmp_path: Path) -> None:
    link = tmp_path / "out.npy"
    link.symlink_to("/dev/null")
    with pytest.raises(safeio.OutputError, match="is a character device"):
        safeio.save_npy(link, np.zeros(3))
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


def test_atomic_output_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        safeio.save_npy(tmp_path / "x.npy", np.zeros(2))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.npy").st_mode) == 0o640


def test_run_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with safeio.run_lock(tmp_path):
        with pytest.raises(safeio.RunLockedError, match=f"pid {os.getpid()}"):
            with safeio.run_lock(tmp_path):
                pass
    with safeio.run_lock(tmp_path):
        pass


def test_soft_links_inside_the_file_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f["a/b"] = np.arange(3)
        f["a/alias"] = h5py.SoftLink("/a/b")
        f["relative"] = h5py.SoftLink("a/alias")  # a chain of two soft links
    with safeio.open_hdf5(path) as f:
        assert f["relative"][()].tolist() == [0, 1, 2]


def test_soft_link_chains_end(tmp_path: Path) -> None:
    path = tmp_path / "loop.h5"
    with h5py.File(path, "w") as f:
        f["x"] = h5py.SoftLink("/y")
        f["y"] = h5py.SoftLink("/x")
    with pytest.raises(safeio.UnsafeFileError, match="chain of more than 16 soft links"):
        with safeio.open_hdf5(path):
            pass


def test_too_many_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        for i in range(20):
            f[f"d{i}"] = i
    monkeypatch.setitem(safeio.LIMITS, "hdf5_objects", safeio.Limit(1, 10, "test"))
    with pytest.raises(safeio.UnsafeFileError, match="more than 10 HDF5 objects"):
        with safeio.open_hdf5(path):
            pass


def test_total_declared_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "total.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f.create_dataset(f"d{i}", shape=(1000,), dtype=np.int64, chunks=(100,))
    monkeypatch.setitem(safeio.LIMITS, "hdf5_total_bytes", safeio.Limit(0, 20_000, "test"))
    with pytest.raises(
        safeio.UnsafeFileError, match="datasets declare more than 20000 bytes in all"
    ):
        with safeio.open_hdf5(path):
            pass


def test_load_npy_round_trip(tmp_path: Path) -> None:
    for arr in (
        np.arange(12).reshape(3, 4),
        np.ones((2, 2), dtype=np.float32, order="F"),
        np.array(True),
    ):
        np.save(tmp_path / "a.npy", arr)
        back = safeio.load_npy(tmp_path / "a.npy")
        assert back.dtype == arr.dtype and np.array_equal(back, arr)
