"""How glibc's heap treats large freed buffers: returned to the system, or kept while training.

glibc raises its mmap threshold to the size of the first large block freed, so later buffers of
that size come from the heap, which fragments: predicting 1 M windows in batches of 256 took RSS
from 0.4 to 2.0 GB. A fixed 1 MiB threshold serves them from mmap and returns them when freed.
A training step, though, frees and re-allocates the same multi-MiB activations every step, and
each fresh mapping pays a page fault per 4 KiB on first write: at a batch of 505 windows (one
S&P 500 date) that was a third of a GRU step. Training on the CPU therefore keeps freed buffers
in the heap for its duration and hands them back when it ends. A MALLOC_MMAP_THRESHOLD_ in the
environment takes precedence over both.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from collections.abc import Iterator

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
RETURN_ABOVE = 1 << 20  # outside training: blocks above 1 MiB are mapped, and unmapped when freed
TRIM_DEFAULT = 128 << 10  # glibc's default: free heap top above this is released
KEEP_BELOW = 32 << 20  # while training: blocks up to 32 MiB (glibc's cap) come from the heap
KEEP_TOP = 256 << 20  # ... and up to 256 MiB of free heap top stays mapped


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, where this process runs on it and the user left its heap settings alone."""
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, say): nothing to tune
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def return_large_buffers_when_freed() -> None:
    """Serve blocks above 1 MiB from mmap, so that freeing them returns them to the system."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, RETURN_ABOVE)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_DEFAULT)


@contextlib.contextmanager
def keep_freed_buffers() -> Iterator[None]:
    """Within the block, freed buffers up to 32 MiB stay in the heap for the next step's reuse."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_TOP)
    try:
        yield
    finally:
        return_large_buffers_when_freed()
        libc.malloc_trim(0)  # hand back what training left free in the heap
