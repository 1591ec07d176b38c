"""The app server's memory: large blocks go back to the system when freed, so a server that took in hundreds
of megabytes of uploads returns to its size (glibc otherwise keeps freed memory for reuse)."""

import ctypes
import gc

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
