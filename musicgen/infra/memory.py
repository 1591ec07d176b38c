"""Memory: large blocks go back to the system when freed, so a server that took in hundreds of megabytes of
uploads returns to its size (glibc otherwise keeps freed memory for reuse); files read through a mapping give
their pages back, so reading a whole collection does not grow the process."""

import ctypes
import gc
import mmap
from pathlib import Path

import numpy as np

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc)
LARGE_BLOCK = 1 << 20  # bytes: blocks this large are mapped on their own, and unmapped when freed


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def return_large_blocks() -> None:
    """From now on, blocks of a megabyte or more are given back to the system when freed (glibc's default
    threshold rises with the largest block freed, up to 32 MB, and blocks under it stay in the heap)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)


def release() -> None:
    """Hand memory freed by a large piece of work back to the system now."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class MappedFile:
    """A file mapped read-only, as an array of bytes. The pages read count in the process's resident memory
    until release() hands them back (they stay in the system's file cache: the next read is a minor fault)."""

    def __init__(self, path: Path):
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self.bytes = np.frombuffer(self._map, np.uint8) if self._map is not None else np.zeros(0, np.uint8)

    def release(self) -> None:
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)
