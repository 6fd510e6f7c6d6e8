"""One I/O policy for every file tsslbp reads or writes: regular files only, bounded sizes, atomic
writes with normal permissions.

tsslbp reads files from collaborators and the internet (netx, NIR, checkpoints, configs, ``.npy``
inputs). Every reader and writer in the package goes through this module, so the rules hold in one
place:

* **Readers** open only regular files (:func:`open_regular`): a FIFO, device, socket or directory is
  refused before ``open`` can block on it. HDF5 files (:func:`open_hdf5`) are audited before any
  value is read: no external links, no soft links that dangle or leave the file, no virtual or
  externally stored datasets, only plain numeric or string dtypes, and every declared size (the
  dataset's shape times its item size, whatever its compression) within :data:`LIMITS`.
  ``.npy`` inputs (:func:`load_npy`) are parsed header first, numeric dtypes only, no pickles, size
  checked before the array is allocated.
* **Writers** (:func:`atomic_output`) write a temporary file in the target's directory and rename
  it over a regular file or over nothing; devices, FIFOs, sockets and directories are refused as
  outputs. The file gets the permissions a plain ``open`` would give (0666 less the umask), and a
  full disk ends in one line.
* **Bounds**: every size-like number has one documented limit in :data:`LIMITS`, checked with
  :func:`check_limit` before anything is allocated.

Errors are :class:`UnsafeFileError` (a ``ValueError``: the file is bad), :class:`LimitError` (a
``ValueError``: a number beyond its limit) and :class:`OutputError` (an ``OSError``: the output path
cannot be written); each message is one line naming the path.

This module imports nothing from tsslbp, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import numbers
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where arrays are read or written: `tsslbp --help` stays light
    import numpy as np


__all__ = [
    "Limit",
    "LIMITS",
    "LimitError",
    "UnsafeFileError",
    "OutputError",
    "RunLockedError",
    "check_limit",
    "check_regular_file",
    "open_regular",
    "check_output_path",
    "atomic_output",
    "open_hdf5",
    "audit_hdf5",
    "dataset_size_problem",
    "load_npy",
    "save_npy",
    "write_text",
    "read_bytes",
    "gunzip_bounded",
    "run_lock",
]


class UnsafeFileError(ValueError):
    """An input file tsslbp refuses to read: not a regular file, hostile structure, too large."""


class LimitError(ValueError):
    """A size-like number (steps, widths, batch size, seed, ...) beyond its documented limit."""


class OutputError(OSError):
    """An output path tsslbp refuses to write (a device, FIFO, socket, directory) or could not
    write (disk full)."""

    def __init__(self, code: int, message: str) -> None:
        # A one-argument OSError prints as its message alone (no "[Errno N]" prefix).
        super().__init__(message)
        self.errno = code


class RunLockedError(OutputError):
    """Another run holds the lock on the same output directory."""


@dataclass(frozen=True)
class Limit:
    """The accepted range of one size-like number and why it is there."""

    low: int
    high: int
    why: str


#: Every size-like number tsslbp reads from a file or the command line, and its accepted range.
#: The bounds are far above any network Loihi 2 can hold or any run on one machine needs, and far
#: below what would exhaust memory before a check could fail: they are checked before allocating.
LIMITS: Mapping[str, Limit] = {
    "n_steps": Limit(1, 100_000, "time steps per sample (TSSL-BP uses 5..100)"),
    "steps": Limit(1, 1_000_000, "simulation steps of one run"),
    "layer_neurons": Limit(1, 1 << 22, "neurons in one layer (4 Loihi 2 chips of 1M neurons)"),
    "layer_dim": Limit(1, 1 << 22, "one dimension of a layer shape, kernel or channel count"),
    "layer_synapses": Limit(1, 1 << 26, "weights of one layer (64M; a Loihi 2 chip holds ~16M)"),
    "layers": Limit(1, 1024, "layers in one network"),
    "batch_size": Limit(1, 1 << 16, "samples per training batch"),
    "epochs": Limit(1, 1_000_000, "training epochs"),
    "samples": Limit(1, 10_000_000, "samples to evaluate or simulate"),
    "seed": Limit(0, (1 << 64) - 1, "random seed (64 bits, as numpy and torch take it)"),
    "n_class": Limit(2, 1 << 20, "classes of the read-out"),
    "readout_offset": Limit(0, 1024, "steps before the read-out window (one per synaptic layer)"),
    "input_bits": Limit(0, 24, "graded input message width"),
    "state_cells": Limit(1, 1 << 31, "training state of one layer: batch x neurons x steps"),
    "run_cells": Limit(1, 1 << 28, "neurons x steps of one simulated sample"),
    "hdf5_objects": Limit(1, 100_000, "groups, datasets and links in one HDF5 file"),
    "hdf5_depth": Limit(1, 32, "nesting depth of HDF5 groups"),
    "hdf5_dataset_bytes": Limit(0, 1 << 28, "declared bytes of one HDF5 dataset or attribute"),
    "hdf5_total_bytes": Limit(0, 1 << 29, "declared bytes of all datasets of one HDF5 file"),
    "npy_bytes": Limit(0, 1 << 28, "bytes of one .npy input array (256 MiB)"),
    "npy_header_bytes": Limit(0, 1 << 16, "header of one .npy file"),
    "config_bytes": Limit(0, 1 << 20, "bytes of one YAML config"),
    "data_bytes": Limit(0, 1 << 30, "bytes of one data set file, decompressed"),
    "checkpoint_bytes": Limit(0, 4 << 30, "bytes of one checkpoint file"),
}


def check_limit(name: str, value: Any, what: str | None = None) -> int:
    """``value`` as an int when it is an integer within ``LIMITS[name]``.

    Args:
        name: a key of :data:`LIMITS`.
        value: the number to check (Python or numpy integer; bools are refused).
        what: how messages name the value (default ``name``).

    Raises:
        LimitError: not an integer, or outside the limit (the message gives the range and why).
    """
    limit = LIMITS[name]
    label = what or name
    # numbers.Integral: Python and numpy integers (numpy's bool_ is not one); bool is refused.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LimitError(f"{label} must be an integer, found {_short(value)}")
    if not limit.low <= int(value) <= limit.high:
        raise LimitError(
            f"{label} must be in [{limit.low}, {limit.high}] ({limit.why}), found {_short(value)}"
        )
    return int(value)


def _short(value: Any, n: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


# ------------------------------------------------------------------------------------------ reading


def check_regular_file(
    path: str | os.PathLike[str], max_bytes: int | None = None
) -> os.stat_result:
    """``os.stat`` of ``path`` when it is a regular file (symlinks followed) of at most ``max_bytes``.

    Raises:
        UnsafeFileError: missing, unreadable, not a regular file, or larger than ``max_bytes``.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise UnsafeFileError(f"{path}: cannot read the file ({err.strerror or err})") from None
    kind = _kind(st.st_mode)
    if kind:
        raise UnsafeFileError(f"{path}: is {kind}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UnsafeFileError(f"{path}: {st.st_size} bytes, more than the limit of {max_bytes}")
    return st


def open_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> IO[bytes]:
    """Open a regular file for binary reading without ever blocking on a FIFO or device.

    The path is checked with ``stat`` first, opened non-blocking, and the open descriptor checked
    again (the path may have been swapped in between).

    Raises:
        UnsafeFileError: as :func:`check_regular_file`.
    """
    check_regular_file(path, max_bytes)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise UnsafeFileError(f"{path}: cannot open the file ({err.strerror or err})") from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind:
            raise UnsafeFileError(f"{path}: is {kind}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFileError(f"{path}: {st.st_size} bytes, more than the limit of {max_bytes}")
        # Regular files never block; back to blocking mode for ordinary reads.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _dtype_problem(dtype: np.dtype) -> str | None:
    """Why an HDF5 dataset/attribute dtype is refused (None: plain numeric, bool or string)."""
    import h5py

    if h5py.check_string_dtype(dtype) is not None:
        return None
    if h5py.check_vlen_dtype(dtype) is not None:
        return "a variable-length sequence dtype"
    if h5py.check_ref_dtype(dtype) is not None:
        return "an object reference dtype"
    if dtype.fields is not None:
        return f"a compound dtype {dtype}"
    if dtype.subdtype is not None:
        return f"an array dtype {dtype}"
    if dtype.kind not in "biuf" and not (dtype.kind == "S"):
        return f"dtype {dtype} (kind {dtype.kind!r})"
    return None


def _declared_bytes(shape: tuple[int, ...] | None, dtype: np.dtype) -> int:
    # Python ints: the product of a hostile shape overflows int64.
    n = math.prod(int(s) for s in shape) if shape else 1
    return n * max(int(dtype.itemsize), 1)


def dataset_size_problem(dataset: Any, max_elements: int) -> str | None:
    """Why an h5py dataset's declared shape is too large to read (None: at most ``max_elements``).

    Readers call it before ``dataset[()]`` with the bound their network description allows.
    """
    shape = dataset.shape or ()
    n = math.prod(int(s) for s in shape)
    if n > max_elements:
        return (
            f"declares shape {tuple(shape)} ({n} values), more than the {max_elements} allowed here"
        )
    return None


def audit_hdf5(f: Any, path: str | os.PathLike[str]) -> None:
    """Walk an open h5py file and refuse what could read other files or exhaust memory.

    Checked before any value is read: external links, soft links that dangle or point outside the
    file's tree, virtual datasets, datasets with external raw storage, dtypes other than numeric,
    bool and string, declared sizes (shape x item size, compressed or not) of each dataset and
    attribute and of the whole file, and the number and nesting of objects (cycles end there).

    Raises:
        UnsafeFileError: the first problem found, naming the object.
    """
    import h5py

    per_item = LIMITS["hdf5_dataset_bytes"].high
    total_max = LIMITS["hdf5_total_bytes"].high
    max_objects = LIMITS["hdf5_objects"].high
    max_depth = LIMITS["hdf5_depth"].high
    count = 0
    total = 0

    def fail(name: str, why: str) -> UnsafeFileError:
        return UnsafeFileError(f"{path}: HDF5 object '{name}' {why}")

    def check_attrs(obj: Any, name: str) -> None:
        nonlocal count
        for key in obj.attrs.keys():
            count += 1
            if count > max_objects:
                raise UnsafeFileError(f"{path}: more than {max_objects} HDF5 objects")
            try:
                aid = h5py.h5a.open(obj.id, key.encode() if isinstance(key, str) else key)
                shape, dtype = aid.shape, aid.dtype
            except (OSError, RuntimeError, TypeError, ValueError, KeyError) as exc:
                raise fail(
                    f"{name}@{key}", f"has an unreadable attribute ({_one_line(exc)})"
                ) from None
            problem = _dtype_problem(dtype)
            if problem:
                raise fail(f"{name}@{key}", f"is an attribute of {problem}")
            if _declared_bytes(shape, dtype) > per_item:
                raise fail(f"{name}@{key}", f"is an attribute declaring more than {per_item} bytes")

    def visit(group: Any, name: str, depth: int) -> None:
        nonlocal count, total
        if depth > max_depth:
            raise fail(name, f"is nested deeper than {max_depth} groups")
        check_attrs(group, name or "/")
        # Raw byte names: h5py's str iteration fails on names that are not UTF-8.
        for key in group.id:
            count += 1
            if count > max_objects:
                raise UnsafeFileError(f"{path}: more than {max_objects} HDF5 objects")
            child = f"{name}/{key.decode(errors='backslashreplace')}"
            # Low-level calls: they take raw byte names and never follow a link.
            kind = group.id.links.get_info(key).type
            if kind == h5py.h5l.TYPE_EXTERNAL:
                target_file, target_path = group.id.links.get_val(key)
                raise fail(
                    child,
                    f"is an external link to {target_file.decode(errors='replace')}:"
                    f"{target_path.decode(errors='replace')}",
                )
            if kind == h5py.h5l.TYPE_SOFT:
                soft = group.id.links.get_val(key).decode(errors="replace")
                target = soft if soft.startswith("/") else f"{name}/{soft}"
                why = _soft_link_problem(f, target, 0)
                if why:
                    raise fail(child, f"is a soft link to '{soft}', {why}")
                # The target is checked where it lives in the tree (and may not lie outside it).
                continue
            if kind != h5py.h5l.TYPE_HARD:
                raise fail(child, f"is a user-defined link (type {kind})")
            try:
                oid = h5py.h5o.open(group.id, key)
            except (KeyError, OSError, RuntimeError, ValueError) as exc:
                raise fail(child, f"cannot be opened ({_one_line(exc)})") from None
            if isinstance(oid, h5py.h5g.GroupID):
                obj = h5py.Group(oid)
            elif isinstance(oid, h5py.h5d.DatasetID):
                obj = h5py.Dataset(oid)
            else:
                raise fail(child, f"is a {type(oid).__name__}, not a group or dataset")
            if isinstance(obj, h5py.Group):
                visit(obj, child, depth + 1)
                continue
            if obj.is_virtual:
                raise fail(child, "is a virtual dataset (it reads other files)")
            if obj.external:
                raise fail(child, "stores its data in external files")
            problem = _dtype_problem(obj.dtype)
            if problem:
                raise fail(child, f"has {problem}")
            size = _declared_bytes(obj.shape, obj.dtype)
            if size > per_item:
                raise fail(
                    child,
                    f"declares {size} bytes (shape {obj.shape}, {obj.dtype}), "
                    f"more than the limit of {per_item}",
                )
            total += size
            if total > total_max:
                raise UnsafeFileError(
                    f"{path}: datasets declare more than {total_max} bytes in all"
                )
            check_attrs(obj, child)

    try:
        visit(f, "", 0)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(
            f"{path}: cannot open an object, damaged file or dangling link ({_one_line(exc)})"
        ) from None


def _soft_link_problem(f: Any, target: str, hops: int) -> str | None:
    """Why a soft link's target path does not resolve inside the file (None: it does), found
    link by link without following any external link."""
    import h5py

    if hops > 16:
        return "which is a chain of more than 16 soft links"
    group = f
    parts = [p for p in target.split("/") if p and p != "."]
    for i, part in enumerate(parts):
        if part == ".." or not isinstance(group, h5py.Group):
            return "which does not resolve inside the file"
        try:
            link = group.get(part, getlink=True)
        except (KeyError, OSError, RuntimeError, ValueError):
            link = None
        if link is None:
            return "which does not exist"
        if isinstance(link, h5py.ExternalLink):
            return "which passes through an external link"
        if isinstance(link, h5py.SoftLink):
            rest = "/".join(parts[i + 1 :])
            base = "/" + "/".join(parts[:i])
            nxt = link.path if link.path.startswith("/") else f"{base}/{link.path}"
            return _soft_link_problem(f, f"{nxt}/{rest}" if rest else nxt, hops + 1)
        try:
            group = group[part]
        except (KeyError, OSError, RuntimeError, ValueError):
            return "which cannot be opened"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def open_hdf5(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open a regular HDF5 file read-only, audited by :func:`audit_hdf5`, as an ``h5py.File``.

    The file is read through the descriptor checked by :func:`open_regular`, so the audited file is
    the one read.

    Raises:
        UnsafeFileError: not a regular file, not HDF5, or refused by the audit.
    """
    import h5py

    with open_regular(path) as fh:
        try:
            f = h5py.File(fh, "r")
        except (OSError, RuntimeError, ValueError) as exc:
            raise UnsafeFileError(f"{path}: not a readable HDF5 file ({_one_line(exc)})") from None
        with f:
            audit_hdf5(f, path)
            yield f


def load_npy(
    path: str | os.PathLike[str], max_bytes: int | None = None, kinds: str = "biuf"
) -> np.ndarray:
    """Load one ``.npy`` array of a numeric dtype, checking its header before allocating it.

    Args:
        path: the file (regular file only).
        max_bytes: largest array accepted (default ``LIMITS['npy_bytes']``).
        kinds: accepted numpy dtype kinds (default bool, signed, unsigned, float).

    Raises:
        UnsafeFileError: not a regular file, not ``.npy`` (an ``.npz`` archive is named as such), a
            structured/object/other dtype, an array over the limit, or a file cut short.
    """
    limit = LIMITS["npy_bytes"].high if max_bytes is None else max_bytes
    import numpy as np

    fmt = np.lib.format
    with open_regular(path) as fh:
        head = fh.read(6)
        if head.startswith(b"PK"):
            raise UnsafeFileError(f"{path}: an .npz archive, expected one .npy array")
        if head != fmt.MAGIC_PREFIX:
            raise UnsafeFileError(f"{path}: not a .npy file (no NumPy magic)")
        fh.seek(0)
        try:
            major, minor = fmt.read_magic(fh)
            if (major, minor) == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(
                    fh, max_header_size=LIMITS["npy_header_bytes"].high
                )
            elif (major, minor) == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(
                    fh, max_header_size=LIMITS["npy_header_bytes"].high
                )
            else:
                raise UnsafeFileError(f"{path}: .npy format {major}.{minor} is not supported")
        except UnsafeFileError:
            raise
        except Exception as exc:  # numpy's header parser raises many types (tokenize, ast, ...)
            raise UnsafeFileError(f"{path}: bad .npy header ({_one_line(exc)})") from None
        if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
            raise UnsafeFileError(
                f"{path}: dtype {dtype} is not accepted (numeric arrays only: kinds {kinds!r})"
            )
        size = _declared_bytes(shape, dtype)
        if size > limit:
            raise UnsafeFileError(
                f"{path}: the header declares {size} bytes (shape {shape}, {dtype}), more than "
                f"the limit of {limit}"
            )
        left = os.fstat(fh.fileno()).st_size - fh.tell()
        if left < size:
            raise UnsafeFileError(
                f"{path}: cut short: the header declares {size} bytes of data, the file holds {left}"
            )
        fh.seek(0)
        try:
            return fmt.read_array(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError, TypeError) as exc:
            raise UnsafeFileError(f"{path}: unreadable .npy data ({_one_line(exc)})") from None


def read_bytes(path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """The contents of a regular file of at most ``max_bytes`` (default ``LIMITS['data_bytes']``).

    Raises:
        UnsafeFileError: as :func:`open_regular`.
    """
    limit = LIMITS["data_bytes"].high if max_bytes is None else max_bytes
    with open_regular(path, max_bytes=limit) as fh:
        return fh.read(limit + 1)


def gunzip_bounded(raw: bytes, path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """Decompress gzip data, refusing more than ``max_bytes`` of output (a gzip bomb).

    Raises:
        UnsafeFileError: the output would exceed the limit.
        OSError, EOFError: corrupt gzip data (as :mod:`gzip` raises them).
    """
    import gzip
    import io

    limit = LIMITS["data_bytes"].high if max_bytes is None else max_bytes
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
        out = gz.read(limit + 1)
    if len(out) > limit:
        raise UnsafeFileError(f"{path}: decompresses to more than the limit of {limit} bytes")
    return out


# ------------------------------------------------------------------------------------------ writing


def _umask() -> int:
    """The process umask: from /proc where Linux shows it, else by setting and restoring it (not
    thread-safe, hence the first choice)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` when tsslbp may replace it: nothing there yet, or a regular file (symlinks
    followed), in an existing directory.

    Raises:
        OutputError: a device, FIFO, socket or directory at ``path``, or no directory for it.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise OutputError(err.errno, f"{path}: cannot write here ({err.strerror or err})") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind:
            raise OutputError(errno.EEXIST, f"{path}: is {kind}; tsslbp writes only regular files")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(errno.ENOENT, f"{path}: the directory {parent} does not exist")
    return path


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # h5py and torch report a full disk in their own exception text.
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; on success rename it over ``path``.

    The writer writes the temporary file by name (h5py, nir, torch, numpy, matplotlib all take a
    path). Only a regular file or nothing is replaced (:func:`check_output_path`); the result gets
    0666 less the umask, like a plain ``open``; on any error the temporary file is removed, and a
    full disk raises one line.

    Args:
        path: the destination.
        fsync: flush the file and its directory entry to disk (checkpoints).

    Raises:
        OutputError: the destination is not writable as a regular file, or the disk is full.
    """
    path = check_output_path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; an artifact is as readable as any file its user writes.
        os.chmod(tmp, 0o666 & ~_umask())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        # Re-check: the destination may have become a device while the file was being written.
        check_output_path(path)
        os.replace(tmp, path)
        if fsync:
            # The rename itself survives a power loss only once the directory entry is on disk.
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(exc):
            raise OutputError(
                errno.ENOSPC, f"{path}: no space left on device (nothing was written)"
            ) from None
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_output`; returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` as ``.npy`` (the name kept as given) through
    :func:`atomic_output`; returns the path written."""
    import numpy as np

    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return path


# -------------------------------------------------------------------------------------------- locks


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike[str], name: str = ".tsslbp.lock") -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``directory/name`` for the duration of a run.

    The lock dies with the process (no stale lock after a crash or SIGKILL).

    Raises:
        RunLockedError: another process holds it (the message names the directory and its pid).
        OutputError: the lock file is not a regular file.
    """
    directory = Path(directory)
    lock_path = directory / name
    check_output_path(lock_path)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                errno.EWOULDBLOCK,
                f"{directory}: another tsslbp run (pid {holder}) is writing here; wait for it "
                "or choose another --out",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)
