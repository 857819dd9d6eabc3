"""Keeping a long run's host memory flat under glibc's allocator.

glibc serves a large allocation with its own memory map and returns it to the system when freed,
but each such free raises the size from which it does so (the dynamic mmap threshold, up to
32 MiB). A windowed run frees window-sized temporaries again and again, so after the first few
they come from the heap, whose freed pages glibc keeps: the process's anonymous memory then grows
with the capture although nothing is alive (measured: `iggt reconstruct` with a store, 0.6 MB a
frame at 224 px; flat once the threshold is fixed, docs/long_captures.md). Fixing the threshold at
glibc's own starting value (128 KiB) keeps it there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number for the mmap threshold (glibc's malloc.h)."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's starting threshold; setting it turns the dynamic raising off."""


@functools.cache
def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process (once; a no-op elsewhere). True when set.

    Process-wide: blocks above 128 KiB are mapped and unmapped on each allocation and free, as
    before the first large free, which costs page faults but no lasting memory.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
    logger.debug("glibc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done
