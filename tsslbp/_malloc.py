"""Keep freed memory in the process instead of returning it to the OS after every large tensor.

PyTorch's CPU allocator takes its memory from the C library's ``malloc``. With glibc's defaults a
block above the dynamic mmap threshold is mapped fresh and unmapped on free, and a heap whose top
is free is trimmed: the next tensor of the same size then touches new pages, and the page faults
cost more than the arithmetic. A TSSL-BP layer allocates a few (N, C, H, W, T) temporaries per
step; on the Fashion-MNIST CNN (a 5.9 M-element first layer) the first-touch faults were about
half of the LIF forward and TSSL-BP backward time (BENCHMARKS.md, "Memory allocator").

:func:`retain_freed_memory` raises glibc's mmap threshold to its maximum (32 MiB on 64-bit) and the
trim threshold to 1 GiB with ``mallopt``, so freed blocks are reused. The process may then hold up
to 1 GiB of freed memory it no longer uses. It is called by the ``tsslbp`` command line; library
users call it themselves if they want it. ``TSSLBP_MALLOPT=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["retain_freed_memory"]

log = logging.getLogger(__name__)

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30

_applied = False


def retain_freed_memory() -> bool:
    """Make glibc keep and reuse freed blocks up to 32 MiB; returns whether the setting is active.

    A no-op (False) off Linux/glibc, or when the environment sets ``TSSLBP_MALLOPT=0``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("TSSLBP_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    log.debug(
        "glibc mallopt: mmap threshold %d, trim threshold %d: %s",
        MMAP_THRESHOLD,
        TRIM_THRESHOLD,
        _applied,
    )
    return _applied
