"""glibc malloc settings for the long-running daemon.

A district's ``netmon run`` holds ~200 MB of small, long-lived objects and, at every
scrape, builds and drops tens of MB in worker threads. With glibc's defaults that
leaves freed memory behind: each worker thread gets its own malloc arena (up to eight
per core), and the mmap threshold rises after the first large block is freed, so later
1 MiB scrape batches come from the heap and leave holes the OS never gets back. So, on
glibc only, at start-up: at most two arenas, a fixed mmap threshold (blocks of 256 KiB
and more are mapped and unmapped, never kept), and after each scrape ``malloc_trim``
hands free pages back. Elsewhere (musl, macOS) these do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
from functools import cache

log = logging.getLogger(__name__)

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024


@cache
def _glibc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def tune_malloc() -> bool:
    """Apply the settings above; False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    applied = all(
        libc.mallopt(option, value) == 1
        for option, value in (
            (_M_ARENA_MAX, ARENA_MAX),
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
    if not applied:
        log.debug("glibc refused a malloc setting; keeping its defaults for the rest")
    return applied


def trim() -> None:
    """Give free heap pages back to the OS (after a scrape); nothing off glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
